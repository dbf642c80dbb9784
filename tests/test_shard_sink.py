"""The worker-side sink (pipeline/shard_sink.py) and the storage layer's environment errors,
on real assembled rows (offline composer, eSpeak NG) without Ray: the same stage code the
stream runs on a worker."""

from __future__ import annotations

import json
import os
import subprocess
import uuid
from pathlib import Path

import pandas as pd
import pytest

from pipeline.budget import BudgetGoal
from pipeline.config import ConfigError, GenerateConfig
from pipeline.dataset import iter_dialogues, iter_segments, run_info
from pipeline.rows import ROW_KEYS, SYNTHESIS_FAILED, Rejected, decode
from pipeline.shard_sink import REPORT, ShardSinkStage, SinkPlan
from pipeline.sink import ShardWriter
from pipeline.stages import AssembleStage, SpeakStage, ValidateStage, WriteStage
from pipeline.storage import StorageError, locate
from pipeline.stream import plan_shard
from tests.cli_support import cli

PLANNED, SIZE = 4, 2


@pytest.fixture(scope="module")
def assembled() -> list[dict]:
    """Four assembled rows of split `train` (two shards of two), in stream order."""
    config = GenerateConfig.check({"budget": {"dialogues": PLANNED},
                                   "sink": {"shard_dialogues": SIZE},
                                   "splits": {"train": 1.0}})
    stage_config = config.model_dump()
    item = {"split": "train", "position": 0, "count": 1}
    frame = pd.DataFrame([row for shard in (0, 1) for row in
                          plan_shard({**item, "shard": shard}, stage_config, SIZE, PLANNED)])
    for stage in (WriteStage, ValidateStage, SpeakStage, AssembleStage):
        frame = stage(stage_config)(frame)
    return frame.to_dict("records")


def feed(stage: ShardSinkStage, rows: list[dict]) -> list[dict]:
    """One row per batch, as the stream does with ray.batch_size=1; the reports."""
    return [json.loads(stage(pd.DataFrame([row]))[REPORT][0]) for row in rows]


def sink_stage(root, goal: int = PLANNED) -> ShardSinkStage:
    plan = SinkPlan(shard_dialogues=SIZE, planned={"train": PLANNED},
                    goals={"train": BudgetGoal(hours=None, dialogues=goal)}, splits=["train"])
    return ShardSinkStage(ShardWriter(root, 16000), plan)


def test_each_shard_is_written_on_its_last_row_and_the_report_is_small(assembled, tmp_path):
    reports = feed(sink_stage(tmp_path), assembled)
    assert [r["written"] for r in reports] == [[], [["train", 0, 2]], [], [["train", 1, 2]]]
    assert all(len(json.dumps(r)) < 2000 for r in reports), "rows travel back to the driver"
    ids = [d["id"] for d in iter_dialogues(tmp_path, columns=["id"])]
    assert ids == [json.loads(r["scenario"])["id"] for r in assembled]
    assert {s["dialogue_id"] for s in iter_segments(tmp_path, columns=["dialogue_id"])} \
        == set(ids)
    assert not list(tmp_path.glob("data/*/.*")), "temporaries left behind"


def test_deferred_rows_keep_their_shard_unwritten(assembled, tmp_path):
    rows = [dict(r) for r in assembled]
    rows[3].update(reject="deferred:writer_failed")
    reports = feed(sink_stage(tmp_path), rows)
    assert reports[-1]["not_written"] == [
        ["train", 1, "it holds deferred rows (a rerun retries them)"]]
    assert ShardWriter(tmp_path, 16000).is_done("train", 0)
    assert not ShardWriter(tmp_path, 16000).is_done("train", 1)


def test_the_row_codec_names_every_key_the_stages_set(assembled):
    assert set(assembled[0]) <= set(ROW_KEYS), set(assembled[0]) - set(ROW_KEYS)
    assert decode(assembled[0], "scenario").id == assembled[0]["id"]
    assert decode(assembled[0], "dialogue")["id"] == assembled[0]["id"]


