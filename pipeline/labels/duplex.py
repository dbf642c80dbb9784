"""Duplex frame labels for the assistant stream (DESIGN section 4).

A frame f covers [f * frame_s, (f + 1) * frame_s); its state is decided at its centre, so a
state change lands in the frame where the audio changes. Events mark the frame where they
happen: TURN_START where an assistant turn begins, YIELD where a user barges in on it,
TURN_END where the assistant's audio stops, BC_START where an assistant backchannel begins.
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


def duplex_labels(
    timeline: Timeline, assistant: str, frame_s: float = DEFAULT_FRAME_S
) -> DuplexLabels:
    frames = num_frames(timeline.duration_s, frame_s)
    state = [FrameState.LISTEN] * frames
    event = [FrameEvent.NONE] * frames

    def mark(time_s: float, kind: FrameEvent) -> None:
        f = frame_of(time_s, frame_s, frames)
        if EVENT_PRIORITY[kind] >= EVENT_PRIORITY[event[f]]:
            event[f] = kind

    def addressed_elsewhere(seg: Placed) -> bool:
        return seg.addressee not in ("all", assistant)

    ordered = sorted(timeline.segments, key=lambda p: p.start_s)
    for seg in ordered:
        if seg.speaker != assistant and seg.kind == "turn" and addressed_elsewhere(seg):
            for f in _frames_inside(seg.start_s, seg.end_s, frame_s, frames):
                state[f] = FrameState.IGNORE
    for seg in ordered:
        if seg.speaker != assistant:
            continue
        fill = FrameState.SPEAK if seg.kind == "turn" else FrameState.BACKCHANNEL
        for f in _frames_inside(seg.start_s, seg.end_s, frame_s, frames):
            state[f] = fill
        if seg.kind == "backchannel":
            mark(seg.start_s, FrameEvent.BC_START)
            continue
        mark(seg.start_s, FrameEvent.TURN_START)
        mark(max(seg.start_s, seg.end_s - 1e-6), FrameEvent.TURN_END)
        barge_in = _barge_in(seg, ordered, assistant)
        if barge_in is not None:
            mark(barge_in.start_s, FrameEvent.YIELD)
    return DuplexLabels(
        frame_s=frame_s,
        assistant=assistant,
        state=state,
        event=event,
        axis_events=axis_events(ordered, assistant),
    )


def _frames_inside(start_s: float, end_s: float, frame_s: float, frames: int) -> range:
    first = math.ceil(start_s / frame_s - 0.5)
    last = math.ceil(end_s / frame_s - 0.5)
    return range(max(0, first), min(frames, last))


def _barge_in(assistant_turn: Placed, ordered: list[Placed], assistant: str) -> Placed | None:
    """The user turn that cut this assistant turn, if any."""
    if assistant_turn.cut_at_s is None:
        return None
    candidates = [
        s for s in ordered
        if s.speaker != assistant and s.kind == "turn"
        and assistant_turn.start_s < s.start_s <= assistant_turn.cut_at_s
    ]
    return candidates[-1] if candidates else None


def axis_events(ordered: list[Placed], assistant: str) -> list[AxisEvent]:
    """Windows where a duplex model is tested, each with the behaviour expected there."""
    events: list[AxisEvent] = []
    turns = [s for s in ordered if s.kind == "turn"]
    for seg in ordered:
        if seg.speaker == assistant:
            if seg.kind == "backchannel":
                events.append(AxisEvent(axis="backchannel", start_s=seg.start_s,
                                        end_s=seg.end_s, expected="backchannel"))
            elif (cut := _barge_in(seg, ordered, assistant)) is not None:
                events.append(AxisEvent(axis="interruption", start_s=cut.start_s,
                                        end_s=cut.start_s + INTERRUPTION_WINDOW_S,
                                        expected="yield"))
            continue
        if seg.kind == "backchannel":
            if _assistant_speaking(ordered, assistant, seg.start_s):
                events.append(AxisEvent(axis="backchannel", start_s=seg.start_s,
                                        end_s=seg.end_s, expected="keep_speaking"))
            continue
        if seg.addressee not in ("all", assistant):
            events.append(AxisEvent(axis="side_talk", start_s=seg.start_s, end_s=seg.end_s,
                                    expected="ignore"))
            continue
        for before, after in zip(seg.chunks, seg.chunks[1:], strict=False):
            events.append(AxisEvent(axis="pause", start_s=round(before.dst_end_s, 4),
                                    end_s=round(after.dst_start_s, 4), expected="listen"))
        following = [t for t in turns if t.start_s > seg.start_s]
        if following and following[0].speaker == assistant:
            events.append(AxisEvent(axis="turn_taking", start_s=seg.end_s,
                                    end_s=round(seg.end_s + TURN_TAKING_WINDOW_S, 4),
                                    expected="take_turn"))
    return sorted(events, key=lambda e: e.start_s)


def _assistant_speaking(ordered: list[Placed], assistant: str, time_s: float) -> bool:
    return any(
        s.speaker == assistant and s.kind == "turn" and s.start_s <= time_s < s.end_s
        for s in ordered
    )
