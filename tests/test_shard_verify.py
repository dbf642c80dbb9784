"""Shard checks on resume and the quarantine: hand-made shards with the sink's metadata."""

from __future__ import annotations

import os
from pathlib import Path

import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq
import pytest

from pipeline.dataset import UNREADABLE_HINT, check_shards, iter_rows, open_shard
from pipeline.shard_verify import (
    QUARANTINE,
    ShardUnreadable,
    check_shard,
    list_shards,
    local_storage,
    quarantine,
    quarantined_count,
    verify_on_resume,
)
from pipeline.sink import SHARD_META_KEY, ShardStats, shard_name


def write_file(path: Path, column: str, values: list[str], stats: ShardStats | None) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    metadata = {SHARD_META_KEY: stats.to_json()} if stats else None
    schema = pa.schema([(column, pa.string())], metadata=metadata)
    pq.write_table(pa.table({column: values}, schema=schema), path)


def write_shard(root: Path, split: str, shard: int, ids: list[str],
                segment_of: list[str] | None = None, written: int | None = None) -> None:
    """A shard as the sink writes it: same stats in both files; two segments per dialogue."""
    stats = ShardStats(planned=len(ids), written=len(ids) if written is None else written)
    name = shard_name(split, shard)
    segment_of = [i for i in ids for _ in range(2)] if segment_of is None else segment_of
    write_file(root / "data" / "segments" / name, "dialogue_id", segment_of, stats)
    write_file(root / "data" / "dialogues" / name, "id", ids, stats)


