"""Shared test inputs: utterances made of real (synthetic tone) audio with known word spans."""

from __future__ import annotations

import numpy as np
import pytest

from pipeline.schema import Utterance

SAMPLE_RATE = 22050


def tone_utterance(turn: int, speaker: str, words: list[str], word_s: float = 0.3,
                   gap_s: float = 0.05, freq: float = 220.0) -> Utterance:
    """An utterance whose words are tone bursts separated by short silences."""
    spans, cursor = [], 0.0
    for word in words:
        spans.append((word, round(cursor, 4), round(cursor + word_s, 4)))
        cursor += word_s + gap_s
    total = int(round((cursor - gap_s) * SAMPLE_RATE))
    samples = np.zeros(total, dtype=np.float32)
    for _, start, end in spans:
        a, b = int(start * SAMPLE_RATE), int(end * SAMPLE_RATE)
        t = np.arange(b - a) / SAMPLE_RATE
        samples[a:b] = 0.3 * np.sin(2 * np.pi * freq * t)
    return Utterance(turn=turn, speaker=speaker, sample_rate=SAMPLE_RATE, samples=samples,
                     words=spans)


@pytest.fixture
def make_utterance():
    return tone_utterance
