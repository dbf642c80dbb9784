"""`duplexsynth generate writer=openai` through the real client against a local server.

A faulty run completes, counts every outcome by reason, leaves the shard with an
unanswerable row for the next run, and a rerun after the server heals finishes it from the
cache plus one request. A spent budget stops cleanly and a larger budget resumes. No API key
reaches any output file or log.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from pipeline.devserver import ChatServer
from tests.llm_support import KEY_ENV, SECRET

ROOT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.slow


def generate(tmp: Path, server: ChatServer, *overrides: str) -> subprocess.CompletedProcess:
    result = subprocess.run(
        [sys.executable, "-m", "pipeline", "generate", f"sink.dir={tmp / 'ds'}",
         f"hydra.run.dir={tmp / 'hydra'}", "progress=false", "ray.num_cpus=2",
         "sink.shard_dialogues=2", "writer=openai", f"writer.base_url={server.base_url}",
         "writer.model=devserver", f"writer.api_key_env={KEY_ENV}", "writer.timeout_s=1.5",
         "writer.retry_initial_s=0.05", "writer.max_retries=2",
         f"writer.cache_dir={tmp / 'cache'}",
         "splits={train:1.0,validation:0,test:0}",  # faults are keyed by run index: one split
         *overrides],
        cwd=ROOT, capture_output=True, text=True, timeout=600,
        env={**os.environ, KEY_ENV: SECRET},
    )
    assert result.returncode == 0, result.stderr[-4000:]
    assert SECRET not in result.stdout + result.stderr
    return result


def run_json(tmp: Path) -> dict:
    return json.loads((tmp / "ds" / "run.json").read_text())


def shards(tmp: Path) -> list[str]:
    return sorted(p.name for p in (tmp / "ds" / "data" / "dialogues").glob("*.parquet"))


def assert_no_secret_in(tmp: Path) -> None:
    for path in tmp.rglob("*"):
        if path.is_file() and not path.name.endswith(".parquet"):
            assert SECRET not in path.read_text(errors="replace"), path
    for path in tmp.rglob("*.parquet"):
        assert SECRET.encode() not in path.read_bytes(), path


def test_faulty_run_counts_every_outcome_and_resumes(tmp_path):
    faults = {1: "http_500", 2: "http_429", 3: "slow", 4: "malformed_json", 5: "wrong_schema",
              6: "wrong_language", 7: "truncated", 8: "repairable", 9: "http_500_always"}
    with ChatServer(faults=faults, api_key=SECRET, slow_s=2.5) as server:
        generate(tmp_path, server, "budget.dialogues=10", "writer.concurrency=4")
        run = run_json(tmp_path)
        assert run["counts"]["rejected"] == {"invalid_json": 1, "schema_invalid": 1,
                                             "wrong_language": 1, "truncated": 1}
        # budget.dialogues=10 plans 12 indices (2 spares replace rejects): 0-3 and 10-11 are
        # written; shard 4 (indices 8, 9) waits for index 9's endpoint
        assert run["counts"]["written"] == 6
        assert run["counts"]["deferred"] == {"deferred:llm_unavailable": 1}
        assert shards(tmp_path) == [f"train-0000{i}.parquet" for i in (0, 1, 2, 3, 5)]
        llm = run["llm"]
        assert llm["retries_by_reason"] == {"http_429": 1, "http_500": 1, "timeout": 1}
        assert llm["repairs"] == 3 and llm["requests"] >= 11 and llm["prompt_tokens"] > 0
        row = pq.read_table(tmp_path / "ds/data/dialogues/train-00000.parquet").to_pylist()[0]
        provenance = json.loads(row["provenance"])
        assert provenance["writer"]["prompt_version"].startswith("dialogue-v1+")
        assert row["generator"] == "openai:devserver"
        before = {name: (tmp_path / "ds/data/dialogues" / name).read_bytes()
                  for name in shards(tmp_path)}

        server.faults = {}.get  # the endpoint heals
        sent = len(server.requests_seen)
        generate(tmp_path, server, "budget.dialogues=10", "writer.concurrency=4")
        assert len(server.requests_seen) - sent == 1, "only the unanswered row costs a request"
    run = run_json(tmp_path)
    assert run["counts"]["written"] == 8 and run["counts"]["deferred"] == {}
    assert len(shards(tmp_path)) == 6
    assert run["budget"]["met"] is False  # 4 rejects outran the 2 spare indices
    assert all((tmp_path / "ds/data/dialogues" / n).read_bytes() == data
               for n, data in before.items()), "finished shards are never rewritten"
    assert_no_secret_in(tmp_path)


def test_budget_stops_cleanly_and_a_larger_budget_resumes(tmp_path):
    with ChatServer(api_key=SECRET) as server:
        common = ("budget.dialogues=6", "writer.concurrency=1", "ray.batch_size=2")
        result = generate(tmp_path, server, *common, "budget.max_tokens=3000")
        run = run_json(tmp_path)
        assert "budget" in run["stopped"] and "deferred" in result.stderr
        assert shards(tmp_path) == ["train-00000.parquet"]
        assert run["counts"]["written"] == 2
        assert run["llm"]["prompt_tokens"] + run["llm"]["completion_tokens"] >= 3000
        assert not list((tmp_path / "ds/data").glob("*/.*tmp*")), "no half-written shard"

        sent = len(server.requests_seen)
        generate(tmp_path, server, *common, "budget.max_tokens=1000000")
        # 4 scripts reach the goal; the write stage may already have asked for the 2 spare
        # indices (streaming runs ahead of the sink); their answers stay in the cache
        assert 4 <= len(server.requests_seen) - sent <= 6
    run = run_json(tmp_path)
    assert run["counts"]["written"] == 6 and "stopped" not in run
    assert len(shards(tmp_path)) == 3
    assert_no_secret_in(tmp_path)


def run_cli(tmp: Path, server: ChatServer, *overrides: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "pipeline", "generate", f"sink.dir={tmp / 'ds'}",
         f"hydra.run.dir={tmp / 'hydra'}", "progress=false", "ray.num_cpus=2",
         "sink.shard_dialogues=2", "writer=openai", f"writer.base_url={server.base_url}",
         "splits={train:1.0,validation:0,test:0}",  # faults are keyed by run index: one split
         "writer.model=devserver", f"writer.cache_dir={tmp / 'cache'}", *overrides],
        cwd=ROOT, capture_output=True, text=True, timeout=600,
    )


def test_prompt_too_long_for_the_server_stops_before_work(tmp_path):
    with ChatServer(n_ctx=1500) as server:  # publishes /props like llama.cpp
        result = run_cli(tmp_path, server, "budget.dialogues=2")
        assert server.requests_seen == []
    assert result.returncode == 2
    line = result.stderr.strip().splitlines()[-1]
    assert line.startswith("duplexsynth: writer: the prompt of dlg-0000000-")
    assert "1500 tokens per request (llama.cpp /props n_ctx per slot)" in line
    assert "writer.few_shot=0" in line and "Traceback" not in result.stderr
    assert not (tmp_path / "ds" / "data").exists()


def test_nothing_written_is_said_and_exits_non_zero(tmp_path):
    faults = {i: ("malformed_json", "wrong_schema")[i % 2] for i in range(8)}  # spares too
    with ChatServer(faults=faults) as server:
        result = run_cli(tmp_path, server, "budget.dialogues=2", "writer.repair=false")
    assert "no dialogue was written" in result.stderr, result.stderr[-3000:]
    assert result.returncode == 1 and "is complete" not in result.stderr
    run = run_json(tmp_path)
    assert run["counts"]["written"] == 0
    assert "the budget of 2 dialogues was NOT met" in result.stderr
    assert "first invalid_json: the answer holds no parseable JSON" in result.stderr
    assert run["reject_examples"]["schema_invalid"].startswith("does not match")
