"""The last stage of the stream: a Ray actor that writes finished shards itself.

Why on a worker: the encoded rows (pickled FLAC mixes, channels and segments) are most of a
run's bytes. Written here, they go from the assemble workers to this actor and on to the
filesystem (a local folder or an object store, pipeline/storage.py); the driver only gets one
small JSON report per batch — rows seen, stage seconds, the shards written and their counts —
so its memory and time to the first report stay flat as the budget grows.

One actor per split stream (`ActorPoolStrategy(size=1)`): the rows come in index order
(the stream preserves order), so the rows of a shard arrive together, the budget goal is
offered dialogues in the same order as a driver-side sink would, and a shard is written the
moment its last row arrives. What the driver loop did row by row happens here unchanged:
a shard holding a deferred row is not written (a rerun redoes it), a writer error or a spent
LLM budget stops the stream and drops the shards in progress, a reached goal writes the shard
in progress trimmed and ignores the rest. An environment error while writing (no space,
permission, missing bucket) stops the stream with its one line (`sink_error`); the write is
atomic, so no partial shard is visible and a rerun after the fix resumes by shard.

Where the actor runs is chosen, not left to Ray's random pick for a zero-CPU actor: each new
stream (a split, or a claim round of a shared run) puts its sink on the next node with CPUs
in turn (`sink_placement`, soft affinity: any node when that one is gone), so on a cluster the
write traffic of a run is spread over the nodes. Each shard records who wrote it (host, pid,
Ray node: pipeline/sink.py `writer_identity`).
"""

from __future__ import annotations

import itertools
import json
import pickle
import threading
import time
from collections import Counter
from typing import Any

from pipeline.budget import OVER_BUDGET, BudgetGoal
from pipeline.script_check import is_deferred
from pipeline.sink import ShardStats, ShardWriter, shard_indices, shard_of
from pipeline.stages import STAGE_SECONDS
from pipeline.storage import StorageError, storage_error

BUDGET_SPENT = ("LLM budget spent (budget.max_tokens / budget.max_usd); rerun with a larger "
                "budget to resume")
REPORT = "sink_report"
"""The one column of the stage's output: a JSON report per input batch."""
_STREAMS = itertools.count()
"""Streams started by this driver: the turn of `sink_placement`."""


def sink_placement() -> dict[str, Any]:
    """Ray remote args for the next stream's sink actor: soft affinity to the alive nodes
    that have CPUs (a 0-CPU head is left alone, as for any work), sorted by node id, in turn;
    nothing on a single node. Called by the driver (pipeline/stream.py) once per stream."""
    import ray
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    nodes = sorted(node["NodeID"] for node in ray.nodes()
                   if node.get("Alive") and node.get("Resources", {}).get("CPU", 0) > 0)
    if len(nodes) < 2:
        return {}
    node = nodes[next(_STREAMS) % len(nodes)]
    return {"scheduling_strategy": NodeAffinitySchedulingStrategy(node, soft=True)}


class ShardSinkStage:
    """`map_batches` callable class: rows of one split in, one JSON report row out."""

    def __init__(self, writer: ShardWriter, split: str, shard_dialogues: int, planned: int,
                 goal: BudgetGoal) -> None:
        self.writer, self.split, self.size, self.planned = writer, split, shard_dialogues, planned
        self.goal = goal
        self.pending: dict[int, list[dict]] = {}
        self.finished = False  # stopped, goal reached or sink error: later rows are ignored
        self.lock = threading.Lock()  # the actor runs batches one at a time; be sure of it

    def __call__(self, batch: Any) -> dict[str, list[str]]:
        rows = batch.to_dict("records") if hasattr(batch, "to_dict") else list(batch)
        with self.lock:
            report = self.take(rows)
        return {REPORT: [json.dumps(report)]}

    def take(self, rows: list[dict]) -> dict:
        """Feed rows in stream order; returns the report of what happened to them."""
        report: dict[str, Any] = {"rows": 0, "stage_s": Counter(), "reject_examples": {},
                                  "deferred": Counter(), "written": [], "not_written": [],
                                  "stopped": None, "writer_error": None, "sink_error": None,
                                  "finished": self.finished, "hours": 0.0}
        for row in rows:
            if self.finished:
                break
            self._take_row(_clean(row), report)
        report["finished"] = self.finished
        report["hours"] = self.goal.audio_s / 3600
        return report

    def _take_row(self, row: dict, report: dict) -> None:
        report["rows"] += 1
        report["stage_s"].update(json.loads(row.get(STAGE_SECONDS) or "{}"))
        shard = shard_of(row["local"], self.size)
        self.pending.setdefault(shard, []).append(row)
        if row.get("reject") and isinstance(row.get("reject_detail"), str):
            report["reject_examples"].setdefault(row["reject"], row["reject_detail"])
        if isinstance(row.get("writer_error"), str):
            report["stopped"] = report["writer_error"] = row["writer_error"]
            self.finished = True
            return
        if is_deferred(row.get("reject")):
            report["deferred"][row["reject"]] += 1
            if row["reject"].endswith("budget_exhausted"):
                report["stopped"] = BUDGET_SPENT
                report["not_written"].append([shard, "budget spent: left for the next run"])
                self.finished = True
                return
        elif not row.get("reject") and not self.goal.offer(row["audio_s"]):
            row.update(reject=OVER_BUDGET, dialogue=None, segments=None)
        complete = len(self.pending[shard]) == len(shard_indices(shard, self.size,
                                                                 self.planned))
        if self.goal.reached():
            for number in sorted(self.pending):  # trimmed shards: the goal is met
                self._flush(number, self.pending.pop(number), report)
            self.finished = True
        elif complete:
            self._flush(shard, self.pending.pop(shard), report)

    def _flush(self, shard: int, rows: list[dict], report: dict) -> None:
        if report["sink_error"]:
            return
        if any(is_deferred(r.get("reject")) for r in rows):
            report["not_written"].append(
                [shard, "it holds deferred rows (a rerun retries them)"])
            return
        started = time.perf_counter()
        try:
            stats = flush(self.writer, self.split, shard, rows)
        except StorageError as error:
            report["sink_error"], self.finished = str(error), True
            return
        except OSError as error:
            where = str(self.writer.path("dialogues", self.split, shard))
            report["sink_error"], self.finished = str(storage_error(error, where)), True
            return
        report["stage_s"]["sink"] += time.perf_counter() - started
        report["written"].append([shard, stats.written])


def flush(writer: ShardWriter, split: str, shard: int, rows: list[dict]) -> ShardStats:
    """Write one shard from its assembled rows (any order); returns its counts."""
    rows.sort(key=lambda r: r["index"])
    stats = ShardStats(planned=len(rows))
    dialogues, segments = [], []
    for row in rows:
        if isinstance(row.get("llm_usage"), str):
            stats.llm.update(json.loads(row["llm_usage"]))
        if row.get("reject"):
            stats.rejected[row["reject"]] += 1
            continue
        dialogues.append(pickle.loads(row["dialogue"]))
        segments.extend(pickle.loads(row["segments"]))
        stats.written += 1
        stats.audio_s += row["audio_s"]
    writer.write(split, shard, dialogues, segments, stats)
    return stats


def _clean(row: dict) -> dict:
    """pandas gives NaN where a column only some rows set; the loop expects None."""
    return {key: (None if isinstance(value, float) and value != value else value)
            for key, value in row.items()}
