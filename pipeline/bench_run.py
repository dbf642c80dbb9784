"""Running `generate` as the bench does: in a child process, its process tree's memory sampled.

Shared by pipeline.bench and pipeline.bench_piper (a leaf below both, so neither imports the other).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from dataclasses import dataclass
from pathlib import Path

from pipeline import paths


@dataclass
class PipelineRun:
    """One `generate` run: the probe's figures plus the peak memory of its process tree."""

    figures: dict
    peak_rss_bytes: int
    output_dir: Path
    peak_driver_uss_bytes: int = 0
    """The driver's own unique memory (USS: pages no other process shares), at its peak."""

    @property
    def audio_s(self) -> float:
        return float(self.figures["audio_s"])

    @property
    def generate_s(self) -> float:
        return float(self.figures["generate_s"])

    @property
    def with_ray_start_s(self) -> float:
        return self.generate_s + float(self.figures["ray_init_s"])

    @property
    def steady_s(self) -> float:
        """From the first row out of the stream to the end: start-up and pipeline fill out."""
        profile = self.figures["profile"]
        return max(profile["stream_s"] - profile["first_row_s"], 1e-9)


def tree_rss(pid: int) -> int:
    """Resident bytes of a process and all its descendants (driver + Ray's processes).

    Shared pages (Ray's object store in /dev/shm) count once per process that touches them,
    so this overstates the machine's use; it does so the same way at every run size."""
    import psutil

    try:
        root = psutil.Process(pid)
        processes = [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return 0
    total = 0
    for process in processes:
        try:
            total += process.memory_info().rss
        except psutil.NoSuchProcess:
            continue
    return total


def driver_uss(pid: int) -> int:
    """Unique set size of one process (the driver alone, not Ray's workers): what it would
    free on exit, so shared libraries and the object store's pages do not count."""
    import psutil

    try:
        return int(psutil.Process(pid).memory_full_info().uss)
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return 0


def run_pipeline(output_dir: Path, dialogues: int, overrides: tuple[str, ...] = (),
                 cores: set[int] | None = None, sample_s: float = 0.2) -> PipelineRun:
    """`generate` in a child process (pinned to `cores` if given), its tree's RSS and the
    driver's USS sampled every `sample_s` seconds; raises if the run fails."""
    command = [sys.executable, "-m", "pipeline.bench_probe", f"budget.dialogues={dialogues}",
               f"sink.dir={output_dir}", "progress=false", *overrides]
    process = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        cwd=paths.REPO_ROOT,
        preexec_fn=(lambda: os.sched_setaffinity(0, cores)) if cores else None)
    peak = peak_uss = 0
    done = threading.Event()

    def sample() -> None:
        nonlocal peak, peak_uss
        while not done.wait(sample_s):
            peak = max(peak, tree_rss(process.pid))
            peak_uss = max(peak_uss, driver_uss(process.pid))

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    stdout, stderr = process.communicate()
    done.set()
    sampler.join()
    if process.returncode != 0:
        raise RuntimeError(f"bench: generate failed ({process.returncode}): {stderr[-2000:]}")
    return PipelineRun(json.loads(stdout.strip().splitlines()[-1]), peak, output_dir,
                       peak_uss)
