"""RTTM references for diarization (one file per dialogue plus `all.rttm`).

A speaker's activity is each placed utterance from its start to where its audio stops
(`end_s`, the cut if it was interrupted), in seconds of the mix; speaker labels are the
dialogue's own ids (A, B…), which is all a DER scorer needs. Beside them: UEM files (the
scored region: the whole dialogue), the mixes as 16 kHz audio, and a NeMo diarization
manifest (`audio_filepath`, `offset`, `duration`, `num_speakers`, `rttm_filepath`,
`uem_filepath`) so NeMo's and pyannote's evaluation tools read the same references.
"""

from __future__ import annotations

from pathlib import Path

from pipeline.dataset import iter_dialogues
from pipeline.exports.common import (
    cell_audio,
    check_options,
    language_filter,
    write_audio,
    write_jsonl,
)

DEFAULTS = {"audio": True, "audio_format": "flac", "sample_rate": 16000, "languages": None}


def rttm_lines(dialogue_id: str, timeline: dict) -> list[str]:
    lines = []
    for placed in sorted(timeline["segments"], key=lambda p: (p["start_s"], p["speaker"])):
        duration = placed["end_s"] - placed["start_s"]
        if duration > 0 and placed["words"]:
            lines.append(f"SPEAKER {dialogue_id} 1 {placed['start_s']:.3f} {duration:.3f} "
                         f"<NA> <NA> {placed['speaker']} <NA> <NA>")
    return lines


def export(dataset: Path, out_dir: Path, options: dict) -> dict:
    opts = check_options("rttm", options, DEFAULTS)
    wanted = language_filter(opts)
    rate, ext = int(opts["sample_rate"]), opts["audio_format"]
    columns = ["id", "language", "timeline", "num_speakers", "duration_s"]
    columns += ["audio"] if opts["audio"] else []
    everything: list[str] = []
    manifest: list[dict] = []
    seconds = 0.0
    for row in iter_dialogues(dataset, columns=columns):
        if wanted is not None and row["language"] not in wanted:
            continue
        lines = rttm_lines(row["id"], row["timeline"])
        everything.extend(lines)
        rttm = out_dir / "rttm" / f"{row['id']}.rttm"
        uem = out_dir / "uem" / f"{row['id']}.uem"
        for path, text in ((rttm, "\n".join(lines)),
                           (uem, f"{row['id']} 1 0.000 {row['duration_s']:.3f}")):
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text + "\n", encoding="utf-8")
        seconds += row["duration_s"]
        if opts["audio"]:
            relative = f"audio/{row['id']}.{ext}"
            duration = write_audio(out_dir / relative, cell_audio(row["audio"], rate), rate, ext)
            manifest.append({"audio_filepath": relative, "offset": 0, "duration": duration,
                             "label": "infer", "text": "-", "lang": row["language"],
                             "num_speakers": row["num_speakers"],
                             "rttm_filepath": f"rttm/{row['id']}.rttm",
                             "uem_filepath": f"uem/{row['id']}.uem"})
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "all.rttm").write_text("\n".join(everything) + "\n", encoding="utf-8")
    if manifest:
        write_jsonl(out_dir / "diarization_manifest.json", manifest)
    return {"files": len({line.split()[1] for line in everything}), "turns": len(everything),
            "hours": round(seconds / 3600, 4), "rttm": "all.rttm"}
