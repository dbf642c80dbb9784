"""Reading a dataset written by `generate`: the contract every later job reads (DESIGN §3).

Iteration is lazy and shard by shard (pyarrow), so a job after the run never holds more
than one shard in memory; JSON columns are parsed on demand.
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import soundfile as sf

JSON_COLUMNS = ("speakers", "scenario", "script", "timeline", "duplex", "provenance")


class DatasetNotFound(FileNotFoundError):
    pass


def shard_paths(dataset: Path, config: str) -> list[Path]:
    folder = Path(dataset) / "data" / config
    paths = sorted(folder.glob("train-*.parquet"))
    if not paths:
        raise DatasetNotFound(
            f"dataset={dataset}: no {config} shards under {folder}; point `dataset=` at a "
            "folder written by `duplexsynth generate` (it holds data/ and run.json)"
        )
    return paths


def iter_rows(
    dataset: Path, config: str = "dialogues", columns: Sequence[str] | None = None,
    parse_json: bool = True,
) -> Iterator[dict]:
    for path in shard_paths(dataset, config):
        parquet = pq.ParquetFile(path)
        wanted = list(columns) if columns else None
        for batch in parquet.iter_batches(batch_size=16, columns=wanted):
            for row in batch.to_pylist():
                if parse_json:
                    for key in JSON_COLUMNS:
                        if isinstance(row.get(key), str):
                            row[key] = json.loads(row[key])
                yield row


def iter_dialogues(dataset: Path, columns: Sequence[str] | None = None) -> Iterator[dict]:
    return iter_rows(dataset, "dialogues", columns)


def iter_segments(dataset: Path, columns: Sequence[str] | None = None) -> Iterator[dict]:
    return iter_rows(dataset, "segments", columns)


def decode_audio(cell: dict) -> tuple[np.ndarray, int]:
    """FLAC bytes of an Audio cell -> float32 array ((samples,) or (samples, channels)), rate."""
    samples, rate = sf.read(io.BytesIO(cell["bytes"]), dtype="float32")
    return samples, rate


def run_info(dataset: Path) -> dict:
    path = Path(dataset) / "run.json"
    return json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}
