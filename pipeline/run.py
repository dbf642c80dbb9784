"""Wires the stages into one Ray Data stream and feeds the sink.

The driver plans scenarios (cheap), leaves out every shard that already exists, and streams
the rest through write → speak → assemble with order preserved, so the rows of a shard arrive
together and the driver holds at most about one shard of encoded rows at a time.
"""

from __future__ import annotations

import json
import logging
import os
import pickle
import platform
import random
import sys
import time
from collections import Counter
from importlib import metadata
from pathlib import Path
from typing import Any

from pipeline.budget import OVER_BUDGET, BudgetGoal
from pipeline.config import GenerateConfig
from pipeline.scenarios import PlanSettings
from pipeline.schema import ScenarioSpec
from pipeline.script_check import WriterStopped, is_deferred
from pipeline.sink import ShardStats, ShardWriter, iter_shards, shard_indices, shard_of
from pipeline.stages import (
    STAGE_SECONDS,
    AssembleStage,
    PlanStage,
    SpeakStage,
    ValidateStage,
    WriteStage,
    charge_stage,
)
from pipeline.timing import TimingSettings
from pipeline.timing_stats import TimingAccumulator, intervals_from_timeline
from pipeline.writers.usage import llm_summary

log = logging.getLogger("duplexsynth")

# Planning and writing (offline composer, or waiting on an LLM endpoint) barely use a core;
# reserving a whole one per actor would starve synthesis and rendering on a small machine.
LIGHT_STAGE_CPUS = 0.25
# Workers allocate and free many large audio arrays; glibc's per-thread arenas then keep
# freed memory, so resident memory creeps up with the number of dialogues.
WORKER_MALLOC_ENV = {"MALLOC_ARENA_MAX": "2", "MALLOC_TRIM_THRESHOLD_": "16777216"}


def timing_settings(config: GenerateConfig) -> TimingSettings:
    return TimingSettings.from_config(config.timing.model_dump())


def plan_settings(config: GenerateConfig) -> PlanSettings:
    """Plan knobs; overlap and backchannel rates default to the timing model's quotas."""
    plan = config.plan
    timing = timing_settings(config)
    return PlanSettings(
        languages=tuple(config.languages),
        speakers=plan.speakers if isinstance(plan.speakers, int) else tuple(plan.speakers),
        domains=tuple(plan.domains),
        min_turns=plan.min_turns,
        max_turns=plan.max_turns,
        backchannel_rate=(timing.backchannel_share if plan.backchannel_rate is None
                          else plan.backchannel_rate),
        interruption_rate=(timing.interruption_rate if plan.interruption_rate is None
                           else plan.interruption_rate),
        pause_rate=plan.pause_rate,
        overlap_rate=(timing.targets.overlap_transfer_ratio if plan.overlap_rate is None
                      else plan.overlap_rate),
        side_talk_rate=plan.side_talk_rate,
        next_speaker=plan.next_speaker,
        transfers=timing.targets.definition if plan.overlap_rate is None else "turns",
        generator="corpus" if config.tts.name == "corpus" else config.writer.generator,
    )


def budget_goal(config: GenerateConfig, writer: ShardWriter) -> BudgetGoal:
    """The run's goal, already credited with the shards a previous run finished."""
    budget = config.budget
    goal = BudgetGoal(hours=budget.hours, dialogues=None if budget.hours else budget.dialogues,
                      tolerance=budget.tolerance)
    totals = writer.totals()
    goal.written, goal.audio_s = totals.written, totals.audio_s
    if totals.rejected.get(OVER_BUDGET):
        goal.overshoots = goal.patience  # an earlier run stopped on an overshoot: keep its stop
    return goal


def planned_count(config: GenerateConfig) -> int:
    goal = BudgetGoal(config.budget.hours, config.budget.dialogues, config.budget.tolerance)
    return goal.planned_indices(config.sink.shard_dialogues)


def shard_rows(row: dict, shard_dialogues: int, planned: int) -> list[dict]:
    """Expand one shard into its scenario indices (runs inside Ray: the driver keeps shards)."""
    shard = int(row["shard"])
    return [{"index": index, "shard": shard, "reject": None}
            for index in shard_indices(shard, shard_dialogues, planned)]


def plan_shard(row: dict, config: dict, shard_dialogues: int, planned: int) -> list[dict]:
    """The plan stage as a Ray task per shard: planning is cheap, an actor pool for it only
    added start-up time."""
    planner = PlanStage(config)
    planner.setup()
    started = time.perf_counter()
    rows = [planner.process(r) for r in shard_rows(row, shard_dialogues, planned)]
    return charge_stage(rows, planner.stage, started)


