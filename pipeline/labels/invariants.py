"""What must hold between frame labels and their axis events (DESIGN section 4).

`label_violations` returns readable problems (empty when the labels are consistent). Tests
run it on hand-built timelines and on generated data; evalset / dpo skip events it flags.
"""

from __future__ import annotations

from pipeline.labels.duplex import (
    BACKCHANNEL_MAX_S,
    BACKCHANNEL_MAX_WORDS,
    INTERRUPTION_WINDOW_S,
    OVERLAP_TOLERANCE_S,
    TURN_TAKING_WINDOW_S,
    frame_of,
    frames_inside,
    num_frames,
)
from pipeline.schema import AxisEvent, DuplexLabels, FrameEvent, FrameState

S, B, IGN = FrameState.SPEAK, FrameState.BACKCHANNEL, FrameState.IGNORE


def label_violations(labels: DuplexLabels, duration_s: float) -> list[str]:
    frames = num_frames(duration_s, labels.frame_s)
    problems = []
    for name in ("state", "event", "user_vad", "addressee"):
        if len(getattr(labels, name)) != frames:
            problems.append(f"{name}: {len(getattr(labels, name))} frames, expected {frames}")
    if problems:
        return problems
    for f, kind in enumerate(labels.event):
        near = {labels.state[g] for g in range(max(0, f - 1), min(frames, f + 2))}
        if kind == FrameEvent.TURN_START and S not in near:
            problems.append(f"frame {f}: TURN_START without SPEAK")
        if kind == FrameEvent.BC_START and B not in near:
            problems.append(f"frame {f}: BC_START without BACKCHANNEL")
    for event in labels.axis_events:
        problems += [f"{event.axis}@{event.start_s:.2f}: {p}"
                     for p in event_violations(labels, event, frames)]
    return problems


def event_violations(labels: DuplexLabels, event: AxisEvent, frames: int) -> list[str]:
    fs = labels.frame_s
    inside = frames_inside(event.start_s, event.end_s, fs, frames)
    states = [labels.state[f] for f in inside]
    span = range(frame_of(event.start_s, fs, frames), frame_of(event.end_s, fs, frames) + 1)
    starts = [f for f in span if labels.event[f] == FrameEvent.TURN_START]
    problems = []
    if event.axis == "pause":
        if S in states or starts:
            problems.append("assistant speaks or takes the turn during a pause")
    elif event.axis == "turn_taking":
        if event.response_s is None or not (
            event.start_s - OVERLAP_TOLERANCE_S <= event.response_s
            <= event.start_s + TURN_TAKING_WINDOW_S
        ):
            problems.append(f"response at {event.response_s} is outside the 3 s window")
        elif labels.event[frame_of(event.response_s, fs, frames)] != FrameEvent.TURN_START:
            problems.append("no TURN_START at the response")
    elif event.axis == "backchannel" and event.expected == "backchannel":
        words = [w for w in labels.words if event.start_s - 1e-6 <= w[1] < event.end_s]
        if event.end_s - event.start_s > BACKCHANNEL_MAX_S + 1e-6:
            problems.append("backchannel longer than 1 s")
        if len(words) > BACKCHANNEL_MAX_WORDS:
            problems.append(f"backchannel of {len(words)} words")
        if labels.event[frame_of(event.start_s, fs, frames)] != FrameEvent.BC_START:
            problems.append("no BC_START")
        if any(s != B for s in states) or starts:
            problems.append("frames inside a backchannel are not BACKCHANNEL")
    elif event.expected == "keep_speaking":
        ends = [f for f in span if labels.event[f] in (FrameEvent.YIELD, FrameEvent.TURN_END)]
        later = [s for s in labels.state[span.stop - 1:] if s != FrameState.LISTEN]
        if ends or not later or later[0] != S:
            problems.append("assistant does not keep speaking")
    elif event.axis == "interruption":
        yield_frame = frame_of(event.start_s, fs, frames)
        if labels.event[yield_frame] != FrameEvent.YIELD:
            problems.append("no YIELD at the barge-in")
        stop = event.response_s
        if stop is None or stop - event.start_s > INTERRUPTION_WINDOW_S + 1e-6:
            problems.append(f"assistant stops at {stop}, later than 2 s after the barge-in")
        else:
            stop_frame = frame_of(stop, fs, frames)
            if labels.event[stop_frame] not in (FrameEvent.TURN_END, FrameEvent.TURN_START):
                problems.append("no TURN_END where the assistant stops")
            after = frames_inside(stop + fs, event.end_s, fs, frames)
            restart = [f for f in after if labels.event[f] == FrameEvent.TURN_START]
            speaking = [f for f in after if labels.state[f] == S and (not restart
                                                                       or f < restart[0])]
            if speaking:
                problems.append("assistant still speaks after it yielded")
    elif event.axis == "side_talk" and event.expected == "ignore":
        if starts or S in states:
            problems.append("assistant answers side talk")
        if IGN not in states and B not in states and states:
            problems.append("no IGNORE frame during side talk")
    return problems
