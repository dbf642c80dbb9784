"""The sink: Parquet shards in the Hugging Face layout, written atomically, resumable.

A shard holds a fixed block of scenario indices (`shard_dialogues` of them), so its name is
known before any work: a rerun of the same config skips shards that exist and can never
write a row twice. Each shard is written atomically (pipeline/storage.py: temporary name and
rename on a local disk, one PUT on an object store); segments first,
dialogues last, so a finished dialogues file means a finished shard. The shard's own counts
(planned, written, rejected by reason) live in its Parquet metadata, which keeps run.json
rebuildable from the shards alone after any crash.
"""

from __future__ import annotations

import io
import json
import os
import socket
import sys
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import soundfile as sf

from pipeline.features import dialogue_features, encode_columns, segment_features
from pipeline.storage import Location, arrow_filesystem, locate, open_file

SHARD_META_KEY = b"duplexsynth"
WRITER_META_KEY = b"duplexsynth_writer"
"""Schema metadata: who wrote the shard (`writer_identity`); not part of its counts."""
DIALOGUES = "dialogues"
SEGMENTS = "segments"


def shard_name(split: str, shard: int) -> str:
    """The one place shard files are named: `<split>-NNNNN.parquet` (Hugging Face layout,
    `data/<config>/<split>-00000.parquet`)."""
    return f"{split}-{shard:05d}.parquet"


def shard_pattern(split: str | None = None) -> str:
    """Glob for the shards of one split (None = every split)."""
    return f"{split}-[0-9][0-9][0-9][0-9][0-9].parquet" if split else \
        "*-[0-9][0-9][0-9][0-9][0-9].parquet"


def split_of(path: Path | str) -> str:
    """The split a shard file belongs to (its name up to the shard number)."""
    return str(path).rsplit("/", 1)[-1].rsplit("-", 1)[0]


def flac_bytes(samples: np.ndarray, sample_rate: int, subtype: str = "PCM_16") -> bytes:
    """FLAC-encode float audio; (channels, samples) arrays become multi-channel files."""
    data = samples.T if samples.ndim == 2 else samples
    buffer = io.BytesIO()
    sf.write(buffer, np.clip(data, -1.0, 1.0), sample_rate, format="FLAC", subtype=subtype)
    return buffer.getvalue()


def writer_identity() -> dict:
    """Who writes a shard: host and pid, and the Ray node id when the writer runs on a Ray
    worker (two nodes of one machine share a host name). Read by tests/test_cluster.py to see
    that both nodes wrote; cheap: ray is only asked when this process already imported it."""
    node = None
    ray = sys.modules.get("ray")
    if ray is not None and ray.is_initialized():
        node = ray.get_runtime_context().get_node_id()
    return {"host": socket.gethostname(), "pid": os.getpid(), "node": node}


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
    """Writes and finds shards under `<root>/data/{dialogues,segments}/<split>-NNNNN.parquet`.

    `root` is a local folder or a URI (pipeline/storage.py: filesystem and atomicity rule).
    Dialogue rows come in JSON form (nested columns as dicts, see pipeline/features.py) and
    are written typed. Picklable: the sink stage on a Ray worker holds one."""

    def __init__(self, root: Path | str | Location, sample_rate: int,
                 storage_options: dict | None = None) -> None:
        self.location = locate(root, storage_options)
        self.sample_rate = sample_rate
        self.schemas = {
            DIALOGUES: dialogue_features(sample_rate).arrow_schema,
            SEGMENTS: segment_features(sample_rate).arrow_schema,
        }

    @property
    def filesystem(self):  # noqa: ANN201 - pyarrow.fs.FileSystem (shard_verify's interface)
        """The pyarrow filesystem of the sink (pipeline/shard_verify.py plugs in here)."""
        return arrow_filesystem(self.location)[0]

    @property
    def base(self) -> str:
        """The root inside `filesystem`."""
        return self.location.root

    @property
    def root(self) -> Path | str:
        """A local Path, or the URL of an object-store dataset."""
        return Path(self.location.root) if self.location.is_local else self.location.url

    def _shown(self, path: str) -> Path | str:
        if self.location.is_local:
            return Path(path)
        return f"{self.location.protocol}://{path}"

    def relative(self, config: str, split: str, shard: int) -> str:
        return f"data/{config}/{shard_name(split, shard)}"

    def path(self, config: str, split: str, shard: int) -> Path | str:
        return self._shown(self.location.path(self.relative(config, split, shard)))

    def is_done(self, split: str, shard: int) -> bool:
        return (self.location.exists(self.relative(DIALOGUES, split, shard))
                and self.location.exists(self.relative(SEGMENTS, split, shard)))

    def done_shards(self, split: str) -> set[int]:
        """Shard numbers of `split` whose dialogues and segments files both exist."""
        found = [{int(p.rsplit("-", 1)[1].split(".")[0])
                  for p in self.location.glob("data", config, shard_pattern(split))}
                 for config in (DIALOGUES, SEGMENTS)]
        return found[0] & found[1]

    def check_writable(self) -> None:
        """StorageError (one line) when the sink cannot be written; pipeline/storage.py."""
        self.location.check_writable()

    def write(
        self, split: str, shard: int, dialogues: list[dict], segments: list[dict],
        stats: ShardStats,
    ) -> None:
        dialogues = [encode_columns(row) for row in dialogues]
        writer = json.dumps(writer_identity())
        for config, rows in ((SEGMENTS, segments), (DIALOGUES, dialogues)):
            schema = self.schemas[config].with_metadata(
                {**(self.schemas[config].metadata or {}), SHARD_META_KEY: stats.to_json(),
                 WRITER_META_KEY: writer}
            )
            table = pa.Table.from_pylist(rows, schema=schema)
            buffer = pa.BufferOutputStream()  # the whole file first: see storage.py
            pq.write_table(table, buffer, row_group_size=16, **parquet_codecs(table.schema))
            self.location.write_atomic(self.relative(config, split, shard),
                                       buffer.getvalue().to_pybytes())

    def finished_shards(self, split: str | None = None) -> list[Path | str]:
        return [self._shown(p) for p in self.location.glob("data", DIALOGUES,
                                                           shard_pattern(split))]

    def totals(self, split: str | None = None) -> ShardStats:
        total = ShardStats()
        for path in self.finished_shards(split):
            metadata = read_schema(path).metadata or {}
            if SHARD_META_KEY in metadata:
                try:
                    total.add(ShardStats.from_json(metadata[SHARD_META_KEY]))
                except (ValueError, KeyError, TypeError) as error:
                    raise ShardUnreadable(f"{path}: shard metadata "
                                          f"{SHARD_META_KEY.decode()!r} does not parse "
                                          f"({error}); {UNREADABLE_HINT}") from None
        return total

    def remove_stale_temporaries(self) -> None:
        """Local only: an object store never shows a half-written object."""
        if self.location.is_local:
            for path in Path(self.location.root, "data").glob("*/.*.tmp-*"):
                path.unlink(missing_ok=True)


