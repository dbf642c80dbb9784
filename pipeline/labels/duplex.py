"""Duplex frame labels for the assistant stream (DESIGN section 4).

A frame f covers [f * frame_s, (f + 1) * frame_s); its state is decided at its centre, so a
state change lands in the frame where the audio changes. Events mark the frame where they
happen: TURN_START where an assistant turn begins, YIELD where another party barges in on it,
TURN_END where the assistant's audio stops, BC_START where an assistant backchannel begins.

States: SPEAK / BACKCHANNEL from the start to the end of the assistant's turn / backchannel
(its own mid-turn pauses included: it holds the floor); IGNORE where the
only other-party speech is a turn addressed to someone else (multi-party side talk) and the
assistant is silent; LISTEN everywhere else.

`axis_events` lists the windows a duplex model is tested on, each with the behaviour the
reference assistant shows there (Full-Duplex-Bench's four axes plus side talk):
- pause: a silence inside another party's turn addressed to the assistant (or all) → `listen`
- turn_taking: such a turn ends and the assistant answers → `take_turn` within 3 s (SR@3s)
- backchannel: the assistant acknowledges (≤ 1 s, ≤ 2 words) while the other keeps the floor
  → `backchannel`; another party backchannels while the assistant speaks → `keep_speaking`
- interruption: another party barges in on the assistant → `yield` within 2 s (ISR@2s)
- side_talk: a turn addressed to someone else → `ignore` (or `keep_speaking` over it)

Pure: works on a timeline read back from JSON too (pauses then come from word gaps, since the
in-process chunks are not stored).
"""

from __future__ import annotations

import math

from pipeline.schema import (
    AxisEvent,
    DuplexLabels,
    FrameEvent,
    FrameState,
    Placed,
    Timeline,
)

DEFAULT_FRAME_S = 0.08
TURN_TAKING_WINDOW_S = 3.0
INTERRUPTION_WINDOW_S = 2.0
BACKCHANNEL_MAX_S = 1.0
BACKCHANNEL_MAX_WORDS = 2
PAUSE_MIN_S = 0.3
SIDE_TALK_MARGIN_S = 0.5
OVERLAP_TOLERANCE_S = 1.5  # an overlapped answer may start this long before the turn ends
EVENT_PRIORITY = {
    FrameEvent.NONE: 0,
    FrameEvent.BC_START: 1,
    FrameEvent.TURN_END: 2,
    FrameEvent.TURN_START: 3,
    FrameEvent.YIELD: 4,
}


def num_frames(duration_s: float, frame_s: float) -> int:
    return max(1, math.ceil(round(duration_s / frame_s, 6)))


def frame_of(time_s: float, frame_s: float, frames: int) -> int:
    return min(frames - 1, max(0, int(time_s / frame_s)))


def frames_inside(start_s: float, end_s: float, frame_s: float, frames: int) -> range:
    """Frames whose centre lies in [start_s, end_s)."""
    first = math.ceil(start_s / frame_s - 0.5)
    last = math.ceil(end_s / frame_s - 0.5)
    return range(max(0, first), min(frames, last))


def addressed_to(seg: Placed, assistant: str) -> bool:
    return seg.addressee in ("all", assistant)


def speech_spans(seg: Placed) -> list[tuple[float, float]]:
    """Where a placed utterance actually sounds (seconds): its chunks, else its word runs.

    Word runs split at gaps of at least PAUSE_MIN_S, which is what a listener hears as a pause.
    """
    if seg.chunks:
        return [(c.dst_start_s, min(c.dst_end_s, seg.end_s)) for c in seg.chunks
                if c.dst_start_s < seg.end_s]
    if not seg.words:
        return [(seg.start_s, seg.end_s)]
    spans: list[tuple[float, float]] = []
    begin, end = seg.start_s, seg.words[0][2]
    for _, word_start, word_end in seg.words[1:]:
        if word_start - end >= PAUSE_MIN_S:
            spans.append((begin, end))
            begin = word_start
        end = word_end
    spans.append((begin, max(end, seg.end_s) if seg.cut_at_s is None else seg.end_s))
    return spans


def pauses_of(seg: Placed) -> list[tuple[float, float]]:
    spans = speech_spans(seg)
    return [(round(a[1], 4), round(b[0], 4)) for a, b in zip(spans, spans[1:], strict=False)
            if b[0] - a[1] > 1e-6]


def duplex_labels(
    timeline: Timeline, assistant: str, frame_s: float = DEFAULT_FRAME_S
) -> DuplexLabels:
    frames = num_frames(timeline.duration_s, frame_s)
    state = [FrameState.LISTEN] * frames
    event = [FrameEvent.NONE] * frames
    user_vad = [0] * frames
    addressee = [""] * frames
    ordered = sorted(timeline.segments, key=lambda p: p.start_s)

    def mark(time_s: float, kind: FrameEvent) -> None:
        f = frame_of(time_s, frame_s, frames)
        if EVENT_PRIORITY[kind] >= EVENT_PRIORITY[event[f]]:
            event[f] = kind

    side_only = [False] * frames
    for seg in ordered:
        if seg.speaker == assistant:
            continue
        for begin, end in speech_spans(seg):
            for f in frames_inside(begin, end, frame_s, frames):
                first_here = not user_vad[f]
                user_vad[f] = 1
                addressee[f] = seg.addressee
                if seg.kind == "turn":
                    elsewhere = not addressed_to(seg, assistant)
                    side_only[f] = elsewhere if first_here else side_only[f] and elsewhere
    for f in range(frames):
        if side_only[f]:
            state[f] = FrameState.IGNORE
    words: list[tuple[str, float, float]] = []
    for seg in ordered:
        if seg.speaker != assistant:
            continue
        words.extend(seg.words)
        fill = FrameState.SPEAK if seg.kind == "turn" else FrameState.BACKCHANNEL
        for f in frames_inside(seg.start_s, seg.end_s, frame_s, frames):
            state[f] = fill
        if seg.kind == "backchannel":
            mark(seg.start_s, FrameEvent.BC_START)
            continue
        mark(seg.start_s, FrameEvent.TURN_START)
        mark(max(seg.start_s, seg.end_s - 1e-6), FrameEvent.TURN_END)
        barge_in = barge_in_on(seg, ordered, assistant)
        if barge_in is not None:
            mark(barge_in.start_s, FrameEvent.YIELD)
    return DuplexLabels(
        frame_s=frame_s,
        assistant=assistant,
        state=state,
        event=event,
        axis_events=axis_events(ordered, assistant),
        words=sorted(words, key=lambda w: w[1]),
        user_vad=user_vad,
        addressee=addressee,
    )


