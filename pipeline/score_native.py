"""Scores of our own evaluation layout (side talk; every axis with `evalset format=native`).

The benchmark has no side-talk task, so these are duplexsynth's definitions, on Silero VAD
segments of the output (seconds in the clip): speech segments longer than
`backchannel_max_s` count as turns, shorter ones as backchannels.
- side_talk.takeover_rate (↓): a turn starts within 0.5 s after talk addressed to someone
  else, or covers it; keep_speaking events (the model talks through side talk or a user
  backchannel): keep_rate (↑)
- native pause / turn_taking / interruption / backchannel rows: the older duplexsynth rules
  (turn onsets from summed speech, SR@3s, ISR@2s with silence counted as a failure, JSD of
  onset densities, base 2). Full-Duplex-Bench definitions are in pipeline/score_fdb.py.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

import numpy as np

from pipeline.score_fdb import MODEL_MERGE_GAP_S, merge

Segments = list[tuple[float, float]]


@dataclass(frozen=True)
class ScoreSettings:
    backchannel_max_s: float = 1.2
    min_overlap_s: float = 0.2
    overlap_tolerance_s: float = 1.5
    turn_taking_window_s: float = 3.0
    interruption_window_s: float = 2.0
    jsd_sigma_s: float = 0.3


def turns(segments: Segments, s: ScoreSettings) -> Segments:
    return [seg for seg in segments if seg[1] - seg[0] > s.backchannel_max_s]


def backchannels(segments: Segments, s: ScoreSettings) -> Segments:
    return [seg for seg in segments if seg[1] - seg[0] <= s.backchannel_max_s]


def turn_onsets(segments: Segments, s: ScoreSettings, after_s: float) -> list[float]:
    """Onsets (≥ after_s) from which the model talks longer than a backchannel in all.

    A turn may open with a short phrase and a pause ("Okay, ... so"), so the speech from the
    onset to the end of the clip is summed instead of asking one VAD segment to be long.
    """
    onsets = []
    for a, _ in segments:
        if a >= after_s and sum(max(0.0, e - max(a, b0)) for b0, e in segments) \
                > s.backchannel_max_s:
            onsets.append(a)
    return onsets


def overlap(seg: tuple[float, float], start: float, end: float) -> float:
    return max(0.0, min(seg[1], end) - max(seg[0], start))


def jensen_shannon(model: list[float], reference: list[float], start: float, end: float,
                   sigma: float) -> float:
    """JSD (base 2) of two onset-time densities on [start, end]; 1.0 if either is empty."""
    if not model or not reference:
        return 0.0 if not model and not reference else 1.0
    grid = np.arange(start, end + 0.05, 0.05)

    def density(times: list[float]) -> np.ndarray:
        d = sum(np.exp(-0.5 * ((grid - t) / sigma) ** 2) for t in times) + 1e-12
        return d / d.sum()

    p, q = density(model), density(reference)
    m = 0.5 * (p + q)
    return float(0.5 * np.sum(p * np.log2(p / m)) + 0.5 * np.sum(q * np.log2(q / m)))


def score_sample(meta: dict, segments: Segments, s: ScoreSettings) -> dict:
    """Per-sample outcome; `axis`-specific keys, None where a metric does not apply."""
    event, axis = meta["event"], meta["axis"]
    start, end = event["start_s"], event["end_s"]
    user = meta["user_turn"]
    spoken = turns(segments, s)
    result: dict = {"id": meta["id"], "axis": axis, "expected": event["expected"]}
    if event["expected"] == "keep_speaking":
        result["kept"] = any(overlap(seg, end, end + 0.5) > 0 for seg in segments)
        return result
    if axis == "pause":
        result["takeover"] = any(overlap(t, start, end) >= s.min_overlap_s for t in spoken)
    elif axis == "turn_taking":
        onsets = turn_onsets(segments, s, start - s.overlap_tolerance_s)
        first = min(onsets) if onsets else None
        result["takeover"] = first is not None
        result["latency_s"] = None if first is None else round(first - start, 3)
        result["success_3s"] = first is not None and first <= start + s.turn_taking_window_s
    elif axis == "interruption":
        merged = merge(segments, MODEL_MERGE_GAP_S)  # a breath is no stop (as get_timing)
        running = next(((a, b) for a, b in merged if a <= start < b), None)
        result["speaking"] = running is not None
        stop = None if running is None else running[1]
        result["stop_latency_s"] = None if stop is None else round(stop - start, 3)
        result["success_2s"] = stop is not None and stop - start <= s.interruption_window_s
        after = [a for a in turn_onsets(segments, s, user["end_s"] - s.overlap_tolerance_s)
                 if stop is None or a > stop]
        result["takeover"] = bool(after)
        result["latency_s"] = round(min(after) - user["end_s"], 3) if after else None
    elif axis == "backchannel":
        host_start, host_end = user["start_s"], user["end_s"]
        held = sum(overlap(t, host_start, host_end) for t in spoken)
        covers = held >= 0.8 * (host_end - host_start)
        starts = any(host_start + 0.5 < a < host_end - 0.3 for a, _ in spoken)
        result["takeover"] = covers or starts
        onsets = [a for a, _ in backchannels(segments, s) if host_start <= a <= host_end]
        result["backchannels"] = len(onsets)
        result["user_s"] = round(host_end - host_start, 3)
        result["jsd"] = round(jensen_shannon(onsets, meta["reference"]["backchannel_s"],
                                             host_start, host_end, s.jsd_sigma_s), 4)
    elif axis == "side_talk":
        result["takeover"] = any(a <= end + 0.5 for a in turn_onsets(segments, s, start)) or any(
            a <= start and b >= end for a, b in spoken)
    return result


def aggregate(results: list[dict]) -> dict:
    by_axis: dict[str, list[dict]] = defaultdict(list)
    for r in results:
        by_axis[r["axis"]].append(r)

    def mean(values: list) -> float | None:
        values = [float(v) for v in values if v is not None]
        return round(float(np.mean(values)), 4) if values else None

    summary: dict[str, dict] = {}
    for axis, rows in sorted(by_axis.items()):
        main = [r for r in rows if r["expected"] != "keep_speaking"]
        keep = [r for r in rows if r["expected"] == "keep_speaking"]
        out: dict = {"samples": len(main)}
        if main:
            out["takeover_rate"] = mean([r["takeover"] for r in main])
        if axis in ("turn_taking", "interruption") and main:
            out["latency_s"] = mean([r["latency_s"] for r in main])
        if axis == "turn_taking" and main:
            out["sr_at_3s"] = mean([r["success_3s"] for r in main])
        if axis == "interruption" and main:
            out["isr_at_2s"] = mean([r["success_2s"] for r in main])
            out["stop_latency_s"] = mean([r["stop_latency_s"] for r in main])
            out["speaking_at_barge_in"] = mean([r["speaking"] for r in main])
        if axis == "backchannel" and main:
            seconds = sum(r["user_s"] for r in main)
            out["frequency_hz"] = round(sum(r["backchannels"] for r in main) / seconds, 4)
            out["jsd"] = mean([r["jsd"] for r in main])
        if keep:
            out["keep_speaking_samples"] = len(keep)
            out["keep_rate"] = mean([r["kept"] for r in keep])
        summary[axis] = out
    return summary
