"""BayLing-Duplex training view: `duplexsynth export view=bayling`.

Writes turn-taking and interruption samples (clips of the generated dialogues, in configurable
proportions, BayLing's 200K : 200K by default) as interleaved blocks (pipeline.exports.
interleave) plus the user / assistant audio whose 12.5 Hz frames the speech slots index:
  out/samples.jsonl   one sample per line (blocks, labels, event, audio paths)
  out/audio/<id>.user.wav, <id>.assistant.wav
  out/tokens.json     the token table used
  out/view.json       what the slots hold (text units, speech pad, layout, policy, rejects)
Each clip is re-timed so its labels follow their causes (pipeline.exports.causal) and starts
with the user's turn; its labels are derived again from the re-timed timeline.
Options (`options.bayling.*`): ratio ("10:5:10"), offset_blocks (1), mix ({turn_taking: 0.5,
interruption: 0.5}), whole_dialogues (false), seed, tokens, exclude_ids, backchannel_policy
(drop), tokenizer (null = words), speech_pad ("<pad>").
"""

from __future__ import annotations

import json
import random
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf

from pipeline.dataset import iter_rows
from pipeline.duplex_clips import (
    CONTEXT_BEFORE_S,
    DuplexDialogue,
    anchor_turn,
    clip_bounds,
    clip_timeline,
    iter_duplex,
    response_turn,
)
from pipeline.exports.causal import ClipRejected, Retimed, move_audio, retime
from pipeline.exports.interleave import (
    BACKCHANNEL_POLICIES,
    Ratio,
    Span,
    assistant_spans,
    check_backchannel_policy,
    interleave,
)
from pipeline.exports.text_units import TextUnits, load_text_units
from pipeline.labels.duplex import duplex_labels
from pipeline.labels.tokens import DuplexTokens
from pipeline.schema import AxisEvent, DuplexLabels, Timeline

SAMPLE_KINDS = ("turn_taking", "interruption")
MAX_REPLIES = {"turn_taking": 1, "interruption": 2}  # BayLing's max_epad_count per kind
DEFAULTS = {"ratio": "10:5:10", "offset_blocks": 1, "mix": None, "whole_dialogues": False,
            "seed": 0, "tokens": None, "exclude_ids": None, "backchannel_policy": "drop",
            "tokenizer": None, "speech_pad": "<pad>"}


@dataclass
class Settings:
    ratio: Ratio
    offset: int
    tokens: DuplexTokens
    mix: dict[str, float]
    policy: str
    units: TextUnits
    speech_pad: str
    exclude: set[str]
    whole: bool
    seed: int

    @classmethod
    def from_options(cls, options: dict) -> Settings:
        """Every option checked before any work; errors name the key."""
        unknown = sorted(set(options) - set(DEFAULTS))
        if unknown:
            raise ValueError(f"options.bayling: unknown key(s) {unknown}; "
                             f"allowed: {sorted(DEFAULTS)}")
        raw = {**DEFAULTS, **{k: v for k, v in options.items() if v is not None}}
        offset = int(raw["offset_blocks"])
        if offset < 1:
            raise ValueError("options.bayling.offset_blocks: must be >= 1 (the user stream "
                             "runs behind the assistant stream)")
        pad = raw["speech_pad"]
        if not isinstance(pad, str) or not pad.strip():
            raise ValueError("options.bayling.speech_pad: must be a non-empty string")
        mix = dict(raw["mix"] or {"turn_taking": 0.5, "interruption": 0.5})
        choose_counts({k: 1 for k in SAMPLE_KINDS}, mix)
        return cls(
            ratio=Ratio.parse(raw["ratio"]), offset=offset,
            tokens=DuplexTokens.from_config(raw["tokens"]), mix=mix,
            policy=check_backchannel_policy(str(raw["backchannel_policy"]),
                                            "options.bayling.backchannel_policy"),
            units=load_text_units(raw["tokenizer"]), speech_pad=pad,
            exclude=set(raw["exclude_ids"] or []), whole=bool(raw["whole_dialogues"]),
            seed=int(raw["seed"]),
        )


def choose_counts(available: dict[str, int], mix: dict[str, float]) -> dict[str, int]:
    """Largest counts in the asked proportions that the available samples allow."""
    weights = {k: float(mix.get(k, 0.0)) for k in SAMPLE_KINDS}
    if set(mix) - set(SAMPLE_KINDS) or any(w < 0 for w in weights.values()) \
            or sum(weights.values()) <= 0:
        raise ValueError(f"options.bayling.mix: {mix} needs non-negative shares of "
                         f"{list(SAMPLE_KINDS)}")
    total = min(available[k] / w for k, w in weights.items() if w > 0)
    return {k: int(total * w + 1e-9) for k, w in weights.items()}


