"""One timed `generate` run for `python -m pipeline.bench`, in a process of its own.

`python -m pipeline.bench_probe key=value ...` composes conf/generate.yaml with Hydra
overrides exactly as `duplexsynth generate` does, starts Ray, runs the pipeline and prints one
JSON line: `ray_init_s` (Ray start-up), `generate_s` (the pipeline with Ray already up,
including actor start-up and the sink), `audio_s`, `dialogues` and the run's `profile`
(per-stage seconds, `first_row_s`, `stream_s`). Its own process so the bench can pin it to
cores and sum the memory of its process tree (driver plus Ray's processes) alone.
"""

from __future__ import annotations

import json
import sys
import time


def probe(overrides: list[str]) -> dict:
    from hydra import compose, initialize_config_dir
    from omegaconf import OmegaConf

    from pipeline.cli import CONF_DIR
    from pipeline.config import GenerateConfig
    from pipeline.run import _init_ray, generate
    from pipeline.sink import ShardWriter

    with initialize_config_dir(config_dir=CONF_DIR, version_base="1.3"):
        raw = OmegaConf.to_container(compose("generate", overrides=overrides), resolve=True)
    assert isinstance(raw, dict)
    config = GenerateConfig.check(raw)
    started = time.perf_counter()
    _init_ray(config)  # generate() finds it running (ignore_reinit_error)
    ray_init_s = time.perf_counter() - started
    started = time.perf_counter()
    summary = generate(config, raw)
    generate_s = time.perf_counter() - started
    totals = ShardWriter(config.output_dir, config.sink.sample_rate).totals()
    return {"ray_init_s": ray_init_s, "generate_s": generate_s, "audio_s": totals.audio_s,
            "dialogues": totals.written, "shard_dialogues": config.sink.shard_dialogues,
            "profile": summary.get("profile", {})}


if __name__ == "__main__":
    print(json.dumps(probe(sys.argv[1:])), flush=True)
