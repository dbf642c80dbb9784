"""Moshi view: `duplexsynth export view=moshi` in moshi-finetune's data layout.

  out/moshi.jsonl                 {"path": "<out>/data_stereo/<id>.wav", "duration": s} per line
  out/data_stereo/<id>.wav        stereo: left = assistant (Moshi), right = every other party
  out/data_stereo/<id>.json       {"alignments": [[word, [start_s, end_s], "SPEAKER_MAIN" |
                                  "SPEAKER_OTHER"], ...]} sorted by start, plus "duplexsynth":
                                  per-frame text (word at its onset frame, EPAD on the frame
                                  before a word starts, PAD elsewhere) and the frame labels.
moshi-finetune trains with keep_main_only=True, so only SPEAKER_MAIN words feed the text
stream; the others are kept for reference. moshi-finetune reads the manifest with
`sphn.dataset_jsonl`, which opens each `path` as written, relative to the trainer's working
directory (not the manifest's folder), so paths are absolute by default; `paths: relative`
writes `data_stereo/<id>.wav` for a trainer run from out/. Options: sample_rate (default: the
dataset's; Mimi reads 24 kHz and resamples on load), paths, tokens, exclude_ids.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import soundfile as sf

from pipeline.duplex_clips import iter_duplex
from pipeline.labels.tokens import DuplexTokens
from pipeline.render import resample
from pipeline.schema import DuplexLabels

KNOWN = {"sample_rate", "tokens", "exclude_ids", "paths"}
PATH_MODES = ("absolute", "relative")


def text_frames(labels: DuplexLabels, tokens: DuplexTokens) -> list[str]:
    """Moshi's inner-monologue layout at the label frame rate: EPAD means 'a word starts next'."""
    frames = [tokens.pad] * labels.num_frames
    for word, start, _ in labels.words:
        f = min(labels.num_frames - 1, int(start / labels.frame_s + 1e-9))
        frames[f] = word if frames[f] in (tokens.pad, tokens.epad) else f"{frames[f]} {word}"
        if f > 0 and frames[f - 1] == tokens.pad:
            frames[f - 1] = tokens.epad
    return frames


def check(options: dict) -> tuple[DuplexTokens, str]:
    """The options, checked before any work; errors name the key."""
    unknown = sorted(set(options) - KNOWN)
    if unknown:
        raise ValueError(f"options.moshi: unknown key(s) {unknown}; allowed: {sorted(KNOWN)}")
    tokens = DuplexTokens.from_config(options.get("tokens"))
    mode = options.get("paths") or "absolute"
    if mode not in PATH_MODES:
        raise ValueError(f"options.moshi.paths: {mode!r} is unknown; allowed: {list(PATH_MODES)}")
    return tokens, mode


def export(dataset: Path, out_dir: Path, options: dict) -> dict:
    from pipeline.jobs import fail

    try:
        tokens, mode = check(options)
    except ValueError as error:
        fail(error)
        raise
    exclude = set(options.get("exclude_ids") or [])
    (out_dir / "data_stereo").mkdir(parents=True, exist_ok=True)
    count, seconds = 0, 0.0
    with open(out_dir / "moshi.jsonl", "w", encoding="utf-8") as manifest:
        for dialogue in iter_duplex(dataset):
            if dialogue.id in exclude:
                continue
            rate = int(options.get("sample_rate") or dialogue.sample_rate)
            stereo = np.stack([resample(dialogue.assistant_audio, dialogue.sample_rate, rate),
                               resample(dialogue.user_audio, dialogue.sample_rate, rate)], axis=1)
            stereo = np.clip(stereo, -1.0, 1.0)
            wav = out_dir / "data_stereo" / f"{dialogue.id}.wav"
            sf.write(wav, stereo, rate, subtype="PCM_16")
            alignments = [
                [word, [round(a, 3), round(b, 3)],
                 "SPEAKER_MAIN" if seg.speaker == dialogue.assistant else "SPEAKER_OTHER"]
                for seg in dialogue.timeline.segments for word, a, b in seg.words
            ]
            alignments.sort(key=lambda item: item[1][0])
            labels = dialogue.labels
            side = {"alignments": alignments, "duplexsynth": {
                "assistant": dialogue.assistant, "frame_s": labels.frame_s,
                "text_frames": text_frames(labels, tokens),
                "state": [str(s) for s in labels.state], "event": [str(e) for e in labels.event],
            }}
            wav.with_suffix(".json").write_text(json.dumps(side, ensure_ascii=False))
            duration = len(stereo) / rate
            path = str(wav.resolve()) if mode == "absolute" else f"data_stereo/{wav.name}"
            manifest.write(json.dumps({"path": path,
                                       "duration": round(duration, 4)}) + "\n")
            count += 1
            seconds += duration
    return {"dialogues": count, "hours": round(seconds / 3600, 4), "dir": str(out_dir)}
