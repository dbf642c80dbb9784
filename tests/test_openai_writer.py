"""The OpenAI writer against a real chat-completions server on 127.0.0.1 (pipeline.devserver).

The server composes every answer from the scenario brief in the request; faults are injected
per scenario index, and each test checks what the writer did with them.
"""

from __future__ import annotations

import pytest

from pipeline.devserver import ChatServer
from pipeline.schema import DialogueScript
from pipeline.script_check import ScriptRejected
from pipeline.writers import make_writer
from pipeline.writers.openai_writer import WriterFatal
from pipeline.writers.usage import Budget
from tests.llm_support import KEY_ENV, SECRET, scenarios, writer_config

CHECKS = {"turn_tolerance": 0.5, "phenomena": True}


@pytest.fixture
def key(monkeypatch):
    monkeypatch.setenv(KEY_ENV, SECRET)
    return SECRET


def outcome(result) -> str:
    return result.reason if isinstance(result, ScriptRejected) else "ok"


def test_every_fault_mode_ends_in_its_counted_outcome(key, tmp_path):
    faults = {1: "http_500", 2: "http_429", 3: "slow", 4: "malformed_json",
              5: "wrong_schema", 6: "truncated", 7: "repairable", 8: "http_500_always"}
    batch = scenarios(9)
    with ChatServer(faults=faults, api_key=key, slow_s=2.0) as server:
        writer = make_writer(writer_config(server.base_url, tmp_path / "cache"), CHECKS)
        results = writer.write_many(batch)
        usage = {s.index: writer.pop_usage(s.id) for s in batch}
    assert [outcome(r) for r in results] == [
        "ok", "ok", "ok", "ok", "invalid_json", "schema_invalid", "truncated", "ok",
        "deferred:llm_unavailable"]
    for result, scenario in zip(results, batch, strict=True):
        if isinstance(result, DialogueScript):
            assert result.scenario_id == scenario.id
    assert usage[0]["requests"] == 1 and usage[0]["retries"] == 0
    assert usage[1]["retry:http_500"] == 1
    assert usage[2]["retry:http_429"] == 1
    assert usage[3]["retry:timeout"] == 1
    for index in (4, 5, 6):  # one repair round, then the reject
        assert usage[index]["repairs"] == 1 and usage[index]["requests"] == 2
    assert usage[7]["repairs"] == 1
    assert usage[8]["retry:http_500"] == 2 and usage[8]["requests"] == 0
    assert all(u["prompt_tokens"] > 0 for i, u in usage.items() if i != 8)


def test_retry_after_is_honoured(key):
    with ChatServer(faults={0: "http_429"}, api_key=key, retry_after_s=1) as server:
        writer = make_writer(writer_config(server.base_url, None, retry_initial_s=0.01))
        assert outcome(writer.write_many(scenarios(1))[0]) == "ok"
        first, second = (entry["t"] for entry in server.log)
    assert second - first >= 0.95


def test_repair_round_sends_the_error_back(key):
    with ChatServer(faults={0: "repairable"}, api_key=key) as server:
        writer = make_writer(writer_config(server.base_url, None))
        assert outcome(writer.write_many(scenarios(1))[0]) == "ok"
        repair = server.requests_seen[-1]["messages"]
    assert repair[-2]["role"] == "assistant" and "dialogue" in repair[-2]["content"]
    assert "DialogueScript schema" in repair[-1]["content"]


def test_rerun_is_served_from_the_cache_without_requests(key, tmp_path):
    batch = scenarios(6)
    with ChatServer(faults={2: "wrong_schema"}, api_key=key) as server:
        config = writer_config(server.base_url, tmp_path / "cache")
        first = [outcome(r) for r in make_writer(config, CHECKS).write_many(batch)]
        sent = len(server.requests_seen)
        writer = make_writer(config, CHECKS)
        second = [outcome(r) for r in writer.write_many(batch)]
        assert len(server.requests_seen) == sent, "a cached rerun must send nothing"
    assert first == second
    hits = sum(writer.pop_usage(s.id)["cache_hits"] for s in batch)
    assert hits == 7  # 5 answers + the wrong-schema answer and its repair


def test_budget_stops_new_requests_cleanly(key):
    batch = scenarios(5)
    with ChatServer(api_key=key) as server:
        writer = make_writer(writer_config(server.base_url, None, concurrency=1), CHECKS,
                             Budget(max_tokens=1))
        results = [outcome(r) for r in writer.write_many(batch)]
        assert len(server.requests_seen) == 1
    assert results == ["ok"] + ["deferred:budget_exhausted"] * 4


def test_budget_in_dollars_counts_prices(key):
    with ChatServer(api_key=key) as server:
        config = writer_config(server.base_url, None, concurrency=1,
                               price_per_million={"prompt": 1000.0, "completion": 1000.0})
        budget = Budget(max_usd=0.5)
        writer = make_writer(config, CHECKS, budget)
        results = [outcome(r) for r in writer.write_many(scenarios(3))]
    assert results[0] == "ok" and set(results[1:]) == {"deferred:budget_exhausted"}
    assert budget.spent_usd == pytest.approx(budget.spent_tokens * 1000.0 / 1e6)


def test_server_without_json_schema_falls_back_to_text(key):
    with ChatServer(api_key=key, json_schema=False) as server:
        writer = make_writer(writer_config(server.base_url, None))
        assert [outcome(r) for r in writer.write_many(scenarios(2))] == ["ok", "ok"]
    assert writer.response_format == "text"


def test_wrong_key_stops_the_run_without_echoing_it(monkeypatch):
    monkeypatch.setenv(KEY_ENV, "sk-wrong-key-123456")
    with ChatServer(api_key=SECRET) as server:
        writer = make_writer(writer_config(server.base_url, None))
        with pytest.raises(WriterFatal, match=KEY_ENV) as error:
            writer.write_many(scenarios(1))
    assert "sk-wrong-key" not in str(error.value)


def test_prompt_carries_the_scenario_and_the_template_version(key):
    scenario = scenarios(2)[1]
    with ChatServer(api_key=key) as server:
        writer = make_writer(writer_config(server.base_url, None))
        writer.write_many([scenario])
        body = server.requests_seen[0]
    assert body["response_format"]["type"] == "json_schema"
    assert scenario.id in body["messages"][-1]["content"]
    assert scenario.situation in body["messages"][-1]["content"]
    assert writer.meta()["prompt_version"].startswith("dialogue-v1+")
