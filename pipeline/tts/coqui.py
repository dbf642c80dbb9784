"""Coqui TTS backend (`tts=coqui`): XTTS-v2 with voice cloning, or any coqui-tts model.

Why: eSpeak is fast but robotic; XTTS-v2 speaks Hungarian (`language=hu`) in a voice cloned
from a few seconds of reference audio, which gives many natural speakers. coqui-tts is an
optional extra (`pip install -e ".[coqui]"`, torch included) and is imported only in
`setup()`, so the driver, config checks and other backends never load torch.

Voices, in order of precedence:
- `speaker_wavs`: a folder of reference recordings. Each `NAME.wav` (or folder `NAME/` of
  wavs) is one cloned voice; an optional `voices.json` ({"NAME": {"gender": "female", ...}})
  adds attributes. The model must support cloning (XTTS, YourTTS).
- `speakers`: names of the model's built-in speakers (multi-speaker models; XTTS ships a
  set of studio speakers).
- neither: the model's own speakers after `setup()`, or its single voice.

Coqui models give no word timings, so words come from the shared energy aligner
(`pipeline.tts.align.energy_align`) and the audio is trimmed to the speech. Weights are not
downloaded by this module: point `model_path` / `config_path` at a local checkpoint (a
folder for XTTS-v2: the one holding model.pth, config.json, vocab.json, speakers_xtts.pth).
"""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import numpy as np

from pipeline.schema import Utterance
from pipeline.tts.align import energy_align, trim_to_words, voiced_frames
from pipeline.tts.base import SynthesisError

AUDIO_SUFFIXES = (".wav", ".flac", ".mp3", ".ogg")


def _primary(language: str) -> str:
    return language.replace("_", "-").split("-")[0].lower()


