"""Statistics of a generated dataset, computed from its Parquet shards (not from the run's memory).

Why from the shards: a dataset is often generated in several resumed runs, on several machines,
so only the shards know what is really in it. Reading is streaming and column-wise (pyarrow
batches of the small nested/number columns, never the audio), so memory grows with the size of
the dataset only through one number per dialogue, per segment (float32) and per speaker
transfer (for the plots and the medians). All durations are seconds unless a name says hours.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from pipeline.dataset import open_shard, shard_paths
from pipeline.features import decode_columns
from pipeline.schema import voice_id
from pipeline.sink import DIALOGUES, SEGMENTS, ShardWriter, split_of
from pipeline.storage import file_size
from pipeline.timing_stats import TimingAccumulator, intervals_from_timeline

DIALOGUE_COLUMNS = ("language", "domain", "duration_s", "speakers", "scenario", "script",
                    "timeline", "duplex", "generator", "tts", "provenance")
SEGMENT_COLUMNS = ("language", "duration_s", "asr_error")
PHENOMENA = ("backchannels", "interruptions", "overlaps", "pauses", "side_talk")
# Per-row provenance keys that identify a row, not how it was made: not summarised
# (`voices`: per-speaker backend / voice id / model hash, counted as voices per language).
ROW_KEYS = ("scenario_seed", "voices")


@dataclass
class LanguageStats:
    dialogues: int = 0
    dialogue_s: float = 0.0
    segments: int = 0
    segment_s: float = 0.0
    voices: set[str] = field(default_factory=set)

    def as_row(self) -> dict[str, Any]:
        return {"dialogues": self.dialogues, "hours": round(self.dialogue_s / 3600, 4),
                "segments": self.segments, "segment_hours": round(self.segment_s / 3600, 4),
                "voices": len(self.voices)}


@dataclass
class DatasetStats:
    """What a dataset holds; `finish()` turns the accumulators into plain numbers."""

    dialogues: int = 0
    segments: int = 0
    dialogue_s: float = 0.0
    segment_s: float = 0.0
    languages: dict[str, LanguageStats] = field(default_factory=dict)
    domains: Counter[str] = field(default_factory=Counter)
    speakers_per_dialogue: Counter[int] = field(default_factory=Counter)
    voice_speech_s: Counter[str] = field(default_factory=Counter)
    voice_genders: dict[str, str] = field(default_factory=dict)
    requested: Counter[str] = field(default_factory=Counter)
    realized: Counter[str] = field(default_factory=Counter)
    axis_events: Counter[str] = field(default_factory=Counter)
    generators: Counter[str] = field(default_factory=Counter)
    tts_backends: Counter[str] = field(default_factory=Counter)
    provenance: dict[str, Counter[str]] = field(default_factory=dict)
    provenance_totals: Counter[str] = field(default_factory=Counter)
    timing: TimingAccumulator = field(default_factory=TimingAccumulator)
    dialogue_durations: list[float] = field(default_factory=list)
    segment_durations: list[np.ndarray] = field(default_factory=list)
    shard_planned: int = 0
    shard_written: int = 0
    shard_rejected: Counter[str] = field(default_factory=Counter)
    files: dict[str, dict[str, int]] = field(default_factory=dict)
    splits: dict[str, LanguageStats] = field(default_factory=dict)
    """Per split (train, validation, ...): rows, hours and voices, the same fields as a
    language's; `files[config]["splits"]` holds each split's bytes."""
    asr_errors: dict[str, list[float]] = field(default_factory=dict)
    """Per language: the ASR gate's error of every segment it scored (checks.asr)."""

    @property
    def hours(self) -> float:
        return self.dialogue_s / 3600

    @property
    def speakers(self) -> int:
        """Distinct voices (backend + voice name); per-dialogue jitter does not make a new one."""
        return len(self.voice_speech_s)

    def summary(self) -> dict[str, Any]:
        durations = np.asarray(self.dialogue_durations, dtype=float)
        segments = (np.concatenate(self.segment_durations) if self.segment_durations
                    else np.zeros(0, dtype=np.float32))
        return {
            "dialogues": self.dialogues,
            "segments": self.segments,
            "hours": round(self.hours, 4),
            "segment_hours": round(self.segment_s / 3600, 4),
            "speakers": self.speakers,
            "languages": {k: v.as_row() for k, v in sorted(self.languages.items())},
            "domains": dict(self.domains.most_common()),
            "speakers_per_dialogue": dict(sorted(self.speakers_per_dialogue.items())),
            "phenomena": {"requested": {k: self.requested[k] for k in PHENOMENA},
                          "realized": {k: self.realized[k] for k in PHENOMENA}},
            "axis_events": dict(sorted(self.axis_events.items())),
            "timing": self.timing.result(),
            "dialogue_duration_s": _describe(durations),
            "segment_duration_s": _describe(segments),
            "shards": {"planned": self.shard_planned, "written": self.shard_written,
                       "rejected": dict(self.shard_rejected.most_common())},
            "generators": dict(self.generators.most_common()),
            "tts": dict(self.tts_backends.most_common()),
            "files": self.files,
            "splits": {k: v.as_row() for k, v in sorted(self.splits.items())},
        }


