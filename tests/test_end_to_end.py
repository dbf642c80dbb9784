"""The real CLI, end to end: config -> Ray Data -> Parquet shards loadable by datasets."""

import hashlib
import io
import json
import shutil
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
def dataset(shared_dataset) -> Path:
    """The session's shared run (tests/conftest.py): `generate` above with these defaults."""
    return shared_dataset.path


def test_layout_and_run_json(dataset):
    # budget.dialogues=6 over train 0.9 / validation 0.05 / test 0.05: 4 + 1 + 1
    assert sorted(p.name for p in (dataset / "data" / "dialogues").iterdir()) == [
        "test-00000.parquet", "train-00000.parquet", "validation-00000.parquet"]
    assert (dataset / "data" / "segments" / "validation-00000.parquet").exists()
    run = json.loads((dataset / "run.json").read_text())
    assert run["counts"]["written"] == 6  # budget.dialogues=N writes exactly N
    assert {k: v["dialogues"] for k, v in run["splits"].items()} == {
        "train": 4, "validation": 1, "test": 1}
    assert run["counts"]["planned"] >= 6 + sum(run["counts"]["rejected"].values())
    assert run["budget"]["met"]
    assert run["audio_hours"] > 0
    assert set(run["timing"]["achieved"]) >= {"overlap_transfer_ratio", "gap_median_s",
                                              "overlapped_speech_fraction", "backchannel_share"}
    assert "ray" in run["versions"]


def no_decoding(ds):
    """Audio columns as FLAC bytes: decoding needs torchcodec + FFmpeg, not part of CI."""
    from datasets import Audio, List

    for name, feature in ds.features.items():
        if isinstance(feature, Audio):
            ds = ds.cast_column(name, Audio(decode=False))
        elif isinstance(feature, List) and isinstance(feature.feature, Audio):
            ds = ds.cast_column(name, List(Audio(decode=False)))
    return ds


def test_splits_load_by_folder_and_share_no_voice(dataset):
    from datasets import load_dataset

    voices = {}
    for split in ("train", "validation", "test"):
        segments = load_dataset(str(dataset), "segments", split=split)
        dialogues = load_dataset(str(dataset), "dialogues", split=split)
        assert len(segments) > 0 and len(dialogues) > 0
        voices[split] = set(segments["voice_id"])
        assert voices[split] == {s["voice_id"] for row in dialogues["speakers"] for s in row}
        assert all(s["speaker"] == s["voice_id"] for s in segments.select_columns(
            ["speaker", "voice_id"]))
    assert not voices["train"] & voices["test"]
    assert not voices["train"] & voices["validation"]
    assert not voices["validation"] & voices["test"]


def test_nested_columns_are_typed_and_filter(dataset):
    from datasets import List, Value, load_dataset

    dialogues = no_decoding(load_dataset(str(dataset), "dialogues", split="train"))
    features = dialogues.features
    assert isinstance(features["speakers"], List) and features["speakers"].feature["role"] == \
        Value("string")
    words = features["timeline"]["segments"].feature["words"].feature
    assert words == {"word": Value("string"), "start_s": Value("float64"),
                     "end_s": Value("float64")}
    assert features["duplex"]["state"] == List(Value("string"))
    assert features["script"]["turns"].feature["interrupts"] == Value("bool")
    assert len(dialogues.filter(lambda r: r["num_speakers"] == 2)) == len(dialogues)
    with_chair = dialogues.filter(lambda r: any(s["role"] == "chair" for s in r["speakers"]))
    assert len(with_chair) == 0  # plan.speakers=2: no meetings
    long_turns = dialogues.filter(
        lambda r: any(len(s["words"]) > 3 for s in r["timeline"]["segments"]))
    assert 0 < len(long_turns) <= len(dialogues)


