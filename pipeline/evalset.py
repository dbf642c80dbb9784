"""`duplexsynth evalset dataset=D out.dir=O`: Full-Duplex-Bench style evaluation sets.

One folder per sample, grouped by axis (pause, turn_taking, backchannel, interruption,
side_talk):
  O/<axis>/<sample id>/input.wav       what the model hears: every party but the assistant
  O/<axis>/<sample id>/reference.wav   the reference assistant channel (for checking the scorer)
  O/<axis>/<sample id>/metadata.json   event window, expected behaviour, the user turn around
                                       it, reference speech and backchannel times (clip seconds)
  O/manifest.jsonl                     one line per sample; O/evalset.json counts per axis
A model under test writes `output.wav` (time-synchronous with input.wav) beside each input;
`duplexsynth score` reads them. Hold-out: build evalsets from a dataset generated with its own
`seed=` (scenario ids differ), and pass the evalset's dialogue ids to the training views with
`options.<view>.exclude_ids` if they share a dataset.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import soundfile as sf

from pipeline.duplex_clips import (
    DuplexDialogue,
    anchor_turn,
    clip_bounds,
    clip_labels,
    iter_duplex,
    shift_event,
)
from pipeline.jobs import dataset_and_out, fail
from pipeline.labels.invariants import event_violations
from pipeline.schema import AxisEvent, FrameState, Placed

AXES = ("pause", "turn_taking", "backchannel", "interruption", "side_talk")
AFTER_S = {"pause": 1.0, "turn_taking": 0.5, "backchannel": 0.5, "interruption": 3.0,
           "side_talk": 1.5}


def user_turn(dialogue: DuplexDialogue, event: AxisEvent) -> Placed | None:
    """The other party's turn whose speech the event is about (the barge-in for interruptions)."""
    if event.axis in ("interruption", "side_talk") or event.expected == "keep_speaking":
        return next((s for s in dialogue.timeline.segments if s.speaker == event.speaker
                     and abs(s.start_s - event.start_s) < 1e-3), None)
    return anchor_turn(dialogue, event)


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


def build_sample(dialogue: DuplexDialogue, index: int, event: AxisEvent,
                 out_dir: Path) -> dict | None:
    turn = user_turn(dialogue, event)
    if turn is None:
        return None
    after = AFTER_S[event.axis] + max(0.0, turn.end_s - event.end_s)
    bounds = clip_bounds(dialogue, event, after_s=after, whole_response=False)
    if bounds is None:
        return None
    start, end = bounds
    labels = clip_labels(dialogue, start, end)
    local = shift_event(event, start)
    sample_id = f"{dialogue.id}-{event.axis}-{index:03d}"
    folder = out_dir / event.axis / sample_id
    folder.mkdir(parents=True, exist_ok=True)
    sf.write(folder / "input.wav", dialogue.cut(dialogue.user_audio, start, end),
             dialogue.sample_rate, subtype="PCM_16")
    sf.write(folder / "reference.wav", dialogue.cut(dialogue.assistant_audio, start, end),
             dialogue.sample_rate, subtype="PCM_16")
    bc_times = [round(e.response_s - start, 4) for e in dialogue.labels.axis_events
                if e.expected == "backchannel" and e.response_s is not None
                and start <= e.response_s < end]
    meta = {
        "id": sample_id, "axis": event.axis, "expected": event.expected,
        "dialogue_id": dialogue.id, "language": dialogue.language,
        "assistant": dialogue.assistant, "sample_rate": dialogue.sample_rate,
        "clip_start_s": start, "clip_end_s": end, "duration_s": round(end - start, 4),
        "event": local.model_dump(),
        "user_turn": {"speaker": turn.speaker, "addressee": turn.addressee,
                      "start_s": round(max(0.0, turn.start_s - start), 4),
                      "end_s": round(min(end, turn.end_s) - start, 4), "text": turn.text},
        "reference": {
            "speech": reference_spans(labels, (FrameState.SPEAK, FrameState.BACKCHANNEL)),
            "backchannel_s": bc_times,
        },
        "frame_s": labels.frame_s,
    }
    (folder / "metadata.json").write_text(json.dumps(meta, ensure_ascii=False, indent=1))
    return {"id": sample_id, "axis": event.axis, "expected": event.expected,
            "path": f"{event.axis}/{sample_id}", "dialogue_id": dialogue.id}


def evalset_job(raw: dict) -> dict:
    dataset, out = dataset_and_out(raw, "the evaluation sets")
    axes = raw.get("axes") or list(AXES)
    unknown = [a for a in axes if a not in AXES]
    if unknown:
        fail(ValueError(f"axes: {unknown} unknown; allowed: {list(AXES)}"))
    limit = raw.get("max_per_axis")
    out_dir = Path(out).expanduser().resolve()
    out_dir.mkdir(parents=True, exist_ok=True)
    counts: Counter[str] = Counter()
    skipped: Counter[str] = Counter()
    dialogues: set[str] = set()
    with open(out_dir / "manifest.jsonl", "w", encoding="utf-8") as manifest:
        for dialogue in iter_duplex(Path(dataset).expanduser().resolve()):
            frames = dialogue.labels.num_frames
            for index, event in enumerate(dialogue.labels.axis_events):
                if event.axis not in axes or (limit and counts[event.axis] >= int(limit)):
                    continue
                if event_violations(dialogue.labels, event, frames):
                    skipped[f"{event.axis}:inconsistent_labels"] += 1
                    continue
                record = build_sample(dialogue, index, event, out_dir)
                if record is None:
                    skipped[f"{event.axis}:no_clip"] += 1
                    continue
                manifest.write(json.dumps(record) + "\n")
                counts[event.axis] += 1
                dialogues.add(dialogue.id)
    summary = {"samples": {a: counts[a] for a in axes}, "skipped": dict(skipped),
               "dialogue_ids": sorted(dialogues), "dataset": str(dataset)}
    (out_dir / "evalset.json").write_text(json.dumps(summary, indent=1) + "\n")
    print(f"evalset: {json.dumps(summary['samples'])} -> {out_dir}")
    return summary
