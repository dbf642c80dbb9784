"""NeMo / Lhotse / RTTM / STM exports of a small real dataset, re-read by their consumers."""

import json
import sys
import tarfile
from pathlib import Path

import pytest
import soundfile as sf

from pipeline.dataset import iter_dialogues, iter_segments
from pipeline.exports import nemo, rttm, stm
from pipeline.exports.common import read_jsonl


@pytest.fixture(scope="module")
def dataset(shared_dataset) -> Path:
    """The session's shared `generate` run (tests/conftest.py); the exports write elsewhere."""
    return shared_dataset.path


@pytest.fixture(scope="module")
def segments(dataset) -> dict[str, dict]:
    return {(r["dialogue_id"], r["start_s"]): r
            for r in iter_segments(dataset, columns=["dialogue_id", "id", "speaker", "text",
                                                     "start_s", "end_s", "language",
                                                     "speaker_label", "voice_id"])}


@pytest.fixture(scope="module")
def timelines(dataset) -> dict[str, dict]:
    return {r["id"]: r["timeline"] for r in iter_dialogues(dataset, columns=["id", "timeline"])}


def test_nemo_segments_round_trip(dataset, segments, tmp_path):
    summary = nemo.export(dataset, tmp_path, {"windows": False, "normalize": False})
    entries = list(read_jsonl(tmp_path / "segments_manifest.json"))
    assert len(entries) == len(segments) == summary["segments"]["entries"]
    for entry in entries:
        info = sf.info(tmp_path / entry["audio_filepath"])
        assert (info.samplerate, info.channels) == (16000, 1)
        assert abs(info.frames / info.samplerate - entry["duration"]) < 1e-4
        segment = segments[(entry["dialogue_id"], entry["start_s"])]
        assert entry["text"] == entry["text_original"] == segment["text"]
        assert entry["lang"] == segment["language"]
        assert entry["speaker"] == segment["voice_id"] == segment["speaker"]
        assert entry["speaker"].startswith("espeak:") and entry["speaker"].count(":") == 2
        assert entry["speaker_label"] == segment["speaker_label"]
    hours = sum(e["duration"] for e in entries) / 3600
    assert summary["segments"]["hours"] == pytest.approx(hours, abs=1e-4)


def test_nemo_windows_keep_words_whole_with_one_sc_per_change(dataset, timelines, tmp_path):
    speakers = {r["id"]: r["speakers"] for r in iter_dialogues(dataset, ["id", "speakers"])}
    nemo.export(dataset, tmp_path, {"segments": False, "audio_format": "wav"})
    entries = list(read_jsonl(tmp_path / "windows_manifest.json"))
    assert entries
    for entry in entries:
        info = sf.info(tmp_path / entry["audio_filepath"])
        assert info.format == "WAV"
        assert abs(info.frames / 16000 - entry["duration"]) < 1e-4
        assert entry["duration"] <= 30.0 + 1e-3
        begin, end = entry["start_s"], entry["start_s"] + entry["duration"]
        inside, runs = [], []
        for placed in timelines[entry["dialogue_id"]]["segments"]:
            for word, start, stop in placed["words"]:
                assert not (start < begin < stop or start < end - 1e-3 < stop - 1e-3), (
                    f"window {entry['audio_filepath']} splits {word!r}")
                if start >= begin - 1e-3 and stop <= end + 1e-3:
                    inside.append((placed["start_s"], placed["speaker"], word))
        for _, speaker, word in sorted(inside, key=lambda x: x[0]):
            if runs and runs[-1][0] == speaker:
                runs[-1][1].append(word)
            else:
                runs.append((speaker, [word]))
        expected = " <sc> ".join(" ".join(words) for _, words in runs)
        assert entry["text_original"] == expected
        voices = {s["id"]: s["voice_id"] for s in speakers[entry["dialogue_id"]]}
        assert sorted(entry["speakers"]) == sorted({voices[s] for _, s, _ in inside})
        assert entry["text"].count("<sc>") == entry["speaker_changes"] == len(runs) - 1
        assert "," not in entry["text"] and entry["text"] == entry["text"].lower()


