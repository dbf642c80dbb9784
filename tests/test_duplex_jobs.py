"""export view=bayling|moshi, evalset, score and dpo on the output of a small `generate` run
(the session's shared one, tests/conftest.py; the jobs write into this module's folder)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from pipeline.dataset import iter_dialogues
from pipeline.exports.interleave import Ratio, rebuild
from pipeline.labels.duplex import duplex_labels, frames_inside
from pipeline.labels.invariants import label_violations
from pipeline.labels.tokens import DuplexTokens
from pipeline.schema import DuplexLabels, FrameEvent, FrameState, Timeline
from tests.bayling_replay import Counts, check_sample
from tests.cli_support import cli, in_process
from tests.conftest import SHARED_DIALOGUES

pytestmark = pytest.mark.slow



@pytest.fixture(scope="module")
def work(tmp_path_factory, shared_dataset) -> Path:
    """This module's output folder; `work / "dataset"` links to the shared run (read only)."""
    tmp = tmp_path_factory.mktemp("duplex")
    (tmp / "dataset").symlink_to(shared_dataset.path, target_is_directory=True)
    return tmp


def test_generated_labels_hold_every_axis_invariant(work):
    axes = set()
    for row in iter_dialogues(work / "dataset"):
        labels = DuplexLabels.model_validate(row["duplex"])
        assert label_violations(labels, row["duration_s"]) == []
        again = duplex_labels(Timeline.model_validate(row["timeline"]), labels.assistant)
        assert label_violations(again, row["duration_s"]) == []
        assert again.state == labels.state and again.event == labels.event
        axes |= {e.axis for e in labels.axis_events}
    assert {"pause", "turn_taking", "backchannel", "interruption"} <= axes


def test_bayling_and_moshi_views(work):
    out = work / "export"
    cli(work, "export", f"dataset={work / 'dataset'}", f"out.dir={out}", "view=[bayling,moshi]",
        "options.bayling.whole_dialogues=true")
    records = [json.loads(x) for x in (out / "bayling/samples.jsonl").read_text().splitlines()]
    kinds = [r["kind"] for r in records]
    assert kinds.count("turn_taking") > 0 and kinds.count("interruption") > 0
    assert kinds.count("dialogue") > 0
    view = json.loads((out / "bayling/view.json").read_text())
    assert view["text_unit"] == "words" and "fallback" in view["note"]
    planned = {row["id"]: [t["text"] for t in row["script"]["turns"]
                           if t["speaker"] == row["duplex"]["assistant"]]
               for row in iter_dialogues(work / "dataset", columns=["id", "script", "duplex"])}
    totals = Counts()
    for record in records:
        user, rate = sf.read(out / "bayling" / record["audio"]["user"])
        assistant, _ = sf.read(out / "bayling" / record["audio"]["assistant"])
        assert abs(len(user) / rate - record["duration_s"]) < 0.01
        totals.add(check_sample(record, user, assistant, planned[record["dialogue_id"]],
                                " ".join))
    assert totals.whole == totals.replies > 0
    assert totals.stops_after == totals.barge_ins > 0
    assert totals.starts_after_cause == totals.turn_starts > 0
    lines = [json.loads(x) for x in (out / "moshi/moshi.jsonl").read_text().splitlines()]
    assert len(lines) == SHARED_DIALOGUES
    for line in lines:
        assert Path(line["path"]).is_file()  # sphn opens it from any working directory
        audio, rate = sf.read(out / "moshi" / line["path"])
        assert audio.ndim == 2 and audio.shape[1] == 2
        assert abs(audio.shape[0] / rate - line["duration"]) < 0.01
        side = json.loads((out / "moshi" / line["path"]).with_suffix(".json").read_text())
        starts = [a[1][0] for a in side["alignments"]]
        assert starts == sorted(starts)
        assert {a[2] for a in side["alignments"]} == {"SPEAKER_MAIN", "SPEAKER_OTHER"}
        # the left channel is the assistant: louder where SPEAKER_MAIN words are
        main = [a[1] for a in side["alignments"] if a[2] == "SPEAKER_MAIN"][:5]
        for start, end in main:
            piece = audio[int(start * rate): int(end * rate)]
            assert np.abs(piece[:, 0]).max() > np.abs(piece[:, 1]).max() * 0.5


