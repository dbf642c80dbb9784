"""The driver of `generate`: resumable shards, one stream for every split, run.json.

The driver plans scenarios (cheap), leaves out every shard that already exists, and streams
the rest (pipeline/stream.py); the sink actor at the end of the stream writes the shards to
`sink.dir` (a folder or a URI), so no encoded row passes through the driver. run.json is
rebuilt from the shards' own metadata after every run.
"""

from __future__ import annotations

import json
import logging
import os
import platform
import time
from collections import Counter
from collections.abc import Iterator
from functools import partial
from importlib import metadata
from pathlib import Path
from typing import Any

from pipeline import paths
from pipeline.config import GenerateConfig
from pipeline.derive import timing_target
from pipeline.features import decode_columns
from pipeline.run_lock import STATE_DIR, LocalClaims, RunLock
from pipeline.schema import ScenarioSpec
from pipeline.script_check import WriterStopped
from pipeline.shard_verify import quarantined_count, verify_on_resume, writer_storage
from pipeline.sink import ShardWriter, iter_shards, read_table
from pipeline.split_plan import (
    budget_goal,
    planned_count,
    spares_gate,
    split_report,
    total_goal,
)
from pipeline.splits import stream_order
from pipeline.stages import PlanStage
from pipeline.stream import LIGHT_STAGE_CPUS, plan_shard, seen_splits, shard_rows, stream_splits
from pipeline.timing_stats import TimingAccumulator, intervals_from_timeline
from pipeline.writers.usage import llm_summary

__all__ = ["LIGHT_STAGE_CPUS", "generate", "plan_shard", "seen_splits", "shard_rows"]

log = logging.getLogger("duplexsynth")
# Workers allocate and free many large audio arrays; glibc's per-thread arenas then keep
# freed memory, so resident memory creeps up with the number of dialogues.
WORKER_MALLOC_ENV = {"MALLOC_ARENA_MAX": "2", "MALLOC_TRIM_THRESHOLD_": "16777216"}


def generate(config: GenerateConfig, raw_config: dict[str, Any],
             lock: RunLock | None = None) -> dict:
    """Run the pipeline, every split in one stream; returns the run summary (run.json).
    `lock` (taken by the caller, pipeline/run_lock.py) says which shards are this run's."""

    writer = ShardWriter(config.sink_location, config.sink.sample_rate)
    writer.check_writable()  # StorageError, one line, before any work
    if not config.sink.shared:  # shared: the temporaries may be another live run's shards
        writer.remove_stale_temporaries()
    if config.sink.verify_on_resume:  # before anything reads a shard (totals, budget goals)
        verify_on_resume(*writer_storage(writer))
    if lock is None:  # no store access unless shared; an object store: a private folder
        import tempfile

        state = (Path(writer.location.root) if writer.location.is_local
                 else Path(tempfile.mkdtemp(prefix="duplexsynth-lock-")))
        lock = RunLock(LocalClaims(state / STATE_DIR))
    size = config.sink.shard_dialogues
    planned = {name: planned_count(config, name) for name in config.splits}
    started = time.monotonic()
    deferred: Counter[str] = Counter()
    stopped, profiles, writer_error = None, [], None
    reject_examples: dict[str, str] = {}
    work = []  # (split, shards to do), stream order
    for split in stream_order(config.splits):
        done = writer.done_shards(split)  # two listings, not two requests a shard
        todo = [s for s in iter_shards(planned[split], size) if s not in done]
        if todo and not budget_goal(config, writer, split).reached():
            work.append((split, todo))
    if work:  # once, before the first work: every split shares the prompts
        check_writer_fits(config, work[0][0], work[0][1], planned[work[0][0]])
    for stream in _streams(config, writer, lock, work):
        goals = {name: budget_goal(config, writer, name) for name in config.splits}
        stream = [(split, shards) for split, shards in stream if not goals[split].reached()]
        if not stream:  # credited with other runs' shards (shared)
            continue
        _init_ray(config)  # once; later calls find it running
        outcome = stream_splits(config, stream, writer, planned, goals)
        deferred.update(outcome["deferred"])
        profiles.append(outcome["profile"])
        for reason, detail in outcome.get("reject_examples", {}).items():
            reject_examples.setdefault(reason, detail)
        if outcome["stopped"]:
            stopped = outcome["stopped"]
            writer_error = outcome.get("writer_error")
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
    writer.location.write_atomic("run.json", json.dumps(summary, indent=2,
                                                        ensure_ascii=False).encode("utf-8"))
    return summary


def _streams(config: GenerateConfig, writer: ShardWriter, lock: RunLock,
             work: list[tuple[str, list[int]]]) -> Iterator[list[tuple[str, list[int]]]]:
    """The streams of a run: one for every split's shards (one start-up of the actor
    pools); shared runs (sink.shared) one per round of claimed shards of one split."""
    if not lock.shared:
        if work:
            yield work
        return
    for split, todo in work:
        is_done = partial(writer.is_done, split)
        gate = spares_gate(config, writer, split, todo, is_done)
        for claimed in lock.rounds(split, todo, is_done, gate):
            if budget_goal(config, writer, split).reached():  # credited with other runs'
                break
            yield [(split, claimed)]


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


def _summary(
    config: GenerateConfig, raw_config: dict, writer: ShardWriter, planned: int, wall_s: float
) -> dict:
    totals = writer.totals()
    target = timing_target(config)
    timing = TimingAccumulator(definition=target["definition"])
    for path in writer.finished_shards():
        for value in read_table(path, columns=["timeline"]).column("timeline").to_pylist():
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