def _describe(values: np.ndarray) -> dict[str, float]:
    if values.size == 0:
        return {"mean": 0.0, "median": 0.0, "min": 0.0, "max": 0.0}
    return {"mean": round(float(values.mean()), 3), "median": round(float(np.median(values)), 3),
            "min": round(float(values.min()), 3), "max": round(float(values.max()), 3)}


def _batches(paths: list[Path], columns: tuple[str, ...]) -> Iterator[tuple[str, dict]]:
    """(split, batch as a dict of columns) for every batch of every shard."""
    for path in paths:
        with open_shard(path) as parquet:
            present = [c for c in columns if c in parquet.schema_arrow.names]
            for batch in parquet.iter_batches(batch_size=256, columns=present):
                yield split_of(path), batch.to_pydict()


def voice_key(voice: dict) -> str:
    """A speaker identity: the voice's full registry id (schema.voice_id)."""
    return voice_id(voice) or "?"


def _file_stats(paths: list[Path]) -> dict[str, int]:
    return {"shards": len(paths), "bytes": sum(file_size(p) for p in paths),
            "uncompressed_bytes": sum(_uncompressed(p) for p in paths)}


def dataset_stats(dataset: Path) -> DatasetStats:
    """Stream every shard of `dataset` once and count what it holds."""
    stats = DatasetStats()
    dialogue_paths = shard_paths(dataset, DIALOGUES)
    segment_paths = shard_paths(dataset, SEGMENTS)
    for config, paths in ((DIALOGUES, dialogue_paths), (SEGMENTS, segment_paths)):
        stats.files[config] = _file_stats(paths)
        stats.files[config]["splits"] = {  # type: ignore[assignment]
            name: _file_stats([p for p in paths if split_of(p) == name])
            for name in sorted({split_of(p) for p in paths})}
    for split, batch in _batches(dialogue_paths, DIALOGUE_COLUMNS):
        for row in _rows(batch):
            _add_dialogue(stats, decode_columns(row), stats.splits.setdefault(split,
                                                                              LanguageStats()))
    for split, batch in _batches(segment_paths, SEGMENT_COLUMNS):
        stats.segment_durations.append(np.asarray(batch["duration_s"], dtype=np.float32))
        per_split = stats.splits.setdefault(split, LanguageStats())
        for language, duration in zip(batch["language"], batch["duration_s"], strict=True):
            stats.segments += 1
            stats.segment_s += duration
            stats.languages.setdefault(language, LanguageStats()).segments += 1
            stats.languages[language].segment_s += duration
            per_split.segments += 1
            per_split.segment_s += duration
        for language, error in zip(batch["language"], batch.get("asr_error") or [], strict=False):
            if error is not None:
                stats.asr_errors.setdefault(language, []).append(float(error))
    totals = ShardWriter(dataset, sample_rate=16000).totals()
    stats.shard_planned, stats.shard_written = totals.planned, totals.written
    stats.shard_rejected = Counter(totals.rejected)
    return stats