def truncate(path: Path) -> None:
    with open(path, "r+b") as handle:
        handle.truncate(os.path.getsize(path) // 2)


@pytest.fixture
def root(tmp_path: Path) -> Path:
    write_shard(tmp_path, "train", 0, ["a", "b"])
    write_shard(tmp_path, "train", 1, ["c", "d"])
    write_shard(tmp_path, "test", 0, ["e"])
    return tmp_path


def checks(root: Path) -> dict[str, list[str]]:
    fs, base = local_storage(root)
    return {files.name: check_shard(fs, files).problems for files in list_shards(fs, base)}


def test_whole_shards_pass(root):
    assert checks(root) == {"test-00000": [], "train-00000": [], "train-00001": []}


def test_each_kind_of_damage_is_named(root):
    truncate(root / "data" / "dialogues" / "train-00000.parquet")
    write_shard(root, "train", 1, ["c"], written=2)  # metadata says 2, the file holds 1
    write_shard(root, "test", 1, ["f"], segment_of=["f", "zz"])  # a segment of no dialogue
    write_shard(root, "test", 2, ["g", "g"])  # an id twice
    write_file(root / "data" / "segments" / "test-00000.parquet", "dialogue_id", ["e"],
               ShardStats(planned=9, written=1))  # from another write than its dialogues
    found = checks(root)
    assert "Parquet magic bytes not found" in found["train-00000"][0]
    assert "dialogues/train-00000.parquet: unreadable" in found["train-00000"][0]
    assert found["train-00001"] == [f"{root}/data/dialogues/train-00001.parquet: 1 dialogue "
                                    "rows, its metadata says 2 written"]
    assert "1 segment dialogue ids are not in the shard's dialogues (first: zz)" \
        in found["test-00001"][0]
    assert "a dialogue id occurs twice" in found["test-00002"][0]
    assert "metadata differs" in found["test-00000"][0]


def test_resume_quarantines_both_files_and_leaves_a_lone_segments_file(root):
    truncate(root / "data" / "dialogues" / "train-00000.parquet")
    write_shard(root, "train", 1, ["c"], written=2)
    lone = root / "data" / "segments" / "train-00002.parquet"  # crash between the renames
    write_file(lone, "dialogue_id", ["x"], ShardStats(planned=1, written=1))
    bad = verify_on_resume(*local_storage(root))
    assert sorted(c.files.name for c in bad) == ["train-00000", "train-00001"]
    assert sorted(p.name for p in (root / "data" / "dialogues").iterdir()) == \
        ["test-00000.parquet"]
    assert lone.exists()
    folders = sorted((root / "data" / QUARANTINE).iterdir())
    assert len(folders) == 2 == quarantined_count(*local_storage(root))
    for folder, shard in zip(folders, ("train-00000", "train-00001"), strict=True):
        assert f"-{shard}-{os.getpid()}" in folder.name
        assert (folder / "dialogues" / f"{shard}.parquet").exists()
        assert (folder / "segments" / f"{shard}.parquet").exists()
    assert "metadata says 2 written" in (folders[1] / "reason.txt").read_text()
    assert verify_on_resume(*local_storage(root)) == []  # the rest is whole


def test_repeated_quarantine_of_one_shard_never_collides(root):
    fs, base = local_storage(root)
    folders = []
    for _ in range(3):
        write_shard(root, "train", 0, ["a"], written=2)
        files = next(f for f in list_shards(fs, base) if f.name == "train-00000")
        folders.append(quarantine(fs, base, files, "test"))
    assert len(set(folders)) == 3 == quarantined_count(fs, base)
    assert all(fs.get_file_info(f"{f}/dialogues/train-00000.parquet").type
               == pafs.FileType.File for f in folders)


def test_a_lone_dialogues_file_is_not_a_done_shard(root):
    (root / "data" / "segments" / "train-00001.parquet").unlink()
    assert checks(root)["train-00001"] == ["train-00001: the segments file is missing"]
    assert [c.files.name for c in verify_on_resume(*local_storage(root))] == ["train-00001"]


def test_readers_name_the_bad_file_in_one_line(root):
    bad = root / "data" / "dialogues" / "train-00001.parquet"
    truncate(bad)
    with pytest.raises(ShardUnreadable) as caught:
        list(iter_rows(root, "dialogues", columns=["id"], parse_json=False))
    message = str(caught.value)
    assert message.startswith(f"{bad}: unreadable Parquet file (Parquet magic bytes")
    assert message.endswith(UNREADABLE_HINT) and "\n" not in message
    with pytest.raises(ShardUnreadable):
        open_shard(bad)
    assert [c.ok for c in check_shards(root)] == [True, True, False]


def test_run_time_readers_name_the_bad_file_when_verification_is_off(root):
    """sink.verify_on_resume=false: the sink's totals (budget, run.json), the split report
    and run summary (pipeline/sink.py read_table) and the near-duplicate index read finished
    shards unchecked; a damaged file gives the readers' one line, not pyarrow's traceback."""
    from pipeline.script_check import ScriptChecker
    from pipeline.sink import ShardWriter, read_table

    bad = root / "data" / "dialogues" / "train-00001.parquet"
    truncate(bad)
    expected = f"{bad}: unreadable Parquet file (Parquet magic bytes"
    for read in (lambda: ShardWriter(root, 16000).totals("train"),
                 lambda: read_table(bad, columns=["id"]),
                 lambda: ScriptChecker().remember_shards([bad])):
        with pytest.raises(ShardUnreadable) as caught:
            read()
        message = str(caught.value)
        assert message.startswith(expected) and message.endswith(UNREADABLE_HINT)
        assert "\n" not in message
    assert ShardWriter(root, 16000).totals("test").written == 1  # whole shards still read


def test_unparseable_shard_metadata_is_one_line_in_the_totals(tmp_path):
    write_shard(tmp_path, "train", 0, ["a"])
    path = tmp_path / "data" / "dialogues" / "train-00000.parquet"
    schema = pa.schema([("id", pa.string())], metadata={SHARD_META_KEY: b"{not json"})
    pq.write_table(pa.table({"id": ["a"]}, schema=schema), path)
    from pipeline.sink import ShardWriter

    with pytest.raises(ShardUnreadable, match=r"train-00000.parquet: shard metadata "
                                              r"'duplexsynth' does not parse"):
        ShardWriter(tmp_path, 16000).totals()


def test_generate_without_verification_stops_on_a_damaged_shard_in_one_line(root, tmp_path):
    """The CLI: `sink.verify_on_resume=false` and a damaged finished shard stop `generate`
    before any work (the budget reads the shards' totals first) with the file's one line."""
    from tests.cli_support import cli

    bad = root / "data" / "dialogues" / "train-00001.parquet"
    truncate(bad)
    result = cli(tmp_path / "cli", "generate", f"sink.dir={root}", "sink.verify_on_resume=false",
                 "budget.dialogues=6", "sink.shard_dialogues=2", "progress=false",
                 "splits={train:1.0,validation:0,test:0}", ok=False)
    assert result.returncode == 2, result.stderr[-3000:]
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith(f"duplexsynth: {bad}: unreadable Parquet file (Parquet magic bytes")
    assert last.endswith(UNREADABLE_HINT) and "Traceback" not in result.stderr
    assert sorted(p.name for p in (root / "data" / "dialogues").iterdir()) == [
        "test-00000.parquet", "train-00000.parquet", "train-00001.parquet"]  # no work done
