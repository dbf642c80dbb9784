"""`writer=vllm`: offline batch inference inside the Ray cluster with `ray.data.llm`.

The write stage becomes a Ray Data processor: `preprocess_row` renders the same prompts as
the OpenAI writer and asks vLLM for JSON that follows the DialogueScript schema
(`sampling_params.structured_outputs.json`); the vLLM engine stage runs on GPU actors;
`postprocess_row` parses and checks the answer and gives back a row in the pipeline's own
shape (`script` or `reject`, `writer`, `llm_usage`; every key the row had before the engine,
per-row stage seconds included, through `rows.carry`). `finish_row` turns rows that failed
inside the engine into counted rejects. There is no repair round and no budget here: the
engine is the user's own GPUs, and a batch processor cannot hold a conversation per row.

It needs GPUs and `pip install "ray[llm]"` (vLLM, transformers), so only the configuration
and the row functions are tested on CPU; the cluster command is in README.md.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pipeline.prompts import PROMPTS_DIR, PromptSet, script_schema
from pipeline.rows import LLM_ERROR, Rejected, carry
from pipeline.schema import ScenarioSpec
from pipeline.script_check import ScriptRejected, check_script
from pipeline.writers.parsing import parse_script
from pipeline.writers.settings import VllmSettings, writer_settings

ERROR_COLUMN = "__inference_error__"


def _settings(config: dict) -> VllmSettings:
    settings = writer_settings(config["writer"])
    if not isinstance(settings, VllmSettings):
        raise ValueError(f"writer.name: expected 'vllm', got {settings.name!r}")
    return settings


def _prompts(settings: VllmSettings) -> PromptSet:
    return PromptSet(PROMPTS_DIR if settings.prompts_dir is None else Path(settings.prompts_dir))


def processor_config(config: dict):
    """The `vLLMEngineProcessorConfig` for the run's `writer` settings."""
    from ray.data.llm import vLLMEngineProcessorConfig

    settings = _settings(config)
    return vLLMEngineProcessorConfig(
        model_source=str(settings.model),
        batch_size=settings.batch_size,
        concurrency=settings.engines,
        accelerator_type=settings.accelerator_type,
        engine_kwargs=dict(settings.engine_kwargs),
        should_continue_on_error=True,
    )


class PreprocessRow:
    """row → row + `messages` (OpenAI chat format) + per-row `sampling_params`."""

    def __init__(self, config: dict) -> None:
        settings = _settings(config)
        self.prompts = _prompts(settings)
        self.sampling = {"temperature": settings.temperature, "max_tokens": settings.max_tokens}

    def __call__(self, row: dict[str, Any]) -> dict[str, Any]:
        scenario = ScenarioSpec.model_validate_json(row["scenario"])
        sampling = {**self.sampling, "seed": scenario.seed % (1 << 31),
                    "structured_outputs": {"json": script_schema()}}
        return {**row, "messages": self.prompts.messages(scenario), "sampling_params": sampling}


class PostprocessRow:
    """Engine output → the pipeline's row: `script` or `reject`, plus provenance and usage."""

    def __init__(self, config: dict) -> None:
        settings = _settings(config)
        checks = config.get("checks") or {}
        self.turn_tolerance = checks.get("turn_tolerance")
        self.phenomena = checks.get("phenomena", False)
        prompts = _prompts(settings)
        self.meta = json.dumps({"generator": settings.generator, "model": settings.model,
                                "prompt_version": prompts.version})

    def __call__(self, row: dict[str, Any]) -> dict[str, Any]:
        out = carry(row)
        usage = {"requests": 1, "prompt_tokens": int(row.get("num_input_tokens") or 0),
                 "completion_tokens": int(row.get("num_generated_tokens") or 0)}
        out.update(script=None, writer=self.meta, llm_usage=json.dumps(usage))
        scenario = ScenarioSpec.model_validate_json(row["scenario"])
        finish = "length" if usage["completion_tokens"] >= int(
            (row.get("sampling_params") or {}).get("max_tokens") or 1 << 30) else "stop"
        try:
            script = parse_script(row.get("generated_text"), finish)
            script = check_script(script, scenario, self.turn_tolerance, self.phenomena)
        except ScriptRejected as rejected:
            out["reject"] = rejected.outcome.stored()
            return out
        out["script"] = script.model_dump_json()
        return out


def finish_row(row: dict[str, Any]) -> dict[str, Any]:
    """Rows the engine failed on bypass postprocess: make them counted `llm_error` rejects."""
    if row.get(ERROR_COLUMN):
        out = carry(row)
        out.update(Rejected(LLM_ERROR).to_dict(), script=None, writer=None, llm_usage=None)
        return out
    return {key: value for key, value in row.items() if key != ERROR_COLUMN}


def write_dataset(dataset, config: dict):
    """Apply the vLLM processor to a Ray Dataset of scenario rows (GPU cluster only)."""
    from ray.data.llm import build_processor

    processor = build_processor(processor_config(config), preprocess=PreprocessRow(config),
                                postprocess=PostprocessRow(config))
    return processor(dataset).map(finish_row)
