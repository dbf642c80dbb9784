"""Shared test inputs: utterances made of real (synthetic tone) audio with known word spans,
and one real `duplexsynth generate` run that every module needing "a dataset" reads."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from pipeline.schema import Utterance

ROOT = Path(__file__).resolve().parent.parent

SAMPLE_RATE = 22050


def tone_utterance(turn: int, speaker: str, words: list[str], word_s: float = 0.3,
                   gap_s: float = 0.05, freq: float = 220.0) -> Utterance:
    """An utterance whose words are tone bursts separated by short silences."""
    spans, cursor = [], 0.0
    for word in words:
        spans.append((word, round(cursor, 4), round(cursor + word_s, 4)))
        cursor += word_s + gap_s
    total = int(round((cursor - gap_s) * SAMPLE_RATE))
    samples = np.zeros(total, dtype=np.float32)
    for _, start, end in spans:
        a, b = int(start * SAMPLE_RATE), int(end * SAMPLE_RATE)
        t = np.arange(b - a) / SAMPLE_RATE
        samples[a:b] = 0.3 * np.sin(2 * np.pi * freq * t)
    return Utterance(turn=turn, speaker=speaker, sample_rate=SAMPLE_RATE, samples=samples,
                     words=spans)


@pytest.fixture
def make_utterance():
    return tone_utterance


# The session's shared dataset: the default config (en + hu, train/validation/test, two
# speakers) with a small budget. 6 dialogues over the default 0.9/0.05/0.05 splits are 4 + 1 + 1,
# so every split has a shard and a voice pool of its own.
SHARED_DIALOGUES = 6
SHARED_OVERRIDES = (f"budget.dialogues={SHARED_DIALOGUES}", "sink.shard_dialogues=4",
                    "progress=false", "ray.num_cpus=2")
# Fake secrets in the shared run's environment: tests/test_card.py checks that none of them
# reaches the card, run.json or the run's logs.
SHARED_SECRETS = {"HF_TOKEN": "hf_cardtestSECRETtoken0123456789",
                  "OPENAI_API_KEY": "sk-cardtest-SECRET-key-0123456789"}


@dataclass(frozen=True)
class SharedDataset:
    """A finished `generate` run: `path` is its sink.dir, `logs` its captured stdout+stderr,
    `base` the folder holding it and its hydra.run.dir."""

    path: Path
    logs: str
    base: Path


def file_digests(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture(scope="session")
def shared_dataset(tmp_path_factory) -> Iterator[SharedDataset]:
    """One real CLI `generate` for the whole session (each run pays Ray's start-up). Read-only:
    a test that writes into a dataset copies it first (shutil.copytree into its tmp_path); at
    the end of the session any changed, added or removed file fails the run."""
    base = tmp_path_factory.mktemp("shared")
    path = base / "ds"
    result = subprocess.run(
        [sys.executable, "-m", "pipeline", "generate", f"sink.dir={path}",
         f"hydra.run.dir={base / 'hydra'}", *SHARED_OVERRIDES],
        cwd=ROOT, capture_output=True, text=True, timeout=900,
        env={**os.environ, **SHARED_SECRETS})
    assert result.returncode == 0, result.stderr[-4000:]
    before = file_digests(path)
    yield SharedDataset(path=path, logs=result.stdout + result.stderr, base=base)
    assert file_digests(path) == before, "a test wrote into the shared dataset; copy it first"


AMI = Path("/work/shared/data/ami-rttm")


@dataclass(frozen=True)
class MeetingRun:
    """fit-timing then generate of four-speaker meetings timed by the fitted profile: `dataset`
    is the run's sink.dir, `profile` the fitted timing_profile.yaml, `fitted_on` "ami" (AMI
    train) or "synthetic" (tests/test_fit_timing.synthetic_rttm)."""

    dataset: Path
    profile: Path
    fitted_on: str


@pytest.fixture(scope="session")
def meeting_run(tmp_path_factory) -> MeetingRun:
    """The CLI chain once per session (read-only for its consumers, tests/test_meeting_cli.py
    and tests/test_timing_report.py): fitted on AMI train where /work/shared/data/ami-rttm holds
    it (the timing report compares the meetings with AMI dev; about 100 transfers need 8
    meetings), else on a synthetic RTTM (3 meetings). One split: each split is a stream of its own
    (its own actor start-up) and neither consumer is about splits."""
    from tests.cli_support import cli
    from tests.test_fit_timing import synthetic_rttm

    base = tmp_path_factory.mktemp("meetings")
    if (AMI / "train.rttm").exists():
        source, fitted_on, meetings = AMI / "train.rttm", "ami", 8
    else:
        source, fitted_on, meetings = base / "real.rttm", "synthetic", 3
        synthetic_rttm(source, recordings=10, turns=40)
    cli(base, "fit-timing", f"inputs=[{source}]", f"out.dir={base / 'fit'}")
    profile = base / "fit" / "timing_profile.yaml"
    cli(base, "generate", f"sink.dir={base / 'ds'}", f"budget.dialogues={meetings}",
        "progress=false", "ray.num_cpus=2", "plan.speakers=4", "languages=[en]",
        "splits={train:1.0,validation:0,test:0}", f"timing.profile={profile}")
    return MeetingRun(dataset=base / "ds", profile=profile, fitted_on=fitted_on)
