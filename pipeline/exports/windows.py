"""Conversation windows for multi-talker ASR: ≤ `window_s` seconds, cut where nobody speaks.

A window's transcript joins speakers with a speaker-change token (`<sc>`), one token per
change of speaker in the serialized order. Two orders:
- `sot` (serialized output training): utterances ordered by their start time, each
  utterance's words kept together, consecutive utterances of one speaker merged;
- `words`: every word ordered by its own start time (token-level serialization), so
  overlapped speech interleaves and each switch of speaker gets a token.
Cut points lie outside every word of every speaker (times from the timeline, seconds), so a
window never splits a word; a cut sits in the middle of the latest silence that fits.
Pure functions over the timeline JSON of DESIGN §3: no audio, no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

Order = Literal["sot", "words"]
LEAD_S = 0.25  # silence kept before speech when a window starts inside a long pause


@dataclass(frozen=True)
class Word:
    text: str
    start_s: float
    end_s: float
    speaker: str
    utterance: int


@dataclass
class Window:
    start_s: float
    end_s: float
    words: list[Word] = field(default_factory=list)

    @property
    def duration_s(self) -> float:
        return self.end_s - self.start_s

    @property
    def speakers(self) -> list[str]:
        """Speakers in order of first appearance."""
        return list(dict.fromkeys(word.speaker for word in sorted(self.words, key=_start)))


def _start(word: Word) -> tuple[float, float]:
    return (word.start_s, word.end_s)


def timeline_words(timeline: dict) -> list[Word]:
    """Every spoken word of the timeline with absolute times, sorted by start time."""
    words = []
    for index, placed in enumerate(timeline["segments"]):
        for text, start, end in placed["words"]:
            words.append(Word(text, float(start), float(end), placed["speaker"], index))
    return sorted(words, key=_start)


def silences(words: list[Word], duration_s: float) -> list[tuple[float, float]]:
    """Gaps (start_s, end_s) covered by no word of any speaker, from 0 to `duration_s`."""
    gaps, cursor = [], 0.0
    for word in words:
        if word.start_s > cursor:
            gaps.append((cursor, word.start_s))
        cursor = max(cursor, word.end_s)
    if duration_s > cursor:
        gaps.append((cursor, duration_s))
    return gaps


def cut_windows(timeline: dict, window_s: float = 30.0, min_words: int = 1) -> list[Window]:
    """Tile the dialogue into windows of at most `window_s`, each ending inside a silence.

    A window that would start inside a silence too long to reach the next cut starts
    `LEAD_S` before the speech instead. Where speech runs longer than `window_s` without any
    silence, the stretch cannot be cut without splitting a word and is skipped."""
    if window_s <= 0:
        raise ValueError(f"window_s: must be > 0 (got {window_s})")
    words = timeline_words(timeline)
    duration = float(timeline["duration_s"])
    gaps = silences(words, duration)
    spans: list[tuple[float, float]] = []
    start = 0.0
    while duration - start > window_s:
        limit = start + window_s
        inner = [(a, b) for a, b in gaps if start < a <= limit]
        if inner:
            a, b = inner[-1]
            cut = min(limit, (a + b) / 2)
            spans.append((start, cut))
            start = cut
            continue
        home = [(a, b) for a, b in gaps if a <= start < b]
        if home and home[0][1] - LEAD_S > start:
            start = home[0][1] - LEAD_S
            continue
        later = [(a, b) for a, b in gaps if a > limit]
        if not later:
            return _fill(spans, words, min_words)
        start = (later[0][0] + later[0][1]) / 2
    spans.append((start, duration))
    return _fill(spans, words, min_words)


def _fill(spans: list[tuple[float, float]], words: list[Word], min_words: int) -> list[Window]:
    windows = []
    for begin, end in spans:
        inside = [w for w in words if w.start_s >= begin and w.end_s <= end]
        if len(inside) >= min_words:
            windows.append(Window(begin, end, inside))
    return windows


def speaker_runs(words: list[Word], order: Order = "sot") -> list[tuple[str, list[str]]]:
    """(speaker, words) runs in serialized order; consecutive runs differ in speaker."""
    if order == "sot":
        by_utterance: dict[int, list[Word]] = {}
        for word in words:
            by_utterance.setdefault(word.utterance, []).append(word)
        ordered = [w for group in sorted(by_utterance.values(), key=lambda g: _start(g[0]))
                   for w in sorted(group, key=_start)]
    elif order == "words":
        ordered = sorted(words, key=_start)
    else:
        raise ValueError(f"order: {order!r} is unknown; allowed: ['sot', 'words']")
    runs: list[tuple[str, list[str]]] = []
    for word in ordered:
        if runs and runs[-1][0] == word.speaker:
            runs[-1][1].append(word.text)
        else:
            runs.append((word.speaker, [word.text]))
    return runs


def window_text(runs: list[tuple[str, list[str]]], token: str = "<sc>") -> str:
    return f" {token} ".join(" ".join(words) for _, words in runs)
