"""Duplex labels per axis on hand-built timelines, two-party and multi-party (DESIGN §4)."""

from __future__ import annotations

import pytest

from pipeline.labels.duplex import duplex_labels, frame_of
from pipeline.labels.invariants import label_violations
from pipeline.schema import FrameEvent, FrameState, Placed, Timeline

FRAME = 0.08


def seg(turn: int, speaker: str, start: float, words: int, kind: str = "turn",
        addressee: str = "all", word_s: float = 0.3, pause_after: int | None = None,
        pause_s: float = 0.8, cut_after: int | None = None) -> Placed:
    """A placed utterance of `words` words of word_s each (a pause after word `pause_after`)."""
    spans, cursor = [], start
    for i in range(words):
        spans.append((f"w{turn}_{i}", round(cursor, 4), round(cursor + word_s, 4)))
        cursor += word_s + 0.02
        if pause_after is not None and i == pause_after:
            cursor += pause_s
    cut = None
    if cut_after is not None:
        spans = spans[: cut_after + 1]
        cut = spans[-1][2]
    return Placed(turn=turn, speaker=speaker, start_s=start, end_s=spans[-1][2], kind=kind,
                  cut_at_s=cut, addressee=addressee, words=spans)


def labels_of(segments: list[Placed], assistant: str = "bot"):
    duration = max(s.end_s for s in segments) + 0.5
    timeline = Timeline(duration_s=duration, segments=segments)
    labels = duplex_labels(timeline, assistant, FRAME)
    assert label_violations(labels, duration) == []
    return labels


def events_of(labels, axis: str, expected: str | None = None):
    return [e for e in labels.axis_events
            if e.axis == axis and (expected is None or e.expected == expected)]


def frames(start: float, end: float) -> range:
    return range(int(start / FRAME) + 1, int(end / FRAME))


def test_turn_taking_window_and_turn_start():
    user = seg(0, "u", 0.0, 6)
    bot = seg(1, "bot", user.end_s + 0.2, 5)
    labels = labels_of([user, bot])
    (event,) = events_of(labels, "turn_taking", "take_turn")
    assert event.start_s == user.end_s and event.end_s == pytest.approx(user.end_s + 3.0)
    assert event.response_s == bot.start_s
    assert labels.event[frame_of(bot.start_s, FRAME, labels.num_frames)] == FrameEvent.TURN_START
    assert all(labels.state[f] == FrameState.LISTEN for f in frames(0.0, user.end_s))
    assert all(labels.state[f] == FrameState.SPEAK for f in frames(bot.start_s, bot.end_s))
    assert [w[0] for w in labels.words] == [w[0] for w in bot.words]
    assert all(labels.user_vad[f] == 1 for f in frames(0.1, user.end_s - 0.1))


def test_pause_inside_a_user_turn_means_listen():
    user = seg(0, "u", 0.0, 8, pause_after=3, pause_s=0.9)
    bot = seg(1, "bot", user.end_s + 0.3, 4)
    labels = labels_of([user, bot])
    (pause,) = events_of(labels, "pause", "listen")
    assert pause.end_s - pause.start_s >= 0.9 - 1e-6
    assert all(labels.state[f] == FrameState.LISTEN for f in frames(pause.start_s, pause.end_s))
    assert all(labels.user_vad[f] == 0 for f in frames(pause.start_s, pause.end_s))
    assert FrameEvent.TURN_START not in labels.event[: int(user.end_s / FRAME)]


def test_no_pause_event_where_the_assistant_takes_the_pause():
    user = seg(0, "u", 0.0, 8, pause_after=3, pause_s=1.5)
    gap_start = user.words[3][2]
    bot = seg(1, "bot", gap_start + 0.1, 3, word_s=0.2)
    labels = labels_of([user, bot])
    assert events_of(labels, "pause") == []


def test_assistant_backchannel_is_short_and_keeps_the_user_on_the_floor():
    user = seg(0, "u", 0.0, 12)
    bc = seg(1, "bot", 1.5, 1, kind="backchannel", word_s=0.4)
    long_bc = seg(2, "bot", 2.8, 3, kind="backchannel")
    labels = labels_of([user, bc, long_bc])
    events = events_of(labels, "backchannel", "backchannel")
    assert [e.start_s for e in events] == [1.5]  # the 3-word one is no backchannel event
    assert events[0].response_s == 1.5 and events[0].speaker == "u"
    assert labels.event[frame_of(1.5, FRAME, labels.num_frames)] == FrameEvent.BC_START
    assert all(labels.state[f] == FrameState.BACKCHANNEL for f in frames(bc.start_s, bc.end_s))
    assert FrameEvent.TURN_START not in labels.event


