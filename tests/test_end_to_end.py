"""The real CLI, end to end: config -> Ray Data -> Parquet shards loadable by datasets."""

import hashlib
import io
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

ROOT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.slow


def generate(out: Path, *overrides: str) -> subprocess.CompletedProcess:
    result = subprocess.run(
        [sys.executable, "-m", "pipeline", "generate", f"sink.dir={out}",
         f"hydra.run.dir={out.parent / 'hydra'}", "budget.dialogues=6", "sink.shard_dialogues=4",
         "progress=false", "ray.num_cpus=2", *overrides],
        cwd=ROOT, capture_output=True, text=True, timeout=600,
    )
    assert result.returncode == 0, result.stderr[-4000:]
    return result


def digests(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*.parquet"))}


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("e2e") / "ds"
    generate(out)
    return out


def test_layout_and_run_json(dataset):
    assert sorted(p.name for p in (dataset / "data" / "dialogues").iterdir()) == [
        "train-00000.parquet", "train-00001.parquet"]
    assert (dataset / "data" / "segments" / "train-00001.parquet").exists()
    run = json.loads((dataset / "run.json").read_text())
    assert run["counts"]["written"] == 6  # budget.dialogues=N writes exactly N
    assert run["counts"]["planned"] == 6 + sum(run["counts"]["rejected"].values())
    assert run["budget"]["met"]
    assert run["audio_hours"] > 0
    assert set(run["timing"]["achieved"]) >= {"overlap_transfer_ratio", "gap_median_s",
                                              "overlapped_speech_fraction", "backchannel_share"}
    assert "ray" in run["versions"]


def test_both_configs_load_with_datasets_and_audio_decodes(dataset):
    from datasets import Audio, load_dataset

    dialogues = load_dataset("parquet", split="train",
                             data_files=str(dataset / "data/dialogues/*.parquet"))
    segments = load_dataset("parquet", split="train",
                            data_files=str(dataset / "data/segments/*.parquet"))
    assert isinstance(dialogues.features["audio"], Audio)
    assert isinstance(segments.features["audio"], Audio)
    dialogues = dialogues.cast_column("audio", Audio(decode=False)).cast_column(
        "channels", Audio(decode=False))
    segments = segments.cast_column("audio", Audio(decode=False))
    languages = set()
    for row in dialogues:
        languages.add(row["language"])
        mix, rate = sf.read(io.BytesIO(row["audio"]["bytes"]))
        channels, _ = sf.read(io.BytesIO(row["channels"]["bytes"]))
        assert rate == 16000
        assert abs(len(mix) / rate - row["duration_s"]) < 0.01
        speakers = json.loads(row["speakers"])
        assert channels.shape == (len(mix), len(speakers))
        assert np.abs(mix).max() < 1.0 and np.abs(mix).max() > 0.01
        timeline = json.loads(row["timeline"])
        duplex = json.loads(row["duplex"])
        assert len(duplex["state"]) == int(np.ceil(timeline["duration_s"] / duplex["frame_s"]))
        assert duplex["assistant"] in {s["id"] for s in speakers}
    assert languages == {"en", "hu"}
    timelines = {r["id"]: json.loads(r["timeline"]) for r in dialogues}
    for row in segments:
        audio, rate = sf.read(io.BytesIO(row["audio"]["bytes"]))
        assert abs(len(audio) / rate - row["duration_s"]) < 0.002
        assert row["text"].strip()
        placed = next(s for s in timelines[row["dialogue_id"]]["segments"]
                      if s["start_s"] == row["start_s"] and s["speaker"] == row["speaker"])
        assert row["text"] == " ".join(w[0] for w in placed["words"])
        assert np.sqrt(np.mean(audio ** 2)) > 1e-3


def test_rerun_changes_no_file_and_adds_no_id(dataset):
    import pyarrow.parquet as pq

    before = digests(dataset)
    ids_before = sorted(pq.read_table(dataset / "data/dialogues", columns=["id"])
                        .column("id").to_pylist())
    generate(dataset)
    assert digests(dataset) == before
    ids_after = pq.read_table(dataset / "data/dialogues", columns=["id"]).column("id").to_pylist()
    assert sorted(ids_after) == ids_before
    assert len(set(ids_after)) == len(ids_after)
