"""Achieved timing statistics land within ±10 % of their targets (pure path, no Ray)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from pipeline.fit_timing import FitTimingConfig, fit_timing
from pipeline.segments import timeline_segments
from pipeline.timing_report import compare, describe, reference_segments
from pipeline.timing_stats import TIMING_KEYS, TimingAccumulator, intervals_from_timeline
from pipeline.tts.espeak import EspeakBackend
from tests.conftest import tone_utterance
from tests.timing_sim import simulate

AMI = Path("/work/shared/data/ami-rttm")


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


def test_default_run_meets_its_targets_with_no_hole_at_zero(espeak) -> None:
    target, achieved, timelines = simulate({"seed": 1}, 100, espeak.synthesize,
                                           espeak.pick_voices)
    assert achieved["transfers"] >= 500
    assert target["gap_median_s"] == 0.22 and target["overlap_transfer_ratio"] == 0.30
    assert not within(achieved, target, TIMING_KEYS), (achieved, target)
    turns = TimingAccumulator(definition="turns")
    for _, _, timeline in timelines:
        turns.add_dialogue(intervals_from_timeline(timeline.model_dump()))
    offsets = np.asarray(turns.offsets)
    below = ((offsets >= -0.1) & (offsets < 0)).sum()
    above = ((offsets >= 0) & (offsets < 0.1)).sum()
    assert below >= above / 3, (below, above)


def test_ami_train_profile_meetings_match_ami_dev(tmp_path_factory) -> None:
    """Meetings timed by a profile fitted on AMI train, measured as references are (speech
    segments), against held-out AMI dev: shape (KS) and the three statistics."""
    if not (AMI / "train.rttm").exists():
        pytest.skip("AMI RTTMs not available")
    out = tmp_path_factory.mktemp("ami")
    profile = fit_timing(FitTimingConfig(inputs=[str(AMI / "train.rttm")], out={"dir": str(out)}))
    raw = {"seed": 5, "plan": {"speakers": 4}, "timing": {"profile": str(profile)}}
    # tone-burst words at eSpeak's pace (~170 words/min): 80 meetings in seconds
    target, achieved, timelines = simulate(raw, 80, tone_speech)
    assert all(len(scenario.speakers) == 4 for scenario, _, _ in timelines)
    generated = describe({s.id: timeline_segments(t.model_dump()) for s, _, t in timelines})
    dev = describe(reference_segments(AMI / "dev.rttm"))
    assert generated["transfers"] >= 500
    comparison = compare(generated, dev)
    print({"achieved": achieved, "train_target": target, "comparison": comparison})
    assert comparison["ks_distance"] <= 0.08, comparison
    assert not within(generated, dev, ("overlap_transfer_ratio", "overlapped_speech_fraction",
                                       "gap_median_s"), 0.15), comparison
    # run.json's own measure (the same segments) is on the profile's targets (AMI train)
    assert not within(achieved, target, ("overlap_transfer_ratio", "overlapped_speech_fraction",
                                         "gap_median_s"), 0.15), (achieved, target)
