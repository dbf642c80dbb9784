"""What every job entry point shares: the one-line exit on bad input and the common keys.

A leaf below every job module (generate, export, evalset, score, dpo, mix, card, publish):
it imports only pipeline.dataset and pipeline.config (lazily), so a job may use it without
importing another job. `checked` is the one config check of the jobs that validate a group
of their own: one line naming each bad key, before any work.
`pipeline.jobs` re-exports these names for older imports.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from pydantic import BaseModel

Model = TypeVar("Model", bound="BaseModel")


def fail(error: Exception) -> None:
    """Print `duplexsynth: <error>` (one line, no traceback) and exit with status 2."""
    print(f"duplexsynth: {error}", file=sys.stderr)
    raise SystemExit(2)


def sink_dir(raw: dict) -> str:
    """The dataset a card or publish job reads: `dataset=` or `sink.dir=`, or a clear exit."""
    dataset = raw.get("dataset") or (raw.get("sink") or {}).get("dir")
    if not dataset:
        fail(ValueError("sink.dir: missing; set sink.dir=<folder written by generate>"))
    return str(dataset)


def dataset_and_out(raw: dict, writes: str) -> tuple[str, str]:
    """The `dataset=` and `out.dir=` every job after `generate` needs, or a clear exit.
    `split=` (optional) limits every read of the job to that split; an unknown split fails
    here, before the job writes anything."""
    from pipeline.dataset import UnknownSplit, resolve, select_split

    dataset, out = raw.get("dataset"), (raw.get("out") or {}).get("dir")
    if not dataset:
        fail(ValueError("dataset: missing; set dataset=<folder written by generate>"))
    if not out:
        fail(ValueError(f"out.dir: missing; set out.dir=<folder for {writes}>"))
    try:
        select_split(resolve(dataset), raw.get("split"))
    except UnknownSplit as error:
        fail(error)
    return dataset, out


def checked(model: type[Model], values: dict[str, Any] | None, prefix: str = "") -> Model:
    """`values` (a job's config, or its `prefix` group) checked by `model`, before any work;
    a bad value exits with one line naming each bad key (pipeline.config.explain, the form
    `generate` uses too), never a traceback."""
    from pydantic import ValidationError

    from pipeline.config import ConfigError, explain

    try:
        return model.model_validate(values or {})
    except ValidationError as error:
        fail(ConfigError(explain(error, prefix)))
        raise
