"""A real two-node Ray cluster on this machine runs a small job through `ray job submit`."""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest

ROOT = Path(__file__).resolve().parent.parent
RAY = str(Path(sys.executable).with_name("ray"))
pytestmark = pytest.mark.slow


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_nodes(env: dict, gcs: str, count: int, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status = subprocess.run([RAY, "status", f"--address={gcs}"], env=env,
                                capture_output=True, text=True, timeout=60)
        if status.stdout.count(" node_") >= count:
            return
        time.sleep(1)
    raise AssertionError(f"cluster never reached {count} nodes:\n{status.stdout}{status.stderr}")


@pytest.fixture
def two_node_cluster(tmp_path):
    ray_tmp = Path("/tmp") / f"ds-ray-{secrets.token_hex(3)}"  # short: unix socket paths
    env = {**os.environ, "RAY_TMPDIR": str(ray_tmp), "RAY_AUTH_MODE": "token",
           "RAY_AUTH_TOKEN": secrets.token_hex(32), "RAY_USAGE_STATS_ENABLED": "0"}
    env.pop("RAY_ADDRESS", None)
    gcs_port, dashboard_port = free_port(), free_port()
    gcs = f"127.0.0.1:{gcs_port}"
    nodes = [
        subprocess.Popen([RAY, "start", "--head", "--block", f"--port={gcs_port}",
                          f"--dashboard-port={dashboard_port}", "--include-dashboard=true",
                          "--num-cpus=1", f"--temp-dir={ray_tmp}"],
                         env=env, start_new_session=True,
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL),
    ]
    try:
        wait_nodes(env, gcs, 1)
        nodes.append(subprocess.Popen(
            [RAY, "start", "--block", f"--address={gcs}", "--num-cpus=1",
             '--resources={"second_node": 1}'],
            env=env, start_new_session=True,
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        wait_nodes(env, gcs, 2)
        yield env, gcs, f"http://127.0.0.1:{dashboard_port}"
    finally:
        for node in reversed(nodes):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(node.pid, signal.SIGKILL)
            node.wait(timeout=30)
        subprocess.run(["pkill", "-9", "-f", str(ray_tmp)], check=False)
        shutil.rmtree(ray_tmp, ignore_errors=True)


def test_job_submit_on_two_nodes_writes_the_dataset(two_node_cluster, tmp_path):
    env, gcs, dashboard = two_node_cluster
    out = tmp_path / "ds"
    result = subprocess.run(
        ["bash", str(ROOT / "jobs" / "submit.sh"), "generate", f"sink.dir={out}",
         "budget.dialogues=4", "sink.shard_dialogues=2", "progress=false",
         "ray.speak_workers=2", "ray.batch_size=1", f"hydra.run.dir={tmp_path / 'hydra'}"],
        cwd=ROOT, env={**env, "RAY_ADDRESS": dashboard, "RAY": RAY, "PYTHON": sys.executable},
        capture_output=True, text=True, timeout=600,
    )
    assert result.returncode == 0, (result.stdout + result.stderr)[-4000:]
    assert "succeeded" in result.stdout + result.stderr
    ids = pq.read_table(out / "data" / "dialogues", columns=["id"]).column("id").to_pylist()
    assert len(ids) == len(set(ids)) == 4
    run = json.loads((out / "run.json").read_text())
    assert run["counts"]["written"] == 4
