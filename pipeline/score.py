"""`duplexsynth score evalset=E out.dir=O [outputs=M] [asr=...]`: score a duplex model.

The model's output channel for each sample (`M/<sample path>/output.wav`, time-synchronous
with input.wav; M defaults to the evalset itself, where the benchmark's inference scripts
write it) is scored with Full-Duplex-Bench's definitions (pipeline/score_fdb.py) on the
benchmark task folders and with ours on our own layout (pipeline/score_native.py). The
transcript rules read an ASR transcript when `asr=` names a local faster-whisper model, else
the VAD approximation; `sources` in scores.json says which produced each number.
`baseline=reference|silent|never_stops|talks_over_pauses` scores generated outputs instead
(written to O/outputs/<baseline>/, with output.json when an ASR ran), pinning the values the
scorer must give.
"""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path

import numpy as np
import soundfile as sf

from pipeline import score_fdb as fdb
from pipeline.jobs import fail
from pipeline.score_asr import AsrUnavailable, WhisperTranscriber, output_json
from pipeline.score_native import ScoreSettings
from pipeline.score_native import aggregate as native_aggregate
from pipeline.score_native import score_sample as native_sample
from pipeline.vad import SileroVad, VadSettings

BASELINES = ("reference", "silent", "never_stops", "talks_over_pauses")
TASK_FILES = {
    "v1.0/pause_handling": ("pause.json",),
    "v1.0/smooth_turn_taking": ("turn_taking.json",),
    "v1.0/backchannel": (),
    "v1.0/user_interruption": ("interrupt.json",),
    "v1.5/user_interruption": ("metadata.json", "clean_input.wav"),
    "v1.5/user_backchannel": ("metadata.json", "clean_input.wav"),
}
EXTRAS = {"sr_at_3s", "isr_at_2s", "speaking_at_barge_in", "keep_rate"}


def load_evalset(evalset: Path) -> list[dict]:
    """Manifest rows with their metadata; the first missing file ends the job, named."""
    manifest = evalset / "manifest.jsonl"
    if not manifest.exists():
        raise FileNotFoundError(f"evalset={evalset}: no manifest.jsonl; point it at a folder "
                                "written by `duplexsynth evalset`")
    rows = [json.loads(line) for line in manifest.read_text().splitlines() if line.strip()]
    metas = []
    for row in rows:
        folder = evalset / row["path"]
        needed = [row.get("metadata", "metadata.json"), "input.wav", "reference.wav",
                  *TASK_FILES.get(row["task"], ())]
        for name in needed:
            if not (folder / name).is_file():
                raise FileNotFoundError(f"evalset={evalset}: {row['path']}/{name} is missing; "
                                        "rebuild it with `duplexsynth evalset`")
        meta = json.loads((folder / needed[0]).read_text())
        meta["path"] = row["path"]
        metas.append(meta)
    if row_tasks := {m["task"] for m in metas} & {"v1.0/backchannel"}:
        for task in row_tasks:
            if not (evalset / task / "icc_gt_distribution.json").is_file():
                raise FileNotFoundError(f"evalset={evalset}: {task}/icc_gt_distribution.json "
                                        "is missing; rebuild it with `duplexsynth evalset`")
    return metas


def speech_pool(evalset: Path, metas: list[dict], vad: SileroVad) -> np.ndarray:
    """Reference assistant speech with its silences removed (material for baselines)."""
    pieces = []
    for meta in metas:
        audio, rate = sf.read(evalset / meta["path"] / "reference.wav", dtype="float32")
        for a, b in vad.segments(audio, rate):
            pieces.append(audio[int(a * rate): int(b * rate)])
        if sum(len(p) for p in pieces) > 30 * rate:
            break
    if not pieces:
        raise ValueError("the evalset's reference channels hold no speech to build baselines")
    return np.concatenate(pieces)


def pause_windows(meta: dict) -> list[tuple[float, float]]:
    if meta.get("task") == "v1.0/pause_handling":
        return [(e["start_s"], e["end_s"]) for e in meta["events"]]
    if meta.get("axis") == "pause" and "event" in meta:
        return [(meta["event"]["start_s"], meta["event"]["end_s"])]
    return []