def test_nemo_offsets_and_tarred_layout(dataset, tmp_path):
    nemo.export(dataset, tmp_path / "off", {"offsets": True, "segments": False})
    for entry in read_jsonl(tmp_path / "off" / "windows_manifest.json"):
        info = sf.info(tmp_path / "off" / entry["audio_filepath"])
        assert entry["offset"] + entry["duration"] <= info.frames / info.samplerate + 1e-3
    summary = nemo.export(dataset, tmp_path / "tar", {"tarred": True, "num_shards": 2})
    for kind in ("segments", "windows"):
        folder = tmp_path / "tar" / "tarred" / kind
        entries = list(read_jsonl(folder / "tarred_audio_manifest.json"))
        assert summary["tarred"][kind]["entries"] == summary[kind]["entries"] == len(entries)
        for shard in (0, 1):
            with tarfile.open(folder / f"audio_{shard}.tar") as tar:
                names = set(tar.getnames())
            sharded = list(read_jsonl(folder / "sharded_manifests" / f"manifest_{shard}.json"))
            assert {e["audio_filepath"] for e in sharded} == names
            assert {e["shard_id"] for e in sharded} == {shard}


def test_bad_option_names_the_key(dataset, tmp_path):
    with pytest.raises(ValueError, match="options.nemo: unknown key"):
        nemo.export(dataset, tmp_path, {"window": 20})
    with pytest.raises(ValueError, match="options.nemo.order"):
        nemo.export(dataset, tmp_path, {"order": "random"})


def test_lhotse_loads_export_and_supervisions_match(dataset, segments, tmp_path):
    lhotse = pytest.importorskip("lhotse", reason="lhotse (needs torch) is not installed")
    from pipeline.exports import lhotse as lhotse_export

    summary = lhotse_export.export(dataset, tmp_path, {})
    recordings = lhotse.load_manifest(tmp_path / "recordings.jsonl.gz")
    supervisions = lhotse.load_manifest(tmp_path / "supervisions.jsonl.gz")
    cuts = lhotse.load_manifest(tmp_path / "cuts.jsonl.gz")
    assert len(recordings) == len(cuts) == summary["recordings"]
    assert len(supervisions) == len(segments)
    for sup in supervisions:
        segment = segments[(sup.recording_id, sup.start)]
        assert sup.custom["text_original"] == segment["text"]
        assert sup.duration == pytest.approx(segment["end_s"] - segment["start_s"], abs=1e-3)
        assert sup.custom["dialogue_speaker"] == segment["speaker_label"]
        assert sup.speaker == segment["voice_id"]
    cut = cuts[0].with_recording_path_prefix(tmp_path)  # sources are relative
    assert cut.load_audio().shape[1] == pytest.approx(cut.duration * 16000, abs=2)
    windows = lhotse.load_manifest(tmp_path / "cuts_windows.jsonl.gz")
    for window in windows:
        assert window.duration <= 30.0 + 1e-3
        for sup in window.supervisions:
            assert sup.start >= 0 and sup.end <= window.duration + 1e-3
            original = [item.symbol for item in sup.alignment["word_original"]]
            assert " ".join(original) == sup.custom["text_original"]
            assert " ".join(item.symbol for item in sup.alignment["word"]) == sup.text
    # sources are relative to the export folder; validated with lhotse's own checks there
    assert all(not Path(s.source).is_absolute() for r in recordings for s in r.sources)
    lhotse.validate_recordings_and_supervisions(
        recordings.with_path_prefix(tmp_path), supervisions)
    for cut in windows:
        lhotse.validate(cut.with_recording_path_prefix(tmp_path), read_data=False)


