"""NeMo ASR manifests: utterance segments and ≤ 30 s conversation windows with `<sc>`.

Layout under out_dir (audio beside the manifests, paths relative to the manifest's folder,
which is how NeMo resolves them):
  segments_manifest.json   one line per utterance (audio cut from the mix, crosstalk kept)
  windows_manifest.json    one line per window; speakers joined by `<sc>` (windows.py)
  audio/segments/<dialogue>/<segment>.flac, audio/windows/<dialogue>/<window>.flac
  audio/dialogues/<dialogue>.flac   with `offsets=true`: entries point into the mix + `offset`
  tarred/<kind>/audio_N.tar, tarred_audio_manifest.json, sharded_manifests/manifest_N.json
                           with `tarred=true` (NeMo's tarred layout, `shard_id` per entry)
Each line: `audio_filepath`, `duration` (s), `text` (normalised), `text_original`, `lang`,
`speaker` (the voice id; for a window the speaker with most words), `dialogue_id`,
`start_s` (position in the dialogue); segments add `speaker_label` (the dialogue's own id),
windows add `speakers` (every speaker with words in the window, first appearance order)
and `speaker_changes`.
"""

from __future__ import annotations

import io
import json
import tarfile
from collections import Counter
from pathlib import Path

import numpy as np

from pipeline.dataset import iter_dialogues, iter_segments
from pipeline.exports.common import (
    cell_audio,
    check_options,
    language_filter,
    normalizer,
    read_jsonl,
    speaker_names,
    write_audio,
    write_jsonl,
)
from pipeline.exports.windows import cut_windows, speaker_runs
from pipeline.textnorm import TextNormalizer

DEFAULTS = {
    "segments": True,          # write segments_manifest.json
    "windows": True,           # write windows_manifest.json
    "window_s": 30.0,          # longest window (s)
    "order": "sot",            # sot: utterances by start time | words: every word by start time
    "sc_token": "<sc>",        # speaker-change token between speakers in a window
    "audio_format": "flac",    # flac | wav (16-bit PCM)
    "sample_rate": 16000,      # Hz; NeMo's FastConformer recipes expect 16 kHz mono
    "offsets": False,          # true: one file per dialogue, entries carry `offset`
    "tarred": False,           # also write NeMo's tarred layout (audio_N.tar + manifests)
    "num_shards": 4,           # tar files per manifest when tarred
    "languages": None,         # keep only these languages (list), null = all
    "normalize": {},           # TextNormalizer keys (lowercase, punctuation, numbers, keep)
}


def export(dataset: Path, out_dir: Path, options: dict) -> dict:
    opts = check_options("nemo", options, DEFAULTS)
    norm = normalizer("nemo.normalize", opts["normalize"])
    if opts["order"] not in ("sot", "words"):
        raise ValueError(f"options.nemo.order: {opts['order']!r} is unknown; allowed: sot, words")
    if opts["tarred"] and opts["offsets"]:
        raise ValueError("options.nemo.tarred: NeMo tarred shards hold one file per entry; "
                         "set options.nemo.offsets=false to use tarred=true")
    out_dir.mkdir(parents=True, exist_ok=True)
    names = speaker_names(dataset)
    summary: dict = {"dataset": str(dataset), "order": opts["order"],
                     "normalized": norm is not None}
    manifests = []
    if opts["offsets"]:
        _write_dialogue_files(dataset, out_dir, opts)
    if opts["segments"]:
        path = out_dir / "segments_manifest.json"
        skipped: Counter[str] = Counter()
        count = write_jsonl(path, _segment_entries(dataset, out_dir, opts, norm, names, skipped))
        summary["segments"] = _manifest_summary(path, count, skipped)
        manifests.append(("segments", path))
    if opts["windows"]:
        path = out_dir / "windows_manifest.json"
        skipped = Counter()
        count = write_jsonl(path, _window_entries(dataset, out_dir, opts, norm, names, skipped))
        summary["windows"] = _manifest_summary(path, count, skipped)
        manifests.append(("windows", path))
    if opts["tarred"]:
        summary["tarred"] = {kind: tar_manifest(path, out_dir / "tarred" / kind,
                                                int(opts["num_shards"]))
                             for kind, path in manifests}
    (out_dir / "summary.json").write_text(json.dumps(summary, indent=2), encoding="utf-8")
    return summary


def _manifest_summary(path: Path, count: int, skipped: Counter[str]) -> dict:
    seconds = sum(entry["duration"] for entry in read_jsonl(path))
    return {"manifest": path.name, "entries": count, "hours": round(seconds / 3600, 4),
            "skipped": dict(skipped)}


def _keep(language: str, opts: dict) -> bool:
    wanted = language_filter(opts)
    return wanted is None or language in wanted


def _normal(text: str, language: str, norm: TextNormalizer | None) -> str:
    return norm(text, language) if norm else " ".join(text.split())


