"""`sink.dir=s3://...` end to end against a real S3 server on 127.0.0.1 (moto's
ThreadedMotoServer, started and stopped here): generate, SIGKILL mid-run, rerun → exactly the
plan; export and card from the URI; `datasets` loads it with storage_options."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from pipeline.schema import scenario_id
from pipeline.sink import shard_pattern
from pipeline.splits import DEFAULT_SPLITS, dialogue_counts
from tests.s3_server import CREDENTIALS, moto_s3
from tests.test_resume import ROOT, kill_group, wait_for

moto_server = pytest.importorskip("moto.server", reason="the dev extra installs moto[server]")
s3fs = pytest.importorskip("s3fs", reason="the dev extra installs s3fs")

PLANNED = 4
SEED = 91


@pytest.fixture(scope="module")
def s3():
    """(endpoint URL, s3fs filesystem, env for subprocesses) with bucket `bucket` made; the
    credentials in os.environ while this module runs (its in-process readers need them)."""
    saved = {k: os.environ.get(k) for k in CREDENTIALS}
    os.environ.update(CREDENTIALS)
    try:
        with moto_s3() as server:
            yield server.url, server.fs, server.env
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def generate(url: str, target: str, tmp_path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "pipeline", "generate", f"sink.dir={target}", f"seed={SEED}",
            f"+sink.storage_options.endpoint_url={url}", f"hydra.run.dir={tmp_path / 'hydra'}",
            f"budget.dialogues={PLANNED}", "sink.shard_dialogues=1", "progress=false",
            "ray.num_cpus=2", "ray.batch_size=1", *extra]


def test_a_missing_bucket_is_one_line_before_any_work(s3, tmp_path):
    url, _, env = s3
    result = subprocess.run(generate(url, "s3://no-such-bucket/ds", tmp_path), cwd=ROOT,
                            env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1] == (
        "duplexsynth: sink: cannot write s3://no-such-bucket/ds: the bucket does not exist; "
        "create it (or fix sink.dir) and rerun")


def test_a_second_run_on_a_held_bucket_prefix_stops_with_the_local_message(s3, tmp_path):
    """The run lock on S3 (conditional PUTs): a live holder stops a second `generate` before
    any work, with the line a local sink.dir gives."""
    from pipeline.run_lock import HOST, run_lock
    from pipeline.storage import locate

    url, fs, env = s3
    target = "s3://bucket/held"
    held = run_lock(locate(target, {"endpoint_url": url}), shared=False, stale_s=60,
                    claim_shards=4).acquire()
    try:
        result = subprocess.run(generate(url, target, tmp_path), cwd=ROOT, env=env,
                                capture_output=True, text=True, timeout=300)
    finally:
        held.release()
    assert result.returncode == 2, result.stderr[-3000:]
    assert result.stderr.strip().splitlines()[-1] == (
        f"duplexsynth: sink.dir={target} is in use by a live run: {held.me.describe()}; wait "
        f"for it to end, stop it (pid {held.me.pid} on {HOST}), or run every writer of this "
        "folder with sink.shared=true to split the shards between them")
    assert "Traceback" not in result.stderr
    fs.invalidate_cache()
    assert fs.find("bucket/held") == [], "the refused run wrote nothing; the holder cleaned up"


@pytest.mark.slow
def test_s3_sink_killed_and_rerun_gives_the_plan_then_export_card_and_datasets_read_it(
        s3, tmp_path):
    url, fs, env = s3
    target = "s3://bucket/ds"
    def shards() -> list[str]:
        fs.invalidate_cache()  # s3fs caches listings; the run writes from other processes
        return fs.glob(f"bucket/ds/data/dialogues/{shard_pattern()}")

    log = tmp_path / "killed.log"
    for _ in range(3):  # Ray's node start has a fixed 30 s limit: a loaded machine misses it
        with open(log, "w") as errors:
            process = subprocess.Popen(generate(url, target, tmp_path), cwd=ROOT, env=env,
                                       start_new_session=True, stdout=subprocess.DEVNULL,
                                       stderr=errors)
        assert wait_for(lambda p=process: len(shards()) >= 1 or p.poll() is not None,
                        timeout=300)
        if process.poll() is None or "timed out during startup" not in log.read_text():
            break
    assert process.poll() is None, log.read_text()[-3000:]
    kill_group(process)
    import pyarrow.parquet as pq

    for key in shards():  # what a kill leaves visible is complete
        with fs.open(key, "rb") as handle:
            pq.read_table(handle)
    for _ in range(3):
        result = subprocess.run(generate(url, target, tmp_path), cwd=ROOT, env=env,
                                capture_output=True, text=True, timeout=600)
        if "timed out during startup" not in result.stderr:
            break
    assert result.returncode == 0, result.stderr[-3000:]
    assert "secret" not in fs.cat("bucket/ds/run.json").decode().lower()
    fs.invalidate_cache()
    assert fs.find("bucket/ds/.duplexsynth") == [], "the killed run's lock and record are gone"

    from pipeline.dataset import iter_dialogues, iter_segments, run_info
    from pipeline.storage import locate

    dataset = locate(target, {"endpoint_url": url})
    ids = [row["id"] for row in iter_dialogues(dataset, columns=["id"])]
    run = run_info(dataset)
    assert len(ids) == len(set(ids)), "a rerun duplicated rows"
    assert len(ids) + sum(run["counts"]["rejected"].values()) == PLANNED
    assert set(ids) <= {scenario_id(SEED, i) for i in range(len(DEFAULT_SPLITS) * PLANNED)}
    assert len(shards()) == sum(dialogue_counts(PLANNED, DEFAULT_SPLITS).values())
    assert {row["dialogue_id"] for row in iter_segments(dataset, columns=["dialogue_id"])} \
        == set(ids)
    fs.invalidate_cache()
    assert fs.exists("bucket/ds/README.md"), "the card after the run"
    print(sorted(fs.find("bucket/ds")))

    export = subprocess.run(
        [sys.executable, "-m", "pipeline", "export", f"dataset={target}", "format=nemo",
         f"out.dir={tmp_path / 'export'}", f"hydra.run.dir={tmp_path / 'hydra'}"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert export.returncode == 0, export.stderr[-3000:]
    manifests = list((tmp_path / "export").rglob("*manifest*.json"))
    assert manifests and sum(len(p.read_text().splitlines()) for p in manifests) > 0
    fs.rm("bucket/ds/README.md")
    card = subprocess.run(
        [sys.executable, "-m", "pipeline", "card", f"sink.dir={target}",
         f"hydra.run.dir={tmp_path / 'hydra'}"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert card.returncode == 0, card.stderr[-3000:]
    fs.invalidate_cache()
    assert "synthetic" in fs.cat("bucket/ds/README.md").decode().lower()

    import datasets

    loaded = datasets.load_dataset(
        "parquet", data_files={"train": f"{target}/data/dialogues/{shard_pattern()}"},
        storage_options={"client_kwargs": {"endpoint_url": url}}, split="train",
        cache_dir=str(tmp_path / "hf"))
    assert sorted(loaded["id"]) == sorted(ids)
    print(json.dumps({"shards": len(shards()), "dialogues": len(ids)}))
