"""A Ray worker killed mid-stage is restarted and retried: no lost or duplicated rows."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest

ROOT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.slow
PLANNED = 12  # batch_size=1: the speak pool is busy for each of them, time enough to kill


def busy_worker_pids(stage: str) -> list[int]:
    """Ray names a busy actor process `ray::MapWorker(MapBatches(<Stage>)).submit`, or
    `<Stage>Gate` for a stage behind the split board (pipeline/stream.py)."""
    listing = subprocess.run(["ps", "-eo", "pid=,args="], capture_output=True, text=True).stdout
    return [int(line.split(None, 1)[0]) for line in listing.splitlines()
            if f"MapBatches({stage})).submit" in line
            or f"MapBatches({stage}Gate)).submit" in line]


def test_killed_speak_worker_is_retried_without_loss_or_duplicates(tmp_path):
    out = tmp_path / "ds"
    process = subprocess.Popen(
        [sys.executable, "-m", "pipeline", "generate", f"sink.dir={out}", "seed=5",
         f"hydra.run.dir={tmp_path / 'hydra'}", f"budget.dialogues={PLANNED}",
         "sink.shard_dialogues=4", "progress=false", "ray.num_cpus=2", "ray.batch_size=1",
         "splits={train:1.0,validation:0,test:0}"],  # one stream: one actor start-up
        cwd=ROOT, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        text=True,
    )
    killed = None
    deadline = time.monotonic() + 300
    while killed is None and time.monotonic() < deadline and process.poll() is None:
        pids = busy_worker_pids("SpeakStage")
        if pids:
            os.kill(pids[0], signal.SIGKILL)
            killed = pids[0]
        time.sleep(0.01)
    _, stderr = process.communicate(timeout=600)
    assert killed is not None, "the run ended before a speak worker could be killed"
    assert process.returncode == 0, stderr[-3000:]
    ids = pq.read_table(out / "data" / "dialogues", columns=["id"]).column("id").to_pylist()
    run = json.loads((out / "run.json").read_text())
    assert len(ids) == len(set(ids))
    assert len(ids) + sum(run["counts"]["rejected"].values()) == PLANNED
    assert run["counts"]["rejected"] == {}
