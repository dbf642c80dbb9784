"""Speech segments the way meeting references are built, and the transfers between them.

One definition, used by `fit-timing`, `timing-report` and the tests, for real corpora and
generated timelines alike (the AMI diarization references of ../shared/data are made so):
- per speaker, words (or already-merged segments) whose silence between them is at most
  `MERGE_SILENCE_S` (50 ms) are one speech segment;
- segments are ordered by (start, end); a *transfer* is a pair of consecutive segments by
  different speakers, its offset next.start - previous.end (seconds, negative = overlap);
- a pair of consecutive segments by one speaker is a *within-speaker pause*.
Because the previous segment in start order starts no later than the next one, an offset is
never below minus the previous segment's length; the generator keeps that order too.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

MERGE_SILENCE_S = 0.05


@dataclass(frozen=True)
class Interval:
    """One speaker's speech from start_s to end_s (seconds); kind "turn" or "backchannel"."""

    speaker: str
    start_s: float
    end_s: float
    kind: str = "turn"


@dataclass(frozen=True)
class Transfer:
    """Consecutive segments in start order; `same` when one speaker says both."""

    previous: Interval
    following: Interval

    @property
    def offset_s(self) -> float:
        return self.following.start_s - self.previous.end_s

    @property
    def same(self) -> bool:
        return self.previous.speaker == self.following.speaker


def speech_segments(pieces: Iterable[Interval],
                    max_silence_s: float = MERGE_SILENCE_S) -> list[Interval]:
    """Merge each speaker's pieces separated by <= max_silence_s; sorted by (start, end).

    A merged segment is a backchannel only when every piece in it was one.
    """
    by_speaker: dict[str, list[Interval]] = defaultdict(list)
    for piece in pieces:
        if piece.end_s > piece.start_s:
            by_speaker[piece.speaker].append(piece)
    merged: list[Interval] = []
    for speaker, own in by_speaker.items():
        own.sort(key=lambda i: (i.start_s, i.end_s))
        start, end, kind = own[0].start_s, own[0].end_s, own[0].kind
        for piece in own[1:]:
            if piece.start_s - end <= max_silence_s + 1e-9:
                end = max(end, piece.end_s)
                kind = kind if piece.kind == kind else "turn"
            else:
                merged.append(Interval(speaker, start, end, kind))
                start, end, kind = piece.start_s, piece.end_s, piece.kind
        merged.append(Interval(speaker, start, end, kind))
    merged.sort(key=lambda i: (i.start_s, i.end_s))
    return merged


def consecutive(segments: list[Interval]) -> list[Transfer]:
    """Every pair of consecutive segments (already in start order)."""
    return [Transfer(a, b) for a, b in zip(segments, segments[1:], strict=False)]


def transfer_offsets(segments: list[Interval]) -> list[float]:
    return [t.offset_s for t in consecutive(segments) if not t.same]


def timeline_pieces(timeline: dict) -> list[Interval]:
    """The spoken words of a generated timeline (the `timeline` column), as pieces.

    Words are what the audio holds (a barged-in turn keeps the words said by its cut); a
    segment without word times counts as one piece.
    """
    pieces = []
    for segment in timeline["segments"]:
        kind = segment.get("kind", "turn")
        words = segment.get("words") or []
        if words:
            pieces += [Interval(segment["speaker"], float(w[1]), float(w[2]), kind)
                       for w in words]
        else:
            pieces.append(Interval(segment["speaker"], float(segment["start_s"]),
                                   float(segment["end_s"]), kind))
    return pieces


def timeline_segments(timeline: dict) -> list[Interval]:
    return speech_segments(timeline_pieces(timeline))


def read_rttm(path: str | Path, key: str = "inputs") -> dict[str, list[Interval]]:
    """RTTM SPEAKER lines grouped by recording, as raw pieces; errors name `key` and the file.

    Fails (ValueError, one line) on a line that is not an RTTM SPEAKER line, on overlapping
    segments of one speaker (a reference never has them: it would mean two channels mixed
    up), and on a file with a single speaker (no transfers to learn or compare).
    """
    file = Path(path).expanduser()
    if not file.is_file():
        raise ValueError(f"{key}: {str(file)!r} does not exist")
    recordings: dict[str, list[Interval]] = defaultdict(list)
    for number, line in enumerate(file.read_text(encoding="utf-8").splitlines(), 1):
        fields = line.split()
        if not fields or fields[0] != "SPEAKER":
            continue
        try:
            start, duration = float(fields[3]), float(fields[4])
            recordings[fields[1]].append(Interval(fields[7], start, start + duration))
        except (IndexError, ValueError):
            raise ValueError(f"{key}: {file}:{number} is not an RTTM SPEAKER line "
                             "(SPEAKER file chan start dur <NA> <NA> speaker <NA> <NA>)") from None
    check_recordings(dict(recordings), f"{key}: {file}")
    return dict(recordings)


def check_recordings(recordings: dict[str, list[Interval]], where: str) -> None:
    """One-line errors for input no timing can be learnt from or compared with."""
    if not recordings:
        raise ValueError(f"{where} holds no speaker segments")
    speakers = {i.speaker for intervals in recordings.values() for i in intervals}
    if len(speakers) < 2:
        raise ValueError(f"{where} has one speaker only ({sorted(speakers)[0]!r}); speaker "
                         "transfers need at least two")
    for recording, intervals in recordings.items():
        by_speaker: dict[str, list[Interval]] = defaultdict(list)
        for interval in intervals:
            by_speaker[interval.speaker].append(interval)
        for speaker, own in by_speaker.items():
            own.sort(key=lambda i: (i.start_s, i.end_s))
            for a, b in zip(own, own[1:], strict=False):
                if b.start_s < a.end_s - 1e-6:
                    raise ValueError(
                        f"{where}: speaker {speaker!r} of recording {recording!r} has "
                        f"overlapping segments ({a.start_s:.2f}-{a.end_s:.2f} s and "
                        f"{b.start_s:.2f}-{b.end_s:.2f} s); one speaker cannot overlap "
                        "themself: fix the reference")
