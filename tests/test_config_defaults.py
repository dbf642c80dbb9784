"""The defaults written in conf/ equal the typed defaults in code, group by group.

Each knob's default is written in the YAML group file (where users look for it) and in the
pydantic model or dataclass that checks it; the timing defaults are written once, in
pipeline/timing.py, and pipeline/config.py takes them from there. A run composed from conf/
and code called without a config must mean the same thing, so every value the YAML file sets
must equal the typed default, and every typed key must appear in the YAML file. The message
names the key, both values and both files.
"""

from __future__ import annotations

import inspect
from importlib import import_module
from typing import Any

import pytest
from omegaconf import OmegaConf
from pydantic import BaseModel

from pipeline import config as cfg
from pipeline.augment import AugmentSettings
from pipeline.card import CardSettings
from pipeline.paths import CONF_DIR
from pipeline.timing import TimingSettings
from pipeline.tts import BACKENDS

GROUPS: list[tuple[str, type[BaseModel]]] = [
    ("plan/default", cfg.PlanConfig),
    ("checks/default", cfg.ChecksConfig),
    ("timing/default", cfg.TimingConfig),
    ("labels/default", cfg.LabelsConfig),
    ("budget/default", cfg.BudgetConfig),
    ("sink/default", cfg.SinkConfig),
    ("ray/local", cfg.RayConfig),
    ("card/default", CardSettings),
    ("viewer/default", cfg.ViewSettings),
    ("view", cfg.ViewJobConfig),  # the `view` job's primary config
    ("verify", cfg.VerifyJobConfig),  # the `verify` job's primary config
]


def load(name: str) -> dict[str, Any]:
    """A conf/ file as a plain dict, without its Hydra `defaults` / `hydra` keys."""
    raw = OmegaConf.load(CONF_DIR / f"{name}.yaml")
    for key in ("defaults", "hydra"):  # Hydra's own keys (`${now:...}` resolves only there)
        raw.pop(key, None)
    values = OmegaConf.to_container(raw, resolve=True)
    assert isinstance(values, dict)
    return values


def flat(value: Any, prefix: str = "") -> dict[str, Any]:
    """Nested dicts as {"a.b": leaf}; lists and tuples compare as lists."""
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        for key, item in value.items():
            out.update(flat(item, f"{prefix}{key}."))
        return out
    return {prefix[:-1]: list(value) if isinstance(value, tuple) else value}


def differences(yaml_values: dict, typed: dict, where: str, what: str) -> list[str]:
    yaml_flat, typed_flat = flat(yaml_values), flat(typed)
    lines = [f"{key}: conf/{where}.yaml says {yaml_flat[key]!r}, {what} says {typed_flat[key]!r}"
             for key in sorted(yaml_flat.keys() & typed_flat.keys())
             if yaml_flat[key] != typed_flat[key]]
    lines += [f"{key}: in {what}, missing from conf/{where}.yaml"
              for key in sorted(typed_flat.keys() - yaml_flat.keys())]
    lines += [f"{key}: in conf/{where}.yaml, unknown to {what}"
              for key in sorted(yaml_flat.keys() - typed_flat.keys())]
    return lines


@pytest.mark.parametrize(("group", "model"), GROUPS, ids=[g for g, _ in GROUPS])
def test_group_yaml_equals_typed_defaults(group: str, model: type[BaseModel]) -> None:
    wrong = differences(load(group), model().model_dump(), group, model.__name__)
    assert not wrong, "\n".join(wrong)


def test_generate_top_level_keys_equal_typed_defaults() -> None:
    top = load("generate")
    fields = cfg.GenerateConfig.model_fields
    typed = {key: fields[key].get_default(call_default_factory=True) for key in top}
    assert not differences(top, typed, "generate", "GenerateConfig")


def test_default_writer_and_backend_names() -> None:
    """generate.yaml picks writer=offline and tts=espeak, the typed defaults' names."""
    defaults = OmegaConf.to_container(OmegaConf.load(CONF_DIR / "generate.yaml"))["defaults"]
    picked = {k: v for item in defaults if isinstance(item, dict) for k, v in item.items()}
    assert picked["writer"] == cfg.WriterConfig().name == load("writer/offline")["name"]
    assert picked["tts"] == cfg.TtsConfig().name == load("tts/espeak")["name"]


def test_timing_yaml_equals_timing_settings_defaults() -> None:
    """TimingSettings (pipeline/timing.py, the source) read from the YAML file is the same as
    TimingSettings() built from its own field defaults, and so is the typed config's default
    (derived from it): the key mapping of `from_config` loses nothing."""
    assert TimingSettings.from_config(load("timing/default")) == TimingSettings()
    assert TimingSettings.from_config(cfg.TimingConfig().model_dump()) == TimingSettings()


def test_augment_none_is_the_typed_default() -> None:
    """`augment=none` (the default group) means AugmentSettings() (everything off)."""
    assert AugmentSettings.from_config(load("augment/none")) == AugmentSettings()


FILLED_BY_CONFIG = {("corpus", "language")}  # pipeline/config.py sets it from `languages`


@pytest.mark.parametrize("backend", sorted(BACKENDS))
def test_tts_yaml_equals_backend_constructor_defaults(backend: str) -> None:
    """Every option a conf/tts/<name>.yaml file sets equals the constructor's default."""
    if not (CONF_DIR / "tts" / f"{backend}.yaml").exists():
        pytest.skip(f"no conf/tts/{backend}.yaml")
    module_name, class_name = BACKENDS[backend].split(":")
    signature = inspect.signature(getattr(import_module(module_name), class_name))
    # `per_language` routes languages to backends (pipeline/tts/mixed.py): not a constructor
    # option; a `null` the config check fills in (corpus language <- `languages`) is not one.
    options = {k: v for k, v in load(f"tts/{backend}").items()
               if k not in ("name", "per_language")
               and not (v is None and (backend, k) in FILLED_BY_CONFIG)}
    parameters = signature.parameters
    typed = {k: parameters[k].default for k in options if k in parameters}
    wrong = differences(options, typed, f"tts/{backend}", f"{class_name}()")
    required = {k for k, v in typed.items() if v is inspect.Parameter.empty}
    wrong = [line for line in wrong if line.split(":")[0] not in required]
    # A required option is written `null` in YAML: a placeholder the user must fill.
    wrong += [f"{k}: conf/tts/{backend}.yaml sets {options[k]!r}, {class_name}() requires it"
              for k in sorted(required) if options[k] is not None]
    assert not wrong, "\n".join(wrong)


def test_differences_names_the_key_and_both_values() -> None:
    yaml_values = {"gap": {"median_s": 0.22, "sigma": 0.7}, "extra": 1}
    typed = {"gap": {"median_s": 0.25, "sigma": 0.7}, "tail_s": 0.3}
    assert differences(yaml_values, typed, "timing/default", "TimingConfig") == [
        "gap.median_s: conf/timing/default.yaml says 0.22, TimingConfig says 0.25",
        "tail_s: in TimingConfig, missing from conf/timing/default.yaml",
        "extra: in conf/timing/default.yaml, unknown to TimingConfig",
    ]
