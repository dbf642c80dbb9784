"""What every job entry point shares: the one-line exit on bad input and the common keys.

A leaf below every job module (generate, export, evalset, score, dpo, mix, card, publish):
it imports only pipeline.dataset (lazily), so a job may use it without importing another job.
`pipeline.jobs` re-exports these names for older imports.
"""

from __future__ import annotations

import sys


def fail(error: Exception) -> None:
    """Print `duplexsynth: <error>` (one line, no traceback) and exit with status 2."""
    print(f"duplexsynth: {error}", file=sys.stderr)
    raise SystemExit(2)


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