def clip_start(dialogue: DuplexDialogue, event: AxisEvent | None) -> float:
    """Where a sample starts: just before the other party's turn it answers (clean start)."""
    if event is None:
        return 0.0
    anchor = anchor_turn(dialogue, event)
    if anchor is None or anchor.speaker == dialogue.assistant:
        raise ClipRejected("assistant_opens")
    return round(max(0.0, anchor.start_s - CONTEXT_BEFORE_S), 4)


def clip_end(dialogue: DuplexDialogue, event: AxisEvent, end: float) -> float:
    """Where a sample ends: after the reply it teaches, before the assistant's next turn.

    A turn-taking sample then holds one reply and an interruption sample two (the cut reply
    and the answer), which is what BayLing's decoder expects (max_epad_count 1 and 2).
    """
    answer = response_turn(dialogue, event)
    after = answer.end_s if answer is not None else event.start_s
    later = [s.start_s for s in dialogue.timeline.segments
             if s.speaker == dialogue.assistant and s.start_s > after + 1e-3]
    if later:
        end = min(end, max(after + 0.05, min(later) - 0.05))
    return round(end, 4)


def reply_spans(labels: DuplexLabels, timeline: Timeline, script: dict, settings: Settings
                ) -> list[Span]:
    """Spans of the labels with the text units each reply lays out (the planned text)."""
    spans = assistant_spans(labels)
    own = [s for s in timeline.segments if s.speaker == labels.assistant]
    for span in spans:
        seg = min(own, key=lambda s: abs(s.start_s / labels.frame_s - span.start))
        turns = script.get("turns") or []
        planned = turns[seg.turn]["text"] if 0 <= seg.turn < len(turns) else ""
        span.text = settings.units.split(planned or " ".join(w[0] for w in seg.words))
    return spans


def sample(dialogue: DuplexDialogue, script: dict, event: AxisEvent | None,
           settings: Settings) -> tuple[dict, np.ndarray, np.ndarray]:
    """One re-timed, interleaved sample: (record without paths, user audio, assistant audio)."""
    start = clip_start(dialogue, event)
    if event is None:
        end = dialogue.timeline.duration_s
    else:
        bounds = clip_bounds(dialogue, event, after_s=0.5, whole_response=True)
        if bounds is None:
            raise ClipRejected("no_clip")
        end = clip_end(dialogue, event, bounds[1])
    clipped = clip_timeline(dialogue.timeline, start, end)
    frame_s = dialogue.labels.frame_s
    done = retime(clipped, dialogue.assistant, frame_s, settings.ratio.user, settings.offset,
                  keep_backchannels=settings.policy != "drop")
    rate, timeline = dialogue.sample_rate, done.timeline
    tracks = {}
    for i, speaker in enumerate(dialogue.speakers):
        mine = [j for j in done.kept if clipped.segments[j].speaker == speaker]
        tracks[speaker] = move_audio(dialogue.cut(dialogue.channels[:, i], start, end),
                                     clipped.segments, done.shifts, mine, rate,
                                     timeline.duration_s)
    user = sum((t for s, t in tracks.items() if s != dialogue.assistant),
               np.zeros(int(round(timeline.duration_s * rate)), dtype=np.float32))
    labels = duplex_labels(timeline, dialogue.assistant, frame_s)
    new_event = None if event is None else moved_event(event, start, clipped, done, labels)
    problems: list[str] = []
    spans = reply_spans(labels, timeline, script, settings)
    replies = sum(s.kind == "turn" for s in spans)
    if event is not None and replies > MAX_REPLIES[event.axis]:
        raise ClipRejected("extra_reply")  # two assistant turns in a row before the answer
    blocks = interleave(labels, settings.ratio, settings.tokens, settings.offset, spans,
                        settings.policy, settings.speech_pad, problems)
    if problems:
        raise ClipRejected(problems[0])
    if settings.units.kind == "tokenizer":
        for block in blocks:
            block["text_ids"] = settings.units.ids(block["text"])
    record = {
        "id": None, "dialogue_id": dialogue.id, "kind": None, "language": dialogue.language,
        "clip_start_s": start, "clip_end_s": end, "duration_s": timeline.duration_s,
        "retimed_s": round(timeline.duration_s - (end - start), 4),
        "frame_s": frame_s, "ratio": str(settings.ratio), "offset_blocks": settings.offset,
        "text_unit": settings.units.kind, "speech_pad": settings.speech_pad,
        "sample_rate": rate, "event": new_event,
        "replies": [{"start_frame": s.start, "end_frame": s.end, "cut": s.yield_at is not None,
                     "kind": s.kind, "text": settings.units.decode(s.placed)} for s in spans
                    if s.kind == "turn" or settings.policy == "token"],
        "labels": labels.model_dump(mode="json"), "blocks": blocks,
    }
    return record, user, tracks[dialogue.assistant]


