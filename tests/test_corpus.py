"""Real-utterance mode on a small corpus this test records with eSpeak (NeMo manifest)."""

import io
import json
import random
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import soundfile as sf
from scipy.signal import correlate

from pipeline.corpus import CorpusBackend, CorpusWriter, load_corpus
from pipeline.dataset import iter_dialogues
from pipeline.render import render
from pipeline.scenarios import PlanSettings, plan_scenario
from pipeline.script_check import check_script
from pipeline.timeline import arrange
from pipeline.timing import TimingModel, TimingSettings
from pipeline.tts.espeak import EspeakBackend

ROOT = Path(__file__).resolve().parent.parent

SENTENCES = {
    "anna": ["Jó napot kívánok, miben segíthetek?", "Holnap reggel nyolckor jó lesz?",
             "Rendben, akkor felírom az időpontot.", "Kérem a nevét és a telefonszámát.",
             "Köszönöm szépen, viszonthallásra."],
    "bela": ["Szeretnék időpontot kérni a fogorvoshoz.", "Igen, nyolc óra nekem megfelel.",
             "Kovács Béla vagyok, a számom harminchat.", "Meg kell hoznom a kártyámat is?",
             "Köszönöm, további szép napot."],
    "cili": ["Elnézést, hol van a pályaudvar?", "Gyalog mennyi idő odáig?",
             "Akkor inkább villamossal megyek.", "Melyik megállóban kell leszállni?",
             "Nagyon kedves, köszönöm a segítséget."],
}
VOICES = {"anna": "hu+f3", "bela": "hu+m3", "cili": "hu+f1"}


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    """wavs/<speaker>_<k>.wav with 0.3 s of silence around the speech + manifest.jsonl;
    lines are interleaved across speakers, as in a real manifest."""
    root = tmp_path_factory.mktemp("corpus")
    (root / "wavs").mkdir()
    tts = EspeakBackend()
    lines = []
    for k in range(5):
        for speaker, sentences in SENTENCES.items():
            utterance = tts.synthesize(sentences[k], {"name": VOICES[speaker], "rate": 170},
                                       k, speaker)
            pad = np.zeros(int(0.3 * utterance.sample_rate), dtype=np.float32)
            audio = np.concatenate([pad, utterance.samples, pad])
            name = f"wavs/{speaker}_{k}.wav"
            sf.write(root / name, audio, utterance.sample_rate)
            lines.append({"audio_filepath": name, "duration": len(audio) / utterance.sample_rate,
                          "text": sentences[k], "speaker": speaker, "lang": "hu"})
    (root / "manifest.jsonl").write_text(
        "\n".join(json.dumps(line, ensure_ascii=False) for line in lines) + "\n", encoding="utf-8")
    return root / "manifest.jsonl"


def plan(backend: CorpusBackend, index: int, seed: int = 7):
    settings = PlanSettings(languages=("hu",), min_turns=6, max_turns=8, generator="corpus",
                            overlap_rate=0.3, interruption_rate=0.15)
    return plan_scenario(index, seed, settings, backend.pick_voices)


def test_pick_voices_pairs_distinct_speakers_in_corpus_order(corpus):
    backend = CorpusBackend(str(corpus), window=4)
    voices = backend.pick_voices("hu", 2, random.Random(3))
    assert len({v["name"] for v in voices}) == 2
    for voice in voices:
        texts = [text for _, text in voice["utterances"]]
        sentences = SENTENCES[voice["name"]]
        start = sentences.index(texts[0])
        assert texts == sentences[start: start + len(texts)]  # consecutive, order kept
        assert len(texts) == min(4, 5 - start)
    assert backend.pick_voices("hu", 2, random.Random(3)) == voices


def test_pure_path_turns_are_corpus_texts_and_audio_is_the_recording(corpus):
    backend = CorpusBackend(str(corpus))
    backend.setup()
    scenario = plan(backend, 0)
    script = check_script(CorpusWriter().write(scenario), scenario)
    assert CorpusWriter().write(scenario) == CorpusWriter().write(scenario)
    assert len(script.turns) == scenario.target_turns
    speakers = [t.speaker for t in script.turns]
    assert speakers == [scenario.speakers[k % 2].id for k in range(len(speakers))]
    assert all(t.kind == "turn" for t in script.turns)
    flags = sum(t.overlap or t.interrupts for t in script.turns)
    assert flags == scenario.phenomena.overlaps + scenario.phenomena.interruptions
    for spec in scenario.speakers:
        texts = [t.text for t in script.turns if t.speaker == spec.id]
        sentences = SENTENCES[spec.voice["name"]]
        start = sentences.index(texts[0])
        assert texts == sentences[start: start + len(texts)]

    utterances = [backend.synthesize(t.text, scenario.speaker(t.speaker).voice, k, t.speaker)
                  for k, t in enumerate(script.turns)]
    for turn, utterance in zip(script.turns, utterances, strict=True):
        name = scenario.speaker(turn.speaker).voice["name"]
        k = SENTENCES[name].index(turn.text)
        original, rate = sf.read(corpus.parent / f"wavs/{name}_{k}.wav", dtype="float32")
        assert utterance.sample_rate == rate
        # The recording, trimmed of most of its 0.3 s padding, sample for sample.
        assert utterance.duration_s < len(original) / rate - 0.4
        start = int(np.argmax(correlate(original, utterance.samples, "valid")))
        np.testing.assert_array_equal(original[start: start + len(utterance.samples)],
                                      utterance.samples)
        assert [w for w, _, _ in utterance.words] == turn.text.split()
        assert all(0 <= s < e <= utterance.duration_s + 1e-6 for _, s, e in utterance.words)

    timing = TimingModel(TimingSettings.from_config({}), random.Random(scenario.seed))
    timeline = arrange(script, utterances, timing)
    rendered = render(timeline, utterances, [s.id for s in scenario.speakers], 16000)
    assert rendered.channels.shape[0] == 2 and rendered.duration_s > 5
    spoken = [s for s in timeline.segments if s.cut_at_s is None]
    assert all(s.text == script.turns[s.turn].text for s in spoken)


