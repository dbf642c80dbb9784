"""Full-Duplex-Bench metric definitions on hand-made transcripts and segments."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.spatial.distance import jensenshannon

from pipeline import score_fdb as fdb


def words(*spans: tuple[float, float]) -> list[dict]:
    return [{"text": f"w{i}", "timestamp": [a, b]} for i, (a, b) in enumerate(spans)]


def test_take_over_rule_is_span_or_word_count():
    assert fdb.take_over([]) == 0
    assert fdb.take_over(words((1.0, 1.3), (1.3, 1.6))) == 0          # short, 2 words
    assert fdb.take_over(words((1.0, 1.1), (1.2, 1.3), (1.3, 1.4), (1.4, 1.5))) == 1  # 4 words
    assert fdb.take_over(words((1.0, 1.2), (1.8, 2.0))) == 1          # spans 1.0 s
    assert fdb.take_over([{"text": "a", "timestamp": [1.0, None]}]) == 0


def test_latency_is_clipped_at_zero_and_missing_without_take_over():
    early = fdb.tor_and_latency(words((2.0, 2.5), (2.6, 3.4)), reference_s=2.4)
    assert early == {"tor": 1, "latency_s": 0.0}
    late = fdb.tor_and_latency(words((3.0, 3.5), (3.6, 4.4)), reference_s=2.4)
    assert late["latency_s"] == pytest.approx(0.6)
    assert fdb.tor_and_latency(words((3.0, 3.2)), 2.4) == {"tor": 0, "latency_s": None}


def test_vad_approximation_counts_pseudo_words():
    chunks = fdb.vad_chunks([(1.0, 1.6)])
    assert len(chunks) == 2 and fdb.take_over(chunks) == 0
    assert fdb.take_over(fdb.vad_chunks([(1.0, 2.2)])) == 1
    assert fdb.crop_segments([(0.0, 2.0), (3.0, 4.0)], 1.5) == [(1.5, 2.0), (3.0, 4.0)]


def test_backchannel_jsd_is_scipy_distance_on_02s_bins():
    duration = 4.0
    reference = np.full(int(duration / 0.2) + 1, 1e-10)
    reference[5:7] = 1.0
    reference = list(reference / reference.sum())
    same = fdb.backchannel([(1.0, 1.3)], words((1.05, 1.25)), duration, reference)
    assert same["tor"] == 0 and same["backchannels"] == 1
    assert same["frequency_hz"] == pytest.approx(0.25)
    hist = np.full(21, 1e-10)
    hist[5:7] += 1
    hist /= hist.sum()
    assert same["jsd"] == pytest.approx(float(jensenshannon(hist, reference)), abs=1e-4)
    assert same["jsd"] < 0.01
    far = fdb.backchannel([(3.5, 3.8)], words((3.5, 3.7)), duration, reference)
    assert far["jsd"] > 0.7
    assert fdb.backchannel([], [], duration, reference)["jsd"] == 1.0
    assert fdb.backchannel([(0.5, 4.0)], [], duration, reference)["tor"] == 1


def test_v15_timing_merges_gaps_like_get_timing():
    user = [(0.0, 2.0), (5.0, 5.5), (5.9, 7.0)]       # barge-in 5.0–7.0, 0.4 s dip merged
    model = [(2.5, 4.0), (4.3, 6.2), (8.0, 9.0)]      # 0.3 s dip merged: speaks 2.5–6.2
    timing = fdb.v15_timing(user, model, (5.0, 7.0))
    assert timing["stop_latency_s"] == pytest.approx(1.2)
    assert timing["response_latency_s"] == pytest.approx(1.0)
    silent = fdb.v15_timing(user, [], (5.0, 7.0))
    assert silent == {"stop_latency_s": None, "response_latency_s": None}


def test_our_extras_fail_a_silent_model():
    assert fdb.isr_at_2s([], 5.0)["isr_at_2s"] is False
    assert fdb.isr_at_2s([(2.0, 5.6)], 5.0)["isr_at_2s"] is True
    assert fdb.isr_at_2s([(2.0, 9.0)], 5.0)["isr_at_2s"] is False
    chunks = fdb.vad_chunks([(4.4, 6.0)])
    assert fdb.sr_at_3s([(4.4, 6.0)], chunks, user_end_s=4.0)
    assert not fdb.sr_at_3s([], [], user_end_s=4.0)
    endless = [(0.0, 10.0)]
    assert not fdb.sr_at_3s(endless, fdb.vad_chunks(endless), user_end_s=4.0)
    assert fdb.kept_speaking([(2.0, 6.0)], 5.0) and not fdb.kept_speaking([(2.0, 4.9)], 5.0)


def test_user_backchannel_samples_need_the_talker_speaking_after_it():
    """A backchannel that falls in the talker's pause makes a reference that 'stops' for
    keep_rate's window; such events are skipped as `talker_pauses`, not made into samples."""
    from pipeline.evalset_tasks import KEPT_SPEECH_SHARE, spoken_share
    from pipeline.schema import Placed

    held = Placed(turn=1, speaker="spk1", start_s=0.0, end_s=4.0, kind="turn",
                  words=[("we", 0.0, 0.4), ("can", 0.5, 1.0), ("go", 2.2, 2.6)])
    assert spoken_share(held, 0.5, 1.0) == pytest.approx(1.0)
    assert spoken_share(held, 1.0, 1.5) == 0.0 < KEPT_SPEECH_SHARE  # in the pause
    assert spoken_share(held, 2.0, 2.5) == pytest.approx(0.6)
    assert fdb.KEEP_WINDOW_S == 0.5