def test_lhotse_validates_supervisions_read_from_our_rttm(dataset, tmp_path):
    lhotse = pytest.importorskip("lhotse", reason="lhotse (needs torch) is not installed")
    from pipeline.exports import lhotse as lhotse_export

    lhotse_export.export(dataset, tmp_path / "lhotse", {"windows": False})
    rttm.export(dataset, tmp_path / "rttm", {"audio": False})
    recordings = lhotse.load_manifest(tmp_path / "lhotse" / "recordings.jsonl.gz")
    from_rttm = lhotse.SupervisionSet.from_rttm(tmp_path / "rttm" / "all.rttm")
    assert {s.channel for s in from_rttm} == {0}
    lhotse.validate_recordings_and_supervisions(
        recordings.with_path_prefix(tmp_path / "lhotse"), from_rttm)
    voices = {r["voice_id"] for r in iter_segments(dataset, columns=["voice_id"])}
    assert {s.speaker for s in from_rttm} == voices


def test_rttm_and_stm_read_by_meeteval(dataset, segments, tmp_path):
    meeteval = pytest.importorskip("meeteval")
    from meeteval.io import RTTM, STM, SegLST

    summary = rttm.export(dataset, tmp_path / "rttm", {})
    loaded = RTTM.load(tmp_path / "rttm" / "all.rttm")
    assert len(loaded) == len(segments) == summary["turns"]
    manifest = list(read_jsonl(tmp_path / "rttm" / "diarization_manifest.json"))
    for entry in manifest:
        assert (tmp_path / "rttm" / entry["rttm_filepath"]).exists()
        info = sf.info(tmp_path / "rttm" / entry["audio_filepath"])
        assert info.frames / info.samplerate == pytest.approx(entry["duration"])
    assert {line.split()[7] for line in (tmp_path / "rttm" / "all.rttm").read_text().split(
        "\n") if line} == {s["voice_id"] for s in segments.values()}
    stm.export(dataset, tmp_path / "stm", {})
    reference = STM.load(tmp_path / "stm" / "ref.stm")
    assert len(reference) == len(segments)
    speakers = {entry["speaker"] for entry in reference.to_seglst()}
    assert speakers == {s["voice_id"] for s in segments.values()}
    itself = meeteval.wer.cpwer(reference, STM.load(tmp_path / "stm" / "ref.stm"))
    assert itself and all(result.error_rate == 0 for result in itself.values())
    seglst = SegLST.load(tmp_path / "stm" / "ref.seglst.json")
    perfect = meeteval.wer.cpwer(reference, seglst)
    assert all(result.error_rate == 0 for result in perfect.values())
    lines = (tmp_path / "stm" / "ref.stm").read_text().splitlines()
    lines[0] = lines[0].rsplit(" ", 1)[0]  # drop the last word of the first utterance
    (tmp_path / "hyp.stm").write_text("\n".join(lines) + "\n")
    damaged = meeteval.wer.cpwer(reference, STM.load(tmp_path / "hyp.stm"))
    assert sum(result.errors for result in damaged.values()) == 1


def test_export_summary_is_json(dataset, tmp_path):
    nemo.export(dataset, tmp_path, {"windows": False})
    assert json.loads((tmp_path / "summary.json").read_text())["segments"]["entries"] > 0


