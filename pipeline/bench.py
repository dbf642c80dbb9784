"""`python -m pipeline.bench`: throughput figures as ONE JSON object on stdout.

Groups: pipeline, driver, workers, writer, asr, piper, peer (Lhotse's meeting simulator
against `tts=corpus`, pipeline.bench_peer). Each measurement is a function of the run sizes
returning a dict of named figures, registered in MEASUREMENTS under a short group name;
`--only writer` runs one group (repeatable), `--dialogues` / `--worker-dialogues` scale the
pipeline runs. Figures are ratios or rates on
this machine, so they compare runs, not machines.

Pipeline runs are real `generate` runs (pipeline.bench_probe, default config: offline writer,
eSpeak NG, Ray local) in a child process each, so every run starts its own Ray and its
memory is the child's process tree alone.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from pipeline.bench_run import PipelineRun, run_pipeline, tree_rss  # noqa: F401 - re-exported


@dataclass(frozen=True)
class Sizes:
    """Dialogues per pipeline run: `dialogues` is N of the memory ratio (4N is the throughput
    run), `worker_dialogues` the size of each worker-scaling run."""

    dialogues: int = 16
    worker_dialogues: int = 32
    driver_dialogues: int = 64
    """N of the driver figures (runs of N and 16N dialogues)."""
    peer_dialogues: int = 128
    """Our dialogues in the Lhotse comparison (pipeline.bench_peer: about 2 h of audio)."""
    piper_dialogues: int = 32
    """Dialogues of the `tts=piper` run (pipeline.bench_piper: about 30 min of speech)."""


@contextmanager
def devserver_process(latency_s: float) -> Iterator[str]:
    """`python -m pipeline.devserver` on a free port; yields its base URL."""
    process = subprocess.Popen(
        [sys.executable, "-m", "pipeline.devserver", "--port", "0",
         "--latency-ms", str(latency_s * 1000)], stdout=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None
        match = re.search(r"http://\S+/v1", process.stdout.readline())
        if match is None:
            raise RuntimeError("bench: the dev server did not start")
        yield match.group(0)
    finally:
        process.terminate()
        process.wait(timeout=10)


def writer_concurrency_speedup(latency_s: float = 0.2, dialogues_serial: int = 8,
                               dialogues_parallel: int = 512, concurrency: int = 64) -> dict:
    """Dialogues/s of the OpenAI writer at `concurrency` requests vs 1, against the local
    chat server answering every request after `latency_s` (target: >= 40 at 64 vs 1).

    The server runs in its own process (pipeline.devserver), as a real endpoint would: in
    this process it would share the GIL with the client it is measuring. 512 dialogues at 64
    in flight are 8 waves, so connection set-up weighs like in a long run, not a short one."""
    from pipeline.scenarios import PlanSettings, plan_scenario
    from pipeline.writers import make_writer

    def rate(base_url: str, count: int, parallel: int) -> float:
        writer = make_writer({"name": "openai", "model": "devserver",
                              "base_url": base_url, "concurrency": parallel,
                              "cache_dir": None, "max_retries": 0})
        scenarios = [plan_scenario(i, 7, PlanSettings(), lambda lang, n, rng: [{}] * n)
                     for i in range(count)]
        started = time.perf_counter()
        results = writer.write_many(scenarios)
        elapsed = time.perf_counter() - started
        failed = [r for r in results if isinstance(r, Exception)]
        if failed:
            raise RuntimeError(f"bench: {len(failed)} dialogues failed, first: {failed[0]}")
        return count / elapsed

    with devserver_process(latency_s) as base_url:
        rate(base_url, 4, 4)  # warm-up: imports, prompt templates, connection set-up
        serial = rate(base_url, dialogues_serial, 1)
        parallel = rate(base_url, dialogues_parallel, concurrency)
    return {
        "writer_concurrency_speedup": round(parallel / serial, 2),
        "writer_dialogues_per_s_c1": round(serial, 2),
        f"writer_dialogues_per_s_c{concurrency}": round(parallel, 2),
        "writer_latency_s": latency_s,
    }




def espeak_throughput(output_dir: Path) -> dict:
    """Raw eSpeak NG on the run's own scripts: every turn of every written dialogue with its
    scenario's voice, one process, no Ray. Audio seconds are the utterances' own lengths."""
    from pipeline.dataset import iter_dialogues
    from pipeline.schema import DialogueScript, ScenarioSpec
    from pipeline.tts.espeak import EspeakBackend

    backend = EspeakBackend()
    backend.setup()
    jobs = []
    for row in iter_dialogues(output_dir, columns=["scenario", "script"]):
        scenario = ScenarioSpec.model_validate(row["scenario"])
        script = DialogueScript.model_validate(row["script"])
        jobs += [(turn.text, scenario.speaker(turn.speaker).voice, i, turn.speaker)
                 for i, turn in enumerate(script.turns)]
    backend.synthesize(*jobs[0])  # warm-up: voice data loaded once per process
    started = time.perf_counter()
    audio_s = sum(len(u.samples) / u.sample_rate
                  for u in (backend.synthesize(*job) for job in jobs))
    return {"audio_s": audio_s, "wall_s": time.perf_counter() - started, "turns": len(jobs)}


def pipeline_figures(sizes: Sizes) -> dict:
    """Throughput against raw eSpeak, seconds per stage and memory growth, from two runs of
    the default config: N and 4N dialogues (N = sizes.dialogues).

    `tts_throughput_ratio`: output audio seconds per wall second of the 4N run, timed from
    `generate()` with Ray already started (actor start-up, pipeline fill and sink included),
    over raw eSpeak audio seconds per wall second on the same turns. Ray's start-up is a
    fixed cost per run: `..._with_ray_start` adds it, `..._steady` leaves out everything
    before the first row leaves the stream. `stage_s_*`: seconds summed over the 4N run's
    rows (speak and assemble run side by side, so their sum can exceed the wall time).
    `rss_ratio_4n_over_n`: peak of the summed RSS of the run's process tree, 4N over N."""
    n = sizes.dialogues
    with tempfile.TemporaryDirectory(prefix="duplexsynth-bench-") as tmp:
        small = run_pipeline(Path(tmp, "n"), n)
        large = run_pipeline(Path(tmp, "4n"), 4 * n)
        raw = espeak_throughput(large.output_dir)
    raw_rate = raw["audio_s"] / raw["wall_s"]
    profile = large.figures["profile"]
    stream_rows = large.figures["dialogues"]
    first_block = min(stream_rows, large.figures["shard_dialogues"])  # rows come by shards
    steady_audio = large.audio_s * (stream_rows - first_block) / max(stream_rows, 1)
    figures = {
        "tts_throughput_ratio": round(large.audio_s / large.generate_s / raw_rate, 3),
        "tts_throughput_ratio_with_ray_start": round(
            large.audio_s / large.with_ray_start_s / raw_rate, 3),
        "tts_throughput_ratio_steady": round(steady_audio / large.steady_s / raw_rate, 3),
        "espeak_audio_s_per_s": round(raw_rate, 1),
        "pipeline_audio_s_per_s": round(large.audio_s / large.generate_s, 1),
        "pipeline_dialogues": stream_rows,
        "pipeline_audio_s": round(large.audio_s, 1),
        "pipeline_generate_s": round(large.generate_s, 2),
        "pipeline_ray_init_s": round(large.figures["ray_init_s"], 2),
        "pipeline_first_row_s": profile["first_row_s"],
        "rss_ratio_4n_over_n": round(large.peak_rss_bytes / max(small.peak_rss_bytes, 1), 3),
        "rss_peak_mb_n": round(small.peak_rss_bytes / 2**20, 1),
        "rss_peak_mb_4n": round(large.peak_rss_bytes / 2**20, 1),
        "rss_n_dialogues": n,
    }
    figures.update({f"stage_s_{k}": v for k, v in profile["stage_s"].items()})
    return figures