def test_user_backchannel_while_assistant_speaks_keeps_speak():
    bot = seg(0, "bot", 0.0, 12)
    user_bc = seg(1, "u", 1.2, 1, kind="backchannel")
    labels = labels_of([bot, user_bc])
    (event,) = events_of(labels, "backchannel", "keep_speaking")
    assert event.speaker == "u"
    assert all(labels.state[f] == FrameState.SPEAK for f in frames(0.0, bot.end_s))
    assert FrameEvent.YIELD not in labels.event


def test_interruption_yields_then_stops_within_two_seconds():
    bot = seg(0, "bot", 0.0, 12, cut_after=6)
    barge = seg(1, "u", bot.words[5][1] + 0.1, 5)
    reply = seg(2, "bot", barge.end_s + 0.2, 4)
    labels = labels_of([bot, barge, reply])
    (event,) = events_of(labels, "interruption", "yield")
    assert event.start_s == barge.start_s and event.response_s == bot.cut_at_s
    assert event.response_s - event.start_s <= 2.0
    n = labels.num_frames
    assert labels.event[frame_of(barge.start_s, FRAME, n)] == FrameEvent.YIELD
    assert labels.event[frame_of(bot.end_s - 1e-6, FRAME, n)] == FrameEvent.TURN_END
    assert all(labels.state[f] == FrameState.LISTEN for f in frames(bot.end_s, reply.start_s))
    (answer,) = events_of(labels, "turn_taking")
    assert answer.response_s == reply.start_s


def test_multi_party_side_talk_is_ignored_and_turns_follow_the_addressee():
    a = seg(0, "ann", 0.0, 5, addressee="ben")
    b = seg(1, "ben", a.end_s + 0.2, 5, addressee="ann")
    c = seg(2, "ann", b.end_s + 0.2, 5, addressee="bot")
    reply = seg(3, "bot", c.end_s + 0.2, 5, addressee="ann")
    d = seg(4, "ben", reply.end_s + 0.2, 5, addressee="all")
    reply2 = seg(5, "bot", d.end_s + 0.3, 4)
    labels = labels_of([a, b, c, reply, d, reply2])
    side = events_of(labels, "side_talk", "ignore")
    assert [(e.speaker, e.addressee) for e in side] == [("ann", "ben"), ("ben", "ann")]
    for event in side:
        assert all(labels.state[f] == FrameState.IGNORE for f in frames(event.start_s,
                                                                        event.end_s))
    taking = events_of(labels, "turn_taking", "take_turn")
    assert [(e.speaker, e.addressee) for e in taking] == [("ann", "bot"), ("ben", "all")]
    starts = [f for f, e in enumerate(labels.event) if e == FrameEvent.TURN_START]
    assert len(starts) == 2 and all(f * FRAME >= c.end_s for f in starts)
    assert set(labels.addressee) >= {"ben", "ann", "bot", "all", ""}


def test_multi_party_side_talk_while_assistant_speaks_keeps_speak():
    bot = seg(0, "bot", 0.0, 14)
    side = seg(1, "ann", 1.0, 4, addressee="ben")
    labels = labels_of([bot, side, seg(2, "ben", bot.end_s + 0.3, 3, addressee="ann")])
    kinds = [(e.axis, e.expected) for e in labels.axis_events]
    assert ("side_talk", "keep_speaking") in kinds
    assert all(labels.state[f] == FrameState.SPEAK for f in frames(side.start_s, side.end_s))
    assert ("side_talk", "ignore") in kinds  # ben answering ann afterwards is ignored too


def test_checker_flags_labels_that_break_an_axis():
    user = seg(0, "u", 0.0, 8, pause_after=3, pause_s=0.9)
    bot = seg(1, "bot", user.end_s + 0.3, 4)
    labels = labels_of([user, bot])
    pause = events_of(labels, "pause")[0]
    broken = labels.model_copy(deep=True)
    for f in frames(pause.start_s, pause.end_s):
        broken.state[f] = FrameState.SPEAK
    duration = max(s.end_s for s in (user, bot)) + 0.5
    assert any("pause" in p for p in label_violations(broken, duration))
    late = labels.model_copy(deep=True)
    late.axis_events = [e.model_copy(update={"response_s": e.start_s + 3.5})
                        if e.axis == "turn_taking" else e for e in late.axis_events]
    assert any("3 s window" in p for p in label_violations(late, duration))
