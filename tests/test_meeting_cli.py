"""One small real CLI run: four-speaker meetings timed by a fitted profile (the session's
`meeting_run`, tests/conftest.py, which tests/test_timing_report.py reads too)."""

from __future__ import annotations

import json

import pytest

from pipeline.dataset import iter_dialogues, iter_segments

pytestmark = pytest.mark.slow


def test_generate_meetings_with_a_profile(meeting_run) -> None:
    out, profile = meeting_run.dataset, meeting_run.profile
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