def test_stored_reasons_reach_the_shard_metadata_unchanged(assembled, tmp_path):
    rows = [dict(r) for r in assembled]
    rows[0].update(Rejected(SYNTHESIS_FAILED).to_dict(), dialogue=None, segments=None)
    rows[1].update(reject="near_duplicate", dialogue=None, segments=None)
    feed(sink_stage(tmp_path), rows)
    meta = json.loads(ShardWriter(tmp_path, 16000).totals().to_json())
    assert json.dumps(meta["rejected"]) == '{"synthesis_failed": 1, "near_duplicate": 1}'


def test_a_reached_goal_trims_the_shard_and_ignores_the_rest(assembled, tmp_path):
    reports = feed(sink_stage(tmp_path, goal=3), assembled)
    assert reports[2]["written"] == [["train", 1, 1]] and reports[2]["finished"]
    assert reports[3]["rows"] == 0
    assert ShardWriter(tmp_path, 16000).totals().planned == 3


def test_one_stream_of_two_splits_keeps_each_goal_and_rebalances_the_last(assembled, tmp_path):
    """Rows of `validation` then `train` through one sink, as one stream for every split
    delivers them: validation stops at its goal (its spare rows ignored, the board told),
    train, the last split of an hours budget, takes the hours validation did not write."""
    rows = [{**r, "split": "validation"} for r in assembled[:2]] + \
        [{**r, "split": "validation"} for r in assembled[2:]] + [dict(r) for r in assembled]
    told: list[str] = []

    class Board:  # the stream's SplitBoard actor, called the way the sink calls it
        class finish:  # noqa: N801 - mirrors the actor method's `.remote`
            remote = staticmethod(told.append)

    hours = sum(r["audio_s"] for r in assembled) / 3600
    goals = {"validation": BudgetGoal(hours=None, dialogues=1),
             "train": BudgetGoal(hours=hours * 10, dialogues=None, tolerance=0.01)}
    plan = SinkPlan(shard_dialogues=SIZE, planned={"validation": PLANNED, "train": PLANNED},
                    goals=goals, splits=["validation", "train"], hours=hours * 10,
                    tolerance=0.01, last="train", near_duplicate_threshold=0.8)
    reports = feed(ShardSinkStage(ShardWriter(tmp_path, 16000), plan, Board()), rows)
    assert reports[0]["written"] == [["validation", 0, 1]] and told == ["validation"]
    assert [r["rows"] for r in reports[1:4]] == [0, 0, 0], "a done split's rows are ignored"
    # every train row is a near-duplicate of the same script written in validation... but
    # only the written one (row 0) counts: rows 1-3 of validation were never written
    written = ShardWriter(tmp_path, 16000)
    assert written.totals("train").rejected == {"near_duplicate": 1}
    assert written.totals("train").written == PLANNED - 1
    first = assembled[0]["audio_s"]
    assert goals["train"].hours == pytest.approx(hours * 10 - first / 3600)
    assert reports[-1]["finished"] is False  # train's goal is far: the stream just ends


def test_credentials_in_config_are_refused_naming_the_key():
    with pytest.raises(ConfigError, match="aws_secret_access_key"):
        GenerateConfig.check({"sink": {"dir": "s3://b/ds",
                                       "storage_options": {"aws_secret_access_key": "x"}}})


def test_a_file_where_the_folder_should_be_is_one_line_and_exit_2(tmp_path):
    blocker = tmp_path / "blocker"
    blocker.write_text("not a folder")
    result = cli(tmp_path, "generate", f"sink.dir={blocker / 'ds'}", "budget.dialogues=2",
                 "progress=false", ok=False)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert lines[-1].startswith(f"duplexsynth: sink: cannot write {blocker / 'ds'}: a file "
                                "stands where a folder is expected"), result.stderr[-2000:]
    assert "Traceback" not in result.stderr


