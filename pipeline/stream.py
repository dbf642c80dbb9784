"""One split's Ray Data stream: plan → write → validate → speak (→ asr) → assemble → sink.

The stream preserves order, so the rows of a shard arrive together at the sink actor, which
writes each shard the moment it is complete (pipeline/shard_sink.py). The driver receives one
small report per batch — never an encoded row — so its memory does not grow with the budget.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from collections import Counter
from typing import Any

from pipeline.budget import BudgetGoal
from pipeline.config import GenerateConfig
from pipeline.shard_sink import BUDGET_SPENT, REPORT, ShardSinkStage, sink_placement
from pipeline.sink import ShardWriter, shard_indices
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


def plan_shard(row: dict, config: dict, shard_dialogues: int, planned: int) -> list[dict]:
    """The plan stage as a Ray task per shard: planning is cheap, an actor pool for it only
    added start-up time."""
    planner = PlanStage(config)
    planner.setup()
    started = time.perf_counter()
    rows = [planner.process(r) for r in shard_rows(row, shard_dialogues, planned)]
    return charge_stage(rows, planner.stage, started)


def stream_split(
    config: GenerateConfig,
    split: str,
    shards: list[int],
    writer: ShardWriter,
    planned: int,
    goal: BudgetGoal,
) -> dict:
    """Stream one split's shards through the stages into the sink actor (shard_sink.py),
    which writes them; the driver reads only its per-batch reports. Returns deferred counts,
    the stop reason, the profile and the first reject of each reason; raises StorageError
    (one line) when the sink cannot write."""
    import ray
    from tqdm import tqdm

    stage_config = config.model_dump()
    batch = config.ray.batch_size
    size = config.sink.shard_dialogues
    dialogues = sum(len(shard_indices(s, size, planned)) for s in shards)
    names = list(config.splits)
    items = [{"shard": s, "split": split, "position": names.index(split), "count": len(names)}
             for s in shards]
    dataset = (
        ray.data.from_items(items, override_num_blocks=len(shards))
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
            WriteStage, fn_constructor_args=(stage_config, spent_so_far),
            batch_size=write_batch, batch_format="pandas",
            compute=ray.data.ActorPoolStrategy(size=1), num_cpus=LIGHT_STAGE_CPUS)
    dataset = (
        dataset
        .map_batches(ValidateStage, fn_constructor_args=(
                         stage_config, writer.location, seen_splits(config, split)),
                     batch_size=batch, batch_format="pandas",
                     compute=ray.data.ActorPoolStrategy(size=1), num_cpus=LIGHT_STAGE_CPUS)
        .map_batches(SpeakStage, fn_constructor_args=(stage_config,), batch_size=batch,
                     batch_format="pandas",
                     compute=ray.data.ActorPoolStrategy(size=config.ray.speak_workers))
    )
    asr = config.checks.asr
    if asr.enabled:  # one Whisper model per actor: a pool like the speak pool
        from pipeline.asr_check import AsrStage

        dataset = dataset.map_batches(
            AsrStage, fn_constructor_args=(stage_config,), batch_size=batch,
            batch_format="pandas", num_cpus=asr.num_cpus,
            compute=ray.data.ActorPoolStrategy(size=asr.workers or config.ray.speak_workers))
    dataset = (
        dataset
        .map_batches(AssembleStage, fn_constructor_args=(stage_config,), batch_size=batch,
                     batch_format="pandas")
        .map_batches(ShardSinkStage, fn_constructor_args=(writer, split, size, planned, goal),
                     batch_size=batch, batch_format="pandas", num_cpus=SINK_CPUS,
                     compute=ray.data.ActorPoolStrategy(size=1), **sink_placement())
    )
    if goal.dialogues is not None and not goal.by_hours:
        dialogues = min(dialogues, goal.dialogues - goal.written)  # spares rarely run
    progress = tqdm(total=dialogues, unit="dlg", disable=not config.progress,
                    desc=f"generate {split}", dynamic_ncols=True, file=sys.stderr)
    outcome = _read_reports(dataset, split, progress)
    progress.close()
    return outcome


def _read_reports(dataset: Any, split: str, progress: Any) -> dict:
    """Sum the sink actor's reports; the driver holds no row (module docstring)."""
    deferred: Counter[str] = Counter()
    stage_s: Counter[str] = Counter()
    reject_examples: dict[str, str] = {}
    stopped = writer_error = sink_error = None
    first_row_s = None
    stream_started = time.perf_counter()
    for item in dataset.iter_rows():
        if first_row_s is None:
            first_row_s = time.perf_counter() - stream_started
        report = json.loads(item[REPORT])
        progress.update(report["rows"])
        progress.set_postfix(hours=f"{report['hours']:.3f}")
        stage_s.update(report["stage_s"])
        deferred.update(report["deferred"])
        for reason, detail in report["reject_examples"].items():
            reject_examples.setdefault(reason, detail)
        for shard, why in report["not_written"]:
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


def seen_splits(config: GenerateConfig, split: str) -> list[str]:
    """Splits a fresh run has generated when `split` starts (stream order), `split` included:
    a resumed split is checked for near-duplicates against exactly those."""
    order = stream_order(config.splits)
    return order[:order.index(split) + 1]


