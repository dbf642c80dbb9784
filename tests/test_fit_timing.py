"""fit-timing: readers, the fitted profile, and the definitions against the AMI reference."""

from __future__ import annotations

import gzip
import json
import math
import random
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

from pipeline.fit_timing import FitTimingConfig, fit_profile, fit_timing, read_segments
from pipeline.segments import speech_segments
from pipeline.timing import TimingSettings
from pipeline.timing_stats import TimingAccumulator

ROOT = Path(__file__).resolve().parent.parent
AMI = Path("/work/shared/data/ami-rttm")
OVERLAP_SHARE, GAP_MEDIAN, OVERLAP_MEDIAN = 0.35, 0.30, 0.40


def synthetic_rttm(path: Path, recordings: int = 40, turns: int = 60) -> dict:
    """Two speakers alternate; offsets from known log-normals; a 0.4 s backchannel inside
    every fourth turn. Returns the true values."""
    rng = random.Random(7)
    lines, backchannels, segments = [], 0, 0
    for r in range(recordings):
        clock = 0.0
        for t in range(turns):
            speaker, other = ("A", "B") if t % 2 == 0 else ("B", "A")
            duration = rng.uniform(3.0, 6.0)
            lines.append(f"SPEAKER rec{r} 1 {clock:.3f} {duration:.3f} <NA> <NA> {speaker} "
                         "<NA> <NA>")
            segments += 1
            if t % 4 == 1:
                lines.append(f"SPEAKER rec{r} 1 {clock + 1.05:.3f} 0.400 <NA> <NA> {other} "
                             "<NA> <NA>")
                backchannels += 1
                segments += 1
            end = clock + duration
            if rng.random() < OVERLAP_SHARE:
                clock = end - min(1.0, OVERLAP_MEDIAN * math.exp(rng.gauss(0, 0.4)))
            else:
                clock = end + GAP_MEDIAN * math.exp(rng.gauss(0, 0.5))
    path.write_text("\n".join(lines) + "\n")
    return {"backchannel_share": backchannels / segments}


def test_fit_recovers_a_known_distribution(tmp_path: Path) -> None:
    truth = synthetic_rttm(tmp_path / "synthetic.rttm")
    config = FitTimingConfig(inputs=[str(tmp_path / "synthetic.rttm")], out={"dir": str(tmp_path)})
    path = fit_timing(config)
    profile = yaml.safe_load(path.read_text())
    assert profile["statistics"]["backchannel_share"] == pytest.approx(
        truth["backchannel_share"], abs=1e-3)
    settings = TimingSettings().with_profile(profile)
    model = settings.segment_model
    # turn -> turn transfers (both segments 3-6 s long) come back with their distribution
    rng = random.Random(1)
    pairs = [(p, n) for p, n, _ in model.transfers if p >= 3 and n >= 3]
    draws = np.array([model.offset(rng, *rng.choice(pairs), -math.inf) for _ in range(4000)])
    assert (draws < 0).mean() == pytest.approx(OVERLAP_SHARE, abs=0.04)
    assert np.median(draws[draws >= 0]) == pytest.approx(GAP_MEDIAN, rel=0.1)
    assert np.median(-draws[draws < 0]) == pytest.approx(OVERLAP_MEDIAN, rel=0.1)
    # a 0.4 s segment after a long one starts inside it: the backchannels' offsets
    inside = np.array([model.offset(rng, 4.0, 0.4, -4.0) for _ in range(500)])
    assert (inside < 0).mean() > 0.9
    # a request for an overlap is honoured, the lower bound always
    assert all(model.offset(rng, 4.0, 4.0, -1.0, overlap=True) < 0 for _ in range(200))
    assert all(model.offset(rng, 4.0, 0.4, 0.5) >= 0.5 for _ in range(200))


def test_nemo_and_lhotse_inputs_read_like_rttm(tmp_path: Path) -> None:
    synthetic_rttm(tmp_path / "s.rttm", recordings=3, turns=10)
    rttm = read_segments(tmp_path / "s.rttm")
    nemo = tmp_path / "nemo.json"
    lhotse = tmp_path / "sups.jsonl.gz"
    with nemo.open("w") as n, gzip.open(lhotse, "wt") as h:
        for recording, intervals in rttm.items():
            for k, i in enumerate(intervals):
                duration = round(i.end_s - i.start_s, 3)
                n.write(json.dumps({"audio_filepath": f"{recording}.wav", "offset": i.start_s,
                                    "duration": duration, "text": "x",
                                    "speaker": i.speaker}) + "\n")
                h.write(json.dumps({"id": f"{recording}-{k}", "recording_id": recording,
                                    "start": i.start_s, "duration": duration, "channel": 0,
                                    "speaker": i.speaker}) + "\n")
    for other in (read_segments(nemo), read_segments(lhotse)):
        assert len(other) == len(rttm)
        for left, right in zip(sorted(rttm.values(), key=len), sorted(other.values(), key=len),
                               strict=True):
            assert [(i.speaker, round(i.start_s, 3)) for i in left] == [
                (i.speaker, round(i.start_s, 3)) for i in right]


