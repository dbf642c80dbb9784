"""timing-report: the distribution comparison, its bad inputs, and the real CLI chain."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from pipeline.segments import Interval, timeline_segments
from pipeline.timing_report import describe, reference_segments, timing_report
from tests.test_fit_timing import synthetic_rttm

ROOT = Path(__file__).resolve().parent.parent
AMI = Path("/work/shared/data/ami-rttm")


def cli(*args: str, tmp_path: Path, timeout: int = 300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pipeline", *args,
                           f"hydra.run.dir={tmp_path / 'hydra'}"],
                          cwd=ROOT, capture_output=True, text=True, timeout=timeout)


def test_words_merge_into_segments_as_references_do() -> None:
    timeline = {"segments": [
        {"speaker": "a", "start_s": 0.0, "end_s": 1.0, "kind": "turn",
         "words": [["one", 0.0, 0.3], ["two", 0.34, 0.6], ["three", 0.7, 1.0]]},
        {"speaker": "b", "start_s": 0.8, "end_s": 1.5, "kind": "turn",
         "words": [["yes", 0.8, 1.5]]}]}
    segments = timeline_segments(timeline)
    # 40 ms between "one" and "two" merges, 100 ms before "three" does not
    assert [(s.speaker, s.start_s, s.end_s) for s in segments] == [
        ("a", 0.0, 0.6), ("a", 0.7, 1.0), ("b", 0.8, 1.5)]
    assert describe({"d": segments})["transfers"] == 1  # a(0.7-1.0) -> b: offset -0.2


def test_report_of_a_corpus_against_itself_and_a_shifted_copy(tmp_path: Path) -> None:
    synthetic_rttm(tmp_path / "r.rttm", recordings=10, turns=40)
    reference = reference_segments(tmp_path / "r.rttm")
    same = timing_report(reference, reference, tmp_path / "same")
    assert same["comparison"]["ks_distance"] == 0.0
    assert same["comparison"]["wasserstein_s"] == 0.0
    later = {name: [Interval(s.speaker, s.start_s + (0.5 if k % 2 else 0.0),
                             s.end_s + (0.5 if k % 2 else 0.0)) for k, s in enumerate(segs)]
             for name, segs in reference.items()}
    shifted = timing_report(later, reference, tmp_path / "shifted")
    assert shifted["comparison"]["ks_distance"] > 0.1
    assert (tmp_path / "shifted" / "timing_report.png").stat().st_size > 10_000
    written = json.loads((tmp_path / "shifted" / "timing_report.json").read_text())
    assert written["dataset"]["transfers"] == shifted["dataset"]["transfers"] > 100
    assert set(written["reference"]) >= {"share_within_100ms", "gap_median_s",
                                         "overlap_transfer_ratio", "overlapped_speech_fraction"}


@pytest.mark.parametrize(("name", "lines", "message"), [
    ("one_speaker.rttm", ["SPEAKER r 1 0.0 1.0 <NA> <NA> A <NA> <NA>"],
     "one_speaker.rttm has one speaker only"),
    ("no_transfers.rttm", ["SPEAKER r1 1 0.0 1.0 <NA> <NA> A <NA> <NA>",
                           "SPEAKER r2 1 0.0 1.0 <NA> <NA> B <NA> <NA>"],
     "no_transfers.rttm has no speaker transfers"),
    ("self_overlap.rttm", ["SPEAKER r 1 0.0 2.0 <NA> <NA> A <NA> <NA>",
                           "SPEAKER r 1 1.0 2.0 <NA> <NA> A <NA> <NA>",
                           "SPEAKER r 1 4.0 1.0 <NA> <NA> B <NA> <NA>"],
     "self_overlap.rttm: speaker 'A' of recording 'r' has overlapping segments"),
])
def test_bad_reference_is_one_line_naming_the_file(tmp_path: Path, name, lines,
                                                   message) -> None:
    path = tmp_path / name
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(ValueError, match=message.replace(".", r"\.")):
        reference_segments(path)
    result = cli("timing-report", f"dataset={tmp_path}", f"reference={path}",
                 f"out.dir={tmp_path / 'out'}", tmp_path=tmp_path)
    assert result.returncode == 2
    assert result.stderr.strip().count("\n") == 0, result.stderr
    assert message in result.stderr and "Traceback" not in result.stderr


@pytest.mark.slow
def test_fit_generate_report_on_ami_train_against_dev(meeting_run, tmp_path: Path) -> None:
    """The whole chain through the CLI with a small budget (fit-timing and generate are the
    session's `meeting_run`, tests/conftest.py); the bound is loose (about 100 transfers; the
    full-size figures are in the closing note of issue 14)."""
    if meeting_run.fitted_on != "ami":
        pytest.skip("AMI RTTMs not available")
    out = meeting_run.dataset
    report = cli("timing-report", f"dataset={out}", f"reference={AMI / 'dev.rttm'}",
                 f"out.dir={tmp_path / 'report'}", tmp_path=tmp_path)
    assert report.returncode == 0, report.stderr[-2000:]
    result = json.loads((tmp_path / "report" / "timing_report.json").read_text())
    assert result["dataset"]["transfers"] >= 60
    assert result["comparison"]["ks_distance"] <= 0.2, result["comparison"]
    for key in ("overlap_transfer_ratio", "overlapped_speech_fraction", "gap_median_s"):
        assert abs(result["comparison"]["relative_difference"][key]) <= 0.4, result
    assert (tmp_path / "report" / "timing_report.png").exists()


def test_card_report_compares_a_profile_run_with_its_corpus(tmp_path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    from pipeline.fit_timing import FitTimingConfig, fit_timing
    from pipeline.timing_report import profile_report

    synthetic_rttm(tmp_path / "real.rttm", recordings=6, turns=40)
    profile = fit_timing(FitTimingConfig(inputs=[str(tmp_path / "real.rttm")],
                                         out={"dir": str(tmp_path / "fit")}))
    timelines = [{"duration_s": 9.0, "segments": [
        {"speaker": "a", "start_s": 0.0, "end_s": 3.0, "kind": "turn",
         "words": [["w", 0.0, 3.0]]},
        {"speaker": "b", "start_s": 2.5 + k * 0.1, "end_s": 6.0, "kind": "turn",
         "words": [["w", 2.5 + k * 0.1, 6.0]]},
        {"speaker": "a", "start_s": 6.4, "end_s": 9.0, "kind": "turn",
         "words": [["w", 6.4, 9.0]]}]} for k in range(5)]
    shards = tmp_path / "ds" / "data" / "dialogues"
    shards.mkdir(parents=True)
    pq.write_table(pa.table({"id": [f"d{k}" for k in range(5)],
                             "timeline": [json.dumps(t) for t in timelines]}),
                   shards / "train-00000.parquet")
    assert profile_report(tmp_path / "ds", {"timing": {}}, tmp_path / "plots") is None
    report = profile_report(tmp_path / "ds", {"timing": {"profile": str(profile)}},
                            tmp_path / "plots")
    assert report["dataset"]["transfers"] == 10
    assert report["profile corpus"]["transfers"] > 100
    assert (tmp_path / "plots" / "timing_report.png").exists()
