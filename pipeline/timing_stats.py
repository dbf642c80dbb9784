"""Conversation timing statistics, computed the same way for generated and real dialogues.

Definitions (run.json `timing`, fitted profiles and ../shared/data/README.md agree):
- a *transfer* is a pair of consecutive segments, ordered by (start, end), by different
  speakers; its offset is next.start - previous.end, negative when they overlap;
- `overlap_transfer_ratio` = transfers with a negative offset / all transfers;
- `gap_median_s` = median offset of the transfers with offset >= 0;
- `overlapped_speech_fraction` = seconds with >= 2 speakers / seconds with >= 1 speaker;
- `backchannel_share` = backchannel segments / all segments (contributions).
Which segments take part in transfers is the `definition`: "turns" leaves backchannels
out (the human-study convention; the generator knows its backchannels), "segments" counts
every speech segment as references define them (`pipeline.segments`: words merged across
silences <= 50 ms), which is all one can do for a corpus without backchannel labels. With
"segments" the AMI RTTMs give 0.500 / 1.11 s / 0.134 (train, 51,792 transfers) and
0.502 / 0.97 s / 0.141 (dev, 6,888 transfers; the README's 6,887 differs by one tie).
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable
from dataclasses import dataclass, field

from pipeline.segments import Interval, timeline_segments

__all__ = ["Interval", "TIMING_KEYS", "TimingAccumulator", "intervals_from_timeline"]

TIMING_KEYS = (
    "overlap_transfer_ratio",
    "overlapped_speech_fraction",
    "gap_median_s",
    "backchannel_share",
)


DEFINITIONS = ("turns", "segments")


@dataclass
class TimingAccumulator:
    """Adds up dialogues; `result()` gives the four statistics and the transfer count."""

    definition: str = "turns"
    offsets: list[float] = field(default_factory=list)
    speech_s: float = 0.0
    overlapped_s: float = 0.0
    contributions: int = 0
    backchannels: int = 0

    def add_dialogue(self, intervals: Iterable[Interval]) -> None:
        ordered = sorted(intervals, key=lambda i: (i.start_s, i.end_s))
        if self.definition not in DEFINITIONS:
            raise ValueError(f"definition: {self.definition!r}; use one of {DEFINITIONS}")
        turns = ordered if self.definition == "segments" else [
            i for i in ordered if i.kind == "turn"]
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


def intervals_from_timeline(timeline: dict, definition: str = "turns") -> list[Interval]:
    """The intervals a timeline is measured by: its placed turns and backchannels, or for
    the "segments" definition the speech segments of its words, as references are made."""
    if definition == "segments":
        return timeline_segments(timeline)
    return [
        Interval(s["speaker"], s["start_s"], s["end_s"], s["kind"])
        for s in timeline["segments"]
    ]
