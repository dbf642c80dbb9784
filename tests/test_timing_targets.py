"""Achieved timing statistics land within ±10 % of their targets (pure path, no Ray)."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline.fit_timing import FitTimingConfig, fit_timing
from pipeline.timing_stats import TIMING_KEYS
from pipeline.tts.espeak import EspeakBackend
from tests.conftest import tone_utterance
from tests.timing_sim import simulate

AMI = Path("/work/shared/data/ami-rttm")
AMI_DEV = {"overlap_transfer_ratio": 0.502, "gap_median_s": 0.97,
           "overlapped_speech_fraction": 0.141}


@pytest.fixture(scope="module")
def espeak() -> EspeakBackend:
    backend = EspeakBackend()
    backend.setup()
    return backend


def tone_speech(text: str, voice: dict, turn: int, speaker: str):
    return tone_utterance(turn, speaker, text.split(), word_s=0.28, gap_s=0.07)


def within(achieved: dict, target: dict, keys, tolerance: float = 0.10) -> dict:
    return {k: (achieved[k], target[k]) for k in keys
            if abs(achieved[k] - target[k]) > tolerance * target[k]}


def test_default_run_meets_its_targets(espeak) -> None:
    target, achieved, _ = simulate({"seed": 1}, 100, espeak.synthesize, espeak.pick_voices)
    assert achieved["transfers"] >= 500
    assert target["gap_median_s"] == 0.22 and target["overlap_transfer_ratio"] == 0.30
    assert not within(achieved, target, TIMING_KEYS), (achieved, target)


def test_ami_train_profile_meetings_match_ami(espeak, tmp_path_factory) -> None:
    if not (AMI / "train.rttm").exists():
        pytest.skip("AMI RTTMs not available")
    out = tmp_path_factory.mktemp("ami")
    profile = fit_timing(FitTimingConfig(inputs=[str(AMI / "train.rttm")], out={"dir": str(out)}))
    raw = {"seed": 5, "plan": {"speakers": 4}, "timing": {"profile": str(profile)}}
    # tone-burst words at eSpeak's pace (~170 words/min): 200 meetings in seconds, which
    # the heavy-tailed overlapped-speech fraction needs to settle
    target, achieved, timelines = simulate(raw, 200, tone_speech)
    assert achieved["transfers"] >= 500
    assert all(len(scenario.speakers) == 4 for scenario, _, _ in timelines)
    # the profile reproduces its own corpus (train) on every statistic ...
    assert not within(achieved, target, TIMING_KEYS), (achieved, target)
    # ... and AMI dev's overlap ratio and overlapped-speech fraction. Dev's median gap
    # (0.97 s) is 13 % below train's own (1.11 s), so a faithful train profile lands near
    # 1.11 s: checked against train above, reported against dev here.
    assert not within(achieved, AMI_DEV, ("overlap_transfer_ratio",
                                          "overlapped_speech_fraction")), (achieved, AMI_DEV)
    print({"achieved": achieved, "train_target": target, "ami_dev": AMI_DEV})
