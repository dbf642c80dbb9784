"""Reading a dataset written by `generate`: the contract every later job reads (DESIGN §3).

Shards live at `data/<config>/<split>-NNNNN.parquet` (names from `pipeline.sink`). Every
reader takes `split=` (a split name, or None for all splits in name order); a job that works
on one split wraps its body in `only_split(dataset, split)`, which checks the name first and
makes it the default of every reader inside, so exporters need no split plumbing. Iteration is lazy
and shard by shard (pyarrow), so a job after the run never holds more than one shard in
memory. Nested columns (speakers, scenario, script, timeline, duplex) are typed structs in
the Parquet files and come back as the same dicts as the models' JSON form; provenance is
JSON text, parsed here; `channels` is a list of mono Audio cells, one per speaker.
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import soundfile as sf

from pipeline.features import decode_columns
from pipeline.shard_verify import (
    ShardCheck,
    check_shard,
    list_shards,
    local_storage,
)
from pipeline.sink import (  # noqa: F401 - ShardUnreadable, UNREADABLE_HINT re-exported
    UNREADABLE_HINT,
    ShardUnreadable,
    damaged,
    open_parquet,
    shard_pattern,
    split_of,
)
from pipeline.storage import Location, locate


class DatasetNotFound(FileNotFoundError):
    pass


class UnknownSplit(ValueError):
    pass


_SELECTED: ContextVar[str | None] = ContextVar("duplexsynth_split", default=None)
_EXCLUDED: ContextVar[frozenset[str]] = ContextVar("duplexsynth_exclude", default=frozenset())
DIALOGUE_KEY = {"dialogues": "id", "segments": "dialogue_id"}
"""The column naming a row's dialogue, per config (what `excluding` filters on)."""


def select_split(dataset: DatasetRef, split: str | None, key: str = "split") -> None:
    """Make `split` the default of every reader from now on (a job's process works on one
    split; `jobs.dataset_and_out` calls this). Checks the name first (UnknownSplit)."""
    check_split(dataset, split, key)
    _SELECTED.set(split)


def clear_split() -> None:
    """Back to every split (the CLI calls it after each job, so a multirun never leaks)."""
    _SELECTED.set(None)


@contextmanager
def only_split(dataset: DatasetRef, split: str | None, key: str = "split") -> Iterator[None]:
    """Inside the block, readers default to `split` (None = all). Checks the name first, so
    an unknown split fails (UnknownSplit, one line) before the job writes anything."""
    check_split(dataset, split, key)
    token = _SELECTED.set(split)
    try:
        yield
    finally:
        _SELECTED.reset(token)


DatasetRef = Path | str | Location
"""A dataset: a local folder, a URI (`s3://bucket/ds`, `file://...`; pipeline/storage.py), or
a Location carrying filesystem options."""


def resolve(dataset: DatasetRef) -> Path | str:
    """What a job keeps as its dataset: an absolute local Path, or the URI unchanged
    (`Path(uri).resolve()` would turn `s3://b/ds` into a local path)."""
    if isinstance(dataset, Location):
        return Path(dataset.root) if dataset.is_local else dataset.url
    location = locate(dataset)
    return Path(location.root) if location.is_local else location.url


def _shards(dataset: DatasetRef, config: str, pattern: str) -> list[Path | str]:
    location = locate(dataset)
    found = location.glob("data", config, pattern)
    if location.is_local:
        return [Path(p) for p in found]
    return [f"{location.protocol}://{p}" for p in found]


def splits(dataset: DatasetRef, config: str = "dialogues") -> list[str]:
    """Split names that have shards, in name order."""
    return sorted({split_of(path) for path in _shards(dataset, config, shard_pattern())})


def check_split(dataset: DatasetRef, split: str | None, key: str = "split") -> None:
    """Raise UnknownSplit (one line, naming `key` and the splits there are) when `split` has
    no shards; call it before a job writes anything."""
    if split is None:
        return
    known = splits(dataset)
    if split not in known:
        raise UnknownSplit(f"{key}: {split!r} is not a split of {dataset}; it has "
                           f"{known or 'no shards'} (or leave {key} unset for all splits)")


def shard_paths(dataset: DatasetRef, config: str, split: str | None = None
                ) -> list[Path | str]:
    """Shard files in (split, name) order: local Paths, or URLs for a dataset at a URI (open
    them with `open_shard`, which knows the dataset's filesystem options)."""
    split = split if split is not None else _SELECTED.get()
    folder = locate(dataset).show("data", config)
    paths = sorted(_shards(dataset, config, shard_pattern(split)),
                   key=lambda p: (split_of(p), str(p).rsplit("/", 1)[-1]))
    if not paths:
        if split is not None and splits(dataset, config):
            check_split(dataset, split)
        raise DatasetNotFound(
            f"dataset={dataset}: no {config} shards under {folder}; point `dataset=` at a "
            "folder written by `duplexsynth generate` (it holds data/ and run.json)"
        )
    return paths