@pytest.mark.slow
def test_export_cli_writes_every_format(dataset, tmp_path):
    import importlib.util
    import subprocess
    import sys

    from tests.asr_fixtures import ROOT

    formats = ["nemo", "rttm", "stm"] + (["lhotse"] if importlib.util.find_spec("lhotse") else [])
    result = subprocess.run(
        [sys.executable, "-m", "pipeline", "export", f"dataset={dataset}",
         f"out.dir={tmp_path}", f"format=[{','.join(formats)}]", "options.nemo.tarred=true",
         "options.nemo.num_shards=2", f"hydra.run.dir={tmp_path / 'hydra'}"],
        cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    for name in formats:
        assert f"{name}: " in result.stderr
    assert (tmp_path / "nemo" / "tarred" / "windows" / "audio_1.tar").exists()
    assert (tmp_path / "stm" / "ref.stm").exists() and (tmp_path / "rttm" / "all.rttm").exists()


def test_export_checks_every_format_and_the_split_before_writing(dataset, tmp_path,
                                                                  monkeypatch, capsys):
    from pipeline.exports.job import export_job

    base = {"dataset": str(dataset), "options": {}}
    with pytest.raises(SystemExit):
        export_job({**base, "out": {"dir": str(tmp_path / "a")}, "format": ["nemo", "stm"],
                    "split": "dev"})
    message = capsys.readouterr().err.strip()
    assert "split: 'dev' is not a split" in message and "validation" in message
    assert len(message.splitlines()) == 1 and not (tmp_path / "a").exists()
    monkeypatch.setitem(sys.modules, "lhotse", None)  # the extra is missing
    with pytest.raises(SystemExit):
        export_job({**base, "out": {"dir": str(tmp_path / "b")},
                    "format": ["nemo", "lhotse", "rttm", "stm"]})
    message = capsys.readouterr().err.strip()
    assert "format=lhotse needs lhotse" in message and len(message.splitlines()) == 1
    assert not (tmp_path / "b" / "nemo").exists()


def test_export_of_one_split_holds_only_its_dialogues(dataset, tmp_path):
    from pipeline.dataset import clear_split
    from pipeline.exports.job import export_job

    try:
        export_job({"dataset": str(dataset), "out": {"dir": str(tmp_path)}, "format": "stm",
                    "split": "validation", "options": {}})
    finally:
        clear_split()
    wanted = {r["id"] for r in iter_dialogues(dataset, ["id"], split="validation")}
    sessions = {s["session_id"] for s in json.loads(
        (tmp_path / "stm" / "ref.seglst.json").read_text())}
    assert sessions == wanted and len(wanted) == 1


def test_exclude_keeps_dialogues_and_their_segments_out_of_every_format(dataset, tmp_path):
    from pipeline.exports.job import export_job

    every = sorted(r["id"] for r in iter_dialogues(dataset, ["id"]))
    held = every[0]
    export_job({"dataset": str(dataset), "out": {"dir": str(tmp_path)},
                "format": ["stm", "rttm"], "exclude": [held], "options": {}})
    sessions = {s["session_id"] for s in json.loads(
        (tmp_path / "stm" / "ref.seglst.json").read_text())}
    assert sessions == set(every) - {held}
    assert held not in (tmp_path / "rttm" / "all.rttm").read_text()


def test_evalset_and_dpo_read_only_the_split_asked_for(dataset, tmp_path, capsys):
    from pipeline.dataset import clear_split
    from pipeline.dpo import dpo_job
    from pipeline.evalset import evalset_job

    wanted = {r["id"] for r in iter_dialogues(dataset, ["id"], split="test")}
    try:
        with pytest.raises(SystemExit):
            evalset_job({"dataset": str(dataset), "out": {"dir": str(tmp_path / "e0")},
                         "split": "dev"})
        assert "split: 'dev'" in capsys.readouterr().err and not (tmp_path / "e0").exists()
        evalset_job({"dataset": str(dataset), "out": {"dir": str(tmp_path / "e")},
                     "split": "test"})
        manifest = (tmp_path / "e" / "manifest.jsonl").read_text().splitlines()
        assert manifest and all(json.loads(line)["dialogue_id"] in wanted for line in manifest)
        dpo_job({"dataset": str(dataset), "out": {"dir": str(tmp_path / "d")},
                 "split": "test"})
        pairs = (tmp_path / "d" / "pairs.jsonl").read_text().splitlines()
        assert all(any(line.count(i) for i in wanted) for line in pairs)
    finally:
        clear_split()
