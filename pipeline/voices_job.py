"""`duplexsynth voices list|download`: the TTS voice registry, and Piper voices from the Hub.

`voices list tts=piper` prints every registry voice (id, language, gender where known,
speaker name, model); `voices list tts=espeak` does the same for eSpeak's voices.
`voices download tts=piper names=[hu_HU-anna-medium] tts.voices_dir=D` fetches each voice's
`.onnx`, `.onnx.json` and `MODEL_CARD` from the Hub repository `hub.repo` at `hub.revision`
(default rhasspy/piper-voices@main; pin a commit for reproducible voices) into D, in the
repository's own layout (`hu/hu_HU/anna/medium/...`), which `tts.voices_dir` reads
recursively.

Why the download loop is ours: huggingface_hub 2.4 gives the file metadata
(`HfApi.get_paths_info`: size, LFS sha256 or git blob sha1) and the URL (`hf_hub_url`), but
`hf_hub_download` restarts an interrupted file from zero. Here a file is written to
`<file>.part` and an interrupted download continues from the bytes already there (HTTP Range);
every finished file is checked against the Hub's size and hash before it is renamed into
place, and a rerun skips files that already verify.
"""

from __future__ import annotations

import hashlib
import re
import sys
from dataclasses import dataclass
from pathlib import Path

from pipeline.jobs import fail

NAME = re.compile(r"(?P<family>[a-z]{2,3})_(?P<region>[A-Z]{2})-(?P<voice>[A-Za-z0-9_]+)-"
                  r"(?P<quality>x_low|low|medium|high)")
CHUNK = 1 << 20


@dataclass(frozen=True)
class HubFile:
    """One file to fetch: repo path, size in bytes, and the hash the Hub gives for it."""

    path: str
    size: int
    sha256: str | None  # LFS files
    blob_sha1: str | None  # regular files: git blob id


def voice_paths(name: str) -> tuple[str, ...]:
    """Repo paths of a voice (rhasspy/piper-voices layout); the MODEL_CARD is optional."""
    match = NAME.fullmatch(name)
    if match is None:
        raise ValueError(f"names: {name!r} is not a Piper voice name like hu_HU-anna-medium "
                         "(<lang>_<REGION>-<voice>-<x_low|low|medium|high>)")
    folder = (f"{match['family']}/{match['family']}_{match['region']}/{match['voice']}/"
              f"{match['quality']}")
    return (f"{folder}/{name}.onnx", f"{folder}/{name}.onnx.json", f"{folder}/MODEL_CARD")


def file_matches(path: Path, expected: HubFile) -> bool:
    """Size and hash as the Hub reports them (sha256 for LFS, git blob sha1 otherwise)."""
    if not path.is_file() or path.stat().st_size != expected.size:
        return False
    if expected.sha256:
        digest = hashlib.sha256()
    else:
        digest = hashlib.sha1()
        digest.update(f"blob {expected.size}\0".encode())
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(CHUNK), b""):
            digest.update(block)
    return digest.hexdigest() == (expected.sha256 or expected.blob_sha1)


def hub_files(api, repo: str, revision: str, name: str) -> list[HubFile]:
    paths = voice_paths(name)
    infos = {info.path: info for info in api.get_paths_info(repo, list(paths),
                                                           revision=revision)}
    missing = [p for p in paths[:2] if p not in infos]
    if missing:
        raise ValueError(f"voice {name!r} is not in {repo}@{revision} (missing {missing}); "
                         "see `voices.json` in that repository for the voice names")
    files = []
    for path in paths:
        info = infos.get(path)
        if info is None:
            continue
        lfs = getattr(info, "lfs", None)
        files.append(HubFile(path, int(lfs.size if lfs else info.size),
                             lfs.sha256 if lfs else None, None if lfs else info.blob_id))
    return files


