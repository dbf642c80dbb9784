"""Writer configs: presets compose, bad values fail before work with the key's name."""

from __future__ import annotations

import pytest

from pipeline.cli import CONF_DIR
from pipeline.config import ConfigError, GenerateConfig

BASE = {"name": "openai", "model": "m", "base_url": "http://127.0.0.1:9/v1"}


@pytest.mark.parametrize(
    ("writer", "key"),
    [
        ({"name": "openai", "model": "m"}, "writer.base_url"),
        ({"name": "openai", "base_url": "http://x/v1"}, "writer.model"),
        ({**BASE, "base_url": "localhost:8000"}, "writer.base_url"),
        ({**BASE, "api_key_env": "DUPLEXSYNTH_SURELY_UNSET"}, "writer.api_key_env"),
        ({**BASE, "concurrency": 0}, "writer.concurrency"),
        ({**BASE, "concurency": 4}, "writer.concurency"),
        ({**BASE, "response_format": "xml"}, "writer.response_format"),
        ({"name": "vllm", "model": "m", "base_url": "http://x/v1"}, "writer.base_url"),
    ],
)
def test_bad_writer_values_name_the_key(writer, key):
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        GenerateConfig.check({"writer": writer})


def test_a_key_pasted_into_api_key_env_is_refused_and_not_echoed():
    with pytest.raises(ConfigError) as error:
        GenerateConfig.check({"writer": {**BASE, "api_key_env": "sk-live-abcdef123"}})
    assert "writer.api_key_env" in str(error.value)
    assert "sk-live-abcdef123" not in str(error.value)


def test_cache_dir_is_made_absolute_for_ray_workers():
    config = GenerateConfig.check({"writer": {**BASE, "cache_dir": "rel/cache"}})
    assert config.writer.model_dump()["cache_dir"].startswith("/")
    assert config.writer.generator == "openai:m"


@pytest.mark.parametrize("preset", ["llama", "qwen", "gemma", "mistral", "gpt", "vllm"])
def test_presets_compose_and_validate(preset, monkeypatch):
    from hydra import compose, initialize_config_dir
    from omegaconf import OmegaConf

    monkeypatch.setenv("OPENAI_API_KEY", "sk-placeholder")
    with initialize_config_dir(config_dir=CONF_DIR, version_base="1.3"):
        cfg = compose(config_name="generate", overrides=[f"writer={preset}"])
    raw = OmegaConf.to_container(cfg, resolve=True)
    config = GenerateConfig.check(raw)
    assert config.writer.generator in (preset, f"vllm:{raw['writer']['model']}")
