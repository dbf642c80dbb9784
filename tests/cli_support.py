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


def in_process(job: str, *overrides: str) -> object:
    """The job's handler called in this process with the very config the CLI gives it (Hydra
    composes conf/<job>.yaml with the overrides): the CLI's code path minus a child process's
    start-up, for tests about what a job computes. Each job keeps a CLI test of its own."""
    from importlib import import_module

    from hydra import compose, initialize_config_dir
    from omegaconf import OmegaConf

    from pipeline.cli import CONF_DIR, JOBS
    from pipeline.dataset import clear_split

    module, function, _ = JOBS[job]
    with initialize_config_dir(config_dir=CONF_DIR, version_base="1.3"):
        raw = OmegaConf.to_container(compose(job, overrides=list(overrides)), resolve=True)
    try:
        return getattr(import_module(module), function)(raw)
    finally:
        clear_split()