def fetch_file(url: str, headers: dict, expected: HubFile, dest: Path) -> str:
    """Download to `dest` via `dest.part`, continuing a partial file; returns what it did."""
    from huggingface_hub.utils import get_session, hf_raise_for_status

    if file_matches(dest, expected):
        return "present"
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    offset = part.stat().st_size if part.exists() else 0
    if offset > expected.size:
        part.unlink()
        offset = 0
    if offset < expected.size:
        request = dict(headers, **({"Range": f"bytes={offset}-"} if offset else {}))
        with get_session().stream("GET", url, headers=request, follow_redirects=True) as reply:
            hf_raise_for_status(reply)
            if offset and reply.status_code != 206:  # server ignored the Range: start over
                offset = 0
            with open(part, "ab" if offset else "wb") as handle:
                for block in reply.iter_bytes(CHUNK):
                    handle.write(block)
    if not file_matches(part, expected):
        part.unlink(missing_ok=True)
        raise ValueError(f"{expected.path}: size or hash differs from the Hub's "
                         f"({expected.size} bytes); the partial file was removed, rerun to retry")
    part.replace(dest)
    return f"resumed at {offset} bytes" if offset else "downloaded"


def download(names: list[str], voices_dir: str, hub: dict) -> list[str]:
    """Fetch each named voice into `voices_dir`; one report line per file."""
    from huggingface_hub import HfApi, hf_hub_url
    from huggingface_hub.utils import build_hf_headers

    repo, revision = hub.get("repo") or "rhasspy/piper-voices", hub.get("revision") or "main"
    endpoint, token = hub.get("endpoint"), hub.get("token")
    api = HfApi(endpoint=endpoint, token=token)
    headers = build_hf_headers(token=token)
    root = Path(voices_dir).expanduser()
    lines = []
    for name in names:
        for item in hub_files(api, repo, revision, name):
            url = hf_hub_url(repo, item.path, revision=revision, endpoint=endpoint)
            outcome = fetch_file(url, headers, item, root / item.path)
            lines.append(f"{item.path}: {outcome}, {item.size} bytes, verified")
    return lines


def registry_lines(tts: dict, languages: list[str]) -> list[str]:
    from pipeline.tts import backend_from_config

    backend = backend_from_config(tts)
    lines = [f"{'id':<48} {'lang':<5} {'gender':<7} {'speaker':<16} model"]
    for language in languages:
        try:
            voices = backend.voices(language)
        except ValueError as error:
            lines.append(f"# {language}: {error}")
            continue
        for voice in voices:
            lines.append(f"{voice['id']:<48} {voice.get('language', language):<5} "
                         f"{voice.get('gender') or '-':<7} {voice.get('speaker') or '-':<16} "
                         f"{voice.get('name', '')}")
    return lines


def voices_job(raw: dict) -> None:
    action, tts = raw.get("action"), dict(raw.get("tts") or {})
    try:
        if action == "list":
            print("\n".join(registry_lines(tts, list(raw.get("languages") or ["en", "hu"]))))
        elif action == "download":
            names, voices_dir = list(raw.get("names") or []), tts.get("voices_dir")
            if tts.get("name") != "piper":
                raise ValueError("voices download: only tts=piper voices can be downloaded")
            if not names:
                raise ValueError("names: missing; e.g. names=[hu_HU-anna-medium]")
            if not voices_dir:
                raise ValueError("tts.voices_dir: missing; set tts.voices_dir=<folder>")
            for name in names:
                voice_paths(name)  # a bad name fails before any request
            for line in download(names, voices_dir, dict(raw.get("hub") or {})):
                print(line)
            print(f"use them with: duplexsynth generate tts=piper tts.voices_dir={voices_dir}",
                  file=sys.stderr)
        else:
            raise ValueError(f"action={action!r}: use `duplexsynth voices list` or "
                             "`duplexsynth voices download`")
    except Exception as error:  # noqa: BLE001 - one line for the user, no traceback
        fail(error if isinstance(error, ValueError) else
             ValueError(f"{type(error).__name__}: {error}"))
