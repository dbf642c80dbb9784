"""Kill the real `duplexsynth generate` with SIGKILL, rerun, and find exactly the plan."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from pipeline.schema import scenario_id
from pipeline.sink import shard_pattern
from pipeline.splits import DEFAULT_SPLITS, dialogue_counts

ROOT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.slow
PLANNED = 12
SEED = 77


def command(out: Path) -> list[str]:
    return [sys.executable, "-m", "pipeline", "generate", f"sink.dir={out}", f"seed={SEED}",
            f"hydra.run.dir={out.parent / 'hydra'}", f"budget.dialogues={PLANNED}",
            "sink.shard_dialogues=2", "progress=false", "ray.num_cpus=2", "ray.batch_size=1"]


def shards(out: Path) -> list[Path]:
    return sorted((out / "data" / "dialogues").glob(shard_pattern()))  # every split


def kill_group(process: subprocess.Popen) -> None:
    os.kill(process.pid, signal.SIGKILL)
    process.wait(timeout=30)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)  # the job's own Ray processes


def start(out: Path) -> subprocess.Popen:
    return subprocess.Popen(command(out), cwd=ROOT, start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def wait_for(predicate, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return False


def test_sigkill_at_several_moments_then_rerun_gives_exactly_the_plan(tmp_path):
    out = tmp_path / "ds"
    # 1: killed while Ray is still starting, before any shard exists
    process = start(out)
    time.sleep(1.0)
    kill_group(process)
    # 2 and 3: killed right after the first, then after a later, shard was renamed into place
    for finished in (1, 3):
        process = start(out)
        assert wait_for(lambda n=finished, p=process: len(shards(out)) >= n
                        or p.poll() is not None, timeout=240)
        kill_group(process)
        for path in shards(out):
            pq.read_table(path)  # every shard on disk is complete and readable
    result = subprocess.run(command(out), cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]

    ids = pq.read_table(out / "data" / "dialogues", columns=["id"]).column("id").to_pylist()
    run = json.loads((out / "run.json").read_text())
    rejected = sum(run["counts"]["rejected"].values())
    assert len(ids) == len(set(ids)), "a rerun duplicated rows"
    assert len(ids) + rejected == PLANNED
    splits = len(DEFAULT_SPLITS)  # split k holds run indices k, k + 3, k + 6 ...
    assert set(ids) <= {scenario_id(SEED, i) for i in range(splits * PLANNED)}
    assert run["counts"]["written"] == len(ids)
    assert len(shards(out)) == sum(-(-count // 2) for count in
                                   dialogue_counts(PLANNED, DEFAULT_SPLITS).values())
    segment_dialogues = set(pq.read_table(out / "data" / "segments", columns=["dialogue_id"])
                            .column("dialogue_id").to_pylist())
    assert segment_dialogues == set(ids)
    assert not list((out / "data").glob("*/.*.tmp-*")), "temporary files left behind"
