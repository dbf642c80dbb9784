"""One Ray Data stream for every split: plan → write → validate → speak (→ asr) → assemble
→ sink.

The stream preserves order, so the rows of a shard arrive together at the sink actor, which
writes each shard the moment it is complete (pipeline/shard_sink.py). The driver receives one
small report per batch — never an encoded row — so its memory does not grow with the budget.
"""

from __future__ import annotations

import json
import logging
import sys
import time
import uuid
from collections import Counter
from typing import Any

from pipeline.budget import BudgetGoal
from pipeline.config import GenerateConfig
from pipeline.shard_sink import (
    BUDGET_SPENT,
    REPORT,
    ShardSinkStage,
    SinkPlan,
    sink_placement,
)
from pipeline.sink import ShardWriter, shard_indices, shard_pattern
from pipeline.splits import global_index, stream_order
from pipeline.stages import (
    AssembleStage,
    PlanStage,
    SpeakStage,
    ValidateStage,
    WriteStage,
    charge_stage,
)
from pipeline.storage import StorageError

log = logging.getLogger("duplexsynth")

# Planning and writing (offline composer, or waiting on an LLM endpoint) barely use a core;
# reserving a whole one per actor would starve synthesis and rendering on a small machine.
LIGHT_STAGE_CPUS = 0.25
SINK_CPUS = 0
"""The sink actor unpickles encoded rows and compresses Parquet (tens of ms a shard). It
reserves no CPU: any fraction it held would split a node's last core, and on a cluster of
1-CPU nodes the next split's 1-CPU actors could then never be placed (a deadlock seen in
tests/test_cluster.py with 0.1)."""


def shard_rows(row: dict, shard_dialogues: int, planned: int) -> list[dict]:
    """Expand one shard of a split into its scenario indices (runs inside Ray: the driver
    keeps shards). `local` is the index inside the split, `index` the run's (splits.py)."""
    shard, position, count = int(row["shard"]), int(row["position"]), int(row["count"])
    return [{"index": global_index(position, local, count), "local": local,
             "split": row["split"], "shard": shard, "reject": None}
            for local in shard_indices(shard, shard_dialogues, planned)]


def plan_shard(row: dict, config: dict, shard_dialogues: int,
               planned: int | dict[str, int]) -> list[dict]:
    """The plan stage as a Ray task per shard: planning is cheap, an actor pool for it only
    added start-up time."""
    planner = PlanStage(config)
    planner.setup()
    started = time.perf_counter()
    if isinstance(planned, dict):  # one stream carries every split: split -> planned
        planned = planned[row["split"]]
    rows = [planner.process(r) for r in shard_rows(row, shard_dialogues, planned)]
    return charge_stage(rows, planner.stage, started)


SPLIT_DONE = "split_done"
"""Reject of a row whose split reached its goal before the row was spoken (never counted:
the sink ignores a finished split's rows)."""


class SplitBoard:
    """A Ray actor (no CPU): the splits whose goal the sink has reached. The write and
    speak stages skip those splits' remaining rows (spares), which one stream per split
    never computed because its stream ended there."""

    def __init__(self) -> None:
        self.done: set[str] = set()

    def finish(self, split: str) -> None:
        self.done.add(split)

    def finished(self) -> list[str]:
        return sorted(self.done)


def board(name: str) -> Any:
    """The split board actor of a stream, by name. Stages get the name, not the handle: an
    actor handle among an actor's constructor arguments makes Ray log an error line about
    restarts for every pool (ray-project/ray#53727)."""
    import ray

    return ray.get_actor(name)


BOARD_REFRESH_S = 1.0
"""How old the gate's copy of the finished splits may get before it asks the board again
(one small actor call; per row it would cost more than an eSpeak row)."""


