"""Dialogue writers: scenario in, DialogueScript out (DESIGN section 6).

A writer has `name`, `generator` (the label on every row), `meta()` (what provenance records)
and `write(scenario)`. Writers that talk to a server also have `write_many(scenarios)`, which
returns one DialogueScript or ScriptRejected per scenario and keeps many requests in flight,
and `pop_usage(scenario_id)` with that row's LLM usage. `vllm` is not a row writer: run.py
hands the whole dataset to pipeline.writers.vllm_writer instead.
"""

from __future__ import annotations

from functools import partial
from typing import Any

from pipeline.script_check import check_script
from pipeline.writers.offline import OfflineComposer
from pipeline.writers.settings import OpenAISettings, writer_settings
from pipeline.writers.usage import Budget

__all__ = ["OfflineComposer", "make_writer"]


def make_writer(config: dict, checks: dict | None = None, budget: Budget | None = None) -> Any:
    """The writer named by `config["name"]`, with the run's script checks and budget."""
    settings = writer_settings(config)
    if isinstance(settings, OpenAISettings):
        from pipeline.writers.openai_writer import OpenAIWriter

        checks = checks or {}
        validate = partial(check_script, turn_tolerance=checks.get("turn_tolerance"),
                           phenomena=checks.get("phenomena", False))
        return OpenAIWriter(settings, validate=validate, budget=budget,
                            turn_tolerance=checks.get("turn_tolerance"))
    if settings.name == "vllm":
        raise ValueError("writer.name: 'vllm' runs as a Ray Data processor (run.py), "
                         "not as a row writer")
    return OfflineComposer(label=settings.generator)
