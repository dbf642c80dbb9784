"""Conversation timing statistics, computed the same way for generated and real dialogues.

A transfer is a pair of consecutive turns (ordered by start) by different speakers; its
offset is next.start - previous.end, negative when they overlap. Backchannels are not turns:
they count only as contributions (for `backchannel_share`) and as speech (for
`overlapped_speech_fraction`).
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable
from dataclasses import dataclass, field

TIMING_KEYS = (
    "overlap_transfer_ratio",
    "overlapped_speech_fraction",
    "gap_median_s",
    "backchannel_share",
)


@dataclass(frozen=True)
class Interval:
    speaker: str
    start_s: float
    end_s: float
    kind: str = "turn"


@dataclass
class TimingAccumulator:
    offsets: list[float] = field(default_factory=list)
    speech_s: float = 0.0
    overlapped_s: float = 0.0
    contributions: int = 0
    backchannels: int = 0

    def add_dialogue(self, intervals: Iterable[Interval]) -> None:
        ordered = sorted(intervals, key=lambda i: (i.start_s, i.end_s))
        turns = [i for i in ordered if i.kind == "turn"]
        for previous, following in zip(turns, turns[1:], strict=False):
            if previous.speaker != following.speaker:
                self.offsets.append(following.start_s - previous.end_s)
        self.contributions += len(ordered)
        self.backchannels += sum(1 for i in ordered if i.kind == "backchannel")
        speech, overlapped = _coverage(ordered)
        self.speech_s += speech
        self.overlapped_s += overlapped

    def result(self) -> dict[str, float]:
        gaps = [o for o in self.offsets if o >= 0]
        return {
            "overlap_transfer_ratio": _ratio(sum(1 for o in self.offsets if o < 0),
                                             len(self.offsets)),
            "overlapped_speech_fraction": _ratio(self.overlapped_s, self.speech_s),
            "gap_median_s": round(statistics.median(gaps), 4) if gaps else 0.0,
            "backchannel_share": _ratio(self.backchannels, self.contributions),
            "transfers": len(self.offsets),
        }


def _ratio(part: float, whole: float) -> float:
    return round(part / whole, 4) if whole else 0.0


def _coverage(intervals: list[Interval]) -> tuple[float, float]:
    """Seconds with at least one speaker, and with two or more, by a sweep over edges."""
    edges: list[tuple[float, int]] = []
    for interval in intervals:
        if interval.end_s > interval.start_s:
            edges += [(interval.start_s, 1), (interval.end_s, -1)]
    edges.sort()
    speech = overlapped = 0.0
    active, last = 0, 0.0
    for time, step in edges:
        if active >= 1:
            speech += time - last
        if active >= 2:
            overlapped += time - last
        active += step
        last = time
    return speech, overlapped


def intervals_from_timeline(timeline: dict) -> list[Interval]:
    return [
        Interval(s["speaker"], s["start_s"], s["end_s"], s["kind"])
        for s in timeline["segments"]
    ]
