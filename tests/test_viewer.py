"""The viewer's page data is the stored columns, drawn: a fixed small dialogue, checked by hand."""

from __future__ import annotations

import json

import pytest

from pipeline.card_stats import realized_phenomena
from pipeline.labels.duplex import duplex_labels
from pipeline.schema import Placed, Timeline
from pipeline.viewer.page import STATE_CODES, overlap_spans, page_data, summary_row
from pipeline.viewer.site import ViewError, select_rows

SPEAKERS = [{"id": "A", "name": "Anna", "role": "customer"},
            {"id": "B", "name": "Bence", "role": "agent"},
            {"id": "C", "name": "Csilla", "role": "colleague"}]
TURNS = [
    {"speaker": "A", "text": "hello there how are", "kind": "turn"},
    {"speaker": "B", "text": "fine thanks and you today", "kind": "turn"},
    {"speaker": "A", "text": "sorry one question", "kind": "turn", "interrupts": True},
    {"speaker": "C", "text": "mhm", "kind": "backchannel"},
    {"speaker": "C", "text": "did you see that", "kind": "turn", "addressee": "A"},
]


def fixed_row() -> dict:
    """Anna pauses mid-turn, Bence (the assistant) is cut by Anna's barge-in at 3.0 s, Csilla
    backchannels over Anna and then talks to Anna alone (side talk)."""
    segments = [
        Placed(turn=0, speaker="A", start_s=0.0, end_s=2.0, kind="turn",
               words=[("hello", 0.0, 0.4), ("there", 0.5, 0.9), ("how", 1.4, 1.7),
                      ("are", 1.75, 2.0)]),
        Placed(turn=1, speaker="B", start_s=2.2, end_s=3.2, kind="turn", cut_at_s=3.2,
               words=[("fine", 2.2, 2.6), ("thanks", 2.65, 3.1)]),
        Placed(turn=2, speaker="A", start_s=3.0, end_s=4.5, kind="turn",
               words=[("sorry", 3.0, 3.4), ("one", 3.45, 3.8), ("question", 3.85, 4.5)]),
        Placed(turn=3, speaker="C", start_s=3.5, end_s=3.8, kind="backchannel",
               words=[("mhm", 3.5, 3.8)]),
        Placed(turn=4, speaker="C", start_s=4.8, end_s=5.8, kind="turn", addressee="A",
               words=[("did", 4.8, 5.0), ("you", 5.05, 5.2), ("see", 5.25, 5.5),
                      ("that", 5.55, 5.8)]),
    ]
    timeline = Timeline(duration_s=6.1, segments=segments)
    labels = duplex_labels(timeline, "B")
    return {
        "id": "dlg-fixed", "language": "en", "domain": "support", "speakers": SPEAKERS,
        "scenario": {"assistant": "B", "situation": "a support call", "speakers": SPEAKERS},
        "script": {"scenario_id": "dlg-fixed", "language": "en", "turns": TURNS},
        "timeline": json.loads(timeline.to_json()),
        "duplex": labels.model_dump(mode="json"),
    }


def test_lanes_hold_exactly_the_timeline_words_of_each_speaker():
    row = fixed_row()
    data = page_data(row)
    assert [lane["speaker"] for lane in data["lanes"]] == ["A", "B", "C"]
    for lane in data["lanes"]:
        drawn = [tuple(w) for seg in lane["segments"] for w in seg["words"]]
        stored = [tuple(w) for seg in row["timeline"]["segments"]
                  if seg["speaker"] == lane["speaker"] for w in seg["words"]]
        assert drawn == stored
    bence = data["lanes"][1]["segments"][0]
    assert bence["cut_at_s"] == 3.2 and bence["unsaid"] == ["and", "you", "today"]
    anna = data["lanes"][0]["segments"]
    assert anna[0]["pauses"] == [[0.9, 1.4]] and anna[1]["interrupts"]
    csilla = data["lanes"][2]["segments"]
    assert [s["kind"] for s in csilla] == ["backchannel", "turn"]
    assert [s["side_talk"] for s in csilla] == [False, True]
    # speech of two people at once: Anna's barge-in over Bence, Csilla's backchannel over Anna
    assert data["overlaps"] == [(3.0, 3.2), (3.5, 3.8)]