def worker_figures(sizes: Sizes) -> dict:
    """`worker_speedup_2_over_1`: dialogues/s of the whole pipeline with two TTS workers on
    two cores over one worker on one core (the child's process tree, Ray included, pinned
    with sched_setaffinity; ray.num_cpus=4 logical CPUs in both so every actor is placed and
    only the cores differ). Timed from generate() with Ray up; `_steady` from the first row."""
    if len(os.sched_getaffinity(0)) < 2:
        return {"worker_speedup_2_over_1": None, "worker_note": "needs 2 cores"}
    first_two = set(sorted(os.sched_getaffinity(0))[:2])
    count = sizes.worker_dialogues
    runs = {}
    with tempfile.TemporaryDirectory(prefix="duplexsynth-bench-") as tmp:
        for workers in (1, 2):
            cores = set(sorted(first_two)[:workers])
            runs[workers] = run_pipeline(
                Path(tmp, f"w{workers}"), count,
                (f"ray.speak_workers={workers}", "ray.num_cpus=4"), cores=cores)
    rate = {w: r.figures["dialogues"] / r.generate_s for w, r in runs.items()}
    steady = {w: max(r.figures["dialogues"] - r.figures["shard_dialogues"], 1) / r.steady_s
              for w, r in runs.items()}
    return {
        "worker_speedup_2_over_1": round(rate[2] / rate[1], 3),
        "worker_speedup_2_over_1_steady": round(steady[2] / steady[1], 3),
        "worker_dialogues_per_s_1": round(rate[1], 3),
        "worker_dialogues_per_s_2": round(rate[2], 3),
        "worker_dialogues": count,
    }


