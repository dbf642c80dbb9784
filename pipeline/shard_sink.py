"""The last stage of the stream: a Ray actor that writes finished shards itself.

Why on a worker: the encoded rows (pickled FLAC mixes, channels and segments) are most of a
run's bytes. Written here, they go from the assemble workers to this actor and on to the
filesystem (a local folder or an object store, pipeline/storage.py); the driver only gets one
small JSON report per batch — rows seen, stage seconds, the shards written and their counts —
so its memory and time to the first report stay flat as the budget grows.

One actor per stream (`ActorPoolStrategy(size=1)`), and one stream for every split of a run:
the rows come in stream order (split by split, smallest share first, then index order; the
stream preserves order), so the rows of a shard arrive together, each split's budget goal is
offered dialogues in the same order as with one stream per split, and a shard is written the
moment its last row arrives. A split whose goal is reached writes its shard in progress
trimmed, ignores its remaining rows and says so on the split board (pipeline/stream.py), so
the speak stage skips them; the stream ends when every split is done. The last split of an
hours budget takes the hours the splits before it wrote (split_plan.rebalance_last), and a
row is checked against the dialogues earlier splits wrote for near-duplicates (WrittenTwins).
A shard holding a deferred row is not written (a rerun redoes it), a writer error or a spent
LLM budget stops the stream and drops the shards in progress. An environment error while
writing (no space, permission, missing bucket) stops the stream with its one line
(`sink_error`); the write is atomic, so no partial shard is visible and a rerun after the
fix resumes by shard.

Where the actor runs is chosen, not left to Ray's random pick for a zero-CPU actor: each new
stream (a run, or a claim round of a shared run) puts its sink on the next node with CPUs
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
from dataclasses import dataclass
from typing import Any

from pipeline.budget import OVER_BUDGET, BudgetGoal
from pipeline.rows import Deferred, Outcome, Rejected, Written, clean
from pipeline.sink import ShardStats, ShardWriter, shard_indices, shard_of
from pipeline.split_plan import rebalance_last
from pipeline.stages import STAGE_SECONDS
from pipeline.storage import StorageError, storage_error

BUDGET_SPENT = ("LLM budget spent (budget.max_tokens / budget.max_usd); rerun with a larger "
                "budget to resume")
NEAR_DUPLICATE = "near_duplicate"
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


@dataclass
class SinkPlan:
    """The splits of one stream, as the sink needs them."""

    shard_dialogues: int
    planned: dict[str, int]
    """split -> planned scenario indices."""
    goals: dict[str, BudgetGoal]
    """Every split of the run -> its goal, credited with the shards finished before."""
    splits: list[str]
    """The stream's splits, in stream order."""
    hours: float | None = None
    """`budget.hours`: the last split of the run takes what the others did not write."""
    tolerance: float = 0.05
    last: str | None = None
    """The run's last split in stream order (the one rebalanced in hours mode)."""
    near_duplicate_threshold: float | None = None


