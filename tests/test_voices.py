"""The eSpeak voice registry: attributes, distinct voices per dialogue, stable speaker ids."""

from __future__ import annotations

import random

import numpy as np
import pytest

from pipeline.scenarios import PlanSettings, plan_scenario
from pipeline.tts.espeak import AGE_BANDS, EspeakBackend


@pytest.fixture(scope="module")
def backend() -> EspeakBackend:
    engine = EspeakBackend()
    engine.setup()
    return engine


def f0_hz(samples: np.ndarray, rate: int) -> float:
    """Median autocorrelation pitch (60-400 Hz) over loud 40 ms frames."""
    frame = int(0.04 * rate)
    peak = np.abs(samples).max()
    pitches = []
    for start in range(0, len(samples) - frame, frame):
        chunk = samples[start:start + frame]
        if np.abs(chunk).max() < 0.3 * peak:
            continue
        chunk = chunk - chunk.mean()
        corr = np.correlate(chunk, chunk, "full")[frame - 1:]
        low, high = int(rate / 400), int(rate / 60)
        lag = low + int(np.argmax(corr[low:high]))
        pitches.append(rate / lag)
    return float(np.median(pitches))


def test_registry_ids_are_unique_and_stable() -> None:
    for language in ("en", "hu"):
        registry = EspeakBackend().voices(language)
        assert len({v["id"] for v in registry}) == len(registry) >= 80
        assert registry == EspeakBackend().voices(language)  # same options, same voices
        assert {v["age_band"] for v in registry} == set(AGE_BANDS)
        assert {v["gender"] for v in registry} == {"female", "male"}
        assert all(v["language"] == language for v in registry)


def test_picks_are_distinct_and_honour_attributes() -> None:
    backend = EspeakBackend()
    for seed in range(30):
        picked = backend.pick_voices("hu", 6, random.Random(seed))
        assert len({v["name"].split("+")[1] for v in picked}) == 6
        assert gender_counts(picked) == {"female": 3, "male": 3}
    wanted = [{"gender": "female", "age_band": "senior"}, {"gender": "male", "age_band": "young"}]
    picked = backend.pick_voices("en", 2, random.Random(1), wanted)
    assert [(v["gender"], v["age_band"]) for v in picked] == [("female", "senior"),
                                                             ("male", "young")]
    with pytest.raises(ValueError, match="age_band"):
        backend.pick_voices("en", 1, random.Random(1), [{"age_band": "toddler"}])


def gender_counts(voices: list[dict]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for voice in voices:
        counts[voice["gender"]] = counts.get(voice["gender"], 0) + 1
    return counts


def test_same_id_means_same_voice_across_dialogues() -> None:
    backend = EspeakBackend()
    seen: dict[str, dict] = {}
    settings = PlanSettings(languages=("hu",), speakers=(2, 6))
    for index in range(300):
        for speaker in plan_scenario(index, 3, settings, backend.pick_voices).speakers:
            voice = speaker.voice
            assert seen.setdefault(voice["id"], voice) == voice
    assert len(seen) > 40  # many distinct speakers to balance over


def test_voices_sound_consistent_within_and_distinct_across_speakers(backend) -> None:
    plan = plan_scenario(0, 11, PlanSettings(languages=("en",), speakers=4),
                         backend.pick_voices)
    text = "We should book the earlier flight on Friday morning."
    pitch = {}
    for speaker in plan.speakers:
        first = backend.synthesize(text, speaker.voice, 0, speaker.id)
        again = backend.synthesize(text, speaker.voice, 5, speaker.id)
        pitch[speaker.id] = f0_hz(first.samples, first.sample_rate)
        assert f0_hz(again.samples, again.sample_rate) == pytest.approx(pitch[speaker.id],
                                                                        rel=0.05)
        assert again.duration_s == pytest.approx(first.duration_s, rel=0.05)
    females = [pitch[s.id] for s in plan.speakers if s.voice["gender"] == "female"]
    males = [pitch[s.id] for s in plan.speakers if s.voice["gender"] == "male"]
    assert females and males and min(females) > max(males)