def _uncompressed(path: Path) -> int:
    with open_shard(path) as parquet:
        metadata = parquet.metadata
    return sum(metadata.row_group(i).total_byte_size for i in range(metadata.num_row_groups))


def _rows(batch: dict[str, list]) -> Iterator[dict[str, Any]]:
    keys = list(batch)
    for values in zip(*(batch[k] for k in keys), strict=True):
        yield dict(zip(keys, values, strict=True))


def _add_dialogue(stats: DatasetStats, row: dict[str, Any], split: LanguageStats) -> None:
    duration = float(row["duration_s"])
    language = row["language"]
    speakers, timeline, script = row["speakers"], row["timeline"], row["script"]
    scenario, duplex = row["scenario"], row.get("duplex")
    split.dialogues += 1
    split.dialogue_s += duration

    stats.dialogues += 1
    stats.dialogue_s += duration
    stats.dialogue_durations.append(duration)
    per_language = stats.languages.setdefault(language, LanguageStats())
    per_language.dialogues += 1
    per_language.dialogue_s += duration
    stats.domains[row["domain"]] += 1
    stats.speakers_per_dialogue[len(speakers)] += 1
    stats.generators[row.get("generator") or "?"] += 1
    stats.tts_backends[row.get("tts") or "?"] += 1

    voices = {}
    for speaker in speakers:
        voice = speaker.get("voice") or {}
        key = voice_key(voice)
        voices[speaker["id"]] = key
        per_language.voices.add(key)
        split.voices.add(key)
        if voice.get("gender"):
            stats.voice_genders[key] = voice["gender"]
    for placed in timeline["segments"]:
        speech_s = placed["end_s"] - placed["start_s"]
        stats.voice_speech_s[voices.get(placed["speaker"], "?")] += speech_s

    stats.requested.update({k: int(v) for k, v in (scenario.get("phenomena") or {}).items()})
    stats.realized.update(realized_phenomena(timeline, script, scenario.get("assistant")))
    if duplex:
        stats.axis_events.update(event["axis"] for event in duplex.get("axis_events", []))
    stats.timing.add_dialogue(intervals_from_timeline(timeline))
    _add_provenance(stats, row.get("provenance") or {})


def realized_phenomena(timeline: dict, script: dict, assistant: str | None) -> Counter[str]:
    """What the audio really holds, counted from the timeline (the script only for pauses).

    overlaps: speaker transfers whose next turn starts before the previous one ends (barge-ins
    included); interruptions: turns cut short; side_talk: turns by others than the assistant
    addressed to someone other than the assistant (only when the dialogue has one).
    """
    segments = timeline["segments"]
    turns = sorted((s for s in segments if s["kind"] == "turn"),
                   key=lambda s: (s["start_s"], s["end_s"]))
    counts: Counter[str] = Counter()
    counts["backchannels"] = sum(1 for s in segments if s["kind"] == "backchannel")
    counts["interruptions"] = sum(1 for s in segments if s.get("cut_at_s") is not None)
    counts["overlaps"] = sum(
        1 for a, b in zip(turns, turns[1:], strict=False)
        if a["speaker"] != b["speaker"] and b["start_s"] < a["end_s"]
    )
    counts["pauses"] = sum(len(turn.get("pauses") or []) for turn in script["turns"])
    if assistant:
        counts["side_talk"] = sum(
            1 for s in segments if s["kind"] == "turn" and s["speaker"] != assistant
            and s.get("addressee", "all") not in ("all", assistant)
        )
    return counts


def _add_provenance(stats: DatasetStats, provenance: dict[str, Any]) -> None:
    """Strings (config hash, versions, prompt versions, models) are counted by value; numbers
    other than seeds (token counts, costs) are summed; seeds are counted by value."""
    for key, value in provenance.items():
        if key in ROW_KEYS or value is None:
            continue
        if isinstance(value, bool | str) or key.endswith("seed"):
            stats.provenance.setdefault(key, Counter())[str(value)] += 1
        elif isinstance(value, int | float):
            stats.provenance_totals[key] += value
        else:
            stats.provenance.setdefault(key, Counter())[json.dumps(value, sort_keys=True)] += 1