def asr_gate_figures(sizes: Sizes) -> dict:
    """Cost of the ASR gate (checks=asr, English, packaged tiny.en, no retries) against the
    speak stage of the same run, on two cores (pinned like `worker_figures`): with eSpeak
    (`asr_cost_over_speak`, the issue's target <= 1.0) and, where the `.[piper]` extra and its
    voice are installed, with Piper (`asr_cost_over_speak_piper`: neural voices are where the
    gate matters). Costs are seconds summed over rows in each stage; `asr_audio_s_per_s` is
    the audio seconds the gate checks per second."""
    cores = set(sorted(os.sched_getaffinity(0))[:2])
    gate = ("checks=asr", "languages=[en]", "checks.asr.retries=0", "checks.asr.cpu_threads=2")
    figures: dict = {}
    with tempfile.TemporaryDirectory(prefix="duplexsynth-bench-") as tmp:
        for backend, suffix in (("espeak", ""), ("piper", "_piper")):
            if backend == "piper" and importlib.util.find_spec("piper") is None:
                figures["asr_piper_skipped"] = "piper-tts is not installed (.[piper])"
                continue
            run = run_pipeline(Path(tmp, f"asr-{backend}"), sizes.dialogues,
                               (*gate, f"tts={backend}"), cores=cores)
            stage_s = run.figures["profile"]["stage_s"]
            asr_s, speak_s = stage_s.get("asr", 0.0), stage_s.get("speak", 0.0)
            figures.update({
                f"stage_s_asr{suffix}": round(asr_s, 3),
                f"asr_stage_s_speak{suffix}": round(speak_s, 3),
                f"asr_cost_over_speak{suffix}": round(asr_s / max(speak_s, 1e-9), 2),
                f"asr_audio_s_per_s{suffix}": round(run.audio_s / max(asr_s, 1e-9), 2),
                f"asr_dialogues{suffix}": run.figures["dialogues"],
            })
    figures["asr_cores"] = len(cores)
    return figures


