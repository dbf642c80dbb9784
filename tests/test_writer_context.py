"""Context limits and bounded answers of the OpenAI writer (pipeline/writers/context.py).

The server is pipeline.devserver on 127.0.0.1 with `n_ctx`, which publishes `/props` and
answers an over-long prompt with llama.cpp's 400; tests/test_llm_server.py does the same
against a real llama-server.
"""

from __future__ import annotations

import pytest

from pipeline.devserver import ChatServer
from pipeline.prompts import PromptSet, script_schema
from pipeline.script_check import ScriptRejected, WriterStopped, turn_bounds
from pipeline.writers import make_writer
from pipeline.writers.context import (
    ContextLimit,
    ContextTooSmall,
    answer_tokens,
    discover_limit,
    estimate_tokens,
    is_context_overflow,
    max_turns,
    typical_answer_tokens,
)
from tests.llm_support import KEY_ENV, SECRET, scenarios, writer_config

CHECKS = {"turn_tolerance": 0.5, "phenomena": False}


@pytest.fixture
def key(monkeypatch):
    monkeypatch.setenv(KEY_ENV, SECRET)
    return SECRET


def test_schema_bounds_turn_text_and_turn_count():
    schema = script_schema(turn_chars=80, max_turns=7)
    turn = schema["$defs"]["Turn"]["properties"]
    assert turn["text"]["maxLength"] == 80 and turn["pauses"]["maxItems"] > 0
    assert schema["properties"]["turns"]["maxItems"] == 7
    assert "maxItems" not in script_schema()["properties"]["turns"], "unbounded by default"


def test_max_tokens_and_schema_follow_the_turn_budget(key):
    scenario = scenarios(1)[0]
    with ChatServer(api_key=key) as server:
        writer = make_writer(writer_config(server.base_url, None, turn_chars=120), CHECKS)
        writer.write_many([scenario])
        body = server.requests_seen[0]
        capped = make_writer(writer_config(server.base_url, None, max_tokens=300), CHECKS)
        _, request = capped.plan_request(scenario)
    items = max_turns(scenario, 0.5)
    assert items == turn_bounds(scenario.target_turns, 0.5)[1] + scenario.phenomena.backchannels
    assert body["max_tokens"] == answer_tokens(scenario, 120, 0.5) < 3000
    schema = body["response_format"]["json_schema"]["schema"]
    assert schema["properties"]["turns"]["maxItems"] == items
    assert schema["$defs"]["Turn"]["properties"]["text"]["maxLength"] == 120
    assert request.max_tokens == 300


def test_few_shot_zero_drops_the_example():
    scenario = scenarios(1)[0]
    with_example = PromptSet().messages(scenario, few_shot=1)
    without = PromptSet().messages(scenario, few_shot=0)
    assert len(with_example) == 4 and len(without) == 2
    assert estimate_tokens(without) < estimate_tokens(with_example) - 400


def test_server_limit_is_read_from_props(key):
    with ChatServer(api_key=key, n_ctx=3072) as server:
        assert discover_limit(server.base_url, "devserver", key) == \
            ContextLimit(3072, "llama.cpp /props n_ctx per slot")
    with ChatServer(api_key=key) as server:  # publishes nothing
        assert discover_limit(server.base_url, "devserver", key) is None


def test_prompt_that_cannot_fit_stops_before_any_request(key):
    scenario = scenarios(1)[0]
    with ChatServer(api_key=key, n_ctx=1024) as server:
        writer = make_writer(writer_config(server.base_url, None), CHECKS)
        with pytest.raises(ContextTooSmall) as error:
            writer.plan_request(scenario)
        with pytest.raises(WriterStopped):
            writer.write_many([scenario])
        assert server.requests_seen == []
    message = str(error.value)
    prompt = estimate_tokens(PromptSet().messages(scenario, turn_chars=300))
    assert f"needs about {prompt} tokens" in message and "1024 tokens per request" in message
    assert "writer.few_shot=0" in message and "--max-model-len" in message
    assert "\n" not in message


