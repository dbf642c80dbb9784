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
from collections.abc import Iterator
from importlib import metadata
from pathlib import Path
from typing import Any

from pipeline.config import GenerateConfig
from pipeline.scenarios import PlanSettings, plan_scenario
from pipeline.script_check import is_deferred
from pipeline.sink import ShardStats, ShardWriter, iter_shards, shard_indices, shard_of
from pipeline.stages import AssembleStage, SpeakStage, ValidateStage, WriteStage
from pipeline.timing_stats import TimingAccumulator, intervals_from_timeline
from pipeline.writers.usage import llm_summary

log = logging.getLogger("duplexsynth")

AVERAGE_DIALOGUE_S = 60.0


def plan_settings(config: GenerateConfig) -> PlanSettings:
    plan = config.plan
    return PlanSettings(
        languages=tuple(config.languages),
        speakers=plan.speakers if isinstance(plan.speakers, int) else plan.speakers[0],
        domains=tuple(plan.domains),
        min_turns=plan.min_turns,
        max_turns=plan.max_turns,
        backchannel_rate=plan.backchannel_rate,
        interruption_rate=plan.interruption_rate,
        pause_rate=plan.pause_rate,
        overlap_rate=plan.overlap_rate,
        generator=config.writer.generator,
    )


def planned_count(config: GenerateConfig) -> int:
    if config.budget.hours is not None:
        return max(1, int(config.budget.hours * 3600 / AVERAGE_DIALOGUE_S * 1.5))
    assert config.budget.dialogues is not None
    return config.budget.dialogues


def scenario_rows(config: GenerateConfig, shards: list[int], planned: int) -> Iterator[dict]:
    from pipeline.tts import backend_from_config

    settings = plan_settings(config)
    backend = backend_from_config(config.tts.model_dump())
    size = config.sink.shard_dialogues
    for shard in shards:
        for index in shard_indices(shard, size, planned):
            scenario = plan_scenario(index, config.seed, settings, backend.pick_voices)
            yield {"index": index, "shard": shard, "id": scenario.id,
                   "scenario": scenario.model_dump_json(), "reject": None}


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
    hours_goal = config.budget.hours
    outcome: dict = {"deferred": Counter(), "stopped": None}
    if todo and not _hours_reached(writer, hours_goal):
        _init_ray(config)
        rows = list(scenario_rows(config, todo, planned))
        outcome = _stream(config, raw_config, rows, writer, planned, hours_goal, started)
    summary = _summary(config, raw_config, writer, planned, time.monotonic() - started)
    summary["counts"]["deferred"] = dict(outcome["deferred"])
    if outcome["stopped"]:
        summary["stopped"] = outcome["stopped"]
    _atomic_write(root / "run.json", json.dumps(summary, indent=2, ensure_ascii=False))
    return summary


def _hours_reached(writer: ShardWriter, hours_goal: float | None) -> bool:
    return hours_goal is not None and writer.totals().audio_s >= hours_goal * 3600


def _init_ray(config: GenerateConfig) -> None:
    import ray

    # "local" starts a private instance instead of joining whatever `ray start` left running.
    address = config.ray.address or os.environ.get("RAY_ADDRESS")
    logging.getLogger("ray.data").setLevel(logging.WARNING)
    ray.init(
        address=address or "local",
        num_cpus=None if address else config.ray.num_cpus,
        ignore_reinit_error=True,
        include_dashboard=False,
        logging_level=logging.WARNING,
        log_to_driver=False,
        runtime_env={"env_vars": {"PYTHONPATH": str(Path(__file__).resolve().parent.parent)}},
    )
    context = ray.data.DataContext.get_current()
    context.execution_options.preserve_order = True
    context.enable_progress_bars = False
    context.print_on_execution_start = False


def _stream(
    config: GenerateConfig,
    raw_config: dict[str, Any],
    rows: list[dict],
    writer: ShardWriter,
    planned: int,
    hours_goal: float | None,
    started: float,
) -> dict:
    """Stream rows to the sink. Shards holding a deferred row are not written (a rerun redoes
    them); a spent LLM budget stops the stream. Returns deferred counts and the stop reason."""
    import ray
    from tqdm import tqdm

    stage_config = config.model_dump()
    batch = config.ray.batch_size
    dataset = ray.data.from_items(rows, override_num_blocks=max(1, len(rows) // batch))
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
            compute=ray.data.ActorPoolStrategy(size=1))
    dataset = (
        dataset
        .map_batches(ValidateStage, fn_constructor_args=(stage_config, str(writer.root)),
                     batch_size=batch, batch_format="pandas",
                     compute=ray.data.ActorPoolStrategy(size=1))
        .map_batches(SpeakStage, fn_constructor_args=(stage_config,), batch_size=batch,
                     batch_format="pandas",
                     compute=ray.data.ActorPoolStrategy(size=config.ray.speak_workers))
        .map_batches(AssembleStage, fn_constructor_args=(stage_config,), batch_size=batch,
                     batch_format="pandas")
    )
    size = config.sink.shard_dialogues
    done_hours = writer.totals().audio_s / 3600
    progress = tqdm(total=len(rows), unit="dlg", disable=not config.progress,
                    desc="generate", dynamic_ncols=True, file=sys.stderr)
    pending: dict[int, list[dict]] = {}
    deferred: Counter[str] = Counter()
    stopped = None
    for row in dataset.iter_rows():
        shard = shard_of(row["index"], size)
        pending.setdefault(shard, []).append(row)
        progress.update(1)
        if is_deferred(row.get("reject")):
            deferred[row["reject"]] += 1
            if row["reject"].endswith("budget_exhausted"):
                stopped = "LLM budget spent (budget.max_tokens / budget.max_usd); rerun with a "\
                          "larger budget to resume"
                log.warning("writer: %s; shard %d and later are left for the next run",
                            stopped, shard)
                break
        if row.get("audio_s"):
            done_hours += row["audio_s"] / 3600
        progress.set_postfix(hours=f"{done_hours:.3f}")
        if len(pending[shard]) == len(shard_indices(shard, size, planned)):
            rows_of_shard = pending.pop(shard)
            if any(is_deferred(r.get("reject")) for r in rows_of_shard):
                log.warning("shard %d not written: it holds deferred rows (a rerun retries "
                            "them)", shard)
                continue
            _flush(writer, shard, rows_of_shard)
            if hours_goal is not None and done_hours >= hours_goal:
                break
    progress.close()
    return {"deferred": deferred, "stopped": stopped}


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
    timing = TimingAccumulator()
    for path in writer.finished_shards():
        for text in pq.read_table(path, columns=["timeline"]).column("timeline").to_pylist():
            timing.add_dialogue(intervals_from_timeline(json.loads(text)))
    return {
        "config": raw_config,
        "versions": _versions(),
        "counts": {"planned": planned, "written": totals.written,
                   "rejected": dict(Counter(totals.rejected))},
        "audio_hours": round(totals.audio_s / 3600, 4),
        "llm": llm_summary(totals.llm),
        "timing": {"target": _timing_target(config), "achieved": timing.result()},
        "wall_s": round(wall_s, 2),
        "shards": len(writer.finished_shards()),
    }


def _timing_target(config: GenerateConfig) -> dict[str, float]:
    gap = (config.timing.get("gap") or {}).get("median_s", 0.22)
    return {
        "overlap_transfer_ratio": config.plan.overlap_rate,
        "overlapped_speech_fraction": 0.05,
        "gap_median_s": gap,
        "backchannel_share": config.plan.backchannel_rate,
    }


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
