"""`duplexsynth dpo dataset=D out.dir=O`: chosen / rejected pairs for preference tuning.

For each axis event (labels consistent, clip found) the chosen sample is the reference clip
and the rejected one is the same clip with the assistant behaving wrongly:
  pause        → talks_over_pause       (a turn starts inside the user's pause)
  turn_taking  → misses_turn            (the answer is removed: silence)
  interruption → ignores_barge_in       (keeps talking past the barge-in)
  side_talk    → answers_side_talk      (takes the turn after talk addressed to someone else)
  backchannel  → takes_floor            (a full turn instead of a short acknowledgement)
  keep_speaking (user backchannel / side talk over the assistant) → yields_to_backchannel
Wrong speech is real assistant speech from the same dialogue (another of its turns). Both
sides are an edited clip timeline whose labels are derived again, so audio, frame labels and
the BayLing view agree:
  O/pairs/<id>/{user,chosen,rejected}.wav, chosen.json, rejected.json ({labels, blocks})
  O/pairs.jsonl (index), O/dpo.json (counts per axis)
`exclude=` (ids, or an evalset folder: its dialogue_ids.txt) leaves those dialogues out.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import numpy as np
import soundfile as sf

from pipeline.dataset import resolve
from pipeline.duplex_clips import (
    DuplexDialogue,
    clip_bounds,
    clip_timeline,
    iter_duplex,
    shift_event,
)
from pipeline.exports.interleave import Ratio, interleave
from pipeline.holdout import excluded_ids
from pipeline.jobs import dataset_and_out, fail
from pipeline.labels.duplex import duplex_labels
from pipeline.labels.invariants import event_violations
from pipeline.labels.tokens import DuplexTokens
from pipeline.schema import AxisEvent, Placed, Timeline

DEFECTS = {
    "pause": "talks_over_pause",
    "turn_taking": "misses_turn",
    "interruption": "ignores_barge_in",
    "side_talk": "answers_side_talk",
    "backchannel": "takes_floor",
    "keep_speaking": "yields_to_backchannel",
}
FADE_S = 0.015
WRONG_TURN_S = 2.5


def material(dialogue: DuplexDialogue, avoid: Placed | None) -> Placed | None:
    """The longest assistant turn (other than `avoid`): speech to put where it does not belong."""
    turns = [s for s in dialogue.timeline.segments
             if s.speaker == dialogue.assistant and s.kind == "turn" and len(s.words) >= 3
             and s is not avoid]
    return max(turns, key=lambda s: s.end_s - s.start_s) if turns else None


def insert_turn(timeline: Timeline, track: np.ndarray, dialogue: DuplexDialogue,
                source: Placed, at_s: float, rate: int, turn_index: int) -> Placed:
    """Copy up to WRONG_TURN_S of `source` (absolute) into the clip track at `at_s` (clip)."""
    length = min(source.end_s - source.start_s, WRONG_TURN_S, timeline.duration_s - at_s)
    audio = dialogue.cut(dialogue.assistant_audio, source.start_s, source.start_s + length)
    begin = int(round(at_s * rate))
    audio = audio[: max(0, len(track) - begin)]
    track[begin: begin + len(audio)] += audio
    shift = at_s - source.start_s
    words = [(w, round(a + shift, 4), round(b + shift, 4)) for w, a, b in source.words
             if b <= source.start_s + length]
    placed = Placed(turn=turn_index, speaker=dialogue.assistant, start_s=round(at_s, 4),
                    end_s=round(at_s + len(audio) / rate, 4), kind="turn",
                    addressee="all", words=words)
    timeline.segments.append(placed)
    return placed


def silence_span(track: np.ndarray, start_s: float, end_s: float, rate: int) -> None:
    begin, end = int(round(start_s * rate)), min(len(track), int(round(end_s * rate)))
    fade = min(int(FADE_S * rate), max(0, begin))
    if fade:
        track[begin - fade: begin] *= np.linspace(1.0, 0.0, fade, dtype=np.float32)
    track[begin:end] = 0.0


def rejected_variant(dialogue: DuplexDialogue, event: AxisEvent, start: float, end: float,
                     chosen: Timeline, track: np.ndarray, rate: int) -> tuple[Timeline,
                                                                              np.ndarray] | None:
    timeline = chosen.model_copy(deep=True)
    track = track.copy()
    local = shift_event(event, start)
    mine = [s for s in timeline.segments if s.speaker == dialogue.assistant]
    next_index = max((s.turn for s in timeline.segments), default=0) + 1
    if event.expected == "keep_speaking":
        held = next((s for s in mine if s.kind == "turn"
                     and s.start_s <= local.start_s <= s.end_s), None)
        if held is None:
            return None
        cut = round(local.start_s + 0.3, 4)
        silence_span(track, cut, held.end_s, rate)
        held.words = [w for w in held.words if w[2] <= cut]
        held.end_s, held.cut_at_s = cut, None
        return timeline, track
    source = material(dialogue, avoid=None)
    if event.axis == "turn_taking":
        gone = next((s for s in mine if s.kind == "turn"
                     and abs(s.start_s - (local.response_s or -1)) < 1e-3), None)
        if gone is None:
            return None
        silence_span(track, gone.start_s, gone.end_s, rate)
        timeline.segments.remove(gone)
        return timeline, track
    if source is None:
        return None
    if event.axis == "pause":
        at_s = local.start_s + 0.1
        for bc in [s for s in mine if s.kind == "backchannel"
                   and s.end_s > at_s and s.start_s < at_s + WRONG_TURN_S]:
            silence_span(track, bc.start_s, bc.end_s, rate)  # the wrong turn replaces it
            timeline.segments.remove(bc)
        insert_turn(timeline, track, dialogue, source, at_s, rate, next_index)
    elif event.axis == "side_talk":
        insert_turn(timeline, track, dialogue, source, local.end_s + 0.2, rate, next_index)
    elif event.axis == "backchannel":
        bc = next((s for s in mine if s.kind == "backchannel"
                   and abs(s.start_s - local.start_s) < 1e-3), None)
        if bc is None:
            return None
        silence_span(track, bc.start_s, bc.end_s, rate)
        timeline.segments.remove(bc)
        insert_turn(timeline, track, dialogue, source, local.start_s, rate, next_index)
    elif event.axis == "interruption":
        held = next((s for s in mine if s.cut_at_s is not None
                     and abs(s.cut_at_s - (local.response_s or -1)) < 1e-3), None)
        if held is None:
            return None
        for later in [s for s in mine if s.start_s > held.end_s and s is not held]:
            silence_span(track, later.start_s, later.end_s, rate)
            timeline.segments.remove(later)
        resumed = insert_turn(timeline, track, dialogue, source, held.end_s, rate, next_index)
        timeline.segments.remove(resumed)
        held.words = held.words + resumed.words
        held.end_s, held.cut_at_s = resumed.end_s, None
    else:
        return None
    return timeline, track


def write_side(folder: Path, name: str, timeline: Timeline, track: np.ndarray, rate: int,
               assistant: str, frame_s: float, ratio: Ratio, tokens: DuplexTokens,
               offset: int) -> None:
    labels = duplex_labels(timeline, assistant, frame_s)
    sf.write(folder / f"{name}.wav", np.clip(track, -1, 1), rate, subtype="PCM_16")
    record = {"labels": labels.model_dump(mode="json"),
              "blocks": interleave(labels, ratio, tokens, offset)}
    (folder / f"{name}.json").write_text(json.dumps(record, ensure_ascii=False))


def dpo_job(raw: dict) -> dict:
    dataset, out = dataset_and_out(raw, "the pairs")
    try:
        ratio = Ratio.parse(raw.get("ratio", "10:5:10"))
        tokens = DuplexTokens.from_config(raw.get("tokens"))
        exclude = excluded_ids(raw.get("exclude"))
    except ValueError as error:
        fail(error)
        raise
    offset = int(raw.get("offset_blocks", 1))
    axes = raw.get("axes") or ["pause", "turn_taking", "backchannel", "interruption",
                               "side_talk"]
    limit = raw.get("max_per_axis")
    out_dir = Path(out).expanduser().resolve()
    (out_dir / "pairs").mkdir(parents=True, exist_ok=True)
    counts: Counter[str] = Counter()
    skipped: Counter[str] = Counter()
    held_out = 0
    with open(out_dir / "pairs.jsonl", "w", encoding="utf-8") as index_file:
        for dialogue in iter_duplex(resolve(dataset)):
            if dialogue.id in exclude:
                held_out += 1
                continue
            rate, frames = dialogue.sample_rate, dialogue.labels.num_frames
            for i, event in enumerate(dialogue.labels.axis_events):
                key = "keep_speaking" if event.expected == "keep_speaking" else event.axis
                if event.axis not in axes or (limit and counts[key] >= int(limit)):
                    continue
                if event_violations(dialogue.labels, event, frames):
                    skipped[f"{key}:inconsistent_labels"] += 1
                    continue
                bounds = clip_bounds(dialogue, event, after_s=1.0, whole_response=True)
                if bounds is None:
                    skipped[f"{key}:no_clip"] += 1
                    continue
                start, end = bounds
                chosen = clip_timeline(dialogue.timeline, start, end)
                track = dialogue.cut(dialogue.assistant_audio, start, end)
                variant = rejected_variant(dialogue, event, start, end, chosen, track, rate)
                if variant is None:
                    skipped[f"{key}:no_variant"] += 1
                    continue
                pair_id = f"{dialogue.id}-{key}-{i:03d}"
                folder = out_dir / "pairs" / pair_id
                folder.mkdir(parents=True, exist_ok=True)
                sf.write(folder / "user.wav", dialogue.cut(dialogue.user_audio, start, end),
                         rate, subtype="PCM_16")
                common = (rate, dialogue.assistant, dialogue.labels.frame_s, ratio, tokens,
                          offset)
                write_side(folder, "chosen", chosen, track, *common)
                write_side(folder, "rejected", variant[0], variant[1], *common)
                index_file.write(json.dumps({
                    "id": pair_id, "axis": event.axis, "expected": event.expected,
                    "defect": DEFECTS[key], "dialogue_id": dialogue.id,
                    "clip_start_s": start, "clip_end_s": end,
                    "event": shift_event(event, start).model_dump(),
                    "path": f"pairs/{pair_id}",
                }) + "\n")
                counts[key] += 1
    summary = {"pairs": dict(counts), "skipped": dict(skipped), "ratio": str(ratio),
               "excluded_dialogues": held_out}
    (out_dir / "dpo.json").write_text(json.dumps(summary, indent=1) + "\n")
    print(f"dpo: {json.dumps(summary['pairs'])} -> {out_dir}")
    return summary
