"""Job entry points: each takes the resolved config dict of its Hydra app."""

from __future__ import annotations

import json
import logging
import sys

from pipeline.config import ConfigError, GenerateConfig

log = logging.getLogger("duplexsynth")


def fail(error: Exception) -> None:
    print(f"duplexsynth: {error}", file=sys.stderr)
    raise SystemExit(2)


def generate_job(raw: dict) -> dict:
    try:
        config = GenerateConfig.check(raw)
    except ConfigError as error:
        fail(error)
        raise
    from pipeline.run import generate

    summary = generate(config, raw)
    counts = summary["counts"]
    print(
        f"wrote {counts['written']}/{counts['planned']} dialogues, "
        f"{summary['audio_hours']:.3f} h of audio, rejected {json.dumps(counts['rejected'])} "
        f"-> {config.output_dir}",
        file=sys.stderr,
    )
    if counts.get("deferred"):
        print(f"deferred to the next run: {json.dumps(counts['deferred'])}"
              + (f"; stopped: {summary['stopped']}" if summary.get("stopped") else ""),
              file=sys.stderr)
    return summary