def generate(config: GenerateConfig, raw_config: dict[str, Any]) -> dict:
    """Run the pipeline; returns the run summary that is also written to run.json."""

    root = config.output_dir
    root.mkdir(parents=True, exist_ok=True)
    writer = ShardWriter(root, config.sink.sample_rate)
    writer.remove_stale_temporaries()
    planned = planned_count(config)
    size = config.sink.shard_dialogues
    todo = [s for s in iter_shards(planned, size) if not writer.is_done(s)]
    started = time.monotonic()
    goal = budget_goal(config, writer)
    outcome: dict = {"deferred": Counter(), "stopped": None}
    if todo and not goal.reached():
        check_writer_fits(config, todo, planned)
        _init_ray(config)
        outcome = _stream(config, todo, writer, planned, goal)
    summary = _summary(config, raw_config, writer, planned, time.monotonic() - started)
    summary["budget"] = budget_goal(config, writer).report()
    summary["counts"]["deferred"] = dict(outcome["deferred"])
    if outcome["stopped"]:
        summary["stopped"] = outcome["stopped"]
    if outcome.get("writer_error"):
        summary["writer_error"] = outcome["writer_error"]
    summary["reject_examples"] = outcome.get("reject_examples", {})
    if "profile" in outcome:
        summary["profile"] = outcome["profile"]
    _atomic_write(root / "run.json", json.dumps(summary, indent=2, ensure_ascii=False))
    return summary


PREFLIGHT_SCENARIOS = 32
"""Scenarios whose prompts are sized before a run: planning them costs milliseconds."""


def check_writer_fits(config: GenerateConfig, shards: list[int], planned: int) -> None:
    """Stop before any work when an LLM prompt cannot fit the server's context with room
    for its answer (pipeline/writers/context.py); raises WriterStopped with the one line."""
    if config.writer.name != "openai" or config.tts.name == "corpus":
        return
    from pipeline.writers import make_writer
    from pipeline.writers.context import ContextTooSmall

    stage_config = config.model_dump()
    planner = PlanStage(stage_config)
    planner.setup()
    writer = make_writer(stage_config["writer"], stage_config.get("checks"))
    size = config.sink.shard_dialogues
    indices = [i for s in shards for i in shard_indices(s, size, planned)]
    for index in indices[:PREFLIGHT_SCENARIOS]:
        row = planner.process({"index": index, "shard": shard_of(index, size), "reject": None})
        try:
            writer.plan_request(ScenarioSpec.model_validate_json(row["scenario"]))
        except ContextTooSmall as error:
            raise WriterStopped(str(error)) from None


def _init_ray(config: GenerateConfig) -> None:
    import ray

    # "local" starts a private instance instead of joining whatever `ray start` left running.
    address = config.ray.address or os.environ.get("RAY_ADDRESS")
    logging.getLogger("ray.data").setLevel(logging.WARNING)
    # A cluster job brings its code in the job's runtime_env (jobs/submit.sh: --working-dir);
    # a private local instance gets this checkout on its workers' path.
    local_env = {"env_vars": {"PYTHONPATH": str(Path(__file__).resolve().parent.parent),
                              **WORKER_MALLOC_ENV}}
    ray.init(
        address=address or "local",
        num_cpus=None if address else config.ray.num_cpus,
        ignore_reinit_error=True,
        include_dashboard=False,
        logging_level=logging.WARNING,
        log_to_driver=False,
        runtime_env=None if address else local_env,
    )
    context = ray.data.DataContext.get_current()
    context.execution_options.preserve_order = True
    context.enable_progress_bars = False
    context.print_on_execution_start = False


