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

CONF_DIR = str(Path(__file__).resolve().parent.parent / "conf")

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
    "card": ("pipeline.card", "card_job", "write or refresh the dataset card (README.md)"),
    "publish": ("pipeline.publish", "publish_job", "upload a dataset to the Hugging Face Hub"),
    "view": ("pipeline.viewer.job", "view_job",
             "static HTML viewer: words, cuts, overlaps, duplex labels, audio (opens from disk)"),
}


def usage() -> str:
    lines = ["usage: duplexsynth <job> [key=value ...] [--multirun] [--cfg job]", "", "jobs:"]
    lines += [f"  {name:<12} {help_text}" for name, (_, _, help_text) in JOBS.items()]
    lines += ["", "Configs live in conf/<job>.yaml; every key can be overridden, e.g.",
              "  duplexsynth generate budget.dialogues=10 languages=[hu] sink.dir=/tmp/ds"]
    return "\n".join(lines)


def run_job(job: str, handler: Callable[[dict], object]) -> None:
    @hydra.main(config_path=CONF_DIR, config_name=job, version_base="1.3")
    def _app(cfg: DictConfig) -> None:
        raw = OmegaConf.to_container(cfg, resolve=True)
        assert isinstance(raw, dict)
        handler(raw)

    _app()


def main(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else argv
    if not args or args[0] in ("-h", "--help", "help"):
        print(usage())
        return
    job, overrides = args[0], args[1:]
    if job not in JOBS:
        print(f"duplexsynth: unknown job {job!r}\n\n{usage()}", file=sys.stderr)
        raise SystemExit(2)
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
