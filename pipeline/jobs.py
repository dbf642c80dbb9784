"""The `generate` job: check the config, run the pipeline, print the summary, write the card.

The helpers every job shares live in `pipeline.jobs_common`; they are re-exported here so
`from pipeline.jobs import fail` keeps working.
"""

from __future__ import annotations

import json
import logging
import sys

from pipeline.config import ConfigError, GenerateConfig
from pipeline.jobs_common import dataset_and_out, fail

__all__ = ["dataset_and_out", "fail", "generate_job", "write_card_after_run"]

log = logging.getLogger("duplexsynth")


def generate_job(raw: dict) -> dict:
    try:
        config = GenerateConfig.check(raw)
    except ConfigError as error:
        fail(error)
        raise
    from pipeline.run import generate
    from pipeline.run_lock import RunLocked, run_lock
    from pipeline.script_check import WriterStopped
    from pipeline.storage import StorageError

    sink = config.sink
    try:  # before any work: a live run on the same sink.dir, or the prompt cannot fit, or
        # the sink cannot be written (no space, permission, bucket): one line each
        config.sink_location.check_writable()  # before the lock writes its state folder
        where = config.output_dir if config.sink_location.is_local else config.sink_location
        lock = run_lock(where, sink.shared, sink.lock_stale_s, sink.claim_shards)
        if lock is None:  # a backend without conditional writes: warned in one line
            summary = generate(config, raw)
        else:
            with lock:
                summary = generate(config, raw, lock)
    except (RunLocked, WriterStopped, StorageError) as error:
        fail(error)
        raise
    print(run_report(summary, str(config.output_dir)), file=sys.stderr)
    if summary.get("writer_error"):
        print(f"duplexsynth: stopped: {summary['writer_error']}", file=sys.stderr)
        raise SystemExit(2)
    if summary["counts"]["written"] == 0:
        print("duplexsynth: no dialogue was written; see the reasons above and "
              f"{config.output_dir}/run.json", file=sys.stderr)
        raise SystemExit(1)
    if config.viewer.enabled and not config.sink_location.is_local:
        log.warning("viewer.enabled: the viewer is written beside a local dataset only; run "
                    "`duplexsynth view dataset=<a local copy>`")
    elif config.viewer.enabled:
        from pipeline.viewer.job import view_after_run

        view_after_run(config.output_dir, config.viewer)
    write_card_after_run(config.output_dir)
    return summary


def run_report(summary: dict, where: str) -> str:
    """The end-of-run lines: what was written, and when not everything was, why not."""
    counts = summary["counts"]
    lines = [f"wrote {counts['written']}/{counts['planned']} dialogues, "
             f"{summary['audio_hours']:.3f} h of audio, rejected "
             f"{json.dumps(counts['rejected'])} -> {where}"]
    budget = summary.get("budget") or {}
    if budget and not budget.get("met", True):
        goal = (f"{budget['hours']} h" if budget.get("hours") is not None
                else f"{budget.get('dialogues')} dialogues")
        lines.append(f"the budget of {goal} was NOT met: {budget['written_dialogues']} "
                     f"dialogues, {budget['written_hours']} h written")
    for reason, detail in (summary.get("reject_examples") or {}).items():
        lines.append(f"  first {reason}: {detail}")
    if counts.get("deferred"):
        lines.append(f"deferred to the next run: {json.dumps(counts['deferred'])}"
                     + (f"; stopped: {summary['stopped']}" if summary.get("stopped") else ""))
    return "\n".join(lines)


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
              f"shards and run.json in {dataset} are written; retry with `duplexsynth card "
              f"sink.dir={dataset}`", file=sys.stderr)
        raise SystemExit(3) from None
    print(f"card: {result.path}", file=sys.stderr)