def barge_in_on(assistant_turn: Placed, ordered: list[Placed], assistant: str) -> Placed | None:
    """The other party's turn that cut this assistant turn, if any."""
    if assistant_turn.cut_at_s is None:
        return None
    candidates = [
        s for s in ordered
        if s.speaker != assistant and s.kind == "turn"
        and assistant_turn.start_s < s.start_s <= assistant_turn.cut_at_s
    ]
    return candidates[-1] if candidates else None


def is_short_backchannel(seg: Placed) -> bool:
    return (seg.end_s - seg.start_s <= BACKCHANNEL_MAX_S + 1e-6
            and len(seg.words) <= BACKCHANNEL_MAX_WORDS)


def axis_events(ordered: list[Placed], assistant: str) -> list[AxisEvent]:
    """Windows where a duplex model is tested, each with the behaviour expected there."""
    events: list[AxisEvent] = []
    assistant_turns = [s for s in ordered if s.speaker == assistant and s.kind == "turn"]
    turns = [s for s in ordered if s.kind == "turn"]
    cut_by: dict[int, Placed] = {}
    for turn in assistant_turns:
        barge_in = barge_in_on(turn, ordered, assistant)
        if barge_in is not None:
            cut_by[id(barge_in)] = turn

    def speaking_over(begin: float, end: float) -> Placed | None:
        return next((t for t in assistant_turns if t.start_s <= begin and end <= t.end_s), None)

    def starts_within(begin: float, end: float) -> bool:
        return any(begin <= t.start_s <= end for t in assistant_turns)

    for seg in ordered:
        if seg.speaker == assistant:
            if seg.kind == "backchannel":
                host = next((o for o in turns if o.speaker != assistant
                             and o.start_s <= seg.start_s and seg.end_s <= o.end_s), None)
                if host is not None and is_short_backchannel(seg):
                    events.append(AxisEvent(
                        axis="backchannel", start_s=seg.start_s, end_s=seg.end_s,
                        expected="backchannel", speaker=host.speaker,
                        addressee=host.addressee, response_s=seg.start_s))
            continue
        if seg.kind == "backchannel":
            if speaking_over(seg.start_s, seg.end_s) is not None:
                events.append(AxisEvent(
                    axis="backchannel", start_s=seg.start_s, end_s=seg.end_s,
                    expected="keep_speaking", speaker=seg.speaker, addressee=seg.addressee))
            continue
        cut = cut_by.get(id(seg))
        if cut is not None:
            events.append(AxisEvent(
                axis="interruption", start_s=seg.start_s,
                end_s=round(seg.start_s + INTERRUPTION_WINDOW_S, 4), expected="yield",
                speaker=seg.speaker, addressee=seg.addressee, response_s=cut.cut_at_s))
            if not addressed_to(seg, assistant):
                continue
        elif not addressed_to(seg, assistant):
            events.extend(_side_talk(seg, speaking_over, starts_within))
            continue
        for begin, end in pauses_of(seg):
            if not any(t.start_s < end and begin < t.end_s for t in assistant_turns):
                events.append(AxisEvent(
                    axis="pause", start_s=begin, end_s=end, expected="listen",
                    speaker=seg.speaker, addressee=seg.addressee))
        following = [t for t in turns if t.start_s > seg.start_s]
        if (following and following[0].speaker == assistant and seg.cut_at_s is None
                and seg.end_s - OVERLAP_TOLERANCE_S <= following[0].start_s
                <= seg.end_s + TURN_TAKING_WINDOW_S):
            events.append(AxisEvent(
                axis="turn_taking", start_s=seg.end_s,
                end_s=round(seg.end_s + TURN_TAKING_WINDOW_S, 4), expected="take_turn",
                speaker=seg.speaker, addressee=seg.addressee, response_s=following[0].start_s))
    return sorted(events, key=lambda e: (e.start_s, e.axis))


def _side_talk(seg: Placed, speaking_over, starts_within) -> list[AxisEvent]:
    over = speaking_over(seg.start_s, seg.start_s)
    if over is not None:
        end = min(seg.end_s, over.end_s)
        if end - seg.start_s <= 0:
            return []
        return [AxisEvent(axis="side_talk", start_s=seg.start_s, end_s=round(end, 4),
                          expected="keep_speaking", speaker=seg.speaker,
                          addressee=seg.addressee)]
    if starts_within(seg.start_s, seg.end_s + SIDE_TALK_MARGIN_S):
        return []
    return [AxisEvent(axis="side_talk", start_s=seg.start_s, end_s=seg.end_s, expected="ignore",
                      speaker=seg.speaker, addressee=seg.addressee)]
