"""Scorer metrics on hand-made VAD segments, and the VAD's segment rule."""

from __future__ import annotations

import numpy as np
import pytest

from pipeline.score_native import ScoreSettings, aggregate, jensen_shannon, score_sample
from pipeline.vad import WINDOW_S, VadSettings, segments_from_probabilities

S = ScoreSettings()


def meta(axis: str, start: float, end: float, expected: str, user=(0.0, 4.0), bc=()):
    return {"id": axis, "axis": axis,
            "event": {"start_s": start, "end_s": end, "expected": expected},
            "user_turn": {"start_s": user[0], "end_s": user[1]},
            "reference": {"backchannel_s": list(bc)}}


def test_turn_taking_latency_and_sr_at_3s():
    m = meta("turn_taking", 4.0, 7.0, "take_turn")
    quick = score_sample(m, [(4.3, 7.5)], S)
    late = score_sample(m, [(7.6, 10.0)], S)
    assert quick["latency_s"] == pytest.approx(0.3) and quick["success_3s"]
    assert late["takeover"] and not late["success_3s"]
    assert not score_sample(m, [(4.3, 4.8)], S)["takeover"]  # a backchannel is no turn
    summary = aggregate([quick, late])["turn_taking"]
    assert summary["sr_at_3s"] == 0.5 and summary["latency_s"] == pytest.approx(1.95)


def test_interruption_stop_latency():
    m = meta("interruption", 2.0, 4.0, "yield", user=(2.0, 5.0))
    stops = score_sample(m, [(0.0, 2.6), (5.3, 8.0)], S)
    assert stops["stop_latency_s"] == pytest.approx(0.6) and stops["success_2s"]
    assert stops["latency_s"] == pytest.approx(0.3)
    assert not score_sample(m, [(0.0, 9.0)], S)["success_2s"]


def test_pause_takeover_ignores_backchannels():
    m = meta("pause", 1.0, 2.0, "listen")
    assert not score_sample(m, [(1.2, 1.6)], S)["takeover"]
    assert score_sample(m, [(1.2, 3.0)], S)["takeover"]


def test_jensen_shannon_bounds():
    assert jensen_shannon([1.0], [1.0], 0, 4, 0.3) == pytest.approx(0.0, abs=1e-9)
    far = jensen_shannon([0.2], [3.8], 0, 4, 0.3)
    assert 0.95 < far <= 1.0
    assert jensen_shannon([], [2.0], 0, 4, 0.3) == 1.0


def test_vad_segments_use_hysteresis_and_merge_short_gaps():
    probs = np.array([0.1] * 10 + [0.9] * 20 + [0.4] * 3 + [0.2] * 4 + [0.8] * 20 + [0.0] * 30)
    segs = segments_from_probabilities(probs, VadSettings(pad_s=0.0), len(probs) * WINDOW_S)
    assert len(segs) == 1  # a 4-window (128 ms) dip is shorter than min_silence_s
    assert segs[0][0] == pytest.approx(10 * WINDOW_S)
    split = segments_from_probabilities(probs, VadSettings(pad_s=0.0, min_silence_s=0.05),
                                        len(probs) * WINDOW_S)
    assert len(split) == 2 and split[0][1] == pytest.approx(33 * WINDOW_S)
