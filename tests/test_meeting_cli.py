"""One small real CLI run: four-speaker meetings timed by a fitted profile."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from pipeline.dataset import iter_dialogues, iter_segments
from tests.test_fit_timing import synthetic_rttm

ROOT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.slow


def test_generate_meetings_with_a_profile(tmp_path: Path) -> None:
    synthetic_rttm(tmp_path / "real.rttm", recordings=10, turns=40)
    def run(*args: str) -> None:
        result = subprocess.run([sys.executable, "-m", "pipeline", *args,
                                 f"hydra.run.dir={tmp_path / 'hydra'}"],
                                cwd=ROOT, capture_output=True, text=True, timeout=600)
        assert result.returncode == 0, result.stderr[-3000:]

    run("fit-timing", f"inputs=[{tmp_path / 'real.rttm'}]", f"out.dir={tmp_path / 'fit'}")
    profile = tmp_path / "fit" / "timing_profile.yaml"
    out = tmp_path / "ds"
    run("generate", f"sink.dir={out}", "budget.dialogues=3", "sink.shard_dialogues=3",
        "progress=false", "ray.num_cpus=2", "plan.speakers=4", f"timing.profile={profile}")
    summary = json.loads((out / "run.json").read_text())
    assert summary["timing"]["definition"] == "segments"
    assert summary["timing"]["profile"] == str(profile.resolve())
    import yaml

    fitted = yaml.safe_load(profile.read_text())["statistics"]
    assert summary["timing"]["target"]["gap_median_s"] == fitted["gap_median_s"]
    dialogues = list(iter_dialogues(out, ["id", "num_speakers", "speakers", "timeline"]))
    segments = list(iter_segments(out, ["dialogue_id", "speaker", "speaker_label", "voice_id"]))
    assert dialogues and all(d["num_speakers"] == 4 for d in dialogues)
    voice_of = {}
    for dialogue in dialogues:
        speakers = dialogue["speakers"]
        assert {s["role"] for s in speakers} == {"chair", "participant", "assistant"}
        assert len({s["voice"]["id"] for s in speakers}) == 4
        voice_of.update({(dialogue["id"], s["id"]): s["voice"]["id"] for s in speakers})
        timeline = dialogue["timeline"]
        assert all("addressee" in seg for seg in timeline["segments"])
    assert all(row["voice_id"] == row["speaker"] == voice_of[(row["dialogue_id"],
                                                               row["speaker_label"])]
               for row in segments)
