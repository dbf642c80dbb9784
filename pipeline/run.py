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
from functools import partial
from importlib import metadata
from pathlib import Path
from typing import Any

from pipeline import paths
from pipeline.budget import OVER_BUDGET, BudgetGoal
from pipeline.config import GenerateConfig
from pipeline.derive import plan_settings, timing_settings  # noqa: F401 - re-exported
from pipeline.features import decode_columns
from pipeline.run_lock import STATE_DIR, LocalClaims, RunLock
from pipeline.schema import ScenarioSpec
from pipeline.script_check import WriterStopped, is_deferred
from pipeline.shard_verify import quarantined_count, verify_on_resume, writer_storage
from pipeline.sink import ShardStats, ShardWriter, iter_shards, shard_indices, shard_of
from pipeline.split_plan import (
    budget_goal,
    planned_count,
    spares_gate,
    split_report,
    total_goal,
)
from pipeline.splits import global_index, stream_order
from pipeline.stages import (
    STAGE_SECONDS,
    AssembleStage,
    PlanStage,
    SpeakStage,
    ValidateStage,
    WriteStage,
    charge_stage,
)
from pipeline.timing_stats import TimingAccumulator, intervals_from_timeline
from pipeline.writers.usage import llm_summary

log = logging.getLogger("duplexsynth")

# Planning and writing (offline composer, or waiting on an LLM endpoint) barely use a core;
# reserving a whole one per actor would starve synthesis and rendering on a small machine.
LIGHT_STAGE_CPUS = 0.25
# Workers allocate and free many large audio arrays; glibc's per-thread arenas then keep
# freed memory, so resident memory creeps up with the number of dialogues.
WORKER_MALLOC_ENV = {"MALLOC_ARENA_MAX": "2", "MALLOC_TRIM_THRESHOLD_": "16777216"}




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


def generate(config: GenerateConfig, raw_config: dict[str, Any],
             lock: RunLock | None = None) -> dict:
    """Run the pipeline split by split; returns the run summary also written to run.json.
    `lock` (taken by the caller, pipeline/run_lock.py) says which shards are this run's."""

    root = config.output_dir
    root.mkdir(parents=True, exist_ok=True)
    writer = ShardWriter(root, config.sink.sample_rate)
    if not config.sink.shared:  # shared: the temporaries may be another live run's shards
        writer.remove_stale_temporaries()
    if config.sink.verify_on_resume:  # before anything reads a shard (totals, budget goals)
        verify_on_resume(*writer_storage(writer))
    lock = lock or RunLock(LocalClaims(root / STATE_DIR))  # no store access unless shared
    size = config.sink.shard_dialogues
    planned = {name: planned_count(config, name) for name in config.splits}
    started = time.monotonic()
    deferred: Counter[str] = Counter()
    stopped, profiles, writer_error = None, [], None
    reject_examples: dict[str, str] = {}
    checked_writer = False
    for split in stream_order(config.splits):
        todo = [s for s in iter_shards(planned[split], size) if not writer.is_done(split, s)]
        goal = budget_goal(config, writer, split)
        if not todo or goal.reached():
            continue
        if not checked_writer:  # once, before the first work: every split shares the prompts
            check_writer_fits(config, split, todo, planned[split])
            checked_writer = True
        is_done = partial(writer.is_done, split)
        for claimed in lock.rounds(split, todo, is_done, spares_gate(config, writer, split,
                                                                     todo, is_done)):
            goal = budget_goal(config, writer, split)  # credited with other runs' shards
            if goal.reached():
                break
            _init_ray(config)  # once; later calls find it running
            outcome = _stream(config, split, claimed, writer, planned[split], goal)
            deferred.update(outcome["deferred"])
            profiles.append(outcome["profile"])
            for reason, detail in outcome.get("reject_examples", {}).items():
                reject_examples.setdefault(reason, detail)
            if outcome["stopped"]:
                stopped = outcome["stopped"]
                writer_error = outcome.get("writer_error")
                break
        if stopped:
            break
    summary = _summary(config, raw_config, writer, sum(planned.values()),
                       time.monotonic() - started)
    summary["budget"] = total_goal(config, writer).report()
    summary["splits"] = split_report(config, writer)
    summary["counts"]["deferred"] = dict(deferred)
    summary["counts"]["quarantined"] = quarantined_count(*writer_storage(writer))
    if stopped:
        summary["stopped"] = stopped
    if writer_error:
        summary["writer_error"] = writer_error
    summary["reject_examples"] = reject_examples
    if profiles:
        summary["profile"] = _merge_profiles(profiles)
    _atomic_write(root / "run.json", json.dumps(summary, indent=2, ensure_ascii=False))
    return summary


