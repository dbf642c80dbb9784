"""RTTM references for diarization (one file per dialogue plus `all.rttm`).

A speaker's activity is each placed utterance from its start to where its audio stops
(`end_s`, the cut if it was interrupted), in seconds of the mix; speaker labels are the
voice ids (the dataset's one speaker identity, no spaces). The channel field is
`options.rttm.channel`, 0 by default: Lhotse's `SupervisionSet.from_rttm` takes it as the
0-based channel of the recording, so 0 validates against the mono mixes (DER scorers ignore
the field; set 1 for the NIST habit). Beside them: UEM files (the
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
    speaker_key,
    write_audio,
    write_jsonl,
)

DEFAULTS = {"audio": True, "audio_format": "flac", "sample_rate": 16000, "languages": None,
            "channel": 0}


def rttm_lines(dialogue_id: str, timeline: dict, names: dict[str, str] | None = None,
               channel: int = 0) -> list[str]:
    """One SPEAKER line per placed utterance with words; `names` maps the dialogue's speaker
    ids to dataset-wide names (voice ids)."""
    names = names or {}
    lines = []
    for placed in sorted(timeline["segments"], key=lambda p: (p["start_s"], p["speaker"])):
        duration = placed["end_s"] - placed["start_s"]
        if duration > 0 and placed["words"]:
            speaker = names.get(placed["speaker"], placed["speaker"])
            lines.append(f"SPEAKER {dialogue_id} {channel} {placed['start_s']:.3f} "
                         f"{duration:.3f} <NA> <NA> {speaker} <NA> <NA>")
    return lines


def export(dataset: Path, out_dir: Path, options: dict) -> dict:
    opts = check_options("rttm", options, DEFAULTS)
    wanted = language_filter(opts)
    rate, ext = int(opts["sample_rate"]), opts["audio_format"]
    columns = ["id", "language", "timeline", "num_speakers", "duration_s", "speakers"]
    columns += ["audio"] if opts["audio"] else []
    everything: list[str] = []
    manifest: list[dict] = []
    seconds = 0.0
    for row in iter_dialogues(dataset, columns=columns):
        if wanted is not None and row["language"] not in wanted:
            continue
        names = {s["id"]: speaker_key(s.get("voice") or {}, s["id"]) for s in row["speakers"]}
        lines = rttm_lines(row["id"], row["timeline"], names, int(opts["channel"]))
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