def baseline_output(kind: str, meta: dict, reference: np.ndarray, speech: np.ndarray,
                    rate: int) -> np.ndarray:
    """Outputs whose scores are known: the reference, silence, endless speech, pause talk
    (the reference everywhere, plus 2 s of speech from the start of each pause)."""
    if kind == "reference":
        return reference
    if kind == "silent":
        return np.zeros_like(reference)
    if kind == "never_stops":
        reps = -(-len(reference) // max(1, len(speech)))
        return np.tile(speech, reps)[: len(reference)]
    out = reference.copy()
    for start, _ in pause_windows(meta):
        begin = int(start * rate)
        piece = np.tile(speech, 2)[: int(2.0 * rate)][: max(0, len(out) - begin)]
        out[begin: begin + len(piece)] += piece
    return out


class Scorer:
    def __init__(self, vad: SileroVad, vad_settings: VadSettings,
                 asr: WhisperTranscriber | None, distributions: dict[str, dict],
                 native: ScoreSettings) -> None:
        self.vad, self.vad_settings, self.asr, self.native = vad, vad_settings, asr, native
        self.distributions = distributions
        self.transcript = asr.name if asr else "vad-approximation"
        self.transcripts: dict[str, list[dict]] = {}

    def segments(self, audio: np.ndarray, rate: int) -> fdb.Segments:
        return self.vad.segments(audio, rate, self.vad_settings)

    def chunks(self, audio: np.ndarray, rate: int, segments: fdb.Segments,
               after_s: float = 0.0) -> list[dict]:
        if self.asr is None:
            return fdb.vad_chunks(fdb.crop_segments(segments, after_s))
        return self.asr.chunks(audio[int(after_s * rate):], rate, offset_s=after_s)

    def sample(self, meta: dict, audio: np.ndarray, rate: int, evalset: Path) -> dict:
        task, path = meta["task"], meta["path"]
        segs = self.segments(audio, rate)
        result: dict = {"id": path, "task": task}
        if task not in TASK_FILES:
            result.update(native_sample(meta, segs, self.native))
            return result
        bench, ours = {}, {}
        event = meta["events"][0]
        if task == "v1.0/pause_handling":
            chunks = self.chunks(audio, rate, segs)
            bench = {"tor": fdb.take_over(chunks)}
        elif task == "v1.0/smooth_turn_taking":
            chunks = self.chunks(audio, rate, segs)
            bench = fdb.tor_and_latency(chunks, event["start_s"])
            ours = {"sr_at_3s": fdb.sr_at_3s(segs, chunks, event["start_s"])}
        elif task == "v1.0/backchannel":
            chunks = self.chunks(audio, rate, segs)
            reference = self.distributions[task].get(str(meta["number"]))
            bench = fdb.backchannel(segs, chunks, len(audio) / rate, reference)
        elif task == "v1.0/user_interruption":
            end = meta["focus_turn"]["end_s"]
            chunks = self.chunks(audio, rate, segs, after_s=end)
            bench = fdb.tor_and_latency(chunks, end)
            ours = fdb.isr_at_2s(segs, meta["focus_turn"]["start_s"])
        else:
            user_audio, user_rate = sf.read(evalset / path / "input.wav", dtype="float32")
            window = (meta["focus_turn"]["start_s"], meta["focus_turn"]["end_s"])
            bench = fdb.v15_timing(self.segments(user_audio, user_rate), segs, window)
            chunks = None
            if task == "v1.5/user_interruption":
                ours = fdb.isr_at_2s(segs, window[0])
            else:
                ours = {"keep_rate": fdb.kept_speaking(segs, window[1])}
        if chunks is not None and self.asr is not None:
            self.transcripts[path] = chunks
        result.update({"benchmark": bench, "duplexsynth": ours})
        return result

    def sources(self, task: str) -> dict[str, str]:
        vad = "silero-vad"
        if task == "v1.0/backchannel":
            return {"tor": f"{vad} segments + {self.transcript} words",
                    "frequency_hz": vad, "jsd": vad}
        if task.startswith("v1.5/"):
            return {"stop_latency_s": vad, "response_latency_s": vad,
                    **{k: vad for k in ("isr_at_2s", "speaking_at_barge_in", "keep_rate")}}
        out = {"tor": self.transcript, "latency_s": self.transcript}
        if task == "v1.0/smooth_turn_taking":
            out["sr_at_3s"] = f"{vad} onsets + {self.transcript}"
        if task == "v1.0/user_interruption":
            out.update({"isr_at_2s": vad, "speaking_at_barge_in": vad})
        return out


def mean(values: list) -> float | None:
    values = [float(v) for v in values if v is not None]
    return round(float(np.mean(values)), 4) if values else None


def aggregate(results: list[dict], scorer: Scorer) -> dict:
    by_task: dict[str, list[dict]] = defaultdict(list)
    for r in results:
        if "benchmark" in r:
            by_task[r["task"]].append(r)
    summary = {}
    for task, rows in sorted(by_task.items()):
        bench_keys = sorted({k for r in rows for k in r["benchmark"]} - {"backchannels"})
        our_keys = sorted({k for r in rows for k in r["duplexsynth"]} - {"stopped_after_s"})
        summary[task] = {
            "samples": len(rows),
            "benchmark": {k: mean([r["benchmark"].get(k) for r in rows]) for k in bench_keys},
            "duplexsynth": {k: mean([r["duplexsynth"].get(k) for r in rows]) for k in our_keys},
            "sources": scorer.sources(task),
        }
    native = [r for r in results if "benchmark" not in r]
    if native:
        summary["native"] = native_aggregate(native)
    return summary


def setup(raw: dict, evalset_dir: Path) -> tuple[list[dict], Scorer]:
    metas = load_evalset(evalset_dir)
    vad_raw = dict(raw.get("vad") or {})
    vad = SileroVad(vad_raw.pop("model_path", None))
    asr = WhisperTranscriber(raw["asr"], language=raw.get("asr_language") or "en") \
        if raw.get("asr") else None
    distributions = {}
    for task in {m["task"] for m in metas} & {"v1.0/backchannel"}:
        path = raw.get("reference_distribution") or evalset_dir / task / \
            "icc_gt_distribution.json"
        if not Path(path).is_file():
            raise FileNotFoundError(f"reference_distribution: {path} does not exist")
        distributions[task] = json.loads(Path(path).read_text())
    return metas, Scorer(vad, VadSettings(**vad_raw), asr, distributions,
                         ScoreSettings(**(raw.get("metrics") or {})))


def score_job(raw: dict) -> dict:
    evalset, out = raw.get("evalset"), (raw.get("out") or {}).get("dir")
    baseline = raw.get("baseline")
    if not evalset:
        fail(ValueError("evalset: missing; set evalset=<folder written by duplexsynth evalset>"))
    if not out:
        fail(ValueError("out.dir: missing; set out.dir=<folder for the scores>"))
    if baseline and baseline not in BASELINES:
        fail(ValueError(f"baseline: {baseline!r} unknown; allowed: {list(BASELINES)}"))
    evalset_dir = Path(evalset).expanduser().resolve()
    out_dir = Path(out).expanduser().resolve()
    try:
        metas, scorer = setup(raw, evalset_dir)
    except (FileNotFoundError, TypeError, ValueError, AsrUnavailable) as error:
        fail(error)
        raise
    outputs = Path(raw.get("outputs") or evalset_dir).expanduser().resolve()
    if baseline:
        outputs = out_dir / "outputs" / baseline
    output_file = raw.get("output_file") or "output.wav"
    pool = speech_pool(evalset_dir, metas, scorer.vad) \
        if baseline in ("never_stops", "talks_over_pauses") else None
    results, missing = [], 0
    for meta in metas:
        target = outputs / meta["path"] / output_file
        if baseline:
            reference, rate = sf.read(evalset_dir / meta["path"] / "reference.wav",
                                      dtype="float32")
            audio = np.clip(baseline_output(baseline, meta, reference, pool, rate), -1, 1)
            target.parent.mkdir(parents=True, exist_ok=True)
            sf.write(target, audio, rate, subtype="PCM_16")
        elif not target.exists():
            missing += 1
            continue
        audio, rate = sf.read(target, dtype="float32")
        if audio.ndim > 1:
            audio = audio.mean(axis=1)
        results.append(scorer.sample(meta, audio, rate, evalset_dir))
        if baseline and meta["path"] in scorer.transcripts:
            (target.parent / "output.json").write_text(
                json.dumps(output_json(scorer.transcripts.pop(meta["path"])), indent=1))
    summary = {"evalset": str(evalset_dir), "outputs": str(outputs), "baseline": baseline,
               "transcripts": scorer.transcript, "scored": len(results), "missing": missing,
               "tasks": aggregate(results, scorer)}
    out_dir.mkdir(parents=True, exist_ok=True)
    with open(out_dir / "per_sample.jsonl", "w", encoding="utf-8") as handle:
        for r in results:
            handle.write(json.dumps(r) + "\n")
    (out_dir / "scores.json").write_text(json.dumps(summary, indent=1) + "\n")
    print(json.dumps(summary["tasks"]))
    return summary
