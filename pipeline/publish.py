"""`duplexsynth publish`: upload a generated dataset to the Hugging Face Hub.

A dry run by default: it prints the file plan (every file that would be sent, with sizes) so
nothing leaves the machine by accident; `publish.confirm=true` creates the dataset repo
(`HfApi.create_repo`, private unless `private=false`) and uploads the plan with
`HfApi.upload_folder` (streamed and resumable: rerunning after an interruption sends only
what is missing). The token comes from `HF_TOKEN` or the local login and is never printed or
written anywhere. `publish.endpoint` (or `HF_ENDPOINT`) points at another Hub, e.g. a mirror
or a local test server.
"""

from __future__ import annotations

import logging
import os
import sys
from dataclasses import dataclass
from pathlib import Path

from pydantic import BaseModel, ConfigDict

from pipeline.card import CardError, CardSettings, write_card
from pipeline.dataset import DatasetNotFound, shard_paths
from pipeline.jobs_common import checked, fail, sink_dir
from pipeline.sink import DIALOGUES


class PublishSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")
    confirm: bool = False
    endpoint: str | None = None
    revision: str | None = None
    commit_message: str | None = None
    refresh_card: bool = True


@dataclass(frozen=True)
class PlannedFile:
    path: str
    size: int


def upload_plan(dataset: Path) -> list[PlannedFile]:
    """Every file of the dataset folder that goes to the Hub, in upload order (sorted).

    Hidden files and folders (temporaries of an interrupted run, `.cache/`) stay behind.
    """
    files = []
    for path in sorted(dataset.rglob("*")):
        relative = path.relative_to(dataset)
        if path.is_file() and not any(part.startswith(".") for part in relative.parts):
            files.append(PlannedFile(relative.as_posix(), path.stat().st_size))
    return files


def format_plan(plan: list[PlannedFile]) -> str:
    width = max(len(f.path) for f in plan)
    lines = [f"  {f.path:<{width}}  {_size(f.size):>10}" for f in plan]
    lines.append(f"  {len(plan)} files, {_size(sum(f.size for f in plan))} in all")
    return "\n".join(lines)


def _size(size: int) -> str:
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if size >= scale:
            return f"{size / scale:.1f} {unit}"
    return f"{size} B"


def token_source() -> tuple[str | None, str]:
    """The Hub token and where it came from (for the message; the token itself is not shown)."""
    from huggingface_hub import get_token

    token = get_token()
    if token is None:
        return None, "none found"
    return token, "HF_TOKEN" if os.environ.get("HF_TOKEN") == token else "the local login"


def publish(dataset: Path, repo_id: str, private: bool, settings: PublishSettings,
            plan: list[PlannedFile], token: str) -> str:
    """Create the repo if needed and upload exactly `plan`; returns the commit URL."""
    from huggingface_hub import HfApi

    for name in ("httpx", "httpx2", "httpcore"):  # one INFO line per request otherwise
        logging.getLogger(name).setLevel(logging.WARNING)
    api = HfApi(endpoint=settings.endpoint, token=token)
    repo = api.create_repo(repo_id, repo_type="dataset", private=private, exist_ok=True)
    commit = api.upload_folder(
        repo_id=repo.repo_id,
        folder_path=dataset,
        repo_type="dataset",
        revision=settings.revision,
        allow_patterns=[f.path for f in plan],
        commit_message=settings.commit_message or f"Upload {len(plan)} files with duplexsynth",
    )
    return str(getattr(commit, "commit_url", commit))


def publish_job(raw: dict) -> dict:
    from huggingface_hub.utils import HFValidationError, validate_repo_id

    dataset = sink_dir(raw)
    repo_id = raw.get("repo_id")
    if not repo_id:
        fail(ValueError("repo_id: missing; set repo_id=<owner>/<name>"))
    try:
        validate_repo_id(str(repo_id))
    except HFValidationError as error:
        fail(ValueError(f"repo_id: {error}"))
        raise
    settings = checked(PublishSettings, raw.get("publish"), "publish.")
    card = checked(CardSettings, {**(raw.get("card") or {}), "repo_id": repo_id}, "card.")
    private = raw.get("private", True)
    if not isinstance(private, bool):
        fail(ValueError(f"private: must be true or false (got {private!r})"))
    folder = Path(dataset).expanduser().resolve()
    try:
        shard_paths(folder, DIALOGUES)
        if settings.refresh_card or not (folder / "README.md").exists():
            write_card(folder, card)
    except (DatasetNotFound, CardError) as error:
        fail(error)
        raise
    plan = upload_plan(folder)
    token, source = token_source()
    visibility = "private" if private else "public"
    print(f"publish {folder} -> dataset repo {repo_id} ({visibility}); token: {source}")
    print(format_plan(plan))
    if not settings.confirm:
        print("dry run: nothing was sent; add publish.confirm=true to upload")
        return {"dry_run": True, "files": [f.path for f in plan]}
    if token is None:
        fail(ValueError("no Hugging Face token: set HF_TOKEN or run `hf auth login`"))
    url = publish(folder, str(repo_id), private, settings, plan, str(token))
    print(f"uploaded {len(plan)} files: {url}", file=sys.stderr)
    return {"dry_run": False, "files": [f.path for f in plan], "commit_url": url}