def _merge_profiles(profiles: list[dict]) -> dict:
    stage_s: Counter[str] = Counter()
    for profile in profiles:
        stage_s.update(profile["stage_s"])
    return {"stage_s": {k: round(v, 3) for k, v in stage_s.items()},
            "first_row_s": profiles[0]["first_row_s"],
            "stream_s": round(sum(p["stream_s"] for p in profiles), 3)}


class _StartupChatter(logging.Filter):
    """Drops Ray's start-up notices from a normal run's terminal; real warnings still show."""

    NOISE = ("Token authentication is enabled", "Progress bars disabled",
             "execution finished in")

    def filter(self, record: logging.LogRecord) -> bool:
        return not any(noise in record.getMessage() for noise in self.NOISE)


def _quiet_ray_startup() -> None:
    import ray.data  # noqa: F401 - configures the ray.data loggers first

    for name in ("ray", "ray.data"):
        for handler in logging.getLogger(name).handlers:
            if not any(isinstance(f, _StartupChatter) for f in handler.filters):
                handler.addFilter(_StartupChatter())


PREFLIGHT_SCENARIOS = 32
"""Scenarios whose prompts are sized before a run: planning them costs milliseconds."""


def check_writer_fits(config: GenerateConfig, split: str, shards: list[int],
                      planned: int) -> None:
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
    names = list(config.splits)
    rows = [r for s in shards
            for r in shard_rows({"shard": s, "split": split, "position": names.index(split),
                                 "count": len(names)}, config.sink.shard_dialogues, planned)]
    for planned_row in rows[:PREFLIGHT_SCENARIOS]:
        row = planner.process(planned_row)
        try:
            writer.plan_request(ScenarioSpec.model_validate_json(row["scenario"]))
        except ContextTooSmall as error:
            raise WriterStopped(str(error)) from None


def _init_ray(config: GenerateConfig) -> None:
    import ray

    _quiet_ray_startup()

    # "local" starts a private instance instead of joining whatever `ray start` left running.
    address = config.ray.address or os.environ.get("RAY_ADDRESS")
    logging.getLogger("ray.data").setLevel(logging.WARNING)
    # A cluster job brings its code in the job's runtime_env (jobs/submit.sh: --working-dir);
    # a private local instance gets this checkout on its workers' path.
    local_env = {"env_vars": {"PYTHONPATH": str(paths.REPO_ROOT),
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
    split: str,
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
                         stage_config, str(writer.root), seen_splits(config, split)),
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
    )
    if goal.dialogues is not None and not goal.by_hours:
        dialogues = min(dialogues, goal.dialogues - goal.written)  # spares rarely run
    progress = tqdm(total=dialogues, unit="dlg", disable=not config.progress,
                    desc=f"generate {split}", dynamic_ncols=True, file=sys.stderr)
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
        _flush_unless_deferred(writer, split, shard, rows)
        stage_s["sink"] += time.perf_counter() - flush_started

    for row in dataset.iter_rows():
        if first_row_s is None:
            first_row_s = time.perf_counter() - stream_started
        stage_s.update(json.loads(row.get(STAGE_SECONDS) or "{}"))
        shard = shard_of(row["local"], size)
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


def seen_splits(config: GenerateConfig, split: str) -> list[str]:
    """Splits a fresh run has generated when `split` starts (stream order), `split` included:
    a resumed split is checked for near-duplicates against exactly those."""
    order = stream_order(config.splits)
    return order[:order.index(split) + 1]


def _flush_unless_deferred(writer: ShardWriter, split: str, shard: int,
                           rows: list[dict]) -> None:
    if any(is_deferred(r.get("reject")) for r in rows):
        log.warning("%s shard %d not written: it holds deferred rows (a rerun retries them)",
                    split, shard)
        return
    _flush(writer, split, shard, rows)


def _flush(writer: ShardWriter, split: str, shard: int, rows: list[dict]) -> None:
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


def _summary(
    config: GenerateConfig, raw_config: dict, writer: ShardWriter, planned: int, wall_s: float
) -> dict:
    import pyarrow.parquet as pq

    totals = writer.totals()
    target = timing_target(config)
    timing = TimingAccumulator(definition=target["definition"])
    for path in writer.finished_shards():
        for value in pq.read_table(path, columns=["timeline"]).column("timeline").to_pylist():
            timeline = decode_columns({"timeline": value})["timeline"]
            timing.add_dialogue(intervals_from_timeline(timeline, target["definition"]))
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
                    "datasketch", "faster-whisper", "ctranslate2", "jiwer"):
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            continue
    return versions


def _atomic_write(path: Path, text: str) -> None:
    temporary = path.with_name(f".{path.name}.tmp-{os.getpid()}-{random.randrange(1 << 30)}")
    temporary.write_text(text, encoding="utf-8")
    os.replace(temporary, path)
