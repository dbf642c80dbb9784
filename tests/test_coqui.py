"""The Coqui adapter against a real coqui-tts model: a small multi-speaker VITS built from its
config with random weights, saved and loaded back through `TTS(model_path=, config_path=)`
exactly as a trained checkpoint would be. Skipped when coqui-tts is not installed (CI installs
only `.[dev]`); the voice registry tests need no model and always run."""

import json
import pickle
import random

import numpy as np
import pytest

from pipeline.schema import DialogueScript, Turn
from pipeline.tts import backend_from_config
from pipeline.tts.coqui import CoquiBackend

HU_CHARACTERS = "abcdefghijklmnopqrstuvwxyzáéíóöőúüűABCDEFGHIJKLMNOPQRSTUVWXYZÁÉÍÓÖŐÚÜŰ"


@pytest.fixture
def placeholder_model(tmp_path):
    """A path pair for option checks only; nothing loads it."""
    (tmp_path / "model.pth").write_bytes(b"")
    (tmp_path / "config.json").write_text("{}")
    return tmp_path


def test_reference_folder_is_the_voice_registry(placeholder_model, tmp_path):
    import soundfile as sf

    refs = tmp_path / "refs"
    (refs / "bela").mkdir(parents=True)
    tone = 0.1 * np.sin(np.linspace(0, 2000, 16000)).astype(np.float32)
    sf.write(refs / "anna.wav", tone, 16000)
    sf.write(refs / "bela" / "1.wav", tone, 16000)
    sf.write(refs / "bela" / "2.wav", tone, 16000)
    (refs / "voices.json").write_text(json.dumps({"anna": {"gender": "female"}}))
    backend = CoquiBackend(model_path=str(placeholder_model / "model.pth"),
                           config_path=str(placeholder_model / "config.json"),
                           speaker_wavs=str(refs))
    voices = backend.voices("hu")
    assert [v["name"] for v in voices] == ["anna", "bela"]
    assert voices[0]["gender"] == "female" and voices[0]["language"] == "hu"
    assert [len(v["speaker_wav"]) for v in voices] == [1, 2]
    picked = backend.pick_voices("hu", 2, random.Random(0))
    assert {v["name"] for v in picked} == {"anna", "bela"}
    with pytest.raises(ValueError, match="only 2 coqui voice"):
        backend.pick_voices("hu", 3, random.Random(0))
    with pytest.raises(ValueError, match="tts.languages"):
        backend.voices("de")


@pytest.mark.parametrize("options, message", [
    ({}, "model_path is not set"),
    ({"model_path": "/nonexistent/xtts"}, "does not exist"),
    ({"device": "tpu"}, "device='tpu'"),
    ({"speaker_wavs": "/nonexistent/refs"}, "speaker_wavs="),
])
def test_bad_options_fail_before_loading(placeholder_model, options, message):
    config = {"name": "coqui", "model_path": str(placeholder_model / "model.pth"),
              "config_path": str(placeholder_model / "config.json"), **options}
    if options == {}:
        config.pop("model_path")
    with pytest.raises(ValueError, match=message):
        backend_from_config(config)


@pytest.fixture(scope="module")
def random_vits(tmp_path_factory):
    pytest.importorskip("TTS.api", reason="coqui-tts is not installed (optional extra 'coqui')")
    import torch
    from TTS.config.shared_configs import BaseAudioConfig
    from TTS.tts.configs.shared_configs import CharactersConfig
    from TTS.tts.configs.vits_config import VitsArgs, VitsConfig
    from TTS.tts.models.vits import Vits

    torch.manual_seed(0)
    root = tmp_path_factory.mktemp("vits")
    speakers_file = str(root / "speakers.json")
    (root / "speakers.json").write_text(json.dumps({"anna": 0, "bela": 1}))
    args = VitsArgs(hidden_channels=32, hidden_channels_ffn_text_encoder=64,
                    num_layers_text_encoder=1, num_layers_posterior_encoder=1, num_layers_flow=1,
                    upsample_initial_channel_decoder=32, init_discriminator=False,
                    use_speaker_embedding=True, speakers_file=speakers_file,
                    speaker_embedding_channels=16)
    characters = CharactersConfig(
        characters_class="TTS.tts.models.vits.VitsCharacters", pad="<PAD>", eos="<EOS>",
        bos="<BOS>", blank="<BLNK>", characters=HU_CHARACTERS, punctuations="!'(),-.:;? ",
        phonemes=None)
    config = VitsConfig(model_args=args, characters=characters, use_phonemes=False,
                        text_cleaner="multilingual_cleaners",
                        audio=BaseAudioConfig(sample_rate=16000),
                        use_speaker_embedding=True, speakers_file=speakers_file)
    model = Vits(config)
    torch.save({"model": model.state_dict()}, root / "model.pth")
    config.save_json(str(root / "config.json"))
    return root


