"""The mix planner (pure) and the `mix` job with a real manifest of real audio files."""

import json
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from pipeline.asr_mix import MixError, plan_hours
from pipeline.exports.common import read_jsonl
from tests.asr_fixtures import ROOT


def entries(count=600, speakers=12, seed=0):
    rng = np.random.default_rng(seed)
    return [{"audio_filepath": f"a{i}.wav", "duration": float(rng.uniform(2.0, 30.0)),
             "speaker": f"s{i % speakers if i % 5 else 0}"} for i in range(count)]


@pytest.mark.parametrize("hours", [0.2, 1.0, 2.5])
def test_planner_hits_hours_within_two_percent(hours):
    chosen = plan_hours(entries(), hours, seed=7)
    total = sum(e["duration"] for e in chosen) / 3600
    assert abs(total - hours) <= 0.02 * hours


def test_planner_balances_speakers_and_is_deterministic():
    pool = entries()
    chosen = plan_hours(pool, 1.0, seed=7)
    per_speaker = defaultdict(float)
    for entry in chosen:
        per_speaker[entry["speaker"]] += entry["duration"]
    assert len(per_speaker) == 12
    assert max(per_speaker.values()) - min(per_speaker.values()) <= 31.0  # one entry apart
    assert chosen == plan_hours(pool, 1.0, seed=7)
    assert chosen != plan_hours(pool, 1.0, seed=8)


def test_planner_refuses_more_hours_than_available():
    with pytest.raises(MixError, match=r"mix.real_hours=9.*only"):
        plan_hours(entries(50), 9.0, seed=1, what="mix.real_hours")


def real_manifest(folder: Path, count=40, speakers=4) -> Path:
    """Real files: 16 kHz tone recordings of 3–9 s with a NeMo manifest (relative paths)."""
    rng = np.random.default_rng(3)
    lines = []
    for i in range(count):
        seconds = float(rng.uniform(3.0, 9.0))
        t = np.arange(int(seconds * 16000)) / 16000
        path = folder / "wav" / f"real{i:03d}.wav"
        path.parent.mkdir(parents=True, exist_ok=True)
        sf.write(path, 0.2 * np.sin(2 * np.pi * (150 + 20 * (i % speakers)) * t), 16000)
        lines.append(json.dumps({"audio_filepath": f"wav/{path.name}", "duration": len(t) / 16000,
                                 "text": "valódi beszéd", "speaker": f"real{i % speakers}",
                                 "lang": "hu"}))
    manifest = folder / "real.json"
    manifest.write_text("\n".join(lines) + "\n")
    return manifest


@pytest.mark.slow
def test_mix_sweep_through_the_cli_writes_one_manifest_per_point(tmp_path, shared_dataset):
    manifest = real_manifest(tmp_path / "real")
    dataset = shared_dataset.path  # read only: the cache and the manifests go to tmp_path
    result = subprocess.run(
        [sys.executable, "-m", "pipeline", "mix", "--multirun",
         "mix.synthetic_hours=0,0.02,0.04", "mix.real_hours=0.05",
         f"mix.real_manifests=[{manifest}]", f"mix.synthetic_datasets=[{dataset}]",
         f"mix.cache_dir={tmp_path / 'cache'}", "mix.synthetic_unit=segments",
         f"out.dir={tmp_path}/mix/syn${{mix.synthetic_hours}}h",
         f"hydra.sweep.dir={tmp_path / 'hydra'}"],
        cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    for hours in (0, 0.02, 0.04):
        point = tmp_path / "mix" / f"syn{hours}h"
        card = json.loads((point / "mix.json").read_text())
        assert abs(card["hours"]["real"] - 0.05) <= 0.02 * 0.05
        assert abs(card["hours"]["synthetic"] - hours) <= 0.02 * hours
        assert card["speakers"]["real"] == 4
        lines = list(read_jsonl(point / "train_manifest.json"))
        assert len(lines) == card["entries"]
        for entry in lines[:20]:
            info = sf.info(entry["audio_filepath"])
            assert abs(info.frames / info.samplerate - entry["duration"]) < 1e-3
        if hours:
            assert set(card["languages"]) >= {"hu"} and card["speakers"]["synthetic"] >= 2
    again = tmp_path / "again"
    subprocess.run([sys.executable, "-m", "pipeline", "mix", "mix.real_hours=0.05",
                    "mix.synthetic_hours=0.04", f"mix.real_manifests=[{manifest}]",
                    f"mix.synthetic_datasets=[{dataset}]", f"mix.cache_dir={tmp_path / 'cache'}",
                    "mix.synthetic_unit=segments", f"out.dir={again}",
                    f"hydra.run.dir={tmp_path / 'hydra1'}"], cwd=ROOT, check=True,
                   capture_output=True, timeout=600)
    assert (again / "train_manifest.json").read_bytes() == (
        tmp_path / "mix" / "syn0.04h" / "train_manifest.json").read_bytes()


def test_mix_job_rejects_both_amounts(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "pipeline", "mix", "mix.synthetic_hours=1",
         "mix.synthetic_ratio=2", f"mix.synthetic_datasets=[{tmp_path}]", f"out.dir={tmp_path}",
         f"hydra.run.dir={tmp_path / 'hydra'}"], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 2
    assert "mix.synthetic_hours or mix.synthetic_ratio" in result.stderr
