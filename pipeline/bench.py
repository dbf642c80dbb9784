"""`python -m pipeline.bench`: throughput figures as ONE JSON object on stdout.

Each measurement is a function returning a dict of named figures, registered in
MEASUREMENTS under a short group name; `--only writer` runs one group (repeatable). Figures
are ratios or rates on this machine, so they compare runs, not machines.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager


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


MEASUREMENTS: dict[str, Callable[[], dict]] = {
    "writer": writer_concurrency_speedup,
}


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--only", action="append", choices=sorted(MEASUREMENTS),
                        help="run only this group (repeatable)")
    args = parser.parse_args(argv)
    figures: dict = {}
    for name in args.only or list(MEASUREMENTS):
        figures.update(MEASUREMENTS[name]())
    json.dump(figures, sys.stdout)
    sys.stdout.write("\n")
    return figures


if __name__ == "__main__":
    main()
