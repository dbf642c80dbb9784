"""Is a shard whole? The check a resumed run trusts, and the quarantine for shards that are not.

A shard is two files, `data/dialogues/<split>-NNNNN.parquet` and `data/segments/...`, written
segments first and dialogues last, each carrying the same `ShardStats` in its Parquet schema
metadata (key `b"duplexsynth"`). A shard counts as done only when both footers read, the
dialogues file holds `written` rows with distinct ids, both files carry the same stats and
every segment names one of the shard's dialogues. Anything else (a copy cut short, a crash
on a filesystem without atomic rename, a hand-edited file) is moved aside to
`data/.quarantine/<UTC time>-<split>-NNNNN-<pid>/<config>/<name>` with a `reason.txt`, and the
shard is regenerated like one never written. A lone segments file is the normal state of a
crash between the two renames (and of a shard another run is writing right now): it is not
done, not bad, and the rewrite replaces it.

Everything takes a `pyarrow.fs.FileSystem` and a path inside it, so the same check runs on a
local folder (`LocalFileSystem`), S3 or GCS; a move on an object store is a copy and a
delete, which is fine for files nobody else writes. The footer and two id columns are all
that is read: about three small range reads per file.
"""

from __future__ import annotations

import fnmatch
import logging
import os
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import pyarrow.fs as pafs
import pyarrow.parquet as pq

from pipeline.sink import (
    DIALOGUES,
    SEGMENTS,
    SHARD_META_KEY,
    ShardStats,
    ShardUnreadable,
    shard_pattern,
    split_of,
)

log = logging.getLogger("duplexsynth")

QUARANTINE = ".quarantine"
"""Folder under data/ for shards moved aside; hidden, so no reader's shard pattern sees it."""
CONFIGS = (DIALOGUES, SEGMENTS)


@dataclass(frozen=True)
class ShardFiles:
    """The files of one shard as found (None = absent), paths inside the filesystem."""

    split: str
    shard: int
    dialogues: str | None
    segments: str | None

    @property
    def name(self) -> str:
        return f"{self.split}-{self.shard:05d}"

    def present(self) -> list[tuple[str, str]]:
        return [(config, path) for config, path in ((DIALOGUES, self.dialogues),
                                                    (SEGMENTS, self.segments)) if path]


@dataclass
class ShardCheck:
    """The outcome of checking one shard: problems (empty = whole) and what was read."""

    files: ShardFiles
    problems: list[str] = field(default_factory=list)
    stats: ShardStats | None = None
    dialogue_rows: int | None = None
    segment_rows: int | None = None
    dialogue_ids: list[str] = field(default_factory=list)
    segment_dialogue_ids: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def local_storage(root: str | os.PathLike) -> tuple[pafs.FileSystem, str]:
    """(filesystem, path) for a local folder; a URI (s3://, gs://, file://) goes through
    `FileSystem.from_uri`, which is where the sink's storage layer plugs in."""
    text = str(root)
    if "://" in text:
        return pafs.FileSystem.from_uri(text)
    return pafs.LocalFileSystem(), str(Path(text).expanduser().resolve())


def writer_storage(writer) -> tuple[pafs.FileSystem, str]:
    """The filesystem and root of a `ShardWriter`: its own when it has one (`filesystem`,
    `base`), else the local folder `writer.root`."""
    filesystem = getattr(writer, "filesystem", None)
    if filesystem is not None:
        return filesystem, str(getattr(writer, "base", writer.root))
    return local_storage(writer.root)


def _join(*parts: str) -> str:
    return "/".join(p.rstrip("/") for p in parts if p)


def list_shards(fs: pafs.FileSystem, root: str) -> list[ShardFiles]:
    """Every shard with at least one file under `root/data/`, by (split, number)."""
    found: dict[tuple[str, int], dict[str, str]] = {}
    for config in CONFIGS:
        selector = pafs.FileSelector(_join(root, "data", config), allow_not_found=True)
        for info in fs.get_file_info(selector):
            name = info.base_name
            if info.type != pafs.FileType.File or not fnmatch.fnmatchcase(name, shard_pattern()):
                continue
            split = split_of(Path(name))
            number = int(name[len(split) + 1:].split(".")[0])
            found.setdefault((split, number), {})[config] = info.path
    return [ShardFiles(split, number, files.get(DIALOGUES), files.get(SEGMENTS))
            for (split, number), files in sorted(found.items())]


def read_footer(fs: pafs.FileSystem, path: str) -> tuple[int, ShardStats | None]:
    """(rows, the shard's stats or None) from the footer alone; ShardUnreadable names the
    file when the footer or the stats do not parse."""
    try:
        with fs.open_input_file(path) as handle:
            metadata = pq.ParquetFile(handle).metadata
            rows = metadata.num_rows
            raw = (metadata.schema.to_arrow_schema().metadata or {}).get(SHARD_META_KEY)
    except (OSError, ValueError) as error:  # ArrowInvalid is a ValueError
        raise ShardUnreadable(f"{path}: unreadable Parquet file "
                              f"({str(error).splitlines()[0]})") from None
    if raw is None:
        return rows, None
    try:
        return rows, ShardStats.from_json(raw)
    except (ValueError, KeyError, TypeError) as error:
        raise ShardUnreadable(f"{path}: shard metadata {SHARD_META_KEY.decode()!r} does not "
                              f"parse ({error})") from None


