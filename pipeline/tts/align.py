"""Energy-based word alignment shared by every TTS backend.

This is the first aligner of the project and the one backends fall back on:

- `refine_word_ends` tightens coarse word starts (eSpeak's WORD events, which mark where
  a word's *slot* begins, pauses included) to the audio actually spoken: each word's span
  runs from its first to its last frame above an energy threshold inside its slot.
- `energy_align` gives word times to a backend that has none (XTTS, most neural TTS): it
  spreads the tokens over the voiced regions in proportion to their character counts and
  snaps word boundaries to pauses that fall near them.
- `trim_to_words` cuts the silence before the first and after the last word so that the
  timeline, not the TTS engine, decides every gap between utterances.

All times are seconds from the start of `samples`; frames are `frame_s` long (default
10 ms); the threshold is in dB relative to the utterance's absolute peak, so it does not
depend on the engine's output level. Pure numpy: no I/O, no state.
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import pairwise

import numpy as np

DEFAULT_FRAME_S = 0.01
DEFAULT_THRESHOLD_DB = -50.0
MIN_WORD_S = 0.01


def voiced_frames(
    samples: np.ndarray,
    sample_rate: int,
    frame_s: float = DEFAULT_FRAME_S,
    threshold_db: float = DEFAULT_THRESHOLD_DB,
) -> np.ndarray:
    """Per-frame bool: the frame's RMS is within `threshold_db` of the utterance peak.

    Frame i covers [i * frame_s, (i + 1) * frame_s); the last partial frame is included.
    An all-zero signal has no voiced frame.
    """
    hop = max(1, round(frame_s * sample_rate))
    x = np.asarray(samples, dtype=np.float64).reshape(-1)
    if x.size == 0:
        return np.zeros(0, dtype=bool)
    peak = float(np.max(np.abs(x)))
    if peak <= 0.0:
        return np.zeros(-(-x.size // hop), dtype=bool)
    pad = (-x.size) % hop
    frames = np.pad(x, (0, pad)).reshape(-1, hop)
    rms = np.sqrt(np.mean(frames * frames, axis=1))
    return rms >= peak * 10.0 ** (threshold_db / 20.0)


def voiced_regions(
    samples: np.ndarray,
    sample_rate: int,
    frame_s: float = DEFAULT_FRAME_S,
    threshold_db: float = DEFAULT_THRESHOLD_DB,
    min_gap_s: float = 0.05,
) -> list[tuple[float, float]]:
    """(start_s, end_s) of voiced stretches; gaps shorter than `min_gap_s` are bridged
    (stop closures inside a word are not pauses)."""
    voiced = voiced_frames(samples, sample_rate, frame_s, threshold_db)
    hop_s = max(1, round(frame_s * sample_rate)) / sample_rate
    duration = len(samples) / sample_rate
    regions: list[tuple[float, float]] = []
    edges = np.flatnonzero(np.diff(np.concatenate(([0], voiced.astype(np.int8), [0]))))
    for first, stop in zip(edges[0::2], edges[1::2], strict=True):
        start, end = first * hop_s, min(stop * hop_s, duration)
        if regions and start - regions[-1][1] < min_gap_s:
            regions[-1] = (regions[-1][0], end)
        else:
            regions.append((start, end))
    return regions


def refine_word_ends(
    samples: np.ndarray,
    sample_rate: int,
    starts: Sequence[float],
    end_s: float | None = None,
    frame_s: float = DEFAULT_FRAME_S,
    threshold_db: float = DEFAULT_THRESHOLD_DB,
) -> list[tuple[float, float]]:
    """Word spans from coarse, non-decreasing word starts.

    Word k's slot is [starts[k], starts[k+1]) (the last one ends at `end_s`, default the
    audio end). Inside its slot the word is trimmed to its voiced frames: the trailing
    silence goes (the pause after a comma belongs to no word) and so does the leading
    silence (eSpeak reports a word after a pause at the start of the pause). A slot with
    no voiced frame keeps its full width. Result: start_k < end_k <= start_{k+1}, all
    inside [0, end_s], when the slots have positive width.
    """
    duration = len(samples) / sample_rate
    stop = duration if end_s is None else min(end_s, duration)
    bounds = [min(max(float(s), 0.0), stop) for s in starts] + [stop]
    for k in range(1, len(bounds)):
        bounds[k] = max(bounds[k], bounds[k - 1])
    voiced = voiced_frames(samples, sample_rate, frame_s, threshold_db)
    hop_s = max(1, round(frame_s * sample_rate)) / sample_rate
    spans: list[tuple[float, float]] = []
    for slot_start, slot_end in pairwise(bounds):
        # Frames whose centre lies in the slot: a word does not inherit its neighbour's
        # onset through a frame that straddles the boundary.
        first = int(np.ceil(slot_start / hop_s - 0.5))
        last = int(np.ceil(slot_end / hop_s - 0.5))
        hits = np.flatnonzero(voiced[first:last])
        start, end = slot_start, slot_end
        if hits.size:
            # Speech running into a slot edge keeps the edge: neighbours abut exactly.
            voiced_start = slot_start if hits[0] == 0 else (first + hits[0]) * hop_s
            voiced_end = (
                slot_end if first + hits[-1] + 1 >= last else (first + hits[-1] + 1) * hop_s
            )
            voiced_start, voiced_end = max(slot_start, voiced_start), min(slot_end, voiced_end)
            if voiced_end - voiced_start >= min(MIN_WORD_S, slot_end - slot_start):
                start, end = voiced_start, voiced_end
        spans.append((float(start), float(end)))
    return spans


def _weights(tokens: Sequence[str]) -> np.ndarray:
    return np.array([max(1, sum(ch.isalnum() for ch in t)) for t in tokens], dtype=np.float64)


def energy_align(
    samples: np.ndarray,
    sample_rate: int,
    tokens: Sequence[str],
    frame_s: float = DEFAULT_FRAME_S,
    threshold_db: float = DEFAULT_THRESHOLD_DB,
    min_gap_s: float = 0.12,
    snap: float = 0.5,
) -> list[tuple[str, float, float]]:
    """(token, start_s, end_s) for audio that came without word timings.

    Each token gets a share of the total voiced time proportional to its alphanumeric
    character count (at least 1), laid out over the voiced regions in order, so pauses
    (gaps of at least `min_gap_s`) are never inside a word's share. A word boundary that
    lands within `snap` times the shorter neighbour's share of a pause is moved onto that
    pause: the left word ends where speech stops, the right one starts where it resumes.
    Crude, but monotonic and never longer than the speech; returns [] for no tokens.
    """
    if not tokens:
        return []
    regions = voiced_regions(samples, sample_rate, frame_s, threshold_db, min_gap_s)
    if not regions:
        duration = len(samples) / sample_rate
        regions = [(0.0, duration)] if duration > 0 else [(0.0, MIN_WORD_S * len(tokens))]
    lengths = np.array([end - start for start, end in regions])
    region_edges = np.concatenate(([0.0], np.cumsum(lengths)))  # in voiced time
    total = region_edges[-1]
    weights = _weights(tokens)
    cuts = np.concatenate(([0.0], np.cumsum(weights))) / weights.sum() * total

    # Snap inner cuts to nearby pauses (region edges in voiced time).
    shares = np.diff(cuts)
    for k in range(1, len(cuts) - 1):
        if len(region_edges) <= 2:
            break
        inner = region_edges[1:-1]
        j = int(np.argmin(np.abs(inner - cuts[k])))
        if abs(inner[j] - cuts[k]) <= snap * min(shares[k - 1], shares[k]):
            cuts[k] = inner[j]
    cuts = np.maximum.accumulate(cuts)

    def to_time(v: float, right: bool) -> float:
        """Voiced time -> real time; at a pause, `right` picks the next region's start."""
        side = "right" if right else "left"
        r = int(np.searchsorted(region_edges, v, side=side)) - 1
        r = min(max(r, 0), len(regions) - 1)
        return regions[r][0] + (v - region_edges[r])

    words: list[tuple[str, float, float]] = []
    for k, token in enumerate(tokens):
        start = to_time(cuts[k], right=True)
        end = to_time(cuts[k + 1], right=False)
        if words:
            start = max(start, words[-1][2])
        end = max(end, start + 1e-6)
        words.append((token, float(start), float(end)))
    return words


def trim_to_words(
    samples: np.ndarray,
    sample_rate: int,
    words: Sequence[tuple[str, float, float]],
    lead_s: float = 0.02,
    tail_s: float = 0.05,
) -> tuple[np.ndarray, list[tuple[str, float, float]]]:
    """Cut the audio to [first start - lead_s, last end + tail_s] and shift the word times
    by the same amount, so a placed utterance carries no engine-made silence."""
    if not words:
        return samples, []
    first = max(0, int(np.floor((words[0][1] - lead_s) * sample_rate)))
    last = min(len(samples), int(np.ceil((words[-1][2] + tail_s) * sample_rate)))
    trimmed = samples[first:last]
    offset = first / sample_rate
    duration = len(trimmed) / sample_rate
    shifted = [
        (
            text,
            float(np.clip(start - offset, 0.0, duration)),
            float(np.clip(end - offset, 0.0, duration)),
        )
        for text, start, end in words
    ]
    return trimmed, shifted
