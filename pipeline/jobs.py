"""Job entry points: each takes the resolved config dict of its Hydra app."""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path

from pipeline.config import ConfigError, GenerateConfig

log = logging.getLogger("duplexsynth")


def fail(error: Exception) -> None:
    print(f"duplexsynth: {error}", file=sys.stderr)
    raise SystemExit(2)


def dataset_and_out(raw: dict, writes: str) -> tuple[str, str]:
    """The `dataset=` and `out.dir=` every job after `generate` needs, or a clear exit.
    `split=` (optional) limits every read of the job to that split; an unknown split fails
    here, before the job writes anything."""
    from pipeline.dataset import UnknownSplit, select_split

    dataset, out = raw.get("dataset"), (raw.get("out") or {}).get("dir")
    if not dataset:
        fail(ValueError("dataset: missing; set dataset=<folder written by generate>"))
    if not out:
        fail(ValueError(f"out.dir: missing; set out.dir=<folder for {writes}>"))
    try:
        select_split(Path(dataset).expanduser(), raw.get("split"))
    except UnknownSplit as error:
        fail(error)
    return dataset, out


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
    if config.view.enabled:
        from pipeline.viewer.job import view_after_run

        view_after_run(config.output_dir, config.view)
    write_card_after_run(config.output_dir)
    return summary


def write_card_after_run(dataset) -> None:
    """The card never costs the data: shards and run.json are final before it starts. A card
    failure is reported and ends the run with status 3 so scripts notice; `duplexsynth card
    sink.dir=...` retries it alone."""
    from pipeline.card import write_card

    try:
        result = write_card(dataset)
    except Exception as error:  # noqa: BLE001 - any card failure leaves the dataset intact
        log.warning("data card failed: %s", error)
        print(f"duplexsynth: the data card failed ({type(error).__name__}: {error}); the "
              f"dataset in {dataset} is complete; retry with `duplexsynth card "
              f"sink.dir={dataset}`", file=sys.stderr)
        raise SystemExit(3) from None
    print(f"card: {result.path}", file=sys.stderr)
