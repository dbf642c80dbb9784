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


def test_a_bad_generate_config_is_one_line_naming_every_key():
    with pytest.raises(ConfigError) as error:
        GenerateConfig.check({"budget": {"dialogues": -3}, "plan": {"colour": "blue"}})
    message = str(error.value)
    assert "\n" not in message
    assert "budget.dialogues: " in message and "(got -3)" in message
    assert "plan.colour: unknown key" in message


@pytest.mark.parametrize(("job", "overrides", "line"), [
    ("card", ("sink.dir={tmp}", "card.top_voices=0"),
     "card.top_voices: Input should be greater than or equal to 1"),
    ("mix", ("out.dir={tmp}", "+mix.colour=blue"),
     "mix.colour: unknown key; remove it or check its spelling"),
])
def test_jobs_check_their_own_group_with_one_line_naming_the_key(tmp_path, capsys, job,
                                                                 overrides, line):
    """The jobs' shared check (jobs_common.checked) through the CLI's own config path."""
    from tests.cli_support import in_process

    with pytest.raises(SystemExit) as stop:
        in_process(job, *(o.format(tmp=tmp_path) for o in overrides))
    err = capsys.readouterr().err.strip()
    assert stop.value.code == 2 and err.startswith("duplexsynth: ") and line in err
    assert "\n" not in err and "Traceback" not in err