class ShardSinkStage:
    """`map_batches` callable class: rows of the stream's splits in, one JSON report row out.
    `board`: the split board actor, or its name (pipeline/stream.py), told of each
    finished split."""

    def __init__(self, writer: ShardWriter, plan: SinkPlan, board: Any = None) -> None:
        self.writer, self.plan, self.board = writer, plan, board
        self.size = plan.shard_dialogues
        self.pending: dict[tuple[str, int], list[dict]] = {}
        self.done: set[str] = set()  # splits whose goal is reached: their rows are ignored
        self.written_s = {name: goal.audio_s for name, goal in plan.goals.items()}
        self.rebalanced = False
        self.twins = None
        if plan.near_duplicate_threshold is not None and len(plan.splits) > 1:
            from pipeline.script_check import WrittenTwins

            self.twins = WrittenTwins(plan.near_duplicate_threshold)
        self.finished = False  # stopped, every goal reached or sink error: rows are ignored
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
            if row["split"] not in self.done:
                self._take_row(clean(row), report)
        report["finished"] = self.finished
        report["hours"] = sum(self.plan.goals[s].audio_s for s in self.plan.splits) / 3600
        return report

    def _take_row(self, row: dict, report: dict) -> None:
        split = row["split"]
        if split == self.plan.last and self.plan.hours and not self.rebalanced:
            # the splits before it are written: they arrive first in the stream
            rebalance_last(self.plan.goals[split], self.plan.hours, self.plan.tolerance,
                           sum(s for name, s in self.written_s.items() if name != split))
            self.rebalanced = True
        goal = self.plan.goals[split]
        report["rows"] += 1
        report["stage_s"].update(json.loads(row.get(STAGE_SECONDS) or "{}"))
        shard = shard_of(row["local"], self.size)
        self.pending.setdefault((split, shard), []).append(row)
        outcome = Outcome.from_dict(row)
        if not isinstance(outcome, Written) and outcome.detail is not None:
            report["reject_examples"].setdefault(outcome.stored(), outcome.detail)
        if isinstance(row.get("writer_error"), str):
            report["stopped"] = report["writer_error"] = row["writer_error"]
            self.finished = True
            return
        if isinstance(outcome, Deferred):
            report["deferred"][outcome.stored()] += 1
            if outcome.stops_run:
                report["stopped"] = BUDGET_SPENT
                report["not_written"].append([split, shard,
                                              "budget spent: left for the next run"])
                self.finished = True
                return
        elif isinstance(outcome, Written):
            if self.twins is not None and self.twins.twin(split, row["script"]):
                row.update(Rejected(NEAR_DUPLICATE).to_dict(), dialogue=None, segments=None)
            elif not goal.offer(row["audio_s"]):
                row.update(Rejected(OVER_BUDGET).to_dict(), dialogue=None, segments=None)
        complete = len(self.pending[(split, shard)]) == len(
            shard_indices(shard, self.size, self.plan.planned[split]))
        if goal.reached():
            for key in sorted(k for k in self.pending if k[0] == split):  # trimmed shards
                self._flush(key, self.pending.pop(key), report)
            self._split_done(split)
        elif complete:
            self._flush((split, shard), self.pending.pop((split, shard)), report)

    def _split_done(self, split: str) -> None:
        self.done.add(split)
        if self.board is not None:
            board = self.board
            if isinstance(board, str):  # the stream's SplitBoard actor, by name
                import ray

                board = ray.get_actor(board)
            board.finish.remote(split)
        if all(name in self.done for name in self.plan.splits):
            self.finished = True

    def _flush(self, key: tuple[str, int], rows: list[dict], report: dict) -> None:
        split, shard = key
        if report["sink_error"]:
            return
        if any(isinstance(Outcome.from_dict(r), Deferred) for r in rows):
            report["not_written"].append(
                [split, shard, "it holds deferred rows (a rerun retries them)"])
            return
        started = time.perf_counter()
        try:
            stats = flush(self.writer, split, shard, rows)
        except StorageError as error:
            report["sink_error"], self.finished = str(error), True
            return
        except OSError as error:
            where = str(self.writer.path("dialogues", split, shard))
            report["sink_error"], self.finished = str(storage_error(error, where)), True
            return
        self.written_s[split] += stats.audio_s
        if self.twins is not None and split != self.plan.splits[-1]:
            for row in rows:  # later splits of the stream are checked against these
                if not row.get("reject"):
                    self.twins.add(split, row["script"])
        report["stage_s"]["sink"] += time.perf_counter() - started
        report["written"].append([split, shard, stats.written])


def flush(writer: ShardWriter, split: str, shard: int, rows: list[dict]) -> ShardStats:
    """Write one shard from its assembled rows (any order); returns its counts."""
    rows.sort(key=lambda r: r["index"])
    stats = ShardStats(planned=len(rows))
    dialogues, segments = [], []
    for row in rows:
        if isinstance(row.get("llm_usage"), str):
            stats.llm.update(json.loads(row["llm_usage"]))
        outcome = Outcome.from_dict(row)
        if not isinstance(outcome, Written):
            stats.rejected[outcome.stored()] += 1
            continue
        dialogues.append(pickle.loads(row["dialogue"]))
        segments.extend(pickle.loads(row["segments"]))
        stats.written += 1
        stats.audio_s += row["audio_s"]
    writer.write(split, shard, dialogues, segments, stats)
    return stats