def test_bad_rttm_inputs_fail_in_one_line_naming_the_file(tmp_path: Path) -> None:
    one = tmp_path / "one_speaker.rttm"
    one.write_text("SPEAKER r 1 0.0 1.0 <NA> <NA> A <NA> <NA>\n"
                   "SPEAKER r 1 2.0 1.0 <NA> <NA> A <NA> <NA>\n")
    with pytest.raises(ValueError, match=r"one_speaker\.rttm has one speaker only"):
        read_segments(one)
    overlapping = tmp_path / "self_overlap.rttm"
    overlapping.write_text("SPEAKER r 1 0.0 2.0 <NA> <NA> A <NA> <NA>\n"
                           "SPEAKER r 1 1.0 2.0 <NA> <NA> A <NA> <NA>\n"
                           "SPEAKER r 1 4.0 1.0 <NA> <NA> B <NA> <NA>\n")
    with pytest.raises(ValueError, match=r"self_overlap\.rttm: speaker 'A' .* overlapping"):
        read_segments(overlapping)
    garbled = tmp_path / "garbled.rttm"
    garbled.write_text("SPEAKER r 1 zero 1.0 <NA> <NA> A <NA> <NA>\n")
    with pytest.raises(ValueError, match=r"garbled\.rttm:1 is not an RTTM SPEAKER line"):
        read_segments(garbled)
    result = subprocess.run(
        [sys.executable, "-m", "pipeline", "fit-timing", f"inputs=[{one}]",
         f"out.dir={tmp_path / 'out'}", f"hydra.run.dir={tmp_path / 'hydra'}"],
        cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 2
    assert result.stderr.strip().count("\n") == 0 and "one_speaker.rttm" in result.stderr
    assert "Traceback" not in result.stderr


def test_bad_inputs_name_the_problem(tmp_path: Path) -> None:
    bad = tmp_path / "nospeaker.jsonl"
    bad.write_text(json.dumps({"audio_filepath": "a.wav", "duration": 1.0}) + "\n")
    with pytest.raises(ValueError, match="speaker"):
        read_segments(bad)
    with pytest.raises(ValueError, match="inputs"):
        read_segments(tmp_path / "missing.rttm")
    with pytest.raises(ValueError, match="inputs"):
        fit_profile({}, FitTimingConfig())


# speech segments as references define them (pieces 50 ms apart merged): the README's
# table; train has seven pairs of segments 10 ms apart that merge, hence 51,785 (not 51,792)
@pytest.mark.parametrize(("split", "ratio", "gap", "osf", "transfers"), [
    ("train", 0.500, 1.11, 0.134, 51785), ("dev", 0.502, 0.97, 0.141, 6887)])
def test_definitions_reproduce_the_ami_reference(split, ratio, gap, osf, transfers) -> None:
    path = AMI / f"{split}.rttm"
    if not path.exists():
        pytest.skip("AMI RTTMs not available")
    stats = TimingAccumulator(definition="segments")
    for pieces in read_segments(path).values():
        stats.add_dialogue(speech_segments(pieces))
    result = stats.result()
    assert result["overlap_transfer_ratio"] == pytest.approx(ratio, abs=5e-4)
    assert result["gap_median_s"] == pytest.approx(gap, abs=5e-3)
    assert result["overlapped_speech_fraction"] == pytest.approx(osf, abs=5e-4)
    assert result["transfers"] == transfers


def test_cli_writes_a_profile_that_generate_config_accepts(tmp_path: Path) -> None:
    synthetic_rttm(tmp_path / "s.rttm", recordings=5, turns=30)
    result = subprocess.run(
        [sys.executable, "-m", "pipeline", "fit-timing", f"inputs=[{tmp_path / 's.rttm'}]",
         f"out.dir={tmp_path / 'out'}", f"hydra.run.dir={tmp_path / 'hydra'}"],
        cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    profile = tmp_path / "out" / "timing_profile.yaml"
    from pipeline.config import ConfigError, GenerateConfig

    config = GenerateConfig.check({"timing": {"profile": str(profile)}})
    assert config.timing.profile == str(profile.resolve())
    with pytest.raises(ConfigError, match="timing.profile"):
        GenerateConfig.check({"timing": {"profile": str(tmp_path / "nope.yaml")}})
