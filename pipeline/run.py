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
from pipeline.sink import ShardStats, ShardWriter, iter_shards, shard_indices, shard_of
from pipeline.stages import AssembleStage, SpeakStage, WriteStage
from pipeline.timing import TimingSettings
from pipeline.timing_stats import TimingAccumulator, intervals_from_timeline

log = logging.getLogger("duplexsynth")

AVERAGE_DIALOGUE_S = 60.0


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
        generator=config.writer.name,
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
    if todo and not _hours_reached(writer, hours_goal):
        _init_ray(config)
        rows = list(scenario_rows(config, todo, planned))
        _stream(config, raw_config, rows, writer, planned, hours_goal, started)
    summary = _summary(config, raw_config, writer, planned, time.monotonic() - started)
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
) -> None:
    import ray
    from tqdm import tqdm

    stage_config = config.model_dump()
    batch = config.ray.batch_size
    dataset = (
        ray.data.from_items(rows, override_num_blocks=max(1, len(rows) // batch))
        .map_batches(WriteStage, fn_constructor_args=(stage_config,), batch_size=batch,
                     batch_format="pandas", compute=ray.data.ActorPoolStrategy(size=1))
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
    for row in dataset.iter_rows():
        shard = shard_of(row["index"], size)
        pending.setdefault(shard, []).append(row)
        progress.update(1)
        if row.get("audio_s"):
            done_hours += row["audio_s"] / 3600
        progress.set_postfix(hours=f"{done_hours:.3f}")
        if len(pending[shard]) == len(shard_indices(shard, size, planned)):
            _flush(writer, shard, pending.pop(shard))
            if hours_goal is not None and done_hours >= hours_goal:
                break
    progress.close()


def _flush(writer: ShardWriter, shard: int, rows: list[dict]) -> None:
    rows.sort(key=lambda r: r["index"])
    stats = ShardStats(planned=len(rows))
    dialogues, segments = [], []
    for row in rows:
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
        "counts": {"planned": planned, "written": totals.written,
                   "rejected": dict(Counter(totals.rejected))},
        "audio_hours": round(totals.audio_s / 3600, 4),
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
                    "soundfile", "espeakng-loader", "numpy"):
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            continue
    return versions


def _atomic_write(path: Path, text: str) -> None:
    temporary = path.with_name(f".{path.name}.tmp-{os.getpid()}-{random.randrange(1 << 30)}")
    temporary.write_text(text, encoding="utf-8")
    os.replace(temporary, path)