def driver_figures(sizes: Sizes) -> dict:
    """The driver's cost must not grow with the budget (issue 15): its own peak USS and the
    time to the first report out of the stream, at N and 16N dialogues of the default config.

    `driver_uss_ratio_16n_over_n` (target <= 1.1): the sink writes shards on a worker, so
    the driver holds no encoded row; `first_row_ratio_16n_over_n` (target <= 1.2)."""
    n = sizes.driver_dialogues
    with tempfile.TemporaryDirectory(prefix="duplexsynth-bench-") as tmp:
        small = run_pipeline(Path(tmp, "n"), n, sample_s=0.5)
        large = run_pipeline(Path(tmp, "16n"), 16 * n, sample_s=0.5)
    first_n, first_16n = (max(float(run.figures["profile"].get("first_row_s", 0.0)), 1e-9)
                          for run in (small, large))
    return {
        "driver_uss_ratio_16n_over_n": round(large.peak_driver_uss_bytes
                                             / max(small.peak_driver_uss_bytes, 1), 3),
        "first_row_ratio_16n_over_n": round(first_16n / first_n, 3),
        "driver_uss_mb_n": round(small.peak_driver_uss_bytes / 2**20, 1),
        "driver_uss_mb_16n": round(large.peak_driver_uss_bytes / 2**20, 1),
        "first_row_s_n": round(first_n, 2),
        "first_row_s_16n": round(first_16n, 2),
        "driver_n_dialogues": n,
    }


MEASUREMENTS: dict[str, Callable[[Sizes], dict]] = {
    "pipeline": pipeline_figures,
    "driver": driver_figures,
    "workers": worker_figures,
    "writer": lambda sizes: writer_concurrency_speedup(),
    "asr": asr_gate_figures,
    "piper": lambda sizes: _piper_figures(sizes),
    "peer": lambda sizes: _peer_figures(sizes),
}


def _peer_figures(sizes: Sizes) -> dict:
    """`lhotse_ratio`: `generate tts=corpus` against Lhotse's meeting simulator on one
    corpus (pipeline.bench_peer); needs the `lhotse` extra."""
    from pipeline.bench_peer import peer_figures

    return peer_figures(sizes.peer_dialogues)


def _piper_figures(sizes: Sizes) -> dict:
    """`tts=piper` throughput against raw Piper and word-timing error (pipeline.bench_piper);
    needs the `.[piper]` extra, so it is imported only when asked for."""
    from pipeline.bench_piper import piper_figures

    return piper_figures(sizes)


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--only", action="append", choices=sorted(MEASUREMENTS),
                        help="run only this group (repeatable)")
    parser.add_argument("--dialogues", type=int, default=Sizes.dialogues,
                        help="N of the memory ratio; the throughput run has 4N")
    parser.add_argument("--worker-dialogues", type=int, default=Sizes.worker_dialogues,
                        help="dialogues per worker-scaling run")
    parser.add_argument("--driver-dialogues", type=int, default=Sizes.driver_dialogues,
                        help="N of the driver figures (runs of N and 16N dialogues)")
    parser.add_argument("--peer-dialogues", type=int, default=Sizes.peer_dialogues,
                        help="our dialogues in the Lhotse comparison (--only peer)")
    parser.add_argument("--piper-dialogues", type=int, default=Sizes.piper_dialogues,
                        help="dialogues of the tts=piper run (--only piper)")
    args = parser.parse_args(argv)
    sizes = Sizes(args.dialogues, args.worker_dialogues, args.driver_dialogues,
                  args.peer_dialogues, args.piper_dialogues)
    groups = args.only or list(MEASUREMENTS)
    if "peer" in groups:  # before any run: a missing extra is one line, not a traceback
        from pipeline.bench_peer import require_lhotse

        require_lhotse()
    figures: dict = {}
    for name in groups:
        figures.update(MEASUREMENTS[name](sizes))
    json.dump(figures, sys.stdout)
    sys.stdout.write("\n")
    return figures


if __name__ == "__main__":
    main()
