"""The sink: Parquet shards in the Hugging Face layout, written atomically, resumable.

A shard holds a fixed block of scenario indices (`shard_dialogues` of them), so its name is
known before any work: a rerun of the same config skips shards that exist and can never
write a row twice. Each shard is written to a temporary name and renamed; segments first,
dialogues last, so a finished dialogues file means a finished shard. The shard's own counts
(planned, written, rejected by reason) live in its Parquet metadata, which keeps run.json
rebuildable from the shards alone after any crash.
"""

from __future__ import annotations

import io
import json
import os
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import soundfile as sf

if TYPE_CHECKING:
    from datasets import Features

SHARD_META_KEY = b"duplexsynth"
DIALOGUES = "dialogues"
SEGMENTS = "segments"


def dialogue_features(sample_rate: int) -> Features:
    # `datasets` imported here, not at the top: every Ray actor imports this module for
    # flac_bytes, and `datasets` alone costs each of them ~0.3 s of start-up.
    from datasets import Audio, Features, Value

    return Features(
        {
            "id": Value("string"),
            "language": Value("string"),
            "domain": Value("string"),
            "audio": Audio(sampling_rate=sample_rate),
            "channels": Audio(sampling_rate=sample_rate),
            "duration_s": Value("float64"),
            "num_speakers": Value("int32"),
            "speakers": Value("string"),
            "scenario": Value("string"),
            "script": Value("string"),
            "timeline": Value("string"),
            "duplex": Value("string"),
            "generator": Value("string"),
            "tts": Value("string"),
            "provenance": Value("string"),
            "asr_error_max": Value("float64"),  # ASR gate (checks.asr): null when it is off
            "asr_error_mean": Value("float64"),
            "asr_retries": Value("int32"),
        }
    )


def segment_features(sample_rate: int) -> Features:
    from datasets import Audio, Features, Value

    return Features(
        {
            "id": Value("string"),
            "dialogue_id": Value("string"),
            "speaker": Value("string"),
            "audio": Audio(sampling_rate=sample_rate),
            "text": Value("string"),
            "start_s": Value("float64"),
            "end_s": Value("float64"),
            "duration_s": Value("float64"),
            "language": Value("string"),
            "voice_id": Value("string"),
            "asr_text": Value("string"),  # ASR gate transcript of the whole utterance
            "asr_error": Value("float64"),  # its WER / CER against the turn's text
        }
    )


def flac_bytes(samples: np.ndarray, sample_rate: int, subtype: str = "PCM_16") -> bytes:
    """FLAC-encode float audio; (channels, samples) arrays become multi-channel files."""
    data = samples.T if samples.ndim == 2 else samples
    buffer = io.BytesIO()
    sf.write(buffer, np.clip(data, -1.0, 1.0), sample_rate, format="FLAC", subtype=subtype)
    return buffer.getvalue()


@dataclass
class ShardStats:
    planned: int = 0
    written: int = 0
    audio_s: float = 0.0
    rejected: Counter[str] = field(default_factory=Counter)
    llm: Counter[str] = field(default_factory=Counter)
    """LLM usage of the shard's rows: requests, prompt_tokens, completion_tokens, usd, ..."""

    def to_json(self) -> str:
        return json.dumps({"planned": self.planned, "written": self.written,
                           "audio_s": round(self.audio_s, 3), "rejected": dict(self.rejected),
                           "llm": dict(self.llm)})

    @classmethod
    def from_json(cls, text: str | bytes) -> ShardStats:
        data = json.loads(text)
        return cls(data["planned"], data["written"], data["audio_s"], Counter(data["rejected"]),
                   Counter(data.get("llm") or {}))

    def add(self, other: ShardStats) -> None:
        self.planned += other.planned
        self.written += other.written
        self.audio_s += other.audio_s
        self.rejected.update(other.rejected)
        self.llm.update(other.llm)


class ShardWriter:
    """Writes and finds shards under `<root>/data/{dialogues,segments}/`."""

    def __init__(self, root: Path, sample_rate: int) -> None:
        self.root = root
        self.sample_rate = sample_rate
        self.schemas = {
            DIALOGUES: dialogue_features(sample_rate).arrow_schema,
            SEGMENTS: segment_features(sample_rate).arrow_schema,
        }

    def path(self, config: str, shard: int) -> Path:
        return self.root / "data" / config / f"train-{shard:05d}.parquet"

    def is_done(self, shard: int) -> bool:
        return self.path(DIALOGUES, shard).exists() and self.path(SEGMENTS, shard).exists()

    def write(
        self, shard: int, dialogues: list[dict], segments: list[dict], stats: ShardStats
    ) -> None:
        for config, rows in ((SEGMENTS, segments), (DIALOGUES, dialogues)):
            schema = self.schemas[config].with_metadata(
                {**(self.schemas[config].metadata or {}), SHARD_META_KEY: stats.to_json()}
            )
            table = pa.Table.from_pylist(rows, schema=schema)
            target = self.path(config, shard)
            target.parent.mkdir(parents=True, exist_ok=True)
            temporary = target.with_name(f".{target.name}.tmp-{os.getpid()}")
            pq.write_table(table, temporary, row_group_size=16, compression="zstd")
            os.replace(temporary, target)

    def finished_shards(self) -> list[Path]:
        return sorted((self.root / "data" / DIALOGUES).glob("train-*.parquet"))

    def totals(self) -> ShardStats:
        total = ShardStats()
        for path in self.finished_shards():
            metadata = pq.read_schema(path).metadata or {}
            if SHARD_META_KEY in metadata:
                total.add(ShardStats.from_json(metadata[SHARD_META_KEY]))
        return total

    def remove_stale_temporaries(self) -> None:
        for path in (self.root / "data").glob("*/.*.tmp-*"):
            path.unlink(missing_ok=True)


def shard_of(index: int, shard_dialogues: int) -> int:
    return index // shard_dialogues


def shard_indices(shard: int, shard_dialogues: int, planned: int) -> range:
    return range(shard * shard_dialogues, min(planned, (shard + 1) * shard_dialogues))


def iter_shards(planned: int, shard_dialogues: int) -> Iterable[int]:
    return range((planned + shard_dialogues - 1) // shard_dialogues)
