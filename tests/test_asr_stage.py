"""The ASR gate stage on real eSpeak speech with the real packaged Whisper models."""

from __future__ import annotations

import dataclasses
import json
import os
import pickle

import numpy as np
import pandas as pd
import pytest

from pipeline.asr_check import AsrStage
from pipeline.asr_gate import ASR_MISMATCH
from pipeline.schema import ScenarioSpec
from pipeline.shard_sink import flush
from pipeline.sink import ShardWriter
from pipeline.stages import AssembleStage, SpeakStage, ValidateStage, WriteStage
from pipeline.stream import plan_shard
from pipeline.tts.espeak import EspeakBackend
from tests.test_asr_gate import generate_config

# Clear voices (plain accent and variant, adult prosody). Their dialogues pass at a mean WER
# <= 0.15; single short turns still reach ~0.3-0.6 with tiny.en (README, "ASR gate").
CLEAR_EN = ("espeak:en-us+m3:adult", "espeak:en-us+f2:adult")
CLEAR_HU = ("espeak:hu+m3:adult", "espeak:hu+f2:adult")


def spoken_rows(*overrides: str, voices: tuple[str, ...] = (), dialogues: int = 1):
    """Config and rows after speak (offline writer, eSpeak), optionally with given voices."""
    config = generate_config(f"budget.dialogues={dialogues}", "checks=asr", *overrides)
    stage_config = config.model_dump()
    item = {"shard": 0, "split": "train", "position": 0, "count": len(config.splits)}
    frame = pd.DataFrame(plan_shard(item, stage_config, dialogues, dialogues))
    frame = ValidateStage(stage_config)(WriteStage(stage_config)(frame))
    if voices:
        language = voices[0].split(":")[1].split("+")[0]  # espeak:<language>+<variant>:<age>
        registry = {v["id"]: v for v in EspeakBackend().voices(language)}
        rows = frame.to_dict("records")
        for row in rows:
            scenario = ScenarioSpec.model_validate_json(row["scenario"])
            for spec, voice in zip(scenario.speakers, voices, strict=False):
                spec.voice = registry[voice]
            row["scenario"] = scenario.model_dump_json()
        frame = pd.DataFrame(rows)
    return stage_config, SpeakStage(stage_config)(frame)


@pytest.fixture(scope="module")
def english():
    return spoken_rows("languages=[en]", "checks.asr.languages.en.max_error=0.7",
                       "checks.asr.retries=0", voices=CLEAR_EN)


@pytest.fixture(scope="module")
def gate(english):
    stage = AsrStage(english[0])
    stage.setup()
    stage._ready = True
    return stage


def outcome(row: dict) -> dict:
    return json.loads(row["asr"])


def test_clear_english_passes_at_mean_wer_015(english, gate, tmp_path):
    config, frame = english
    rows = gate(frame).to_dict("records")
    turns = outcome(rows[0])["turns"]
    judged = [t["asr_error"] for t in turns if t["judged"]]
    print("per-utterance WER:", judged)
    assert rows[0]["reject"] is None or pd.isna(rows[0]["reject"])
    assert len(judged) >= 5 and np.mean(judged) <= 0.15
    assert {t["speaker"] for t in turns} == {s["id"] for s in
                                              json.loads(rows[0]["scenario"])["speakers"]}
    assembled = AssembleStage(config)(pd.DataFrame(rows)).to_dict("records")
    writer = ShardWriter(tmp_path, 16000)
    flush(writer, "train", 0, assembled)
    segments = pickle.loads(assembled[0]["segments"])
    assert all(isinstance(s["asr_text"], str) and s["asr_error"] is not None for s in segments)
    dialogue = pickle.loads(assembled[0]["dialogue"])
    assert dialogue["asr_error_max"] == max(judged) and dialogue["asr_retries"] == 0
    provenance = json.loads(dialogue["provenance"])["asr"]
    assert provenance["model"] == "tiny.en" and len(provenance["sha256"]) == 64


def test_noise_in_place_of_a_turn_is_caught(english, gate):
    _, frame = english
    row = dict(frame.to_dict("records")[0])
    utterances = pickle.loads(row["utterances"])
    victim = max(range(len(utterances)), key=lambda i: len(utterances[i].words))
    noise = np.random.default_rng(0).normal(0, 0.1, len(utterances[victim].samples))
    utterances[victim].samples = noise.astype(np.float32)
    row["utterances"] = pickle.dumps(utterances)
    out = gate(pd.DataFrame([row])).to_dict("records")[0]
    failed = [t for t in outcome(out)["turns"] if not t["passed"]]
    print("caught:", failed)
    assert out["reject"] == ASR_MISMATCH
    assert utterances[victim].turn in {t["turn"] for t in failed}


