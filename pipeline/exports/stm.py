"""References for cpWER / tcpWER: STM and SegLST (meeteval's JSON), one line per utterance.

STM lines are `<dialogue> 1 <speaker> <begin> <end> <words>` sorted by begin time, with the
normalised text (textnorm.py) because WER is scored on normalised words; SegLST entries
(`session_id`, `speaker`, `start_time`, `end_time`, `words`) also keep `words_original`.
Times are seconds of the mix; speakers are voice ids (the segments' `speaker`), so the same
voice is one speaker across sessions.
"""

from __future__ import annotations

import json
from pathlib import Path

from pipeline.dataset import iter_segments
from pipeline.exports.common import check_options, language_filter, normalizer

DEFAULTS = {"stm": True, "seglst": True, "normalize": {}, "languages": None}


def export(dataset: Path, out_dir: Path, options: dict) -> dict:
    opts = check_options("stm", options, DEFAULTS)
    norm = normalizer("stm.normalize", opts["normalize"])
    wanted = language_filter(opts)
    columns = ["dialogue_id", "speaker", "text", "start_s", "end_s", "language"]
    segments = []
    for row in iter_segments(dataset, columns=columns):
        if wanted is not None and row["language"] not in wanted:
            continue
        words = norm(row["text"], row["language"]) if norm else " ".join(row["text"].split())
        if words:
            segments.append({"session_id": row["dialogue_id"], "speaker": row["speaker"],
                             "start_time": round(row["start_s"], 3),
                             "end_time": round(row["end_s"], 3), "words": words,
                             "words_original": row["text"], "language": row["language"]})
    segments.sort(key=lambda s: (s["session_id"], s["start_time"], s["speaker"]))
    out_dir.mkdir(parents=True, exist_ok=True)
    if opts["stm"]:
        lines = [f"{s['session_id']} 1 {s['speaker']} {s['start_time']:.3f} "
                 f"{s['end_time']:.3f} {s['words']}" for s in segments]
        (out_dir / "ref.stm").write_text("\n".join(lines) + "\n", encoding="utf-8")
    if opts["seglst"]:
        (out_dir / "ref.seglst.json").write_text(
            json.dumps(segments, ensure_ascii=False, indent=1), encoding="utf-8")
    seconds = sum(s["end_time"] - s["start_time"] for s in segments)
    return {"segments": len(segments), "sessions": len({s["session_id"] for s in segments}),
            "speech_hours": round(seconds / 3600, 4), "normalized": norm is not None}
