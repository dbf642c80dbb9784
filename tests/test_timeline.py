import random

import pytest

from pipeline.schema import DialogueScript, Turn
from pipeline.timeline import arrange
from pipeline.timing import TimingModel, TimingSettings
from pipeline.timing_stats import TimingAccumulator, intervals_from_timeline
from tests.conftest import tone_utterance


def words(n: int, prefix: str = "w") -> str:
    return " ".join(f"{prefix}{i}" for i in range(n))


def build(turns: list[Turn], seed: int = 0):
    script = DialogueScript(scenario_id="t", language="en", turns=turns)
    utterances = [
        tone_utterance(i, t.speaker, t.text.split()) for i, t in enumerate(script.turns)
    ]
    model = TimingModel(TimingSettings(), random.Random(seed))
    return script, utterances, arrange(script, utterances, model)


def overlapping_pairs(timeline):
    segs = timeline.segments
    pairs = []
    for i, a in enumerate(segs):
        for b in segs[i + 1:]:
            if a.start_s < b.end_s and b.start_s < a.end_s:
                pairs.append((a, b))
    return pairs


MIXED = [
    Turn(speaker="a", text=words(12)),
    Turn(speaker="b", text="mhm", kind="backchannel"),
    Turn(speaker="b", text=words(10), pauses=[4]),
    Turn(speaker="a", text=words(6), interrupts=True),
    Turn(speaker="b", text=words(8)),
    Turn(speaker="a", text=words(5), overlap=True),
    Turn(speaker="b", text=words(7)),
    Turn(speaker="a", text=words(9)),
]


@pytest.mark.parametrize("seed", range(30))
def test_a_speaker_never_overlaps_itself(seed):
    _, _, timeline = build(MIXED, seed)
    for a, b in overlapping_pairs(timeline):
        assert a.speaker != b.speaker, (a, b)


@pytest.mark.parametrize("seed", range(30))
def test_overlaps_only_where_the_script_asks(seed):
    script, _, timeline = build(MIXED, seed)
    for a, b in overlapping_pairs(timeline):
        later = b if b.start_s >= a.start_s else a
        turn = script.turns[later.turn]
        assert turn.kind == "backchannel" or turn.interrupts or turn.overlap, (a, b)


def test_plain_alternation_has_no_overlap():
    turns = [Turn(speaker="ab"[i % 2], text=words(5)) for i in range(10)]
    _, _, timeline = build(turns)
    assert overlapping_pairs(timeline) == []


@pytest.mark.parametrize("seed", range(30))
def test_interrupted_turn_keeps_only_words_before_the_cut(seed):
    _, utterances, timeline = build(MIXED, seed)
    cut = [s for s in timeline.segments if s.cut_at_s is not None]
    assert len(cut) == 1
    segment = cut[0]
    interrupter = next(s for s in timeline.segments if s.turn == segment.turn + 1)
    assert interrupter.start_s < segment.cut_at_s
    assert segment.end_s == segment.cut_at_s
    assert all(end <= segment.cut_at_s + 1e-6 for _, _, end in segment.words)
    assert 0 < len(segment.words) < len(utterances[segment.turn].words)
    # the cut falls at a word boundary after the barge-in
    assert segment.words[-1][2] == pytest.approx(segment.cut_at_s)
    assert segment.cut_at_s - interrupter.start_s >= TimingSettings().reaction_min_s - 1e-6


@pytest.mark.parametrize("seed", range(10))
def test_backchannel_sits_inside_the_other_speakers_turn(seed):
    _, _, timeline = build(MIXED, seed)
    host, backchannel = timeline.segments[0], timeline.segments[1]
    assert backchannel.kind == "backchannel"
    assert host.start_s < backchannel.start_s and backchannel.end_s <= host.end_s


def test_pause_inserts_silence_and_shifts_later_words():
    _, utterances, timeline = build(
        [Turn(speaker="a", text=words(8), pauses=[3]), Turn(speaker="b", text=words(3))]
    )
    placed = timeline.segments[0]
    gap = placed.words[4][1] - placed.words[3][2]
    original_gap = utterances[0].words[4][1] - utterances[0].words[3][2]
    assert gap > original_gap + 0.2
    assert len(placed.chunks) == 2


def test_abutting_words_keep_their_length_across_a_pause():
    """Piper's words abut (no silence between them): the word after a pause point starts
    exactly on the cut and must start after the pause, not stretch across it."""
    script = DialogueScript(scenario_id="t", language="en", turns=[
        Turn(speaker="a", text=words(6), pauses=[1, 3]), Turn(speaker="b", text=words(3))])
    utterances = [tone_utterance(i, t.speaker, t.text.split(), gap_s=0.0)
                  for i, t in enumerate(script.turns)]
    timeline = arrange(script, utterances, TimingModel(TimingSettings(), random.Random(0)))
    placed = timeline.segments[0]
    assert len(placed.chunks) == 3
    for (_, start, end), (_, src_start, src_end) in zip(placed.words, utterances[0].words,
                                                        strict=True):
        assert end - start == pytest.approx(src_end - src_start, abs=1e-3)
    for after, chunk in ((1, placed.chunks[1]), (3, placed.chunks[2])):
        assert placed.words[after + 1][1] == pytest.approx(chunk.dst_start_s, abs=1e-3)
        assert placed.words[after + 1][1] - placed.words[after][2] > 0.1  # the pause


def test_words_are_absolute_and_ordered():
    _, _, timeline = build(MIXED, 3)
    for segment in timeline.segments:
        times = [t for _, start, end in segment.words for t in (start, end)]
        assert times == sorted(times)
        assert segment.start_s <= times[0] and times[-1] <= segment.end_s + 1e-6
    assert timeline.duration_s >= max(s.end_s for s in timeline.segments)


def test_timing_statistics_follow_the_definitions():
    _, _, timeline = build(MIXED, 5)
    stats = TimingAccumulator()
    stats.add_dialogue(intervals_from_timeline(timeline.model_dump()))
    result = stats.result()
    assert result["transfers"] >= 5
    assert 0 < result["overlap_transfer_ratio"] < 1
    assert result["backchannel_share"] == pytest.approx(1 / 8)
    assert 0 < result["overlapped_speech_fraction"] < 0.5