def test_parquet_corpus_gives_the_same_audio(corpus, tmp_path):
    entries = [json.loads(line) for line in corpus.read_text(encoding="utf-8").splitlines()]
    audio = [{"bytes": (corpus.parent / e["audio_filepath"]).read_bytes(),
              "path": e["audio_filepath"]} for e in entries]
    table = pa.table({"audio": audio, "text": [e["text"] for e in entries],
                      "speaker": [e["speaker"] for e in entries]})
    pq.write_table(table, tmp_path / "corpus.parquet")
    from_parquet = CorpusBackend(str(tmp_path / "corpus.parquet"))
    from_manifest = CorpusBackend(str(corpus))
    voice = from_parquet.pick_voices("hu", 2, random.Random(1))[0]
    assert voice == from_manifest.pick_voices("hu", 2, random.Random(1))[0]
    text = voice["utterances"][1][1]
    a = from_parquet.synthesize(text, voice, 0, "spk0")
    b = from_manifest.synthesize(text, voice, 0, "spk0")
    np.testing.assert_array_equal(a.samples, b.samples)
    assert a.words == b.words


def test_bad_corpora_fail_with_the_field_and_the_fix(tmp_path, corpus):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"audio_filepath": "a.wav", "text": "szia"}\n', encoding="utf-8")
    with pytest.raises(ValueError, match=r"bad.jsonl:1: field 'speaker' is missing"):
        load_corpus(bad)
    with pytest.raises(ValueError, match="does not exist"):
        CorpusBackend(str(tmp_path / "nope.jsonl"))
    with pytest.raises(ValueError, match=r"languages=\[hu\]"):
        CorpusBackend(str(corpus)).voices("en")
    one = tmp_path / "one.jsonl"
    one.write_text(corpus.read_text(encoding="utf-8").splitlines()[0] + "\n", encoding="utf-8")
    with pytest.raises(ValueError, match="pairs at least 2 speakers"):
        CorpusBackend(str(one))


@pytest.mark.slow
def test_cli_corpus_mode_with_acoustics_at_24khz(corpus, tmp_path):
    """`generate tts=corpus` end to end, with augment=default and 24 kHz output."""
    out = tmp_path / "ds"
    result = subprocess.run(
        [sys.executable, "-m", "pipeline", "generate", f"sink.dir={out}",
         f"hydra.run.dir={tmp_path / 'hydra'}", "budget.dialogues=2", "sink.shard_dialogues=2",
         "progress=false", "ray.num_cpus=2", "tts=corpus", f"tts.manifest={corpus}",
         "languages=[hu]",  # tts.language unset: the corpus takes it from `languages`
         "splits={train:1.0,validation:0,test:0}",  # 4 speakers: too few to split by voice
         "augment=default", "augment.room.prob=1", "augment.noise.prob=1",
         "sink.sample_rate=24000"],
        cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-4000:]
    run = json.loads((out / "run.json").read_text())
    assert run["counts"]["written"] == 2
    rows = list(iter_dialogues(out))
    corpus_texts = {t for texts in SENTENCES.values() for t in texts}
    for row in rows:
        assert row["generator"] == "corpus" and row["tts"] == "corpus"
        turns = row["script"]["turns"]
        assert {t["text"] for t in turns} <= corpus_texts
        provenance = row["provenance"]
        acoustics = provenance["augment"]
        assert acoustics["enabled"] and acoustics["room"] and acoustics["noise"]
        assert set(acoustics["gain_db"]) == {s["id"] for s in row["speakers"]}
        mix, rate = sf.read(io.BytesIO(row["audio"]["bytes"]))
        assert rate == 24000 and abs(len(mix) / rate - row["duration_s"]) < 0.01
    segments = pq.read_table(out / "data/segments").to_pylist()
    assert segments and all(s["text"] for s in segments)


def test_config_rejects_corpus_mode_with_another_language(corpus):
    from pipeline.config import ConfigError, GenerateConfig

    with pytest.raises(ConfigError, match=r"tts \(corpus\).*languages=\[hu\]"):
        GenerateConfig.check({"tts": {"name": "corpus", "manifest": str(corpus),
                                      "language": "hu"}, "languages": ["en", "hu"]})
    with pytest.raises(ConfigError, match=r"tts.language: unset and languages=\['en', 'hu'\]"):
        GenerateConfig.check({"tts": {"name": "corpus", "manifest": str(corpus)},
                              "languages": ["en", "hu"]})
    config = GenerateConfig.check({"tts": {"name": "corpus", "manifest": str(corpus)},
                                   "languages": ["hu"], "splits": {"train": 1.0}})
    assert config.tts.options["language"] == "hu"  # taken from `languages`
    with pytest.raises(ConfigError, match="manifest is not set"):
        GenerateConfig.check({"tts": {"name": "corpus", "manifest": None}, "languages": ["hu"]})
