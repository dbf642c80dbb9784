"""Bad configs fail before any work, with the key's name in the message."""

import subprocess
import sys
from pathlib import Path

import pytest

from pipeline.config import ConfigError, GenerateConfig

ROOT = Path(__file__).resolve().parent.parent


def run_cli(tmp_path: Path, *overrides: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "pipeline", "generate", f"sink.dir={tmp_path / 'ds'}",
         f"hydra.run.dir={tmp_path / 'hydra'}", *overrides],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
    )


@pytest.mark.parametrize(
    ("override", "key"),
    [
        ("languages=[en,xx]", "languages"),
        ("budget.dialogues=-3", "budget.dialogues"),
        ("writer=nonexistent", "writer"),
        ("sink.sample_rate=12345", "sink.sample_rate"),
        ("+plan.colour=blue", "plan.colour"),
    ],
)
def test_bad_config_fails_before_work_naming_the_key(tmp_path, override, key):
    result = run_cli(tmp_path, override)
    assert result.returncode != 0
    assert key in result.stderr, result.stderr
    assert not (tmp_path / "ds").exists(), "no work may start on a bad config"


def test_min_turns_above_max_turns_is_explained():
    with pytest.raises(ConfigError, match="plan.min_turns"):
        GenerateConfig.check({"plan": {"min_turns": 20, "max_turns": 10}})


def test_defaults_are_valid():
    config = GenerateConfig.check({})
    assert config.budget.dialogues == 40
    assert config.languages == ["en", "hu"]


def test_bare_command_lists_jobs():
    result = subprocess.run([sys.executable, "-m", "pipeline"], cwd=ROOT, capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 0
    assert "generate" in result.stdout
