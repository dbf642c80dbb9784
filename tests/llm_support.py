"""Shared helpers for the LLM writer tests (scenarios, writer configs)."""

from __future__ import annotations

from pathlib import Path

from pipeline.scenarios import PlanSettings, plan_scenario
from pipeline.schema import ScenarioSpec

SECRET = "sk-test-DO-NOT-LEAK-7f3a9c"
KEY_ENV = "DUPLEXSYNTH_TEST_LLM_KEY"


def scenarios(count: int, seed: int = 11, languages: tuple[str, ...] = ("en", "hu")
              ) -> list[ScenarioSpec]:
    settings = PlanSettings(languages=languages)
    return [plan_scenario(i, seed, settings, lambda lang, n, rng: [{}] * n)
            for i in range(count)]


def writer_config(base_url: str, cache: Path | None, **overrides) -> dict:
    return {"name": "openai", "model": "devserver", "base_url": base_url,
            "api_key_env": KEY_ENV, "timeout_s": 1.0, "retry_initial_s": 0.05,
            "max_retries": 2, "concurrency": 8,
            "cache_dir": None if cache is None else str(cache), **overrides}