def test_both_configs_load_with_datasets_and_audio_decodes(dataset):
    from datasets import Audio, List, load_dataset

    from pipeline.dataset import iter_dialogues

    dialogues = load_dataset("parquet", split="train",
                             data_files=str(dataset / "data/dialogues/*.parquet"))
    segments = load_dataset("parquet", split="train",
                            data_files=str(dataset / "data/segments/*.parquet"))
    assert isinstance(dialogues.features["audio"], Audio)
    assert dialogues.features["channels"] == List(Audio(sampling_rate=16000))
    assert isinstance(segments.features["audio"], Audio)
    dialogues, segments = no_decoding(dialogues), no_decoding(segments)
    languages = set()
    for row in dialogues:
        languages.add(row["language"])
        mix, rate = sf.read(io.BytesIO(row["audio"]["bytes"]), dtype="float32")
        tracks = [sf.read(io.BytesIO(c["bytes"]), dtype="float32")[0] for c in row["channels"]]
        assert rate == 16000
        assert abs(len(mix) / rate - row["duration_s"]) < 0.01
        speakers = row["speakers"]
        assert len(tracks) == len(speakers) and all(t.shape == mix.shape for t in tracks)
        assert np.abs(np.sum(tracks, axis=0) - mix).max() < 3 / 32768  # FLAC 16-bit rounding
        assert np.abs(mix).max() < 1.0 and np.abs(mix).max() > 0.01
        duplex, timeline = row["duplex"], row["timeline"]
        assert len(duplex["state"]) == int(np.ceil(timeline["duration_s"] / duplex["frame_s"]))
        assert duplex["assistant"] in {s["id"] for s in speakers}
    assert languages == {"en", "hu"}
    timelines = {r["id"]: r["timeline"] for r in iter_dialogues(dataset, ["id", "timeline"])}
    for row in segments:
        audio, rate = sf.read(io.BytesIO(row["audio"]["bytes"]))
        assert abs(len(audio) / rate - row["duration_s"]) < 0.002
        assert row["text"].strip()
        placed = next(s for s in timelines[row["dialogue_id"]]["segments"]
                      if s["start_s"] == row["start_s"] and s["speaker"] == row["speaker_label"])
        assert row["text"] == " ".join(w[0] for w in placed["words"])
        assert np.sqrt(np.mean(audio ** 2)) > 1e-3


def test_datasets_decodes_each_speaker_as_its_own_array(dataset):
    pytest.importorskip("torchcodec")  # the `audio` extra; needs FFmpeg too
    from datasets import load_dataset

    from pipeline.dataset import decode_audio, iter_dialogues

    dialogues = load_dataset(str(dataset), "dialogues", split="validation")
    row = dialogues[0]
    stored = next(iter_dialogues(dataset, ["id", "audio", "channels"], split="validation"))
    assert stored["id"] == row["id"]
    tracks, _ = decode_audio(stored["channels"])
    arrays = [np.asarray(channel["array"]) for channel in row["channels"]]
    assert len(arrays) == row["num_speakers"] == tracks.shape[1]
    for index, array in enumerate(arrays):
        assert array.ndim == 1 and np.allclose(array, tracks[:, index], atol=1e-6)
    mix = np.asarray(row["audio"]["array"])
    assert np.abs(np.sum(arrays, axis=0) - mix).max() < 3 / 32768


def test_rerun_changes_no_file_and_adds_no_id(dataset, tmp_path):
    import pyarrow.parquet as pq

    dataset = Path(shutil.copytree(dataset, tmp_path / "ds"))  # the shared run stays as it is
    before = digests(dataset)
    ids_before = sorted(pq.read_table(dataset / "data/dialogues", columns=["id"])
                        .column("id").to_pylist())
    generate(dataset)
    assert digests(dataset) == before
    ids_after = pq.read_table(dataset / "data/dialogues", columns=["id"]).column("id").to_pylist()
    assert sorted(ids_after) == ids_before
    assert len(set(ids_after)) == len(ids_after)

