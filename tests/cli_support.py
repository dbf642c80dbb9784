"""Running `python -m pipeline <job> ...` from a test, as a user runs the CLI."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def cli(tmp: Path, *args: str, ok: bool = True) -> subprocess.CompletedProcess:
    """The job in a child process from the repo root; with `ok`, a non-zero exit fails the
    test with the end of its stderr."""
    result = subprocess.run(
        [sys.executable, "-m", "pipeline", *args, f"hydra.run.dir={tmp / 'hydra'}"],
        cwd=ROOT, capture_output=True, text=True, timeout=600,
    )
    if ok:
        assert result.returncode == 0, result.stderr[-3000:]
    return result
