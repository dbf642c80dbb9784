"""BayLing-Duplex training view: `duplexsynth export view=bayling`.

Writes turn-taking and interruption samples (clips of the generated dialogues, in configurable
proportions, BayLing's 200K : 200K by default) as interleaved blocks (pipeline.exports.
interleave) plus the user / assistant audio whose 12.5 Hz frames the speech slots index:
  out/samples.jsonl   one sample per line (blocks, labels, event, audio paths)
  out/audio/<id>.user.wav, <id>.assistant.wav
  out/tokens.json     the token table used
Options (`options.bayling.*`): ratio ("10:5:10"), offset_blocks (1), mix ({turn_taking: 0.5,
interruption: 0.5}), whole_dialogues (false: also write every dialogue whole), seed, tokens.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

import soundfile as sf

from pipeline.duplex_clips import clip_bounds, clip_labels, iter_duplex, shift_event
from pipeline.exports.interleave import Ratio, interleave
from pipeline.labels.tokens import DuplexTokens

SAMPLE_KINDS = ("turn_taking", "interruption")
KNOWN = {"ratio", "offset_blocks", "mix", "whole_dialogues", "seed", "tokens", "exclude_ids"}


def choose_counts(available: dict[str, int], mix: dict[str, float]) -> dict[str, int]:
    """Largest counts in the asked proportions that the available samples allow."""
    weights = {k: float(mix.get(k, 0.0)) for k in SAMPLE_KINDS}
    if any(w < 0 for w in weights.values()) or sum(weights.values()) <= 0:
        raise ValueError(f"mix: {mix} needs non-negative shares of {list(SAMPLE_KINDS)}")
    total = min(available[k] / w for k, w in weights.items() if w > 0)
    return {k: int(total * w + 1e-9) for k, w in weights.items()}


def export(dataset: Path, out_dir: Path, options: dict) -> dict:
    unknown = sorted(set(options) - KNOWN)
    if unknown:
        raise ValueError(f"options.bayling: unknown key(s) {unknown}; allowed: {sorted(KNOWN)}")
    ratio = Ratio.parse(options.get("ratio", "10:5:10"))
    offset = int(options.get("offset_blocks", 1))
    tokens = DuplexTokens.from_config(options.get("tokens"))
    mix = dict(options.get("mix") or {"turn_taking": 0.5, "interruption": 0.5})
    exclude = set(options.get("exclude_ids") or [])
    candidates: dict[str, list[tuple[str, int]]] = {k: [] for k in SAMPLE_KINDS}
    for dialogue in iter_duplex(dataset):
        if dialogue.id in exclude:
            continue
        for index, event in enumerate(dialogue.labels.axis_events):
            if event.axis in candidates:
                candidates[event.axis].append((dialogue.id, index))
    counts = choose_counts({k: len(v) for k, v in candidates.items()}, mix)
    rng = random.Random(int(options.get("seed", 0)))
    chosen = {ref: kind for kind, refs in candidates.items()
              for ref in rng.sample(refs, counts[kind])}
    (out_dir / "audio").mkdir(parents=True, exist_ok=True)
    written = {k: 0 for k in (*SAMPLE_KINDS, "dialogue")}
    skipped = 0
    with open(out_dir / "samples.jsonl", "w", encoding="utf-8") as out:
        for dialogue in iter_duplex(dataset):
            if dialogue.id in exclude:
                continue
            jobs = [(f"{dialogue.id}-{kind}-{i:03d}", kind, event)
                    for i, event in enumerate(dialogue.labels.axis_events)
                    if (kind := chosen.get((dialogue.id, i)))]
            if options.get("whole_dialogues"):
                jobs.append((dialogue.id, "dialogue", None))
            for sample_id, kind, event in jobs:
                if event is None:
                    bounds: tuple[float, float] | None = (0.0, dialogue.timeline.duration_s)
                else:
                    bounds = clip_bounds(dialogue, event, after_s=0.5, whole_response=True)
                if bounds is None:
                    skipped += 1
                    continue
                start, end = bounds
                labels = clip_labels(dialogue, start, end)
                paths = {}
                for side, audio in (("user", dialogue.user_audio),
                                    ("assistant", dialogue.assistant_audio)):
                    paths[side] = f"audio/{sample_id}.{side}.wav"
                    sf.write(out_dir / paths[side], dialogue.cut(audio, start, end),
                             dialogue.sample_rate, subtype="PCM_16")
                record = {
                    "id": sample_id, "dialogue_id": dialogue.id, "kind": kind,
                    "language": dialogue.language, "clip_start_s": start, "clip_end_s": end,
                    "frame_s": labels.frame_s, "ratio": str(ratio), "offset_blocks": offset,
                    "audio": paths, "sample_rate": dialogue.sample_rate,
                    "event": None if event is None else shift_event(event, start).model_dump(),
                    "labels": labels.model_dump(mode="json"),
                    "blocks": interleave(labels, ratio, tokens, offset),
                }
                out.write(json.dumps(record, ensure_ascii=False) + "\n")
                written[kind] += 1
    (out_dir / "tokens.json").write_text(json.dumps(tokens.as_dict(), indent=2) + "\n")
    return {"samples": written, "available": {k: len(v) for k, v in candidates.items()},
            "skipped": skipped, "ratio": str(ratio), "dir": str(out_dir)}