class Gated:
    """`map_batches` callable class: a stage that first marks the rows of finished splits
    (the board's) rejected, so the stage passes them through without work, and asks again
    before each row (at most every BOARD_REFRESH_S): the split's last shard is usually
    written while the next batch, its spares, is already being spoken."""

    def __init__(self, stage: type, args: tuple, board: str) -> None:
        self.stage, self.board = stage(*args), board
        self.stage.skip_reason = self.skip_reason
        self._done: list[str] = []
        self._asked = float("-inf")

    def finished_splits(self) -> list[str]:
        import ray

        if time.monotonic() - self._asked >= BOARD_REFRESH_S:
            try:
                self._done = ray.get(board(self.board).finished.remote(), timeout=10)
            except Exception:  # noqa: BLE001 - no answer: do the work, the sink still drops it
                self._done = []
            self._asked = time.monotonic()
        return self._done

    def skip_reason(self, row: dict) -> str | None:
        return SPLIT_DONE if row.get("split") in self.finished_splits() else None

    def __call__(self, batch: Any) -> Any:
        done = self.finished_splits()
        if done and len(batch) and "reject" in batch.columns:
            skip = batch["split"].isin(done) & batch["reject"].isna()
            if skip.any():
                batch = batch.copy()
                batch.loc[skip, "reject"] = SPLIT_DONE
        return self.stage(batch)


class WriteStageGate(Gated):
    """Gated write stage: its own class so Ray names the pool's processes after the stage
    (`ray::MapWorker(MapBatches(WriteStageGate))`), as `ps` and the dashboard show them."""


class SpeakStageGate(Gated):
    """Gated speak stage (named as WriteStageGate)."""


class AsrStageGate(Gated):
    """Gated ASR stage (named as WriteStageGate)."""


def stream_splits(
    config: GenerateConfig,
    work: list[tuple[str, list[int]]],
    writer: ShardWriter,
    planned: dict[str, int],
    goals: dict[str, BudgetGoal],
) -> dict:
    """Stream the shards of `work` ((split, shards) in stream order) through the stages into
    the sink actor (shard_sink.py), which writes them; the driver reads only its per-batch
    reports. One stream for every split: one start-up of the actor pools. Returns deferred
    counts, the stop reason, the profile and the first reject of each reason; raises
    StorageError (one line) when the sink cannot write."""
    import ray
    from tqdm import tqdm

    stage_config = config.model_dump()
    batch = config.ray.batch_size
    size = config.sink.shard_dialogues
    names = list(config.splits)
    items = [{"shard": s, "split": split, "position": names.index(split), "count": len(names)}
             for split, shards in work for s in shards]
    board_name = f"duplexsynth-board-{uuid.uuid4().hex[:12]}"
    split_board = ray.remote(num_cpus=0)(SplitBoard).options(name=board_name).remote()
    dataset = (
        ray.data.from_items(items, override_num_blocks=len(items))
        .flat_map(plan_shard, fn_kwargs={"config": stage_config, "shard_dialogues": size,
                                         "planned": planned}, num_cpus=LIGHT_STAGE_CPUS)
    )
    if config.writer.name == "vllm":
        from pipeline.writers.vllm_writer import write_dataset

        dataset = write_dataset(dataset, stage_config)
    else:
        spent = writer.totals().llm
        spent_so_far = {"tokens": spent["prompt_tokens"] + spent["completion_tokens"],
                        "usd": spent["usd"]}
        # one actor: the budget is counted in one place; it overlaps `concurrency` requests
        from pipeline.writers.settings import writer_settings

        settings = writer_settings(config.writer.model_dump())
        write_batch = max(batch, int(getattr(settings, "concurrency", 1)))
        dataset = dataset.map_batches(
            WriteStageGate,
            fn_constructor_args=(WriteStage, (stage_config, spent_so_far), board_name),
            batch_size=write_batch, batch_format="pandas",
            compute=ray.data.ActorPoolStrategy(size=1), num_cpus=LIGHT_STAGE_CPUS)
    dataset = (
        dataset
        .map_batches(ValidateStage, fn_constructor_args=(
                         stage_config, writer.location, dict(config.splits),
                         prior_shards(writer, config)),
                     batch_size=batch, batch_format="pandas",
                     compute=ray.data.ActorPoolStrategy(size=1), num_cpus=LIGHT_STAGE_CPUS)
        .map_batches(SpeakStageGate, fn_constructor_args=(SpeakStage, (stage_config,), board_name),
                     batch_size=batch, batch_format="pandas",
                     compute=ray.data.ActorPoolStrategy(size=config.ray.speak_workers))
    )
    asr = config.checks.asr
    if asr.enabled:  # one Whisper model per actor: a pool like the speak pool
        from pipeline.asr_check import AsrStage

        dataset = dataset.map_batches(
            AsrStageGate, fn_constructor_args=(AsrStage, (stage_config,), board_name),
            batch_size=batch,
            batch_format="pandas", num_cpus=asr.num_cpus,
            compute=ray.data.ActorPoolStrategy(size=asr.workers or config.ray.speak_workers))
    plan = SinkPlan(shard_dialogues=size, planned=planned, goals=goals,
                    splits=[split for split, _ in work], hours=config.budget.hours,
                    tolerance=config.budget.tolerance, last=stream_order(config.splits)[-1],
                    near_duplicate_threshold=config.checks.near_duplicate_threshold)
    dataset = (
        dataset
        .map_batches(AssembleStage, fn_constructor_args=(stage_config,), batch_size=batch,
                     batch_format="pandas")
        .map_batches(ShardSinkStage, fn_constructor_args=(writer, plan, board_name),
                     batch_size=batch, batch_format="pandas", num_cpus=SINK_CPUS,
                     compute=ray.data.ActorPoolStrategy(size=1), **sink_placement())
    )
    dialogues = 0
    for split, shards in work:
        goal = goals[split]
        count = sum(len(shard_indices(s, size, planned[split])) for s in shards)
        if goal.dialogues is not None and not goal.by_hours:
            count = min(count, goal.dialogues - goal.written)  # spares rarely run
        dialogues += count
    label = work[0][0] if len(work) == 1 else "+".join(split for split, _ in work)
    progress = tqdm(total=dialogues, unit="dlg", disable=not config.progress,
                    desc=f"generate {label}", dynamic_ncols=True, file=sys.stderr)
    try:
        outcome = _read_reports(dataset, progress)
    finally:
        progress.close()
        ray.kill(split_board)
    return outcome