def test_label_track_is_the_duplex_column_frame_by_frame():
    row = fixed_row()
    labels = page_data(row)["labels"]
    duplex = row["duplex"]
    assert labels["frames"] == len(duplex["state"]) == 77  # ceil(6.1 s / 80 ms)
    decode = {code: name for name, code in STATE_CODES.items()}
    assert [decode[c] for c in labels["state"]] == duplex["state"]
    assert labels["events"] == [[f, e] for f, e in enumerate(duplex["event"]) if e != "none"]
    assert [name for _, name in labels["events"]] == ["TURN_START", "YIELD", "TURN_END"]
    windows = [{k: v for k, v in w.items() if k != "row"} for w in labels["axis_events"]]
    assert windows == duplex["axis_events"]
    assert {w["axis"] for w in windows} == {"pause", "turn_taking", "interruption", "side_talk"}
    assert labels["axis_rows"] >= 1 and all(0 <= w["row"] < labels["axis_rows"]
                                            for w in labels["axis_events"])


def test_index_row_and_script_text():
    row = fixed_row()
    data = page_data(row)
    summary = summary_row(data)
    assert summary["phenomena"] == dict(realized_phenomena(row["timeline"], row["script"], "B"))
    assert summary["words"] == 14 and summary["num_speakers"] == 3
    assert summary["assistant"] == "Bence"
    cut = next(line for line in data["script"] if line["cut"])
    assert (cut["name"], cut["spoken"], cut["unsaid"]) == ("Bence", "fine thanks",
                                                           "and you today")
    side = next(line for line in data["script"] if line["side_talk"])
    assert side["addressee_name"] == "Anna"


def test_overlap_ignores_a_speaker_overlapping_themself():
    a = Placed(turn=0, speaker="A", start_s=0.0, end_s=1.0, kind="turn",
               words=[("a", 0.0, 1.0)])
    again = Placed(turn=1, speaker="A", start_s=0.5, end_s=1.5, kind="turn",
                   words=[("b", 0.5, 1.5)])
    assert overlap_spans([a, again]) == []


def test_folder_without_shards_is_a_one_line_error(tmp_path):
    with pytest.raises(ViewError) as error:
        list(select_rows(tmp_path))
    assert "\n" not in str(error.value) and "dataset=" in str(error.value)


def test_templates_ship_as_package_data():
    """A wheel holds pipeline/viewer/templates/* only if pyproject's package-data says so."""
    import fnmatch
    import tomllib
    from pathlib import Path

    from pipeline.viewer.site import ASSETS, TEMPLATES

    root = Path(__file__).resolve().parent.parent
    patterns = tomllib.loads((root / "pyproject.toml").read_text())["tool"]["setuptools"][
        "package-data"]["pipeline.viewer"]
    files = sorted(p.relative_to(TEMPLATES.parent).as_posix() for p in TEMPLATES.iterdir())
    assert {"templates/dialogue.html.j2", "templates/index.html.j2"} | {
        f"templates/{a}" for a in ASSETS} <= set(files)
    assert all(any(fnmatch.fnmatch(f, p) for p in patterns) for f in files)


def test_a_dialogue_without_assistant_has_lanes_but_no_label_track():
    row = fixed_row()
    row["duplex"] = None
    row["scenario"]["assistant"] = None
    data = page_data(row)
    assert data["labels"] is None
    assert sum(len(s["words"]) for lane in data["lanes"] for s in lane["segments"]) == 14
    assert not any(s["side_talk"] for lane in data["lanes"] for s in lane["segments"])