def _stream(
    config: GenerateConfig,
    shards: list[int],
    writer: ShardWriter,
    planned: int,
    goal: BudgetGoal,
) -> dict:
    """Stream rows to the sink. Shards holding a deferred row are not written (a rerun redoes
    them); a spent LLM budget stops the stream. Returns deferred counts and the stop reason."""
    import ray
    from tqdm import tqdm

    stage_config = config.model_dump()
    batch = config.ray.batch_size
    size = config.sink.shard_dialogues
    dialogues = sum(len(shard_indices(s, size, planned)) for s in shards)
    dataset = (
        ray.data.from_items([{"shard": s} for s in shards], override_num_blocks=len(shards))
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
        .map_batches(ValidateStage, fn_constructor_args=(stage_config, str(writer.root)),
                     batch_size=batch, batch_format="pandas",
                     compute=ray.data.ActorPoolStrategy(size=1), num_cpus=LIGHT_STAGE_CPUS)
        .map_batches(SpeakStage, fn_constructor_args=(stage_config,), batch_size=batch,
                     batch_format="pandas",
                     compute=ray.data.ActorPoolStrategy(size=config.ray.speak_workers))
        .map_batches(AssembleStage, fn_constructor_args=(stage_config,), batch_size=batch,
                     batch_format="pandas")
    )
    if goal.dialogues is not None and not goal.by_hours:
        dialogues = min(dialogues, goal.dialogues - goal.written)  # spares rarely run
    progress = tqdm(total=dialogues, unit="dlg", disable=not config.progress,
                    desc="generate", dynamic_ncols=True, file=sys.stderr)
    pending: dict[int, list[dict]] = {}
    deferred: Counter[str] = Counter()
    stopped = None
    writer_error = None
    reject_examples: dict[str, str] = {}
    stage_s: Counter[str] = Counter()
    first_row_s = None
    stream_started = time.perf_counter()

    def flush(shard: int, rows: list[dict]) -> None:
        flush_started = time.perf_counter()
        _flush_unless_deferred(writer, shard, rows)
        stage_s["sink"] += time.perf_counter() - flush_started

    for row in dataset.iter_rows():
        if first_row_s is None:
            first_row_s = time.perf_counter() - stream_started
        stage_s.update(json.loads(row.get(STAGE_SECONDS) or "{}"))
        shard = shard_of(row["index"], size)
        pending.setdefault(shard, []).append(row)
        progress.update(1)
        # str checks: a column only some rows of a batch set comes back as None or NaN
        if row.get("reject") and isinstance(row.get("reject_detail"), str):
            reject_examples.setdefault(row["reject"], row["reject_detail"])
        if isinstance(row.get("writer_error"), str):
            stopped = writer_error = row["writer_error"]
            log.warning("%s", writer_error)
            break
        if is_deferred(row.get("reject")):
            deferred[row["reject"]] += 1
            if row["reject"].endswith("budget_exhausted"):
                stopped = "LLM budget spent (budget.max_tokens / budget.max_usd); rerun with a "\
                          "larger budget to resume"
                log.warning("writer: %s; shard %d and later are left for the next run",
                            stopped, shard)
                break
        elif not row.get("reject") and not goal.offer(row["audio_s"]):
            row.update(reject=OVER_BUDGET, dialogue=None, segments=None)
        progress.set_postfix(hours=f"{goal.audio_s / 3600:.3f}")
        if goal.reached() or len(pending[shard]) == len(shard_indices(shard, size, planned)):
            flush(shard, pending.pop(shard))
        if goal.reached():
            break
    if stopped is None:
        for shard in sorted(pending):
            flush(shard, pending.pop(shard))
    progress.close()
    # Seconds summed over rows (stages run side by side, so they can add up to more than the
    # wall time); first_row_s is start-up plus filling the pipeline, stream_s the whole stream.
    profile = {"stage_s": {k: round(v, 3) for k, v in stage_s.items()},
               "first_row_s": round(first_row_s or 0.0, 3),
               "stream_s": round(time.perf_counter() - stream_started, 3)}
    return {"deferred": deferred, "stopped": stopped, "profile": profile,
            "writer_error": writer_error, "reject_examples": reject_examples}


def _flush_unless_deferred(writer: ShardWriter, shard: int, rows: list[dict]) -> None:
    if any(is_deferred(r.get("reject")) for r in rows):
        log.warning("shard %d not written: it holds deferred rows (a rerun retries them)", shard)
        return
    _flush(writer, shard, rows)


def _flush(writer: ShardWriter, shard: int, rows: list[dict]) -> None:
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
    writer.write(shard, dialogues, segments, stats)


def _summary(
    config: GenerateConfig, raw_config: dict, writer: ShardWriter, planned: int, wall_s: float
) -> dict:
    import pyarrow.parquet as pq

    totals = writer.totals()
    target = timing_target(config)
    timing = TimingAccumulator(definition=target["definition"])
    for path in writer.finished_shards():
        for text in pq.read_table(path, columns=["timeline"]).column("timeline").to_pylist():
            timing.add_dialogue(intervals_from_timeline(json.loads(text)))
    return {
        "config": raw_config,
        "versions": _versions(),
        "counts": {"planned": totals.planned, "written": totals.written,
                   "rejected": dict(Counter(totals.rejected))},
        "audio_hours": round(totals.audio_s / 3600, 4),
        "llm": llm_summary(totals.llm),
        "timing": {"target": target["values"], "achieved": timing.result(),
                   "definition": target["definition"], "profile": config.timing.profile},
        "wall_s": round(wall_s, 2),
        "shards": len(writer.finished_shards()),
    }


def timing_target(config: GenerateConfig) -> dict:
    """Targets of the run: the timing config or profile, unless plan rates override them.

    An explicit `plan.overlap_rate` / `plan.backchannel_rate` sets that target only where
    transfers are counted the way the plan counts them ("turns").
    """
    targets = timing_settings(config).targets
    values = targets.as_dict()
    if targets.definition == "turns":
        if config.plan.overlap_rate is not None:
            values["overlap_transfer_ratio"] = config.plan.overlap_rate
        if config.plan.backchannel_rate is not None:
            values["backchannel_share"] = config.plan.backchannel_rate
    return {"values": values, "definition": targets.definition}


def _versions() -> dict[str, str]:
    versions = {"python": platform.python_version()}
    for package in ("duplexsynth", "ray", "hydra-core", "pyarrow", "datasets", "soxr",
                    "soundfile", "espeakng-loader", "numpy", "openai", "lingua-language-detector",
                    "datasketch"):
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            continue
    return versions


def _atomic_write(path: Path, text: str) -> None:
    temporary = path.with_name(f".{path.name}.tmp-{os.getpid()}-{random.randrange(1 << 30)}")
    temporary.write_text(text, encoding="utf-8")
    os.replace(temporary, path)