def parquet_codecs(schema: pa.Schema) -> dict:
    """Parquet options of a shard: zstd and dictionaries for every column but the FLAC
    bytes, which neither shrinks (3 % smaller at about twice the write time, profiled on
    the default config), so those are stored plain."""
    columns = _leaf_paths(schema)
    audio = [c for c in columns if c.endswith(".bytes")]
    return {"compression": {c: "none" if c in audio else "zstd" for c in columns},
            "use_dictionary": [c for c in columns if c not in audio]}


def _leaf_paths(schema: pa.Schema) -> list[str]:
    """Dotted Parquet column paths of an Arrow schema (lists as `list.element`)."""
    def walk(prefix: str, kind: pa.DataType) -> list[str]:
        if pa.types.is_struct(kind):
            return [p for i in range(kind.num_fields)
                    for p in walk(f"{prefix}.{kind.field(i).name}", kind.field(i).type)]
        if pa.types.is_list(kind) or pa.types.is_large_list(kind):
            return walk(f"{prefix}.list.element", kind.value_type)
        return [prefix]
    return [p for field in schema for p in walk(field.name, field.type)]


class ShardUnreadable(ValueError):
    """A shard file whose Parquet footer, metadata or data cannot be read; the message names
    the file (one line, no traceback at the CLI)."""


UNREADABLE_HINT = ("`duplexsynth verify dataset=<folder>` lists every bad shard; rerunning "
                   "`duplexsynth generate` with the same config moves bad shards to "
                   "data/.quarantine/ and regenerates them")


def open_parquet(path: Path | str) -> pq.ParquetFile:
    """One shard file (a local path or a shard URL; usable in `with`), or ShardUnreadable
    naming it instead of pyarrow's `Parquet magic bytes not found in footer` without a name.
    Every reader of shard files goes through here (or pipeline/shard_verify.py)."""
    try:
        return pq.ParquetFile(open_file(path))
    except (OSError, ValueError) as error:  # ArrowInvalid is a ValueError
        raise ShardUnreadable(f"{path}: unreadable Parquet file "
                              f"({str(error).splitlines()[0]}); {UNREADABLE_HINT}") from None


def damaged(path: Path | str, error: BaseException) -> ShardUnreadable:
    """The one-line error for a damaged page inside a file whose footer reads."""
    return ShardUnreadable(f"{path}: damaged Parquet data ({str(error).splitlines()[0]}); "
                           f"{UNREADABLE_HINT}")


def read_schema(path: Path | str) -> pa.Schema:
    """The Arrow schema (with our shard metadata) of a local shard or a shard URL;
    ShardUnreadable (one line) when the footer does not read."""
    with open_parquet(path) as shard:
        return shard.schema_arrow


def read_table(path: Path | str, columns: list[str] | None = None) -> pa.Table:
    """Columns of a local shard or a shard URL; ShardUnreadable (one line) when damaged."""
    with open_parquet(path) as shard:
        try:
            return shard.read(columns=columns)
        except (OSError, ValueError) as error:
            raise damaged(path, error) from None


def sibling(path: Path | str, config: str) -> Path | str:
    """The same shard's file of another config (dialogues -> segments)."""
    if isinstance(path, Path):
        return path.parent.parent / config / path.name
    head, _, name = str(path).rsplit("/", 2)
    return f"{head}/{config}/{name}"


def shard_of(index: int, shard_dialogues: int) -> int:
    return index // shard_dialogues


def shard_indices(shard: int, shard_dialogues: int, planned: int) -> range:
    return range(shard * shard_dialogues, min(planned, (shard + 1) * shard_dialogues))


def iter_shards(planned: int, shard_dialogues: int) -> Iterable[int]:
    return range((planned + shard_dialogues - 1) // shard_dialogues)