@contextmanager
def excluding(dialogue_ids: Iterable[str]) -> Iterator[None]:
    """Inside the block, every reader skips these dialogues and their segments (evaluation
    dialogues kept out of training exports: `export exclude=`, `dpo exclude=`)."""
    token = _EXCLUDED.set(_EXCLUDED.get() | frozenset(dialogue_ids))
    try:
        yield
    finally:
        _EXCLUDED.reset(token)


def iter_rows(
    dataset: DatasetRef, config: str = "dialogues", columns: Sequence[str] | None = None,
    parse_json: bool = True, split: str | None = None,
) -> Iterator[dict]:
    # paths and exclusions are resolved now, not at the first next(): the caller's are in force
    excluded = _EXCLUDED.get()
    key = DIALOGUE_KEY.get(config) if excluded else None
    return _rows(shard_paths(dataset, config, split), columns, parse_json, key, excluded)


def _rows(paths: list[Path | str], columns: Sequence[str] | None, parse_json: bool,
          key: str | None = None, excluded: frozenset[str] = frozenset()) -> Iterator[dict]:
    wanted = list(columns) if columns else None
    added = key is not None and wanted is not None and key not in wanted
    if added:
        wanted = [*wanted, key]
    for path in paths:
        for batch in _batches(path, wanted):
            for row in batch.to_pylist():
                if key is not None and row[key] in excluded:
                    continue
                if added:
                    del row[key]
                yield decode_columns(row) if parse_json else row


def open_shard(path: Path | str) -> pq.ParquetFile:
    """One shard file (a local path or a shard URL from `shard_paths`; usable in `with`), or
    ShardUnreadable naming it (pipeline/sink.py `open_parquet`)."""
    return open_parquet(path)


def _batches(path: Path | str, columns: list[str] | None) -> Iterator:
    batches = open_shard(path).iter_batches(batch_size=16, columns=columns)
    while True:
        try:
            batch = next(batches)
        except StopIteration:
            return
        except (OSError, ValueError) as error:  # a damaged page inside a readable file
            raise damaged(path, error) from None
        yield batch


def check_shards(dataset: Path, split: str | None = None) -> list[ShardCheck]:
    """Shard-level checks (pipeline/shard_verify.py) of every shard of the dataset, in
    (split, number) order: footers, row counts against each shard's metadata, ids."""
    split = split if split is not None else _SELECTED.get()
    fs, root = local_storage(dataset)
    shards = [f for f in list_shards(fs, root) if split is None or f.split == split]
    if not shards:
        shard_paths(dataset, "dialogues", split)  # raises DatasetNotFound / UnknownSplit
    return [check_shard(fs, files) for files in shards]


def iter_shard_rows(path: Path | str, columns: Sequence[str] | None = None) -> Iterator[dict]:
    """The rows of one shard file (a path from `check_shards`), decoded like iter_rows'."""
    return _rows([Path(path)], columns, parse_json=True)


def iter_dialogues(dataset: DatasetRef, columns: Sequence[str] | None = None,
                   split: str | None = None) -> Iterator[dict]:
    return iter_rows(dataset, "dialogues", columns, split=split)


def iter_segments(dataset: DatasetRef, columns: Sequence[str] | None = None,
                  split: str | None = None) -> Iterator[dict]:
    return iter_rows(dataset, "segments", columns, split=split)


def decode_audio(cell: dict | list[dict]) -> tuple[np.ndarray, int]:
    """FLAC bytes of an Audio cell -> float32 array ((samples,) or (samples, channels)), rate.

    A list of cells (the `channels` column: one mono cell per speaker) becomes one
    (samples, speakers) array, columns in speaker order."""
    if isinstance(cell, list):
        decoded = [decode_audio(one) for one in cell]
        rate = decoded[0][1]
        return np.stack([samples for samples, _ in decoded], axis=1), rate
    samples, rate = sf.read(io.BytesIO(cell["bytes"]), dtype="float32")
    return samples, rate


def run_info(dataset: DatasetRef) -> dict:
    location = locate(dataset)
    if not location.exists("run.json"):
        return {}
    return json.loads(location.read_bytes("run.json").decode("utf-8"))
