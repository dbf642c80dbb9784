"""The segment-level arranger of fitted profiles: invariants the render and labels rely on."""

from __future__ import annotations

import random
from collections import defaultdict

import numpy as np
import pytest

from pipeline.config import GenerateConfig
from pipeline.derive import plan_settings, timing_settings
from pipeline.fit_timing import FitTimingConfig, fit_timing
from pipeline.render import render
from pipeline.scenarios import plan_scenario
from pipeline.segments import consecutive, timeline_segments
from pipeline.timeline import arrange
from pipeline.timing import TimingModel
from pipeline.writers import OfflineComposer
from tests.conftest import tone_utterance
from tests.test_fit_timing import synthetic_rttm


@pytest.fixture(scope="module")
def meetings(tmp_path_factory) -> list:
    folder = tmp_path_factory.mktemp("profile")
    synthetic_rttm(folder / "real.rttm", recordings=20, turns=60)
    profile = fit_timing(FitTimingConfig(inputs=[str(folder / "real.rttm")],
                                         out={"dir": str(folder)}))
    config = GenerateConfig.check({"seed": 2, "plan": {"speakers": 4},
                                   "timing": {"profile": str(profile)}})
    settings, timing = plan_settings(config), timing_settings(config)
    assert timing.segment_model is not None
    out = []
    for index in range(30):
        scenario = plan_scenario(index, 2, settings,
                                 lambda lang, n, rng: [{"name": f"v{i}"} for i in range(n)])
        script = OfflineComposer().write(scenario)
        rng = random.Random(index)  # words with silences the corpus's speakers never leave
        utterances = [tone_utterance(i, t.speaker, t.text.split(), word_s=0.28,
                                     gap_s=rng.choice((0.03, 0.07, 0.2)))
                      for i, t in enumerate(script.turns)]
        model = TimingModel(timing, random.Random(scenario.seed),
                            [s.id for s in scenario.speakers])
        out.append((scenario, script, utterances, arrange(script, utterances, model)))
    return out


def test_every_turn_is_placed_in_order_and_renders(meetings) -> None:
    for scenario, script, utterances, timeline in meetings:
        assert [p.turn for p in timeline.segments] == list(range(len(script.turns)))
        for placed in timeline.segments:
            assert placed.start_s >= 0 and all(c.dst_start_s >= 0 for c in placed.chunks)
            starts = [w[1] for w in placed.words]
            assert starts == sorted(starts)
        rendered = render(timeline, utterances, [s.id for s in scenario.speakers], 16000)
        assert rendered.mix.size >= int(timeline.duration_s * 16000) - 1


def test_no_speaker_overlaps_themself_and_offsets_respect_start_order(meetings) -> None:
    for _, _, _, timeline in meetings:
        words = defaultdict(list)
        for placed in timeline.segments:
            words[placed.speaker] += [(w[1], w[2]) for w in placed.words]
        for spans in words.values():
            spans.sort()
            assert all(b[0] >= a[1] - 1e-6 for a, b in zip(spans, spans[1:], strict=False))
        segments = timeline_segments(timeline.model_dump())
        for pair in consecutive(segments):
            assert pair.offset_s >= -(pair.previous.end_s - pair.previous.start_s) - 1e-6


def test_short_silences_inside_a_turn_are_closed_up(meetings) -> None:
    """Tone words 30-200 ms apart: the corpus's speakers leave no such pause, so a piece of
    a turn is one speech segment; the audio moves with its words."""
    for _, script, utterances, timeline in meetings:
        for placed, turn in zip(timeline.segments, script.turns, strict=True):
            gaps = np.diff([w[1] for w in placed.words]) - 0.28
            if not turn.pauses and not placed.cut_at_s:
                assert (gaps <= 0.05 + 1e-6).all()
        assert sum(len(u.words) for u in utterances) >= sum(
            len(p.words) for p in timeline.segments)


def test_overlaps_come_from_the_corpus_not_the_plan(meetings) -> None:
    overlaps = sum(t.overlap for _, script, _, _ in meetings for t in script.turns)
    turns = sum(len(script.turns) for _, script, _, _ in meetings)
    assert overlaps < 0.03 * turns  # the plan asks (about) only for barge-ins
    offsets = [p.offset_s for *_, timeline in meetings
               for p in consecutive(timeline_segments(timeline.model_dump())) if not p.same]
    assert 0.2 < np.mean(np.asarray(offsets) < 0) < 0.8
