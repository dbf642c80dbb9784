"""Causal re-timing of a BayLing training clip (pure; seconds, 12.5 Hz frames, blocks).

A block model hears the user frames of block b, then writes the text and speech of block b;
the user stream runs `offset` blocks behind the assistant stream (pipeline.exports.interleave).
A label is only learnable where its cause has been heard, so a clip is re-timed before it is
interleaved:
- a reply starts no earlier than the first assistant frame of the block whose user slots hold
  the last frame of the user's turn (overlapped or quick answers are moved later, and every
  later utterance with them, so later relations stay as generated);
- a reply cut by a barge-in keeps sounding into the block in which the barge-in reaches the
  user slots (its `[EPAD]` block): the reply, and what happened during it, is moved later
  against the barge-in, which lengthens the overlap by at most one block;
- the clip starts clean: assistant speech before the other party's first turn is dropped, and
  nothing of the assistant sounds in the first block (replies move later, backchannels there
  are dropped);
- assistant backchannels are dropped when the policy says so (BayLing defines none).
Targets sit a quarter frame inside their frame, so the labels' frame rules (centre rule for
states, floor for events) agree on it after rounding. Segments move whole (audio outside
utterances is not carried). A clip that cannot be made
causal is rejected with a reason.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from pipeline.schema import Placed, Timeline

EPS = 1e-6


class ClipRejected(ValueError):
    """A clip the view cannot use; `reason` is counted in the export summary."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass
class Retimed:
    timeline: Timeline
    kept: list[int]  # indices into the input timeline's segments, in output order
    shifts: dict[int, float]  # seconds each kept segment moved later


def first_frame(start_s: float, frame_s: float) -> int:
    """First frame whose centre lies at or after start_s (the labels' frame rule)."""
    return max(0, math.ceil(start_s / frame_s - 0.5))


def last_frame(end_s: float, frame_s: float) -> int:
    """Last frame whose centre lies before end_s."""
    return math.ceil(end_s / frame_s - 0.5) - 1


def retime(timeline: Timeline, assistant: str, frame_s: float, block: int, offset: int,
           keep_backchannels: bool) -> Retimed:
    """Move segments later so every assistant label follows its cause (module docstring)."""
    segments = timeline.segments
    order = sorted(range(len(segments)), key=lambda i: (segments[i].start_s, i))
    others = [i for i in order if segments[i].speaker != assistant]
    if not any(segments[i].kind == "turn" for i in others):
        raise ClipRejected("no_user_turn")
    opening = min(segments[i].start_s for i in others if segments[i].kind == "turn")
    kept = [i for i in order if segments[i].speaker != assistant or (
        segments[i].start_s >= opening - EPS
        and (segments[i].kind == "turn" or (
            keep_backchannels and segments[i].start_s >= block * frame_s)))]
    shift: dict[int, float] = {}
    running = 0.0
    placed: list[int] = []
    cut_by = {barge: turn for turn in kept if (barge := _barge_in(segments, turn, kept,
                                                                   assistant)) is not None}
    for i in kept:
        seg = segments[i]
        shift[i] = running
        if seg.speaker == assistant and seg.kind == "turn":
            cause = next((j for j in reversed(placed) if segments[j].speaker != assistant
                          and segments[j].kind == "turn"), None)
            if cause is None:
                raise ClipRejected("reply_without_cause")
            heard = last_frame(segments[cause].end_s + shift[cause], frame_s)
            need = (max(block, (max(heard, 0) // block + offset) * block) + 0.25) * frame_s
            if seg.start_s + running < need - EPS:
                running = need - seg.start_s
                shift[i] = running
        if i in cut_by:
            reply = cut_by[i]
            arrives = first_frame(seg.start_s + running, frame_s)
            stop = ((arrives // block + offset) * block + 0.75) * frame_s
            late = stop - (segments[reply].end_s + shift[reply])
            if late > EPS:
                for j in placed:
                    if segments[j].start_s >= segments[reply].start_s - EPS:
                        shift[j] += late
            if seg.start_s + running - (segments[reply].start_s + shift[reply]) < block * frame_s:
                raise ClipRejected("barge_in_too_early")
        placed.append(i)
    moved = [_moved(segments[i], shift[i]) for i in kept]
    for speaker in {s.speaker for s in moved}:
        own = sorted((s for s in moved if s.speaker == speaker), key=lambda s: s.start_s)
        if any(a.end_s > b.start_s + EPS for a, b in zip(own, own[1:], strict=False)):
            raise ClipRejected("overlap_after_retime")
    duration = max([timeline.duration_s + running] + [s.end_s for s in moved])
    return Retimed(Timeline(duration_s=round(duration, 4), segments=moved), kept, shift)


def _barge_in(segments: list[Placed], turn: int, kept: list[int], assistant: str) -> int | None:
    """The other party's turn that cut assistant turn `turn` (the labels' rule), if kept."""
    seg = segments[turn]
    if seg.speaker != assistant or seg.kind != "turn" or seg.cut_at_s is None:
        return None
    found = [j for j in kept if segments[j].speaker != assistant and segments[j].kind == "turn"
             and seg.start_s < segments[j].start_s <= seg.cut_at_s]
    return max(found, key=lambda j: segments[j].start_s) if found else None


def _moved(seg: Placed, by: float) -> Placed:
    return seg.model_copy(update={
        "start_s": round(seg.start_s + by, 4), "end_s": round(seg.end_s + by, 4),
        "cut_at_s": None if seg.cut_at_s is None else round(seg.cut_at_s + by, 4),
        "words": [(w, round(a + by, 4), round(b + by, 4)) for w, a, b in seg.words],
        "chunks": [],
    })


def move_audio(audio: np.ndarray, segments: list[Placed], shifts: dict[int, float],
               indices: list[int], rate: int, duration_s: float) -> np.ndarray:
    """One speaker's clip audio with each of its kept segments pasted at its new time."""
    out = np.zeros(int(round(duration_s * rate)), dtype=np.float32)
    for i in indices:
        seg = segments[i]
        begin, end = int(round(seg.start_s * rate)), int(round(seg.end_s * rate))
        piece = audio[max(0, begin): min(len(audio), end)]
        target = int(round((seg.start_s + shifts[i]) * rate)) + max(0, -begin)
        piece = piece[: max(0, len(out) - target)]
        out[target: target + len(piece)] += piece
    return out
