"""A real two-node Ray cluster on this machine runs a small job through `ray job submit`,
writing to a real S3 server on 127.0.0.1 (moto) from both nodes; `datasets` loads the result
from there with storage_options."""

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

from pipeline.sink import WRITER_META_KEY, shard_pattern
from tests.s3_server import CREDENTIALS, S3Server, moto_s3

ROOT = Path(__file__).resolve().parent.parent
RAY = str(Path(sys.executable).with_name("ray"))
pytestmark = pytest.mark.slow


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_nodes(env: dict, gcs: str, count: int, timeout: float = 120,
               node: subprocess.Popen | None = None) -> None:
    """Until `ray status` shows `count` nodes; AssertionError after `timeout` s, or at once
    when `node` (the `ray start --block` just launched) has exited."""
    deadline = time.monotonic() + timeout
    seen = ""
    while time.monotonic() < deadline:
        if node is not None and node.poll() is not None:
            raise AssertionError(f"ray start exited with {node.returncode}:\n{seen}")
        try:  # on a loaded machine `ray status` itself can take a minute
            status = subprocess.run([RAY, "status", f"--address={gcs}"], env=env,
                                    capture_output=True, text=True, timeout=60)
        except subprocess.TimeoutExpired:
            continue
        seen = status.stdout + status.stderr
        if status.stdout.count(" node_") >= count:
            return
        time.sleep(1)
    raise AssertionError(f"cluster never reached {count} nodes:\n{seen}")


def stop(node: subprocess.Popen) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(node.pid, signal.SIGKILL)
    node.wait(timeout=30)


@pytest.fixture
def s3() -> S3Server:
    pytest.importorskip("moto.server", reason="the dev extra installs moto[server]")
    with moto_s3() as server:
        yield server


@pytest.fixture
def two_node_cluster(tmp_path, s3):
    """(env, GCS address, dashboard URL); the nodes have the S3 credentials in their
    environment, as cluster nodes get them from theirs (never from the job's config)."""
    ray_tmp = Path("/tmp") / f"ds-ray-{secrets.token_hex(3)}"  # short: unix socket paths
    env = {**os.environ, **CREDENTIALS, "RAY_TMPDIR": str(ray_tmp), "RAY_AUTH_MODE": "token",
           "RAY_AUTH_TOKEN": secrets.token_hex(32), "RAY_USAGE_STATS_ENABLED": "0"}
    env.pop("RAY_ADDRESS", None)
    nodes: list[subprocess.Popen] = []

    def start(count: int, *args: str) -> None:
        """Start a node and wait for the cluster to reach `count` nodes. Ray's node start has
        a fixed 30 s limit that a loaded machine can miss: a second try usually makes it."""
        for attempt in range(2):
            nodes.append(subprocess.Popen([RAY, "start", "--block", "--num-cpus=1", *args],
                                          env=env, start_new_session=True,
                                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
            try:
                wait_nodes(env, gcs, count, timeout=90, node=nodes[-1])
                return
            except AssertionError:
                if attempt:
                    raise
                stop(nodes.pop())

    gcs_port, dashboard_port = free_port(), free_port()
    gcs = f"127.0.0.1:{gcs_port}"
    try:
        start(1, "--head", f"--port={gcs_port}", f"--dashboard-port={dashboard_port}",
              "--include-dashboard=true", f"--temp-dir={ray_tmp}")
        start(2, f"--address={gcs}", '--resources={"second_node": 1}')
        yield env, gcs, f"http://127.0.0.1:{dashboard_port}"
    finally:
        for node in reversed(nodes):
            stop(node)
        subprocess.run(["pkill", "-9", "-f", str(ray_tmp)], check=False)
        shutil.rmtree(ray_tmp, ignore_errors=True)


def test_job_submit_on_two_nodes_writes_the_dataset_to_s3_from_both(two_node_cluster, s3,
                                                                  tmp_path):
    env, gcs, dashboard = two_node_cluster
    target = "s3://bucket/cluster"
    result = subprocess.run(
        ["bash", str(ROOT / "jobs" / "submit.sh"), "generate", f"sink.dir={target}",
         f"+sink.storage_options.endpoint_url={s3.url}", "sink.shared=true",
         "budget.dialogues=4", "sink.shard_dialogues=2", "progress=false",
         "ray.speak_workers=2", "ray.batch_size=1", f"hydra.run.dir={tmp_path / 'hydra'}"],
        cwd=ROOT, env={**env, "RAY_ADDRESS": dashboard, "RAY": RAY, "PYTHON": sys.executable},
        capture_output=True, text=True, timeout=600,
    )
    assert result.returncode == 0, (result.stdout + result.stderr)[-4000:]
    assert "succeeded" in result.stdout + result.stderr
    fs = s3.fs
    fs.invalidate_cache()
    shards = sorted(fs.glob(f"bucket/cluster/data/dialogues/{shard_pattern()}"))
    writers = {}
    for key in shards:  # each shard says who wrote it (pipeline/sink.py writer_identity)
        with fs.open(key, "rb") as handle:
            metadata = pq.read_schema(handle).metadata
        writers[key.rsplit("/", 1)[1]] = json.loads(metadata[WRITER_META_KEY])
    nodes = {writer["node"] for writer in writers.values()}
    print(json.dumps({"shards": len(shards), "nodes": sorted(nodes)}))
    assert len(nodes) == 2 and None not in nodes, writers  # both nodes wrote to S3
    run = json.loads(fs.cat("bucket/cluster/run.json"))
    assert run["counts"]["written"] == 4
    # shared run: one claim (generation 0) per shard, on S3 by conditional PUT
    claims = sorted(p.rsplit("/", 1)[1] for p in fs.find("bucket/cluster/.duplexsynth/claims"))
    assert claims == sorted(f"{name}.000000" for name in writers)
    assert fs.find("bucket/cluster/.duplexsynth/runs") == []

    import datasets

    loaded = datasets.load_dataset(
        "parquet", data_files={"train": f"{target}/data/dialogues/{shard_pattern()}"},
        storage_options={"key": CREDENTIALS["AWS_ACCESS_KEY_ID"],
                         "secret": CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
                         "client_kwargs": {"endpoint_url": s3.url}},
        split="train", columns=["id"], cache_dir=str(tmp_path / "hf"))
    ids = loaded["id"]
    assert len(ids) == len(set(ids)) == 4
