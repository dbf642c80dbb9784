"""Typed settings of each dialogue writer, checked before any work.

`writer` in the generate config is a dict whose `name` picks one of these models; every other
key must belong to that model. `writer_settings` turns the dict into the model or raises a
ValueError whose lines start with the dotted key (`writer.base_url: ...`), so a typo or a
missing endpoint fails in a second, not after a cluster has started.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
DEFAULT_CACHE_DIR = "outputs/cache/llm"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Prices(_Strict):
    """US dollars per million tokens; 0 for a self-hosted server."""

    prompt: float = Field(0.0, ge=0)
    completion: float = Field(0.0, ge=0)


class OfflineSettings(_Strict):
    name: Literal["offline"] = "offline"
    label: str | None = None

    @property
    def generator(self) -> str:
        return self.label or "offline"


class _LlmSettings(_Strict):
    """Keys shared by the LLM writers: model, sampling, prompts."""

    model: str | None = Field(None, description="model id the server knows")
    label: str | None = Field(None, description="generator name on every row; default: model")
    temperature: float = Field(0.8, ge=0, le=2)
    max_tokens: int = Field(3000, ge=64, description="completion tokens per request")
    prompts_dir: str | None = Field(None, description="template folder; default: prompts/")

    @property
    def generator(self) -> str:
        return self.label or f"{self.name}:{self.model}"  # type: ignore[attr-defined]


class OpenAISettings(_LlmSettings):
    """Any OpenAI-compatible chat-completions endpoint (OpenAI, vLLM, SGLang, llama.cpp...)."""

    name: Literal["openai"] = "openai"
    base_url: str | None = Field(None, description="e.g. http://localhost:8000/v1")
    api_key_env: str | None = Field(None, description="NAME of the env var holding the key")
    concurrency: int = Field(16, ge=1, le=1024, description="requests in flight per worker")
    timeout_s: float = Field(120.0, gt=0, description="per request, seconds")
    max_retries: int = Field(4, ge=0, le=20, description="for 429, 5xx, timeouts, resets")
    retry_initial_s: float = Field(1.0, gt=0, description="first backoff, doubled per retry")
    retry_max_s: float = Field(60.0, gt=0, description="cap on one wait, Retry-After included")
    response_format: Literal["json_schema", "json_object", "text"] = "json_schema"
    max_tokens: int | None = Field(
        None, ge=64, description="cap on completion tokens per request; null = derived from "
        "the scenario's turn budget and writer.turn_chars (pipeline/writers/context.py)")
    turn_chars: int = Field(300, ge=20, le=4000,
                            description="maxLength of one turn's text in the JSON schema")
    few_shot: int = Field(1, ge=0, le=1, description="example dialogues in the prompt (0 or 1)")
    context_tokens: int | None = Field(
        None, ge=256, description="tokens one request may hold (prompt + answer); null = ask "
        "the server (llama.cpp /props n_ctx per slot, vLLM /v1/models max_model_len)")
    repair: bool = Field(True, description="one repair round that sends the error back")
    cache_dir: str | None = Field(DEFAULT_CACHE_DIR, description="null disables the cache")
    price_per_million: Prices = Field(default_factory=Prices)

    @field_validator("base_url")
    @classmethod
    def _url(cls, value: str | None) -> str | None:
        if value is not None and not re.match(r"^https?://[^/\s]+", value):
            raise ValueError("must be an http(s) URL such as http://localhost:8000/v1")
        return value

    @field_validator("api_key_env")
    @classmethod
    def _env_name(cls, value: str | None) -> str | None:
        if value is not None and (not ENV_NAME.match(value) or value.startswith("sk-")):
            raise ValueError(
                "must be the NAME of an environment variable (e.g. OPENAI_API_KEY), never "
                "the key itself; export the key and put the variable's name here"
            )
        return value

    def api_key(self) -> str:
        """The key from the environment; servers without auth get a placeholder."""
        if self.api_key_env is None:
            return "unused"
        return os.environ[self.api_key_env]

    def cache_path(self) -> Path | None:
        return None if self.cache_dir is None else Path(self.cache_dir).expanduser().resolve()


class VllmSettings(_LlmSettings):
    """Offline batch inference inside the Ray cluster (`ray.data.llm`, GPU only)."""

    name: Literal["vllm"] = "vllm"
    batch_size: int = Field(32, ge=1, description="rows per vLLM engine batch")
    engines: int = Field(1, ge=1, description="vLLM engine replicas (one per GPU group)")
    accelerator_type: str | None = None
    engine_kwargs: dict[str, Any] = Field(default_factory=lambda: {"max_model_len": 8192})


WriterSettings = OfflineSettings | OpenAISettings | VllmSettings
_MODELS: dict[str, type[BaseModel]] = {
    "offline": OfflineSettings, "openai": OpenAISettings, "vllm": VllmSettings,
}


def writer_settings(config: dict[str, Any]) -> WriterSettings:
    """Validate a `writer` config dict into its settings model (see module docstring)."""
    name = config.get("name", "offline")
    model = _MODELS.get(name)
    if model is None:
        raise ValueError(f"writer.name: {name!r} is unknown; use one of {sorted(_MODELS)}")
    try:
        settings = model.model_validate(config)
    except ValidationError as error:
        raise ValueError("\n".join(_lines(error))) from None
    _check_required(settings)
    return settings  # type: ignore[return-value]


def _lines(error: ValidationError) -> list[str]:
    lines = []
    for item in error.errors():
        key = "writer." + ".".join(str(part) for part in item["loc"])
        if item["type"] == "extra_forbidden":
            lines.append(f"{key}: unknown key for this writer; remove it or check its spelling")
        elif item["loc"][:1] == ("api_key_env",):
            lines.append(f"{key}: {item['msg']}")  # never echo what may be a secret
        else:
            lines.append(f"{key}: {item['msg']} (got {item.get('input')!r})")
    return lines


def _check_required(settings: BaseModel) -> None:
    if isinstance(settings, OfflineSettings):
        return
    if getattr(settings, "model", None) is None:
        raise ValueError("writer.model: not set; e.g. writer.model=Qwen/Qwen2.5-7B-Instruct")
    if isinstance(settings, OpenAISettings):
        if settings.base_url is None:
            raise ValueError("writer.base_url: not set; e.g. "
                             "writer.base_url=http://localhost:8000/v1")
        if settings.api_key_env is not None and not os.environ.get(settings.api_key_env):
            raise ValueError(
                f"writer.api_key_env: environment variable {settings.api_key_env} is not set; "
                f"export it, or set writer.api_key_env=null for a server without auth"
            )
    if settings.prompts_dir is not None and not Path(settings.prompts_dir).is_dir():
        raise ValueError(f"writer.prompts_dir: {settings.prompts_dir!r} is not a folder")