def _segment_entries(dataset: Path, out_dir: Path, opts: dict, norm: TextNormalizer | None,
                     names: dict, skipped: Counter[str]):
    rate, ext = int(opts["sample_rate"]), opts["audio_format"]
    for row in iter_segments(dataset):
        if not _keep(row["language"], opts):
            continue
        text = _normal(row["text"], row["language"], norm)
        if not text:
            skipped["empty_text"] += 1
            continue
        entry = {"audio_filepath": "", "duration": 0.0, "text": text,
                 "text_original": row["text"], "lang": row["language"],
                 "speaker": row["speaker"], "speaker_label": row.get("speaker_label"),
                 "dialogue_id": row["dialogue_id"], "start_s": row["start_s"]}
        if opts["offsets"]:
            entry["audio_filepath"] = f"audio/dialogues/{row['dialogue_id']}.{ext}"
            entry["offset"] = round(row["start_s"], 4)
            entry["duration"] = round(row["end_s"] - row["start_s"], 4)
        else:
            relative = f"audio/segments/{row['dialogue_id']}/{row['id']}.{ext}"
            seconds = write_audio(out_dir / relative, cell_audio(row["audio"], rate), rate, ext)
            entry["audio_filepath"], entry["duration"] = relative, round(seconds, 6)
        yield entry


def _window_entries(dataset: Path, out_dir: Path, opts: dict, norm: TextNormalizer | None,
                    names: dict, skipped: Counter[str]):
    rate, ext, token = int(opts["sample_rate"]), opts["audio_format"], opts["sc_token"]
    columns = ["id", "language", "timeline"] + ([] if opts["offsets"] else ["audio"])
    for row in iter_dialogues(dataset, columns=columns):
        if not _keep(row["language"], opts):
            continue
        language = row["language"]
        mix = None if opts["offsets"] else cell_audio(row["audio"], rate)
        for number, window in enumerate(cut_windows(row["timeline"], float(opts["window_s"]))):
            runs = speaker_runs(window.words, opts["order"])
            spoken = [(speaker, _normal(" ".join(words), language, norm))
                      for speaker, words in runs]
            spoken = [(speaker, text) for speaker, text in spoken if text]
            merged: list[tuple[str, str]] = []
            for speaker, text in spoken:
                if merged and merged[-1][0] == speaker:
                    merged[-1] = (speaker, f"{merged[-1][1]} {text}")
                else:
                    merged.append((speaker, text))
            if not merged:
                skipped["empty_text"] += 1
                continue
            counts = Counter(word.speaker for word in window.words)
            entry = {
                "audio_filepath": "", "duration": 0.0,
                "text": f" {token} ".join(text for _, text in merged),
                "text_original": f" {token} ".join(" ".join(words) for _, words in runs),
                "lang": language,
                "speaker": names.get((row["id"], counts.most_common(1)[0][0]),
                                     counts.most_common(1)[0][0]),
                "speakers": [names.get((row["id"], s), s) for s in window.speakers],
                "speaker_changes": len(merged) - 1,
                "dialogue_id": row["id"], "start_s": round(window.start_s, 4),
            }
            if mix is None:
                entry["audio_filepath"] = f"audio/dialogues/{row['id']}.{ext}"
                entry["offset"] = round(window.start_s, 4)
                entry["duration"] = round(window.duration_s, 4)
            else:
                begin = int(round(window.start_s * rate))
                end = min(len(mix), int(round(window.end_s * rate)))
                relative = f"audio/windows/{row['id']}/{row['id']}-w{number:03d}.{ext}"
                seconds = write_audio(out_dir / relative, mix[begin:end], rate, ext)
                entry["audio_filepath"], entry["duration"] = relative, round(seconds, 6)
            yield entry


def _write_dialogue_files(dataset: Path, out_dir: Path, opts: dict) -> None:
    rate, ext = int(opts["sample_rate"]), opts["audio_format"]
    for row in iter_dialogues(dataset, columns=["id", "language", "audio"]):
        if _keep(row["language"], opts):
            target = out_dir / "audio" / "dialogues" / f"{row['id']}.{ext}"
            write_audio(target, cell_audio(row["audio"], rate), rate, ext)


def tar_manifest(manifest: Path, target: Path, num_shards: int) -> dict:
    """NeMo tarred layout from a manifest of per-entry files: contiguous blocks of entries
    per `audio_N.tar`; entries name their file inside the tar and carry `shard_id`."""
    if num_shards < 1:
        raise ValueError(f"options.nemo.num_shards: must be >= 1 (got {num_shards})")
    entries = list(read_jsonl(manifest))
    target.mkdir(parents=True, exist_ok=True)
    (target / "sharded_manifests").mkdir(exist_ok=True)
    shards = [list(block) for block in np.array_split(np.arange(len(entries)), num_shards)]
    all_entries = []
    for shard_id, indices in enumerate(shards):
        shard_entries = []
        with tarfile.open(target / f"audio_{shard_id}.tar", "w") as tar:
            for index in indices:
                entry = dict(entries[int(index)])
                source = manifest.parent / entry["audio_filepath"]
                name = Path(entry["audio_filepath"]).name
                data = source.read_bytes()
                info = tarfile.TarInfo(name)
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
                entry["audio_filepath"], entry["shard_id"] = name, shard_id
                shard_entries.append(entry)
        write_jsonl(target / "sharded_manifests" / f"manifest_{shard_id}.json", shard_entries)
        all_entries.extend(shard_entries)
    write_jsonl(target / "tarred_audio_manifest.json", all_entries)
    return {"shards": len(shards), "entries": len(all_entries),
            "tarred_audio_filepaths": f"audio__OP_0..{len(shards) - 1}_CL_.tar",
            "manifest_filepath": f"sharded_manifests/manifest__OP_0..{len(shards) - 1}_CL_.json"}
