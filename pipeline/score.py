"""`duplexsynth score evalset=E outputs=M out.dir=O`: score a duplex model's outputs.

For every sample of an evaluation set (pipeline.evalset) the model's output channel
(`M/<axis>/<id>/<output_file>`, time-synchronous with input.wav) goes through Silero VAD
(pipeline.vad); speech segments longer than `backchannel_max_s` count as turns, shorter ones
as backchannels. Metrics (Full-Duplex-Bench v1/v1.5 and BayLing-Duplex):
- pause.takeover_rate (↓): a turn overlaps the pause by at least `min_overlap_s`
- turn_taking.takeover_rate (↑), .latency_s (↓), .sr_at_3s (↑): a turn starts after the user
  ends (overlapped starts down to `overlap_tolerance_s` early count), within 3 s for SR@3s;
  a turn onset is one from which the model says more than a backchannel's worth in all
- interruption.isr_at_2s (↑), .stop_latency_s (↓), .speaking_at_barge_in: the model's speech
  running at the barge-in stops within 2 s (silent at the barge-in counts as stopped);
  .takeover_rate / .latency_s: it answers after the interrupting turn ends
- backchannel.takeover_rate (↓), .frequency_hz (↑), .jsd (↓): short segments per second of
  the user's turn, and the Jensen–Shannon divergence (base 2, 0..1) of their onset times
  against the reference backchannels (Gaussian kernels of `jsd_sigma_s`; 1 when none)
- side_talk.takeover_rate (↓); keep_speaking events (user backchannel or side talk while the
  model speaks): keep_rate (↑)
`baseline=reference|silent|never_stops|talks_over_pauses` scores generated outputs instead
(written to O/outputs/<baseline>/), which pins the metric values the scorer must give.
"""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf

from pipeline.jobs import fail
from pipeline.vad import SileroVad, VadSettings

Segments = list[tuple[float, float]]
BASELINES = ("reference", "silent", "never_stops", "talks_over_pauses")


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
        running = next(((a, b) for a, b in segments if a <= start < b), None)
        result["speaking"] = running is not None
        stop = None if running is None else running[1]
        result["stop_latency_s"] = None if stop is None else round(stop - start, 3)
        result["success_2s"] = stop is None or stop - start <= s.interruption_window_s
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


def load_evalset(evalset: Path) -> list[dict]:
    manifest = evalset / "manifest.jsonl"
    if not manifest.exists():
        raise FileNotFoundError(f"evalset={evalset}: no manifest.jsonl; point it at a folder "
                                "written by `duplexsynth evalset`")
    rows = [json.loads(line) for line in manifest.read_text().splitlines() if line.strip()]
    return [json.loads((evalset / r["path"] / "metadata.json").read_text()) for r in rows]


def baseline_output(kind: str, meta: dict, reference: np.ndarray, speech: np.ndarray,
                    rate: int) -> np.ndarray:
    """Outputs whose scores are known: the reference, silence, endless speech, pause talk."""
    if kind == "reference":
        return reference
    out = np.zeros_like(reference)
    if kind == "never_stops":
        reps = -(-len(out) // max(1, len(speech)))
        return np.tile(speech, reps)[: len(out)]
    if kind == "talks_over_pauses" and meta["axis"] == "pause":
        begin = int(meta["event"]["start_s"] * rate)
        piece = np.tile(speech, 2)[: int(2.0 * rate)]
        piece = piece[: max(0, len(out) - begin)]
        out[begin: begin + len(piece)] = piece
    return out


def speech_pool(evalset: Path, metas: list[dict], vad: SileroVad) -> np.ndarray:
    """Reference assistant speech with its silences removed (material for baselines)."""
    pieces = []
    for meta in metas:
        audio, rate = sf.read(evalset / meta["axis"] / meta["id"] / "reference.wav",
                              dtype="float32")
        for a, b in vad.segments(audio, rate):
            pieces.append(audio[int(a * rate): int(b * rate)])
        if sum(len(p) for p in pieces) > 30 * rate:
            break
    if not pieces:
        raise ValueError("the evalset's reference channels hold no speech to build baselines")
    return np.concatenate(pieces)


def score_job(raw: dict) -> dict:
    evalset = raw.get("evalset")
    out = (raw.get("out") or {}).get("dir")
    baseline = raw.get("baseline")
    if not evalset:
        fail(ValueError("evalset: missing; set evalset=<folder written by duplexsynth evalset>"))
    if not out:
        fail(ValueError("out.dir: missing; set out.dir=<folder for the scores>"))
    if baseline and baseline not in BASELINES:
        fail(ValueError(f"baseline: {baseline!r} unknown; allowed: {list(BASELINES)}"))
    if not baseline and not raw.get("outputs"):
        fail(ValueError("outputs: missing; set outputs=<folder with <axis>/<id>/output.wav> "
                        f"or baseline=<{'|'.join(BASELINES)}>"))
    evalset_dir = Path(evalset).expanduser().resolve()
    out_dir = Path(out).expanduser().resolve()
    try:
        metas = load_evalset(evalset_dir)
        settings = ScoreSettings(**(raw.get("metrics") or {}))
        vad_raw = dict(raw.get("vad") or {})
        vad = SileroVad(vad_raw.pop("model_path", None))
        vad_settings = VadSettings(**vad_raw)
    except (FileNotFoundError, TypeError, ValueError) as error:
        fail(error)
        raise
    outputs = Path(raw["outputs"]).expanduser().resolve() if raw.get("outputs") else None
    output_file = raw.get("output_file") or "output.wav"
    pool = speech_pool(evalset_dir, metas, vad) if baseline else None
    results, missing = [], 0
    for meta in metas:
        folder = evalset_dir / meta["axis"] / meta["id"]
        if baseline:
            reference, rate = sf.read(folder / "reference.wav", dtype="float32")
            audio = baseline_output(baseline, meta, reference, pool, rate)
            outputs = out_dir / "outputs" / baseline
            (outputs / meta["axis"] / meta["id"]).mkdir(parents=True, exist_ok=True)
            sf.write(outputs / meta["axis"] / meta["id"] / output_file, audio, rate,
                     subtype="PCM_16")
        else:
            path = outputs / meta["axis"] / meta["id"] / output_file
            if not path.exists():
                missing += 1
                continue
            audio, rate = sf.read(path, dtype="float32")
            if audio.ndim > 1:
                audio = audio.mean(axis=1)
        results.append(score_sample(meta, vad.segments(audio, rate, vad_settings), settings))
    summary = {"evalset": str(evalset_dir), "outputs": str(outputs), "baseline": baseline,
               "scored": len(results), "missing": missing, "axes": aggregate(results)}
    out_dir.mkdir(parents=True, exist_ok=True)
    with open(out_dir / "per_sample.jsonl", "w", encoding="utf-8") as handle:
        for r in results:
            handle.write(json.dumps(r) + "\n")
    (out_dir / "scores.json").write_text(json.dumps(summary, indent=1) + "\n")
    print(json.dumps(summary["axes"]))
    return summary