def scores(work: Path, name: str, *extra: str, child: bool = False) -> dict:
    """scores.json of `score` on the native evalset: through the CLI in a child process, or
    in-process with the CLI's config (tests/cli_support.in_process)."""
    out = work / "scores" / name
    args = (f"evalset={work / 'evalset'}", f"out.dir={out}", *extra)
    if child:
        cli(work, "score", *args)
    else:
        in_process("score", *args)
    return json.loads((out / "scores.json").read_text())["tasks"]["native"]


def test_native_evalset_and_scorer_on_reference_and_broken_outputs(work):
    """Our own layout (format=native; Full-Duplex-Bench's is tested in test_fdb_evalset)."""
    cli(work, "evalset", f"dataset={work / 'dataset'}", f"out.dir={work / 'evalset'}",
        "format=native", "languages=[en,hu]")
    summary = json.loads((work / "evalset/evalset.json").read_text())
    for axis in ("pause", "turn_taking", "backchannel", "interruption"):
        assert summary["samples"][axis] > 0
    manifest = [json.loads(x) for x in (work / "evalset/manifest.jsonl").read_text().splitlines()]
    meta = json.loads((work / "evalset" / manifest[0]["path"] / "metadata.json").read_text())
    assert {"event", "user_turn", "reference", "expected"} <= set(meta)

    ref = scores(work, "reference", "baseline=reference", child=True)
    assert ref["pause"]["takeover_rate"] == 0.0
    assert ref["turn_taking"]["takeover_rate"] >= 0.9
    assert ref["backchannel"]["takeover_rate"] == 0.0
    again = scores(work, "outputs", f"outputs={work / 'scores/reference/outputs/reference'}")
    assert again == ref
    silent = scores(work, "silent", "baseline=silent")
    assert silent["turn_taking"]["takeover_rate"] == 0.0
    assert silent["interruption"]["isr_at_2s"] == 0.0  # never speaking is no success
    endless = scores(work, "never_stops", "baseline=never_stops")
    assert endless["pause"]["takeover_rate"] == 1.0
    assert endless["interruption"]["isr_at_2s"] == 0.0


def test_dpo_pairs_differ_where_the_behaviour_does(work):
    out = work / "dpo"
    cli(work, "dpo", f"dataset={work / 'dataset'}", f"out.dir={out}")
    pairs = [json.loads(x) for x in (out / "pairs.jsonl").read_text().splitlines()]
    defects = {p["defect"] for p in pairs}
    assert {"talks_over_pause", "misses_turn", "ignores_barge_in", "takes_floor"} <= defects
    tokens = DuplexTokens()
    for pair in pairs:
        folder = out / pair["path"]
        sides = {}
        for name in ("chosen", "rejected"):
            record = json.loads((folder / f"{name}.json").read_text())
            labels = DuplexLabels.model_validate(record["labels"])
            state, _ = rebuild(record["blocks"], Ratio(), tokens, labels.num_frames)
            assert state == [str(s) for s in labels.state]
            sides[name] = labels
        chosen_audio, _ = sf.read(folder / "chosen.wav")
        rejected_audio, _ = sf.read(folder / "rejected.wav")
        assert chosen_audio.shape == rejected_audio.shape
        assert not np.allclose(chosen_audio, rejected_audio)
        event = pair["event"]
        window = frames_inside(event["start_s"], event["end_s"], 0.08,
                               sides["chosen"].num_frames)
        good, bad = sides["chosen"], sides["rejected"]
        if pair["defect"] == "talks_over_pause":
            assert FrameState.SPEAK not in [good.state[f] for f in window]
            assert FrameState.SPEAK in [bad.state[f] for f in window]
        elif pair["defect"] == "misses_turn":
            assert FrameEvent.TURN_START in good.event
            assert bad.event.count(FrameEvent.TURN_START) < good.event.count(
                FrameEvent.TURN_START)
        elif pair["defect"] == "ignores_barge_in":
            assert FrameEvent.YIELD in good.event and FrameEvent.YIELD not in bad.event
        elif pair["defect"] == "takes_floor":
            assert FrameEvent.BC_START in good.event
            assert bad.event.count(FrameEvent.TURN_START) > good.event.count(
                FrameEvent.TURN_START)