def moved_event(event: AxisEvent, start: float, clipped: Timeline, done: Retimed,
                labels: DuplexLabels) -> dict:
    """The sample's axis event in the re-timed clip (read from its re-derived labels)."""
    t = event.start_s - start
    edge = "end_s" if event.axis == "turn_taking" else "start_s"
    index = next((i for i in done.kept if clipped.segments[i].speaker != labels.assistant
                  and abs(getattr(clipped.segments[i], edge) - t) < 1e-3), None)
    if index is None:
        raise ClipRejected("event_lost")
    t += done.shifts[index]
    found = next((e for e in labels.axis_events
                  if e.axis == event.axis and abs(e.start_s - t) < 1e-3), None)
    if found is None:
        raise ClipRejected("event_lost")
    return found.model_dump()


def export(dataset: Path, out_dir: Path, options: dict) -> dict:
    from pipeline.jobs import fail

    try:
        settings = Settings.from_options(options)
    except ValueError as error:
        fail(error)
        raise
    candidates: dict[str, list[tuple[str, int]]] = {k: [] for k in SAMPLE_KINDS}
    scripts: dict[str, dict] = {}
    for row in iter_rows(dataset, "dialogues", columns=["id", "script", "duplex"]):
        if row["id"] in settings.exclude or not row.get("duplex"):
            continue
        scripts[row["id"]] = row["script"] or {}
        for index, event in enumerate(row["duplex"].get("axis_events") or []):
            if event["axis"] in candidates:
                candidates[event["axis"]].append((row["id"], index))
    counts = choose_counts({k: len(v) for k, v in candidates.items()}, settings.mix)
    rng = random.Random(settings.seed)
    chosen = {ref: kind for kind, refs in candidates.items()
              for ref in rng.sample(refs, counts[kind])}
    (out_dir / "audio").mkdir(parents=True, exist_ok=True)
    written = {k: 0 for k in (*SAMPLE_KINDS, "dialogue")}
    rejected: Counter[str] = Counter()
    with open(out_dir / "samples.jsonl", "w", encoding="utf-8") as out:
        for dialogue in iter_duplex(dataset):
            if dialogue.id in settings.exclude:
                continue
            jobs = [(f"{dialogue.id}-{kind}-{i:03d}", kind, event)
                    for i, event in enumerate(dialogue.labels.axis_events)
                    if (kind := chosen.get((dialogue.id, i)))]
            if settings.whole:
                jobs.append((dialogue.id, "dialogue", None))
            for sample_id, kind, event in jobs:
                try:
                    record, user, assistant = sample(dialogue, scripts[dialogue.id], event,
                                                     settings)
                except ClipRejected as why:
                    rejected[f"{kind}:{why.reason}"] += 1
                    continue
                paths = {side: f"audio/{sample_id}.{side}.wav" for side in ("user", "assistant")}
                for side, audio in (("user", user), ("assistant", assistant)):
                    sf.write(out_dir / paths[side], np.clip(audio, -1.0, 1.0),
                             dialogue.sample_rate, subtype="PCM_16")
                record.update(id=sample_id, kind=kind, audio=paths)
                out.write(json.dumps(record, ensure_ascii=False) + "\n")
                written[kind] += 1
    (out_dir / "tokens.json").write_text(json.dumps(settings.tokens.as_dict(), indent=2) + "\n")
    view = {
        "ratio": str(settings.ratio), "offset_blocks": settings.offset,
        "speech_pad": settings.speech_pad, "backchannel_policy": settings.policy,
        "backchannel_policies": BACKCHANNEL_POLICIES, **settings.units.describe(),
        "layout": "block b: user frames [(b-offset)*x, (b-offset+1)*x), text slots, assistant "
                  "frames [b*x, (b+1)*x); text slot t covers assistant frames [t*k, (t+1)*k)",
        "samples": written, "rejected": dict(sorted(rejected.items())),
    }
    (out_dir / "view.json").write_text(json.dumps(view, indent=2, ensure_ascii=False) + "\n")
    return {"samples": written, "available": {k: len(v) for k, v in candidates.items()},
            "rejected": dict(sorted(rejected.items())), "ratio": str(settings.ratio),
            "text_unit": settings.units.kind, "dir": str(out_dir)}
