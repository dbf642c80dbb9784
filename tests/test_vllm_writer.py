"""vLLM on Ray: the processor config and the row functions (the engine itself needs GPUs)."""

from __future__ import annotations

import json

from pipeline.config import GenerateConfig
from pipeline.devserver import compose
from pipeline.prompts import scenario_brief
from pipeline.writers.vllm_writer import (
    ERROR_COLUMN,
    PostprocessRow,
    PreprocessRow,
    finish_row,
    processor_config,
)
from tests.llm_support import scenarios

WRITER = {"name": "vllm", "model": "Qwen/Qwen2.5-7B-Instruct", "batch_size": 16, "engines": 2,
          "engine_kwargs": {"max_model_len": 4096}, "max_tokens": 2000}


def stage_config() -> dict:
    return GenerateConfig.check({"writer": WRITER}).model_dump()


def row(scenario) -> dict:
    """A planned row as pipeline/stream.py's plan task gives it (its stage seconds too)."""
    return {"index": scenario.index, "local": scenario.index, "split": "train", "shard": 0,
            "reject": None, "stage_s": '{"plan": 0.01}', "id": scenario.id,
            "scenario": scenario.model_dump_json()}


def test_processor_config_carries_the_settings():
    config = processor_config(stage_config())
    assert config.model_source == "Qwen/Qwen2.5-7B-Instruct"
    assert config.batch_size == 16 and config.concurrency == 2
    assert config.engine_kwargs["max_model_len"] == 4096
    assert config.should_continue_on_error is True


def test_preprocess_asks_for_schema_json_per_row():
    scenario = scenarios(1)[0]
    out = PreprocessRow(stage_config())(row(scenario))
    assert out["messages"][-1]["role"] == "user"
    assert scenario.id in out["messages"][-1]["content"]
    sampling = out["sampling_params"]
    assert sampling["structured_outputs"]["json"]["title"] == "DialogueScript"
    assert sampling["max_tokens"] == 2000 and sampling["seed"] == scenario.seed % (1 << 31)


def test_postprocess_accepts_a_good_answer_and_rejects_bad_ones():
    config = stage_config()
    post = PostprocessRow(config)
    scenario = scenarios(1)[0]
    base = {**PreprocessRow(config)(row(scenario)), "num_input_tokens": 900}
    good = post({**base, "generated_text": compose(scenario_brief(scenario)),
                 "num_generated_tokens": 500})
    assert good["reject"] is None and json.loads(good["script"])["scenario_id"] == scenario.id
    assert json.loads(good["llm_usage"]) == {"requests": 1, "prompt_tokens": 900,
                                             "completion_tokens": 500}
    assert json.loads(good["writer"])["prompt_version"].startswith("dialogue-v1+")
    assert "messages" not in good and "generated_text" not in good
    assert good["stage_s"] == '{"plan": 0.01}', "the plan stage's seconds were dropped"
    cut = post({**base, "generated_text": '{"scenario_id": "x", "turns": [',
                "num_generated_tokens": 2000})
    assert cut["reject"] == "truncated"
    prose = post({**base, "generated_text": "Sorry, I cannot help.", "num_generated_tokens": 6})
    assert prose["reject"] == "invalid_json"


def test_engine_errors_become_counted_rejects():
    scenario = scenarios(1)[0]
    failed = finish_row({**row(scenario), "messages": [], ERROR_COLUMN: "CUDA OOM"})
    assert failed["reject"] == "llm_error" and failed["script"] is None
    assert set(failed) == {"index", "local", "split", "shard", "id", "scenario", "reject",
                           "stage_s", "script", "writer", "llm_usage"}
