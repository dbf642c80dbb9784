"""`duplexsynth evalset dataset=D out.dir=O`: evaluation sets for full-duplex dialogue models.

`format=fdb` (default) writes Full-Duplex-Bench's own layout so its evaluation scripts
(DanielLin94144/Full-Duplex-Bench, v1_v1.5/evaluation/) run on it unchanged:
  O/v1.0/pause_handling/<n>/      input.wav, pause.json, transcription.json
  O/v1.0/smooth_turn_taking/<n>/  input.wav, turn_taking.json, transcription.json
  O/v1.0/backchannel/<n>/         input.wav, transcription.json
  O/v1.0/backchannel/icc_gt_distribution.json   reference backchannel distribution per id
  O/v1.0/user_interruption/<n>/   input.wav, context.wav, interrupt.wav, interrupt.json
  O/v1.5/user_interruption/<n>/   input.wav, clean_input.wav, metadata.json
  O/v1.5/user_backchannel/<n>/    input.wav, clean_input.wav, metadata.json
<n> is a numeric id per task folder (the scripts skip non-numeric names or read every
folder). Beside the benchmark's files each sample holds `reference.wav` (the reference
assistant channel, clip-synchronous) and `duplexsynth.json` (our metadata: dialogue id,
clip window in the dialogue, events, reference speech and reply times). Multi-party side
talk has no benchmark task and keeps our own layout: O/side_talk/<id>/{input.wav,
reference.wav, metadata.json}. `format=native` writes every axis in that layout.
  O/manifest.jsonl  one line per sample   O/evalset.json  counts, skipped reasons
  O/dialogue_ids.txt  the dialogues used (pass the folder as `exclude=` to dpo / export)
Clip rules (clean start, ends the scripts can read) live in pipeline/evalset_tasks.py.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import numpy as np
import soundfile as sf

from pipeline.dataset import iter_dialogues, resolve
from pipeline.duplex_clips import (
    DuplexDialogue,
    anchor_turn,
    clip_bounds,
    clip_labels,
    iter_duplex,
    shift_event,
)
from pipeline.evalset_tasks import TASKS, TaskClip, task_clips
from pipeline.jobs import dataset_and_out, fail
from pipeline.labels.invariants import event_violations
from pipeline.schema import AxisEvent, FrameState, Placed
from pipeline.score_fdb import tenths
from pipeline.vad import SILERO_DEFAULTS, SileroVad

AXES = ("pause", "turn_taking", "backchannel", "interruption", "side_talk")
FORMATS = ("fdb", "native")
ID_LIST = "dialogue_ids.txt"
GT_DISTRIBUTION = "icc_gt_distribution.json"
BIN_S = 0.2       # Full-Duplex-Bench backchannel histogram bins (window_size)
EPSILON = 1e-10   # Full-Duplex-Bench: added to every bin before normalising
AFTER_S = {"pause": 1.0, "turn_taking": 0.5, "backchannel": 0.5, "interruption": 3.0,
           "side_talk": 1.5}


def reference_spans(labels, kinds: tuple[FrameState, ...]) -> list[list[float]]:
    spans: list[list[float]] = []
    for f, state in enumerate(labels.state):
        t = round(f * labels.frame_s, 4)
        if state in kinds:
            if spans and abs(spans[-1][1] - t) < 1e-6:
                spans[-1][1] = round(t + labels.frame_s, 4)
            else:
                spans.append([t, round(t + labels.frame_s, 4)])
    return spans


def backchannel_distribution(spans: list, duration_s: float) -> list[float]:
    """The benchmark's histogram of backchannel spans: 0.2 s bins, every bin a span touches
    counts once, epsilon added, normalised to sum 1 (eval_backchannel.py's construction).

    The spans are what Silero VAD (the benchmark's detector, its default settings) finds in
    the reference channel, so the reference is scored against what the benchmark would hear
    in it; the labelled spans stay in duplexsynth.json (`reference.backchannels`)."""
    bins = np.zeros(int(duration_s / BIN_S) + 1)
    for a, b in spans:
        bins[int(a / BIN_S): min(int(b / BIN_S) + 1, len(bins))] += 1
    bins = bins + EPSILON
    return [float(x) for x in bins / bins.sum()]


def _rel(t: float, start: float) -> float:
    return round(t - start, 4)


def _words(seg: Placed | None, start: float, end: float) -> list[dict]:
    if seg is None:
        return []
    return [{"text": w, "timestamp": [_rel(a, start), _rel(b, start)]}
            for w, a, b in seg.words if a >= start and b <= end]


def _text(seg: Placed | None) -> str:
    """The words actually spoken in a placed turn (a cut turn stops where its audio does)."""
    return "" if seg is None else " ".join(w for w, _, _ in seg.words)


def transcription(dialogue: DuplexDialogue, start: float, end: float) -> list[dict]:
    """transcription.json: words per speaker (numbered in the dataset's speaker order)."""
    out = []
    for number, speaker in enumerate(dialogue.speakers):
        items = [w for s in dialogue.timeline.segments if s.speaker == speaker
                 for w in _words(s, start, end)]
        if items:
            out.append({"speaker": number, "name": speaker,
                        "assistant": speaker == dialogue.assistant,
                        "item": sorted(items, key=lambda w: w["timestamp"][0])})
    return out


def clean_user_audio(dialogue: DuplexDialogue, removed: Placed) -> np.ndarray:
    """The user channel without one turn: the benchmark's non-overlap reference input."""
    others = [i for i, s in enumerate(dialogue.speakers) if s != dialogue.assistant]
    channels = dialogue.channels[:, others].copy()
    column = others.index(dialogue.speakers.index(removed.speaker))
    rate = dialogue.sample_rate
    channels[int(removed.start_s * rate): int(round(removed.end_s * rate)), column] = 0.0
    return channels.sum(axis=1).astype(np.float32)


def write_wav(path: Path, audio: np.ndarray, rate: int) -> None:
    sf.write(path, np.clip(audio, -1.0, 1.0), rate, subtype="PCM_16")


def benchmark_files(clip: TaskClip, dialogue: DuplexDialogue, folder: Path) -> dict:
    """The files the task's benchmark scripts read; returns extra metadata for ours."""
    s, e, rate = clip.start_s, clip.end_s, dialogue.sample_rate
    event = clip.events[0]
    dump = {}
    if clip.task == "v1.0/pause_handling":
        dump["pause.json"] = [{"text": "[PAUSE]",
                               "timestamp": [_rel(event.start_s, s), _rel(event.end_s, s)]}]
    elif clip.task == "v1.0/smooth_turn_taking":
        dump["turn_taking.json"] = [{"text": "[TURN-TAKING]", "timestamp": [
            _rel(event.start_s, s), _rel(clip.answer.start_s, s)]}]
    elif clip.task == "v1.0/user_interruption":
        barge = clip.focus
        dump["interrupt.json"] = [{"context": _text(clip.context),
                                   "interrupt": _text(barge),
                                   "timestamp": [_rel(barge.start_s, s), _rel(barge.end_s, s)]}]
        write_wav(folder / "context.wav", dialogue.cut(dialogue.user_audio, s, barge.start_s),
                  rate)
        write_wav(folder / "interrupt.wav",
                  dialogue.cut(dialogue.user_audio, barge.start_s, barge.end_s), rate)
    elif clip.task.startswith("v1.5/"):
        focus = clip.focus
        dump["metadata.json"] = {
            "context_text": _text(clip.context),
            "current_turn_text": _text(focus),
            "timestamps": [_rel(focus.start_s, s), _rel(min(focus.end_s, e), s)]}
        write_wav(folder / "clean_input.wav",
                  dialogue.cut(clean_user_audio(dialogue, focus), s, e), rate)
    if clip.task.startswith("v1.0/") and clip.task != "v1.0/user_interruption":
        dump["transcription.json"] = transcription(dialogue, s, e)
    for name, content in dump.items():
        (folder / name).write_text(json.dumps(content, ensure_ascii=False, indent=1))
    return {"benchmark_files": sorted(dump) + (["context.wav", "interrupt.wav"]
                                               if clip.task == "v1.0/user_interruption" else [])
            + (["clean_input.wav"] if clip.task.startswith("v1.5/") else [])}


def turn_info(seg: Placed | None, start: float, end: float) -> dict | None:
    if seg is None:
        return None
    return {"speaker": seg.speaker, "addressee": seg.addressee, "kind": seg.kind,
            "start_s": _rel(max(seg.start_s, start), start),
            "end_s": _rel(min(seg.end_s, end), start),
            "cut_at_s": None if seg.cut_at_s is None else _rel(seg.cut_at_s, start),
            "text": _text(seg)}


def write_fdb_sample(clip: TaskClip, dialogue: DuplexDialogue, number: int,
                     out_dir: Path) -> dict:
    version, axis, expected = TASKS[clip.task]
    s, e, rate = clip.start_s, clip.end_s, dialogue.sample_rate
    path = f"{clip.task}/{number}"
    folder = out_dir / path
    folder.mkdir(parents=True, exist_ok=True)
    write_wav(folder / "input.wav", dialogue.cut(dialogue.user_audio, s, e), rate)
    write_wav(folder / "reference.wav", dialogue.cut(dialogue.assistant_audio, s, e), rate)
    extra = benchmark_files(clip, dialogue, folder)
    labels = clip_labels(dialogue, s, e)
    own = [seg for seg in dialogue.timeline.segments if seg.speaker == dialogue.assistant
           and seg.end_s > s and seg.start_s < e]
    meta = {
        "id": path, "task": clip.task, "version": version, "number": number, "axis": axis,
        "expected": expected, "dialogue_id": dialogue.id, "language": dialogue.language,
        "assistant": dialogue.assistant, "sample_rate": rate, "clip_start_s": s,
        "clip_end_s": e, "duration_s": round(e - s, 4),
        "events": [shift_event(ev, s).model_dump() for ev in clip.events],
        "context_turn": turn_info(clip.context, s, e), "focus_turn": turn_info(clip.focus, s, e),
        "answer_turn": turn_info(clip.answer, s, e),
        "held_turn": turn_info(clip.extra.get("held"), s, e),
        "reference": {
            "speech": [[_rel(max(x.start_s, s), s), _rel(min(x.end_s, e), s)] for x in own],
            "backchannels": [[_rel(max(x.start_s, s), s), _rel(min(x.end_s, e), s)]
                             for x in own if x.kind == "backchannel"],
            "words": [w for x in own for w in _words(x, s, e)],
            "frames": reference_spans(labels, (FrameState.SPEAK, FrameState.BACKCHANNEL)),
        },
        "frame_s": labels.frame_s, **extra,
    }
    (folder / "duplexsynth.json").write_text(json.dumps(meta, ensure_ascii=False, indent=1))
    return meta


def user_turn(dialogue: DuplexDialogue, event: AxisEvent) -> Placed | None:
    """The other party's turn whose speech the event is about (the barge-in for interruptions)."""
    if event.axis in ("interruption", "side_talk") or event.expected == "keep_speaking":
        return next((s for s in dialogue.timeline.segments if s.speaker == event.speaker
                     and abs(s.start_s - event.start_s) < 1e-3), None)
    return anchor_turn(dialogue, event)


def write_native_sample(dialogue: DuplexDialogue, index: int, event: AxisEvent,
                        out_dir: Path) -> dict | None:
    """Our own layout (side talk, and every axis with format=native)."""
    turn = user_turn(dialogue, event)
    if turn is None:
        return None
    after = AFTER_S[event.axis] + max(0.0, turn.end_s - event.end_s)
    bounds = clip_bounds(dialogue, event, after_s=after, whole_response=False)
    if bounds is None:
        return None
    start, end = bounds
    labels = clip_labels(dialogue, start, end)
    sample_id = f"{dialogue.id}-{event.axis}-{index:03d}"
    folder = out_dir / event.axis / sample_id
    folder.mkdir(parents=True, exist_ok=True)
    write_wav(folder / "input.wav", dialogue.cut(dialogue.user_audio, start, end),
              dialogue.sample_rate)
    write_wav(folder / "reference.wav", dialogue.cut(dialogue.assistant_audio, start, end),
              dialogue.sample_rate)
    bc_times = [round(e.response_s - start, 4) for e in dialogue.labels.axis_events
                if e.expected == "backchannel" and e.response_s is not None
                and start <= e.response_s < end]
    meta = {
        "id": sample_id, "task": event.axis, "axis": event.axis, "expected": event.expected,
        "dialogue_id": dialogue.id, "language": dialogue.language,
        "assistant": dialogue.assistant, "sample_rate": dialogue.sample_rate,
        "clip_start_s": start, "clip_end_s": end, "duration_s": round(end - start, 4),
        "event": shift_event(event, start).model_dump(),
        "user_turn": {"speaker": turn.speaker, "addressee": turn.addressee,
                      "start_s": round(max(0.0, turn.start_s - start), 4),
                      "end_s": round(min(end, turn.end_s) - start, 4),
                      "text": _text(turn)},
        "reference": {
            "speech": reference_spans(labels, (FrameState.SPEAK, FrameState.BACKCHANNEL)),
            "backchannel_s": bc_times,
        },
        "frame_s": labels.frame_s,
    }
    (folder / "metadata.json").write_text(json.dumps(meta, ensure_ascii=False, indent=1))
    return meta


def heard_backchannels(vad: SileroVad, dialogue: DuplexDialogue,
                       clip: TaskClip) -> tuple[list, float] | None:
    """VAD spans of the reference backchannels, or None if the detector misses one of them
    (a backchannel under its 0.25 s minimum speech: the reference would not score well)."""
    audio = dialogue.cut(dialogue.assistant_audio, clip.start_s, clip.end_s)
    spans = tenths(vad.segments(audio, dialogue.sample_rate, SILERO_DEFAULTS))
    own = [s for s in dialogue.timeline.segments if s.speaker == dialogue.assistant
           and s.end_s > clip.start_s and s.start_s < clip.end_s]
    return (spans, len(audio) / dialogue.sample_rate) if spans and len(spans) >= len(own) \
        else None


def check_languages(dataset: Path, languages: list[str]) -> None:
    found = Counter(row["language"] for row in iter_dialogues(dataset, columns=["language"]))
    if not any(found[lang] for lang in languages):
        fail(ValueError(f"languages: no dialogue of {dataset} is in {languages} (it holds "
                        f"{dict(found)}); set languages=[...] or generate with those languages"))


def evalset_job(raw: dict) -> dict:
    dataset, out = dataset_and_out(raw, "the evaluation sets")
    fmt = raw.get("format") or "fdb"
    if fmt not in FORMATS:
        fail(ValueError(f"format: {fmt!r} unknown; allowed: {list(FORMATS)}"))
    axes = raw.get("axes") or list(AXES)
    unknown = [a for a in axes if a not in AXES]
    if unknown:
        fail(ValueError(f"axes: {unknown} unknown; allowed: {list(AXES)}"))
    languages = raw.get("languages") or ["en"]
    languages = [languages] if isinstance(languages, str) else list(languages)
    limit = raw.get("max_per_task")
    dataset_dir = resolve(dataset)
    try:
        check_languages(dataset_dir, languages)
    except FileNotFoundError as error:
        fail(error)
    out_dir = Path(out).expanduser().resolve()
    out_dir.mkdir(parents=True, exist_ok=True)
    tasks = {t for t, (_, axis, _) in TASKS.items() if axis in axes} if fmt == "fdb" else set()
    native_axes = set(axes) if fmt == "native" else {"side_talk"} & set(axes)
    vad = SileroVad() if "v1.0/backchannel" in tasks else None
    counts: Counter[str] = Counter()
    skipped: Counter[str] = Counter()
    dialogues: set[str] = set()
    distribution: dict[str, list[float]] = {}
    with open(out_dir / "manifest.jsonl", "w", encoding="utf-8") as manifest:

        def record(meta: dict, path: str) -> None:
            manifest.write(json.dumps({
                "id": meta["id"], "task": meta["task"], "axis": meta["axis"],
                "expected": meta["expected"], "path": path, "dialogue_id": meta["dialogue_id"],
                "metadata": "duplexsynth.json" if "version" in meta else "metadata.json",
            }) + "\n")
            counts[meta["task"]] += 1
            dialogues.add(meta["dialogue_id"])

        for dialogue in iter_duplex(dataset_dir):
            if dialogue.language not in languages:
                skipped[f"language:{dialogue.language}"] += 1
                continue
            frames = dialogue.labels.num_frames
            good = [e for e in dialogue.labels.axis_events
                    if not event_violations(dialogue.labels, e, frames)]
            for e in dialogue.labels.axis_events:
                if e not in good:
                    skipped[f"{e.axis}:inconsistent_labels"] += 1
            dialogue.labels = dialogue.labels.model_copy(update={"axis_events": good})
            clips, reasons = task_clips(dialogue, tasks) if tasks else ([], [])
            skipped.update(reasons)
            for clip in clips:
                if limit and counts[clip.task] >= int(limit):
                    continue
                heard = None
                if clip.task == "v1.0/backchannel":
                    heard = heard_backchannels(vad, dialogue, clip)
                    if heard is None:
                        skipped["v1.0/backchannel:below_vad_min_speech"] += 1
                        continue
                meta = write_fdb_sample(clip, dialogue, counts[clip.task], out_dir)
                if heard is not None:
                    distribution[str(meta["number"])] = backchannel_distribution(*heard)
                record(meta, meta["id"])
            for index, event in enumerate(good):
                task = event.axis
                if task not in native_axes or (limit and counts[task] >= int(limit)):
                    continue
                meta = write_native_sample(dialogue, index, event, out_dir)
                if meta is None:
                    skipped[f"{task}:no_clip"] += 1
                    continue
                record(meta, f"{task}/{meta['id']}")
    if distribution:
        (out_dir / "v1.0/backchannel" / GT_DISTRIBUTION).write_text(json.dumps(distribution))
    (out_dir / ID_LIST).write_text("".join(f"{d}\n" for d in sorted(dialogues)))
    summary = {"format": fmt, "languages": languages, "samples": dict(sorted(counts.items())),
               "skipped": dict(sorted(skipped.items())), "dialogues": len(dialogues),
               "dialogue_ids_file": ID_LIST, "dataset": str(dataset_dir)}
    (out_dir / "evalset.json").write_text(json.dumps(summary, indent=1) + "\n")
    print(f"evalset: {json.dumps(summary['samples'])} -> {out_dir}")
    return summary