def test_permission_denied_names_the_folder(tmp_path):
    folder = tmp_path / "locked"
    folder.mkdir(mode=0o555)
    tmp_path.chmod(0o755)
    read, write = os.pipe()
    child = os.fork()
    if child == 0:  # root ignores file modes: the child drops to `nobody`, a real user
        message = "no error"
        try:
            if os.getuid() == 0:
                os.setuid(65534)
            ShardWriter(folder / "ds", 16000).check_writable()
        except OSError as error:
            message = str(error)
        finally:
            os.write(write, message.encode())
            os._exit(0)
    os.close(write)
    os.waitpid(child, 0)
    message = os.read(read, 4096).decode()
    assert message.startswith(f"sink: cannot write {folder / 'ds'}: permission denied"), message


@pytest.fixture
def tiny_tmpfs(tmp_path):
    """A 64 KiB tmpfs (ENOSPC after a few KB of shard); skipped where mounting is refused."""
    mount = tmp_path / "small"
    mount.mkdir()
    result = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(mount)],
                            capture_output=True, text=True)
    if result.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {result.stderr.strip() or 'not permitted'}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def test_no_space_stops_with_one_line_no_partial_shard_and_a_rerun_completes(
        assembled, tiny_tmpfs):
    root = tiny_tmpfs / "ds"
    reports = feed(sink_stage(root), assembled)
    error = next(r["sink_error"] for r in reports if r["sink_error"])
    assert error.startswith(f"sink: cannot write {root}/data/") and "no space left" in error
    assert reports[-1]["finished"] and "\n" not in error
    on_disk = [p.name for p in root.rglob("*") if p.is_file()]
    assert all(not name.startswith(".") for name in on_disk), on_disk
    # the rerun after the fix: more room, the same rows; finished shards are skipped by the
    # driver (is_done), the rest written
    subprocess.run(["mount", "-o", "remount,size=16m", str(tiny_tmpfs)], check=True)
    writer = ShardWriter(root, 16000)
    todo = [s for s in (0, 1) if not writer.is_done("train", s)]
    feed(sink_stage(root), [r for r in assembled if r["shard"] in todo])
    assert len(list(iter_dialogues(root, columns=["id"]))) == PLANNED


def test_locations_parse_local_file_and_object_store_forms(tmp_path):
    assert locate(tmp_path).root == str(tmp_path) and locate(tmp_path).is_local
    assert locate(f"file://{tmp_path}").root == str(tmp_path)
    remote = locate(f"s3://bucket-{uuid.uuid4().hex[:6]}/a/ds/", {"endpoint_url": "http://x"})
    assert remote.protocol == "s3" and remote.root.endswith("/a/ds") and not remote.is_local
    assert locate(remote.url + "/data/x.parquet").options == {"endpoint_url": "http://x"}
    assert run_info(tmp_path) == {}
    with pytest.raises(StorageError, match="a file stands where a folder"):
        (tmp_path / "f").write_text("x")
        locate(Path(tmp_path / "f" / "ds")).check_writable()


def test_a_read_only_filesystem_is_named_before_any_work(tiny_tmpfs):
    subprocess.run(["mount", "-o", "remount,ro", str(tiny_tmpfs)], check=True)
    with pytest.raises(StorageError, match="the filesystem is read-only") as caught:
        ShardWriter(tiny_tmpfs / "ds", 16000).check_writable()
    assert str(caught.value).startswith(f"sink: cannot write {tiny_tmpfs / 'ds'}")


def test_the_driver_figure_is_the_process_own_unique_memory():
    from pipeline.bench_run import driver_uss, tree_rss

    own = driver_uss(os.getpid())
    assert 0 < own <= tree_rss(os.getpid())
    assert driver_uss(2**22 + 12345) == 0  # a process that is gone counts nothing