def test_overflow_answer_stops_the_run_with_the_server_words(key):
    # the limit is not published (writer.context_tokens says more than the server has), so
    # the request goes out and the server's 400 must stop the run, not reject the row
    with ChatServer(api_key=key, n_ctx=600) as server:
        writer = make_writer(writer_config(server.base_url, None, context_tokens=8192), CHECKS)
        with pytest.raises(WriterStopped) as error:
            writer.write_many(scenarios(2))
    assert "exceeds the available context size (600 tokens)" in str(error.value)
    assert "writer.few_shot=0" in str(error.value)


def test_repair_round_that_would_overflow_is_skipped(key):
    scenario = scenarios(1)[0]
    with ChatServer(api_key=key, faults={0: "wrong_schema"}) as server:
        config = writer_config(server.base_url, None, context_tokens=8192)
        messages, _ = make_writer(config, CHECKS).plan_request(scenario)
        # the server has room for the first round only: it refuses the repair round
        server.n_ctx = sum(len(m["content"]) for m in messages) // 4 + 40
        writer = make_writer(config, CHECKS)
        refused = writer.write_many([scenario])[0]
        refused_usage = writer.pop_usage(scenario.id)
        sent = len(server.requests_seen)
        # the writer knows the limit: it does not send a repair round that cannot fit
        server.n_ctx = None
        tight = estimate_tokens(messages) + typical_answer_tokens(scenario, 300) + 10
        writer = make_writer({**config, "context_tokens": tight}, CHECKS)
        skipped = writer.write_many([scenario])[0]
        skipped_usage = writer.pop_usage(scenario.id)
        assert len(server.requests_seen) == sent + 1
    for result, usage in ((refused, refused_usage), (skipped, skipped_usage)):
        assert isinstance(result, ScriptRejected) and result.reason == "schema_invalid"
        assert usage["repairs_skipped"] == 1
    assert refused_usage["requests"] == 1 and skipped_usage["repairs"] == 0


@pytest.mark.parametrize("message", [
    # llama.cpp tools/server (ERROR_TYPE_EXCEED_CONTEXT_SIZE)
    "request (2096 tokens) exceeds the available context size (2048 tokens), try increasing it",
    "input (5000 tokens) is larger than the max context size (4096 tokens). skipping",
    # vLLM serving_engine
    "This model's maximum context length is 2048 tokens. However, you requested 2096 tokens "
    "(1900 in the messages, 196 in the completion). Please reduce the length of the messages "
    "or completion.",
    "The decoder prompt (length 5000) is longer than the maximum model length of 4096.",
    # OpenAI (code context_length_exceeded)
    "Error code: 400 - {'error': {'code': 'context_length_exceeded'}}",
    # SGLang
    "The input (5000 tokens) is longer than the model's context length (4096 tokens).",
])
def test_context_overflow_messages_are_recognised(message):
    assert is_context_overflow(message)


def test_other_bad_requests_are_not_overflows():
    assert not is_context_overflow("response_format json_schema is not supported")
    assert not is_context_overflow("invalid api key")


def test_write_stage_turns_a_stopped_writer_into_one_message_per_row(key):
    import pandas as pd

    from pipeline.stages import WriteStage

    batch = pd.DataFrame([{"index": s.index, "id": s.id, "scenario": s.model_dump_json(),
                           "reject": None} for s in scenarios(2)])
    with ChatServer(api_key=key, n_ctx=600) as server:
        config = {"tts": {"name": "espeak"}, "checks": CHECKS, "budget": {},
                  "writer": writer_config(server.base_url, None, context_tokens=8192)}
        rows = WriteStage(config)(batch).to_dict("records")
    assert [row["reject"] for row in rows] == ["deferred:writer_stopped"] * 2
    assert all("exceeds the available context size" in row["writer_error"] for row in rows)