class CoquiBackend:
    """Options (conf/tts/coqui.yaml): `model_path` (checkpoint file, or XTTS folder),
    `config_path` (config.json; default `model_path/config.json` for a folder),
    `speaker_wavs` (folder of reference recordings), `speakers` (built-in speaker names),
    `languages` (the BCP-47 languages to offer this model for), `device` (auto, cpu,
    cuda, cuda:N), `split_sentences`, and the aligner's `threshold_db`, `lead_s`, `tail_s`.
    """

    name = "coqui"

    def __init__(
        self,
        model_path: str | None = None,
        config_path: str | None = None,
        speaker_wavs: str | None = None,
        speakers: tuple[str, ...] = (),
        languages: tuple[str, ...] = ("hu", "en"),
        device: str = "auto",
        split_sentences: bool = True,
        threshold_db: float = -45.0,
        lead_s: float = 0.02,
        tail_s: float = 0.05,
    ) -> None:
        if not model_path:
            raise ValueError("model_path is not set; point tts.model_path at a local coqui "
                             "checkpoint (the XTTS-v2 folder, or a model .pth)")
        path = Path(model_path).expanduser()
        if not path.exists():
            raise ValueError(f"model_path={model_path!r} does not exist")
        config = Path(config_path).expanduser() if config_path else (
            path / "config.json" if path.is_dir() else None)
        if config is None or not config.is_file():
            raise ValueError(f"config_path={config_path!r}: no config.json found; set "
                             "tts.config_path to the model's config.json")
        if not (device == "auto" or device == "cpu" or device.startswith("cuda")):
            raise ValueError(f"device={device!r}: use auto, cpu, cuda or cuda:N")
        self.model_path, self.config_path = str(path.resolve()), str(config.resolve())
        self.speaker_wavs = str(Path(speaker_wavs).expanduser().resolve()) if speaker_wavs else None
        self.speakers = tuple(speakers)
        self.languages = tuple(_primary(lang) for lang in languages)
        self.device = device
        self.split_sentences = bool(split_sentences)
        self.threshold_db, self.lead_s, self.tail_s = float(threshold_db), lead_s, tail_s
        self._registry = self._reference_voices() if self.speaker_wavs else None
        self._tts: Any = None

    # ------------------------------------------------------------------ voices

    def _reference_voices(self) -> list[dict]:
        assert self.speaker_wavs is not None
        root = Path(self.speaker_wavs)
        if not root.is_dir():
            raise ValueError(f"speaker_wavs={self.speaker_wavs!r} is not a folder of reference "
                             "recordings (NAME.wav or NAME/*.wav per voice)")
        attributes: dict[str, dict] = {}
        if (root / "voices.json").is_file():
            attributes = json.loads((root / "voices.json").read_text(encoding="utf-8"))
        voices = []
        for entry in sorted(root.iterdir()):
            if entry.is_dir():
                wavs = sorted(str(p) for p in entry.iterdir() if p.suffix.lower() in AUDIO_SUFFIXES)
            elif entry.suffix.lower() in AUDIO_SUFFIXES:
                wavs = [str(entry)]
            else:
                continue
            if wavs:
                name = entry.stem if entry.is_file() else entry.name
                voices.append({**attributes.get(name, {}), "backend": self.name, "name": name,
                               "speaker_wav": wavs})
        if not voices:
            raise ValueError(f"speaker_wavs={self.speaker_wavs!r} holds no reference recording "
                             f"({', '.join(AUDIO_SUFFIXES)})")
        return voices

    def voices(self, language: str) -> list[dict]:
        """The voice registry for `language` (cloned references, named speakers, or the
        loaded model's own speakers)."""
        primary = _primary(language)
        if primary not in self.languages:
            raise ValueError(f"language {language!r} is not in tts.languages="
                             f"{list(self.languages)}; add it if the model speaks it")
        if self._registry is not None:
            base = self._registry
        elif self.speakers:
            base = [{"backend": self.name, "name": s, "speaker": s} for s in self.speakers]
        elif self._tts is not None and self._tts.is_multi_speaker:
            base = [{"backend": self.name, "name": s, "speaker": s} for s in self._tts.speakers]
        else:
            base = [{"backend": self.name, "name": "default"}]
        return [{**voice, "language": primary} for voice in base]

    def pick_voices(self, language: str, count: int, rng: random.Random,
                    pool: list[dict] | None = None) -> list[dict]:
        """`count` distinct voices (from `pool`, a split's share of the registry, when given);
        a single-voice model may only serve one speaker."""
        registry = self.voices(language) if pool is None else list(pool)
        if count > len(registry):
            raise ValueError(f"pick_voices count={count}: only {len(registry)} coqui voice(s) "
                             "for this model; add reference wavs to tts.speaker_wavs or names "
                             "to tts.speakers")
        return rng.sample(registry, count)

    # ---------------------------------------------------------------- synthesis

    def setup(self) -> None:
        if self._tts is not None:
            return
        try:
            import torch
            from TTS.api import TTS
        except ImportError as error:
            raise RuntimeError(f"tts=coqui needs the coqui extra: pip install -e '.[coqui]' "
                               f"({error})") from None
        device = self.device
        if device == "auto":
            device = "cuda" if torch.cuda.is_available() else "cpu"
        tts = TTS(model_path=self.model_path, config_path=self.config_path, progress_bar=False)
        self._tts = tts.to(device)

    @property
    def sample_rate(self) -> int:
        self.setup()
        return int(self._tts.synthesizer.output_sample_rate)

    def synthesize(self, text: str, voice: dict, turn: int, speaker: str) -> Utterance:
        self.setup()
        tokens = text.split()
        where = f"turn {turn} (speaker {speaker!r}, voice {voice.get('name')!r})"
        if not tokens:
            raise SynthesisError(f"{where}: text is empty; nothing to synthesize")
        tts = self._tts
        kwargs: dict[str, Any] = {"split_sentences": self.split_sentences}
        if tts.is_multi_lingual:
            kwargs["language"] = voice.get("language") or self.languages[0]
        if voice.get("speaker_wav"):
            kwargs["speaker_wav"] = list(voice["speaker_wav"])
        elif voice.get("speaker") and tts.is_multi_speaker:
            kwargs["speaker"] = voice["speaker"]
        try:
            wav = tts.tts(text=text, **kwargs)
        except (ValueError, KeyError, RuntimeError) as error:
            raise SynthesisError(f"{where}: coqui failed: {error}") from None
        samples = np.asarray(wav, dtype=np.float32).reshape(-1)
        rate = self.sample_rate
        if samples.size == 0 or not voiced_frames(samples, rate).any():
            raise SynthesisError(f"{where}: coqui produced no audio for {text!r}")
        words = energy_align(samples, rate, tokens, threshold_db=self.threshold_db)
        samples, words = trim_to_words(samples, rate, words, self.lead_s, self.tail_s)
        return Utterance(turn=turn, speaker=speaker, sample_rate=rate, samples=samples,
                         words=words)