def prior_shards(writer: ShardWriter, config: GenerateConfig) -> dict[str, list[str]]:
    """split -> its finished dialogue shards before the stream (the validate stage seeds a
    split's near-duplicate index with those of the splits generated up to it)."""
    location = writer.location
    return {split: sorted(location.show(p[len(location.root):].lstrip("/"))
                          for p in location.glob("data", "dialogues", shard_pattern(split)))
            for split in config.splits}


def _read_reports(dataset: Any, progress: Any) -> dict:
    """Sum the sink actor's reports; the driver holds no row (module docstring)."""
    deferred: Counter[str] = Counter()
    stage_s: Counter[str] = Counter()
    reject_examples: dict[str, str] = {}
    stopped = writer_error = sink_error = None
    first_row_s = None
    stream_started = time.perf_counter()
    # No prefetch: iter_rows() looks one block ahead, so each report (and the `finished` that
    # ends the stream) would reach the driver only once the next block existed.
    reports = (row for batch in dataset.iter_batches(batch_size=None, prefetch_batches=0,
                                                     batch_format="numpy")
               for row in batch[REPORT])
    for text in reports:
        if first_row_s is None:
            first_row_s = time.perf_counter() - stream_started
        report = json.loads(text)
        progress.update(report["rows"])
        progress.set_postfix(hours=f"{report['hours']:.3f}")
        stage_s.update(report["stage_s"])
        deferred.update(report["deferred"])
        for reason, detail in report["reject_examples"].items():
            reject_examples.setdefault(reason, detail)
        for split, shard, why in report["not_written"]:
            log.warning("%s shard %d not written: %s", split, shard, why)
        if report["writer_error"]:
            writer_error = report["writer_error"]
            log.warning("%s", writer_error)
        stopped = stopped or report["stopped"]
        sink_error = sink_error or report["sink_error"]
        if report["finished"]:
            break
    if stopped == BUDGET_SPENT:
        log.warning("writer: %s", stopped)
    if sink_error:
        raise StorageError(sink_error)
    # Seconds summed over rows (stages run side by side, so they can add up to more than the
    # wall time); first_row_s is start-up plus filling the pipeline, stream_s the whole stream.
    profile = {"stage_s": {k: round(v, 3) for k, v in stage_s.items()},
               "first_row_s": round(first_row_s or 0.0, 3),
               "stream_s": round(time.perf_counter() - stream_started, 3)}
    return {"deferred": deferred, "stopped": stopped, "profile": profile,
            "writer_error": writer_error, "reject_examples": reject_examples}


def seen_splits(splits: dict[str, float], split: str) -> list[str]:
    """Splits a fresh run has generated when `split` starts (stream order), `split` included:
    a resumed split is checked for near-duplicates against exactly those."""
    order = stream_order(splits)
    return order[:order.index(split) + 1]