def _column(fs: pafs.FileSystem, path: str, name: str) -> list:
    with fs.open_input_file(path) as handle:
        return pq.ParquetFile(handle).read(columns=[name]).column(name).to_pylist()


def check_shard(fs: pafs.FileSystem, files: ShardFiles) -> ShardCheck:
    """Footers, row counts against the shard's own stats, and the shard's ids (see the
    module docstring); never raises on a bad file, it reports it."""
    check = ShardCheck(files)
    problems = check.problems
    if files.dialogues is None or files.segments is None:
        missing = DIALOGUES if files.dialogues is None else SEGMENTS
        problems.append(f"{files.name}: the {missing} file is missing")
    stats: dict[str, ShardStats | None] = {}
    for config, path in files.present():
        try:
            rows, stats[config] = read_footer(fs, path)
        except ShardUnreadable as error:
            problems.append(str(error))
            continue
        if stats[config] is None:
            problems.append(f"{path}: no {SHARD_META_KEY.decode()!r} shard metadata")
        if config == DIALOGUES:
            check.dialogue_rows = rows
        else:
            check.segment_rows = rows
    dialogue_stats = stats.get(DIALOGUES)
    check.stats = dialogue_stats
    if dialogue_stats is not None and check.dialogue_rows is not None \
            and check.dialogue_rows != dialogue_stats.written:
        problems.append(f"{files.dialogues}: {check.dialogue_rows} dialogue rows, its "
                        f"metadata says {dialogue_stats.written} written")
    segment_stats = stats.get(SEGMENTS)
    if dialogue_stats is not None and segment_stats is not None \
            and segment_stats.to_json() != dialogue_stats.to_json():
        problems.append(f"{files.segments}: its shard metadata differs from the dialogues "
                        "file's (the two files are from different writes)")
    if problems:
        return check
    try:
        check.dialogue_ids = _column(fs, files.dialogues, "id")
        check.segment_dialogue_ids = _column(fs, files.segments, "dialogue_id")
    except (OSError, ValueError, KeyError) as error:
        problems.append(f"{files.name}: id columns unreadable ({str(error).splitlines()[0]})")
        return check
    if len(set(check.dialogue_ids)) != len(check.dialogue_ids):
        problems.append(f"{files.dialogues}: a dialogue id occurs twice")
    strays = sorted(set(check.segment_dialogue_ids) - set(check.dialogue_ids))
    if strays:
        problems.append(f"{files.segments}: {len(strays)} segment dialogue ids are not in "
                        f"the shard's dialogues (first: {strays[0]})")
    return check


def quarantine(fs: pafs.FileSystem, root: str, files: ShardFiles, reason: str) -> str:
    """Move the shard's files to a fresh folder under `root/data/.quarantine/` (named by UTC
    time, shard and pid, so repeated quarantines of the same shard never collide) with the
    reason beside them; returns that folder. A file already gone (another run quarantined it
    first) is skipped."""
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S.%fZ")
    base = _join(root, "data", QUARANTINE, f"{stamp}-{files.name}-{os.getpid()}")
    target, attempt = base, 0
    while fs.get_file_info(target).type != pafs.FileType.NotFound:
        attempt += 1
        target = f"{base}-{attempt}"
    for config, path in files.present():
        fs.create_dir(_join(target, config), recursive=True)
        try:
            fs.move(path, _join(target, config, path.rsplit("/", 1)[-1]))
        except FileNotFoundError:
            continue
    with fs.open_output_stream(_join(target, "reason.txt")) as out:
        out.write((reason + "\n").encode("utf-8"))
    return target


def quarantined_count(fs: pafs.FileSystem, root: str) -> int:
    """Shards moved aside so far, over every run (one folder each): run.json's
    `counts.quarantined`, rebuildable from the folder like every other count."""
    selector = pafs.FileSelector(_join(root, "data", QUARANTINE), allow_not_found=True)
    return sum(1 for info in fs.get_file_info(selector) if info.type == pafs.FileType.Directory)


def verify_on_resume(fs: pafs.FileSystem, root: str) -> list[ShardCheck]:
    """Check every shard a previous run left, before anything reads them; quarantine the bad
    ones (logged, one line each) so the run regenerates them. Returns the quarantined checks.
    Lone segments files are left alone (see the module docstring)."""
    started = time.perf_counter()
    bad = []
    shards = list_shards(fs, root)
    for files in shards:
        if files.dialogues is None:
            continue
        check = check_shard(fs, files)
        if check.ok:
            continue
        reason = "; ".join(check.problems)
        where = quarantine(fs, root, files, reason)
        log.warning("shard %s moved to %s, to be regenerated: %s", files.name, where, reason)
        bad.append(check)
    log.debug("verified %d shards in %.2f s", len(shards), time.perf_counter() - started)
    return bad