def test_swapped_turn_texts_are_caught_and_counted(english, gate, tmp_path):
    config, frame = english
    row = dict(frame.to_dict("records")[0])
    script = json.loads(row["script"])
    long_turns = sorted(range(len(script["turns"])),
                        key=lambda i: -len(script["turns"][i]["text"].split()))[:2]
    a, b = long_turns
    # the audio says turn a's words; the row now claims turn b's text there (and vice versa)
    script["turns"][a]["text"], script["turns"][b]["text"] = (script["turns"][b]["text"],
                                                              script["turns"][a]["text"])
    row["script"] = json.dumps(script)
    out = gate(pd.DataFrame([row])).to_dict("records")[0]
    failed = {t["turn"] for t in outcome(out)["turns"] if not t["passed"]}
    print("caught turns:", failed, "of swapped", {a, b})
    assert out["reject"] == ASR_MISMATCH and {a, b} <= failed
    rows = AssembleStage(config)(pd.DataFrame([out])).to_dict("records")
    writer = ShardWriter(tmp_path, 16000)
    flush(writer, "train", 0, rows)
    assert writer.totals().rejected == {ASR_MISMATCH: 1} and writer.totals().written == 0


def test_a_retry_revoices_the_failing_speaker(english, gate):
    _, frame = english
    stage = gate
    settings = gate.settings
    gate.settings = dataclasses.replace(settings, retries=1)
    row = dict(frame.to_dict("records")[0])
    utterances = pickle.loads(row["utterances"])
    victim = max(range(len(utterances)), key=lambda i: len(utterances[i].words))
    utterances[victim].samples = np.zeros_like(utterances[victim].samples)  # silence
    row["utterances"] = pickle.dumps(utterances)
    try:
        out = stage(pd.DataFrame([row])).to_dict("records")[0]
    finally:
        gate.settings = settings
    speaker = utterances[victim].speaker
    before = ScenarioSpec.model_validate_json(row["scenario"]).speaker(speaker).voice["id"]
    after = ScenarioSpec.model_validate_json(out["scenario"]).speaker(speaker).voice["id"]
    assert outcome(out)["retries"] == 1 and after != before
    victim_turn = next(t for t in outcome(out)["turns"] if t["turn"] == utterances[victim].turn)
    assert victim_turn["asr_text"]  # resynthesised: audible again


@pytest.mark.slow
def test_hungarian_base_cer_within_documented_bound():
    """Clear voices, so the figure is the model's, not a drawn voice's (variants such as
    `grandma` make Whisper base loop on a word: CER 1.0). The median is what is pinned:
    one looping utterance moves the mean by 0.05 and differs between CPUs' int8 kernels."""
    config, frame = spoken_rows("languages=[hu]", "checks.asr.retries=0", voices=CLEAR_HU)
    stage = AsrStage(config)
    row = stage(frame).to_dict("records")[0]
    judged = [t["asr_error"] for t in outcome(row)["turns"] if t["judged"]]
    print("hu base per-utterance CER:", judged, "mean", np.mean(judged))
    assert outcome(row)["gate"]["model"] == "base"
    assert len(judged) >= 10
    assert np.median(judged) <= 0.35  # measured 0.23, mean 0.26 (README, "ASR gate")
    bound = config["checks"]["asr"]["max_error"]  # hu has no entry of its own: the top level
    assert np.mean(np.asarray(judged) <= bound) >= 0.75


@pytest.mark.slow
@pytest.mark.skipif(os.environ.get("DUPLEXSYNTH_ASR_E2E") != "1",
                    reason="not yet seen passing: Ray could not start on the loaded dev machine; "
                           "run with DUPLEXSYNTH_ASR_E2E=1")
def test_generate_with_the_gate_end_to_end(tmp_path):
    """The real CLI with `checks=asr`: Ray actor stage, columns in the shards, run.json
    counts and the card's ASR section."""
    import subprocess
    import sys

    from pipeline.dataset import iter_dialogues, iter_segments, run_info
    from tests.test_asr_gate import ROOT

    out = tmp_path / "ds"
    result = subprocess.run(
        [sys.executable, "-m", "pipeline", "generate", f"sink.dir={out}",
         f"hydra.run.dir={tmp_path / 'hydra'}", "budget.dialogues=2", "sink.shard_dialogues=4",
         "progress=false", "ray.num_cpus=2", "languages=[en]", "checks=asr"],
        cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    run = run_info(out)
    print("run counts:", run["counts"], "profile:", run.get("profile", {}).get("stage_s"))
    assert run["counts"]["written"] == 2
    assert run["counts"]["planned"] == 2 + sum(run["counts"]["rejected"].values())
    assert run["profile"]["stage_s"]["asr"] > 0
    segments = list(iter_segments(out, columns=["text", "asr_text", "asr_error"]))
    assert segments and all(s["asr_text"] is not None for s in segments)
    dialogues = list(iter_dialogues(out, columns=["asr_error_max", "provenance"]))
    assert all(d["provenance"]["asr"]["model"] == "tiny.en" for d in dialogues)
    assert all(d["asr_error_max"] <= 0.6 for d in dialogues)
    card = (out / "README.md").read_text()
    assert "### ASR round trip" in card and (out / "plots" / "asr_errors.png").exists()