@pytest.fixture(scope="module")
def coqui(random_vits):
    backend = backend_from_config({"name": "coqui", "model_path": str(random_vits / "model.pth"),
                                   "config_path": str(random_vits / "config.json"),
                                   "speakers": ["anna", "bela"], "languages": ["hu"],
                                   "device": "cpu"})
    backend.setup()
    return backend


def test_hungarian_text_keeps_its_accents(coqui):
    tokenizer = coqui._tts.synthesizer.tts_model.tokenizer
    text = "Győr ütőfúrógép"
    ids = tokenizer.text_to_ids(text)
    assert len([i for i in ids if i != tokenizer.characters.blank_id]) == len(text)
    assert tokenizer.decode(ids).replace("<BLNK>", "") == text.lower()  # cleaner lowercases


def test_synthesize_gives_audio_and_aligned_words_per_token(coqui):
    text = "Jó napot kívánok, miben segíthetek?"
    utterance = coqui.synthesize(text, {"name": "anna", "speaker": "anna", "language": "hu"},
                                 3, "spk0")
    assert utterance.sample_rate == 16000 and utterance.turn == 3
    assert utterance.samples.dtype == np.float32 and utterance.duration_s > 0.1
    assert [w for w, _, _ in utterance.words] == text.split()
    ends = [0.0] + [e for _, _, e in utterance.words]
    for (_, start, end), previous_end in zip(utterance.words, ends, strict=False):
        assert previous_end <= start + 1e-9 < end <= utterance.duration_s + 1e-6
    other = coqui.synthesize(text, {"name": "bela", "speaker": "bela", "language": "hu"},
                             3, "spk1")
    assert not np.array_equal(utterance.samples[:1000], other.samples[:1000])


def test_speak_stage_runs_the_coqui_backend(random_vits, coqui):
    from pipeline.stages import SpeakStage

    voices = coqui.pick_voices("hu", 2, random.Random(1))
    assert {v["name"] for v in voices} == {"anna", "bela"}
    from pipeline.schema import ScenarioSpec, SpeakerSpec

    scenario = ScenarioSpec(
        id="dlg-test", index=0, language="hu", domain="x", situation="x", assistant="spk0",
        target_turns=2, seed=1,
        speakers=[SpeakerSpec(id=f"spk{k}", name=v["name"], role="user", voice=v)
                  for k, v in enumerate(voices)])
    script = DialogueScript(scenario_id="dlg-test", language="hu", turns=[
        Turn(speaker="spk0", text="Szia, hogy vagy?"), Turn(speaker="spk1", text="Jól, köszönöm.")])
    stage = SpeakStage({"tts": {"name": "coqui", "model_path": str(random_vits / "model.pth"),
                                "config_path": str(random_vits / "config.json"),
                                "speakers": ["anna", "bela"], "languages": ["hu"],
                                "device": "cpu"}})
    stage.setup()
    row = stage.process({"scenario": scenario.model_dump_json(),
                         "script": script.model_dump_json(), "reject": None})
    assert row["reject"] is None
    utterances = pickle.loads(row["utterances"])
    assert [u.speaker for u in utterances] == ["spk0", "spk1"]
    assert [len(u.words) for u in utterances] == [3, 2]
