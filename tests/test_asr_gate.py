"""The ASR gate's pure parts and its config checks (real model folders, no synthesis)."""

from __future__ import annotations

import random
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from pipeline.asr_check import other_voice
from pipeline.asr_gate import (
    AsrSettings,
    LanguageGate,
    assign_words,
    error_rate,
    judge,
    normalise,
    pack,
)
from pipeline.config import ConfigError, GenerateConfig
from pipeline.schema import Utterance
from pipeline.whisper_models import is_multilingual, model_sha256, resolve_model

ROOT = Path(__file__).resolve().parent.parent


def generate_config(*overrides: str) -> GenerateConfig:
    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        cfg = compose("generate", overrides=list(overrides))
    return GenerateConfig.check(OmegaConf.to_container(cfg, resolve=True))


def test_both_sides_normalised_alike():
    assert normalise("Dr. Miller is travelling on the 12th of May, 1987!", "en") == \
        normalise("doctor miller is traveling on the twelfth of may nineteen eighty seven", "en")
    assert normalise("Szia, 3 alma!", "hu") == "szia három alma"
    assert error_rate(normalise("Hello there, Mia.", "en"), normalise("hello there mia", "en"),
                      "wer") == 0.0


def test_error_rates():
    assert error_rate("a b c d", "a x c d", "wer") == pytest.approx(0.25)
    assert error_rate("abcd", "abed", "cer") == pytest.approx(0.25)
    assert error_rate("", "", "wer") == 0.0
    assert error_rate("", "babble", "wer") == 1.0


def test_words_go_to_the_utterance_holding_their_midpoint():
    spans = [(0.0, 1.0), (2.0, 3.0)]
    words = [(" hello", 0.1, 0.5), (" there", 0.8, 1.3), (" next", 1.9, 2.2), (" one", 3.2, 3.4)]
    assert assign_words(words, spans) == ["hello there", "next one"]


def test_pack_resamples_and_spaces_utterances():
    one = Utterance(0, "a", 22050, np.ones(22050, np.float32))
    two = Utterance(1, "b", 16000, np.ones(8000, np.float32))
    buffer, spans = pack([one, two], gap_s=0.5)
    assert spans[0] == (0.0, 1.0)
    assert spans[1] == pytest.approx((1.5, 2.0))
    assert len(buffer) == 16000 + 8000 + 8000 + 8000


def test_short_utterances_are_scored_not_judged():
    utterances = [Utterance(i, "a", 16000, np.zeros(1, np.float32)) for i in range(2)]
    gate = LanguageGate("tiny.en", "wer", 0.15)
    checks = judge(["Mhm.", "Please book me a table for two."], ["", "Please cook me a table."],
                   utterances, "en", gate, min_words=3)
    assert (checks[0].judged, checks[0].passed) == (False, True)
    assert checks[1].judged and not checks[1].passed
    assert checks[1].error == pytest.approx(3 / 7)  # cook for book; "for two" missing


def test_language_entries_override_the_top_level():
    settings = AsrSettings(model="base", metric="cer", max_error=0.3,
                           languages={"en": {"model": "tiny.en", "metric": "wer"}})
    assert settings.for_language("en") == LanguageGate("tiny.en", "wer", 0.3)
    assert settings.for_language("hu-HU") == LanguageGate("base", "cer", 0.3)


def test_retry_voice_is_new_and_alike():
    registry = [{"id": f"v{i}", "gender": g, "age_band": b}
                for i, (g, b) in enumerate([("male", "adult"), ("male", "adult"),
                                            ("female", "adult"), ("male", "young")])]
    picked = other_voice(registry[0], registry, {"v0"}, random.Random(1))
    assert picked["id"] == "v1"
    assert other_voice(registry[0], registry, {"v0", "v1"}, random.Random(1))["id"] == "v3"


def test_packaged_tiny_en_is_english_only():
    path = resolve_model("tiny.en")
    assert (path / "model.bin").exists()
    assert not is_multilingual(path)
    assert len(model_sha256(path)) == 64


def test_preset_is_off_by_default_and_on_with_checks_asr():
    assert not generate_config().checks.asr.enabled
    config = generate_config("checks=asr", "languages=[en]")
    assert config.checks.asr.enabled
    assert config.checks.asr.languages["en"].model == "tiny.en"


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["checks.asr.model=/nonexistent/whisper"], "checks.asr.model=/nonexistent/whisper: "
                                                    "model folder /nonexistent/whisper does "
                                                    "not exist"),
        (["checks.asr.model=tiny.en"], "checks.asr.model=tiny.en: an English-only Whisper "
                                       "model cannot check language 'hu'"),
        (["+checks.asr.languages.xx.model=tiny.en"], "checks.asr.languages: unknown ['xx']"),
        (["checks.asr.metric=bleu"], "checks.asr.metric"),
    ],
)
def test_bad_gate_config_fails_before_work(overrides, message):
    with pytest.raises(ConfigError) as error:
        generate_config("checks=asr", "languages=[en,hu]", *overrides)
    assert message in str(error.value)


def test_folder_that_is_not_ctranslate2_fails(tmp_path):
    (tmp_path / "model.bin").write_bytes(b"not a model")
    (tmp_path / "config.json").write_text("{}")
    with pytest.raises(ConfigError) as error:
        generate_config("checks=asr", "languages=[en]", f"checks.asr.languages.en.model={tmp_path}")
    assert "is not a loadable CTranslate2 Whisper model" in str(error.value)
    assert "\n" not in str(error.value)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ConfigError, match="not a CTranslate2 Whisper folder"):
        generate_config("checks=asr", "languages=[en]", f"checks.asr.languages.en.model={empty}")


def test_cli_error_is_one_line(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "pipeline", "generate", "checks=asr", "languages=[hu]",
         "checks.asr.model=tiny.en", f"sink.dir={tmp_path}"],
        capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert result.returncode == 2
    assert result.stderr.strip().count("\n") == 0, result.stderr
    assert "English-only" in result.stderr and "Traceback" not in result.stderr


def test_prepare_assembles_the_split_base_model(tmp_path, capsys):
    import hashlib

    from pipeline.whisper_models import models_job

    result = models_job({"prepare": "whisper-base", "models_dir": str(tmp_path)})
    path = Path(result["path"])
    assert path == tmp_path / "whisper-base" and is_multilingual(path)
    assert hashlib.sha256((path / "model.bin").read_bytes()).hexdigest() == result["sha256"]
    assert '"sha256"' in capsys.readouterr().out
    assert resolve_model("base", tmp_path) == path  # assembled once, found again
