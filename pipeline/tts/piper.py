"""Piper backend (`tts=piper`): VITS voices on onnxruntime, word times from the model.

Why these choices (piper-tts 1.8.0, DESIGN section 8):

- Word timings come from the model's own durations: Piper's `[alignment]` patch exposes the
  per-phoneme-id frame counts (`Ceil` tensor, 256-sample hops) that sum exactly to the audio.
  eSpeak's word spaces do not always follow the script's (`on the` can become one word): a
  turn is phonemized whole (context gives natural stress) when its words map one to one onto
  the script's tokens, and token by token otherwise; the phonemes are joined with Piper's
  word space, and token k's span is the samples of its own phonemes; a punctuation pause
  belongs to no word, and where no pause separates two words the word space (a transition,
  not silence) is split between them, so they abut.
- Deterministic per (voice, text, turn, `seed`): onnxruntime's RandomNormalLike draws from a
  generator seeded once per session, so output would depend on what the worker synthesized
  before (a resume after a crash would differ from the first run). The two RandomNormalLike
  nodes are replaced by graph inputs that we fill from numpy generators seeded by a hash of
  (seed, voice id, turn, text): same inputs, same samples, in any process and call order, and
  Piper's usual noise scales keep their expressiveness (the alternative, noise scales 0, is
  deterministic but flat).
- One onnxruntime session per model per worker with ONE intra-op thread (`threads`): one
  thread per process is Piper's fastest per-core setting; `ray.speak_workers` workers share
  the cores.

Speaker variety per voice (length_scale, noise scales) is fixed by the registry
(pipeline.tts.piper_voices) and recorded in each speaker's voice dict, hence in every row.
"""

from __future__ import annotations

import hashlib
import json
import random
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pipeline.schema import Utterance
from pipeline.tts.align import trim_to_words, voiced_frames
from pipeline.tts.base import SynthesisError
from pipeline.tts.piper_graph import DEFAULT_CACHE_DIR, cached_model_path, patched_model
from pipeline.tts.piper_voices import (
    DEFAULT_PACKAGES,
    PiperModel,
    Prosody,
    find_models,
    how_to_get,
    model_sha256,
    parse_selection,
    voice_entry,
)
from pipeline.tts.piper_words import PAUSES, RESPELL, SPACE_JOIN, WORD_SPACE, map_words

_NOISE_FACTORS = (4, 6 * 192)  # first-try noise values per phoneme id: duration, flow prior
_MAX_TRIES = 4


@dataclass
class _Loaded:
    """One model in one worker: its session, Piper's config and a phoneme cache."""

    session: object
    voice: object  # piper.PiperVoice (phonemizer + id map)
    lock: threading.Lock
    phonemes: dict[str, list[str]]


def seed_for(seed: int, voice_id: str, turn: int, text: str) -> int:
    digest = hashlib.sha256(f"{seed}\x1f{voice_id}\x1f{turn}\x1f{text}".encode()).digest()
    return int.from_bytes(digest[:8], "little")


class PiperBackend:
    """Neural voices on CPU (DESIGN section 6); options are the keys of conf/tts/piper.yaml.

    `voices_dir`: folder of `.onnx` + `.onnx.json` voices; `packages`: importable voice
    packages (`model_path()` / `config_path()`); `voices`: optional selection of model names
    or `model:speaker_id` ids; `length_scale` / `noise_scale` / `noise_w_scale`: [low, high]
    ranges the registry spreads its voices over; `allow_shared_voice`: let a dialogue with
    more speakers than voices reuse a voice as a prosody variant (own id, `shared_voice`);
    `seed`: noise seed; `volume`: output peak (0-1); `threads`: onnxruntime intra-op threads;
    `cache_dir`: where patched models are kept (pipeline.tts.piper_graph; null: patch in
    memory in every worker).
    """

    name = "piper"

    def __init__(
        self,
        voices_dir: str | None = None,
        packages: tuple[str, ...] = DEFAULT_PACKAGES,
        voices: tuple[str, ...] = (),
        length_scale: tuple[float, float] = Prosody.length_scale,
        noise_scale: tuple[float, float] = Prosody.noise_scale,
        noise_w_scale: tuple[float, float] = Prosody.noise_w_scale,
        allow_shared_voice: bool = False,
        seed: int = 0,
        volume: float = 0.9,
        threads: int = 1,
        lead_s: float = 0.02,
        tail_s: float = 0.05,
        cache_dir: str | None = DEFAULT_CACHE_DIR,
    ) -> None:
        for key, bounds in (("length_scale", length_scale), ("noise_scale", noise_scale),
                            ("noise_w_scale", noise_w_scale)):
            if len(bounds) != 2 or not 0 <= bounds[0] <= bounds[1]:
                raise ValueError(f"tts.{key}={list(bounds)}: give [low, high] with "
                                 "0 <= low <= high")
        if not 0 < volume <= 1:
            raise ValueError(f"tts.volume={volume}: must be in (0, 1]")
        if threads < 1:
            raise ValueError(f"tts.threads={threads}: must be at least 1")
        self.prosody = Prosody(tuple(map(float, length_scale)), tuple(map(float, noise_scale)),
                               tuple(map(float, noise_w_scale)))
        self.allow_shared_voice = bool(allow_shared_voice)
        self.seed, self.volume, self.threads = int(seed), float(volume), int(threads)
        self.lead_s, self.tail_s = float(lead_s), float(tail_s)
        self.cache_dir = cache_dir
        self.models = find_models(voices_dir, tuple(packages))
        if not self.models:
            where = f"tts.voices_dir={voices_dir}" if voices_dir else "no tts.voices_dir"
            raise ValueError(f"no Piper voices found ({where}, packages {list(packages)}); "
                             + how_to_get())
        self.selected = bool(voices)
        self.registry = self._registry(tuple(voices))
        self._loaded: dict[str, _Loaded] = {}
        self._load_lock = threading.Lock()

    def _registry(self, selection: tuple[str, ...]) -> list[dict]:
        by_name = {model.name: model for model in self.models}
        chosen: list[tuple[PiperModel, int]] = []
        for entry in selection or tuple(by_name):
            name, speaker = parse_selection(entry)
            if name not in by_name:
                raise ValueError(f"tts.voices entry {entry!r}: no installed Piper model "
                                 f"{name!r}; installed: {sorted(by_name)}")
            model = by_name[name]
            if speaker is not None and not 0 <= speaker < model.num_speakers:
                raise ValueError(f"tts.voices entry {entry!r}: speaker id {speaker} is out of "
                                 f"range; {name} has speaker ids 0..{model.num_speakers - 1}")
            ids = range(model.num_speakers) if speaker is None else (speaker,)
            chosen += [(model, i) for i in ids]
        unique = list(dict.fromkeys(chosen))
        return [voice_entry(model, speaker, self.prosody) for model, speaker in unique]

    def check_languages(self, languages: list[str]) -> None:
        """A selected voice must speak a run language, and every language needs a voice."""
        if self.selected:
            stray = sorted({v["name"] for v in self.registry if v["language"] not in languages})
            if stray:
                raise ValueError(f"tts.voices selects {stray}, whose language is not in "
                                 f"languages={languages}; drop them or add their language")
        for language in languages:
            self.voices(language)

    def voices(self, language: str) -> list[dict]:
        """Registry voices whose config language (espeak.voice) is `language`'s primary tag."""
        primary = language.replace("_", "-").split("-")[0].lower()
        found = [v for v in self.registry if v["language"] == primary]
        if not found:
            have = sorted({v["language"] for v in self.registry})
            raise ValueError(f"no Piper voice for language {language!r} (installed voices "
                             f"speak {have}); {how_to_get(primary)}")
        return found

    def pick_voices(self, language: str, count: int, rng: random.Random,
                    attributes: list[dict] | None = None,
                    pool: list[dict] | None = None) -> list[dict]:
        """`count` voices with distinct ids, from `pool` (a split's voices) or the registry.
        Piper configs give no gender or age, so `attributes` are not used. Fewer voices than
        speakers is an error unless `allow_shared_voice`: then speakers beyond the voices get
        prosody variants."""
        registry = self.voices(language) if pool is None else pool
        if count <= len(registry):
            return [dict(v) for v in rng.sample(registry, count)]
        if not self.allow_shared_voice:
            raise ValueError(
                f"a dialogue in {language!r} needs {count} distinct voices but Piper has "
                f"{len(registry)} ({', '.join(v['id'] for v in registry[:5])}); install more "
                "voices (a multi-speaker model such as en_US-libritts_r-medium), lower "
                "plan.speakers, or set tts.allow_shared_voice=true to reuse a voice as a "
                "pitch / rate variant")
        order = rng.sample(registry, len(registry))
        picked = [dict(v) for v in order]
        for extra in range(count - len(registry)):
            base = order[extra % len(order)]
            model = next(m for m in self.models if m.model_path == base["model_path"])
            variant = 1 + extra // len(order)
            picked.append(voice_entry(model, base["speaker_id"], self.prosody, variant))
        return picked

    def setup(self) -> None:
        import onnxruntime  # noqa: F401 - fail in setup, not in the first synthesis

    def _load(self, voice: dict) -> _Loaded:
        path = str(voice.get("model_path", ""))
        with self._load_lock:
            if path not in self._loaded:
                import onnxruntime
                from piper import PiperVoice
                from piper.config import PiperConfig

                model = next((m for m in self.models if m.model_path == path), None)
                if model is None:
                    raise SynthesisError(f"voice {voice.get('id')!r}: model {path} is not in "
                                         "this backend's registry (tts.voices_dir changed?)")
                options = onnxruntime.SessionOptions()
                options.intra_op_num_threads = self.threads
                options.inter_op_num_threads = 1
                sha256 = str(voice.get("model_sha256") or model_sha256(path))
                source = patched_model(path, sha256, self.cache_dir)
                try:
                    session = onnxruntime.InferenceSession(
                        source, sess_options=options, providers=["CPUExecutionProvider"])
                except Exception:  # noqa: BLE001 - a damaged cache file: patch it again
                    if not isinstance(source, str):
                        raise
                    cached_model_path(str(self.cache_dir), sha256).unlink(missing_ok=True)
                    session = onnxruntime.InferenceSession(
                        patched_model(path, sha256, self.cache_dir), sess_options=options,
                        providers=["CPUExecutionProvider"])
                config = PiperConfig.from_dict(json.loads(Path(model.config_path).read_text(
                    encoding="utf-8")))
                self._loaded[path] = _Loaded(session, PiperVoice(session=session, config=config),
                                             threading.Lock(), {})
            return self._loaded[path]

    def phonemes(self, loaded: _Loaded, token: str) -> list[str]:
        """One script token's phonemes (sentences flattened); respelled hums; cached."""
        if token not in loaded.phonemes:
            core = token.strip(".,!?;:\"'()").lower()
            if core in RESPELL:
                lead = token[:len(token) - len(token.lstrip(".,!?;:\"'()"))]
                trail = token[len(token.rstrip(".,!?;:\"'()")):]
                phonemes = list(lead + RESPELL[core] + trail)
            else:
                clean = token.replace("[[", "[").replace("]]", "]")  # no raw phoneme input
                phonemes = [p for sentence in loaded.voice.phonemize(clean) for p in sentence]
            loaded.phonemes[token] = phonemes
        return loaded.phonemes[token]

    def token_phonemes(self, loaded: _Loaded, tokens: list[str]) -> list[list[str]]:
        """Phonemes per script token, in sentence context where eSpeak keeps the words.

        The whole turn is phonemized once (function words unstressed, "a" not read as a
        letter) and its words are mapped onto the tokens (`map_words`); where eSpeak merged
        tokens those take their phonemes alone, and where no mapping exists every token is
        phonemized alone, which always keeps the script's words."""
        alone = [self.phonemes(loaded, token) for token in tokens]
        if any(token.strip(".,!?;:\"'()").lower() in RESPELL for token in tokens):
            return alone
        clean = " ".join(tokens).replace("[[", "[").replace("]]", "]")
        words = "".join(SPACE_JOIN.join("".join(s) for s in loaded.voice.phonemize(clean))
                        ).split(WORD_SPACE)
        words = [word for word in words if word]
        mapped = map_words(words, ["".join(single) for single in alone])
        return alone if mapped is None else [list(word) for word in mapped]

    def synthesize(self, text: str, voice: dict, turn: int, speaker: str) -> Utterance:
        tokens = text.split()
        where = f"turn {turn} (speaker {speaker!r})"
        if not tokens:
            raise SynthesisError(f"{where}: text is empty; nothing to synthesize")
        loaded = self._load(voice)
        config = loaded.voice.config
        id_map, pad = config.phoneme_id_map, list(config.phoneme_id_map["_"])
        ids = list(config.phoneme_id_map["^"]) + pad
        spans: list[tuple[int, int]] = []  # per token: [first id, end id) of its speech
        spaces: list[tuple[int, int]] = []  # [first id, end id) of the space before token k
        for k, phonemes in enumerate(self.token_phonemes(loaded, tokens)):
            if k:
                spaces.append((len(ids), len(ids) + len(id_map[WORD_SPACE]) + len(pad)))
                ids += list(id_map[WORD_SPACE]) + pad
            first = end = None
            for phoneme in phonemes:
                if phoneme not in id_map:
                    continue
                start = len(ids)
                ids += list(id_map[phoneme]) + pad
                if phoneme not in PAUSES:
                    first = start if first is None else first
                    end = len(ids)
            spans.append((len(ids), len(ids)) if first is None else (first, end))
        ids += list(id_map["$"])
        pitch = float(voice.get("pitch_factor", 1.0))
        audio, samples_per_id = self._run(loaded, ids, voice, pitch, seed_for(
            self.seed, str(voice.get("id")), turn, text))
        rate = config.sample_rate
        if pitch != 1.0:  # a shared-voice variant: higher/lower pitch and formants, same length
            import soxr

            audio = soxr.resample(audio, rate * pitch, rate).astype(np.float32)
            samples_per_id = samples_per_id / pitch
        peak = float(np.max(np.abs(audio))) if audio.size else 0.0
        if peak < 1e-6 or not voiced_frames(audio, rate).any():
            raise SynthesisError(f"{where}: Piper produced no audio for {text!r} with voice "
                                 f"{voice.get('id')!r}")
        audio = (audio * (self.volume / peak)).astype(np.float32)
        edges = np.concatenate(([0], np.cumsum(samples_per_id))) / rate
        bounds = [[float(edges[a]), float(edges[b])] for a, b in spans]
        for k, (a, b) in enumerate(spaces, start=1):
            if spans[k - 1][1] == a and spans[k][0] == b:  # no pause between: words abut
                bounds[k - 1][1] = bounds[k][0] = float(edges[a] + edges[b]) / 2
        words = []
        for token, (start_s, end_s) in zip(tokens, bounds, strict=True):
            if end_s <= start_s:  # no speech phoneme (a lone dash): a sliver at its place
                end_s = min(start_s + 0.01, len(audio) / rate)
                start_s = max(0.0, end_s - 0.01)
            words.append((token, start_s, end_s))
        audio, words = trim_to_words(audio, rate, words, self.lead_s, self.tail_s)
        return Utterance(turn=turn, speaker=speaker, sample_rate=rate, samples=audio,
                         words=words)

    def _run(self, loaded: _Loaded, ids: list[int], voice: dict, pitch: float,
             seed: int) -> tuple[np.ndarray, np.ndarray]:
        """Audio (float32) and samples per phoneme id for one utterance; `pitch` stretches
        the durations (length_scale x pitch) for a variant that is resampled afterwards."""
        config = loaded.voice.config
        feeds = {
            "input": np.array([ids], dtype=np.int64),
            "input_lengths": np.array([len(ids)], dtype=np.int64),
            "scales": np.array([voice.get("noise_scale", config.noise_scale),
                                voice.get("length_scale", config.length_scale) * pitch,
                                voice.get("noise_w_scale", config.noise_w_scale)],
                               dtype=np.float32),
        }
        if config.num_speakers > 1:
            if "sid" not in {i.name for i in loaded.session.get_inputs()}:
                raise SynthesisError(f"voice {voice.get('id')!r}: its config lists "
                                     f"{config.num_speakers} speakers but the model has no "
                                     "speaker input (config and .onnx do not match)")
            speaker_id = int(voice.get("speaker_id", 0))
            if not 0 <= speaker_id < config.num_speakers:
                raise SynthesisError(f"voice {voice.get('id')!r}: speaker id {speaker_id} out "
                                     f"of range 0..{config.num_speakers - 1}")
            feeds["sid"] = np.array([speaker_id], dtype=np.int64)
        scale = 1
        for _ in range(_MAX_TRIES):
            for k, factor in enumerate(_NOISE_FACTORS):
                generator = np.random.default_rng([seed, k])
                feeds[f"noise_{k}"] = generator.standard_normal(
                    factor * scale * len(ids), dtype=np.float32)
            try:
                with loaded.lock:
                    audio, durations = loaded.session.run(None, feeds)[:2]
            except Exception as error:  # noqa: BLE001 - onnxruntime raises its own types
                if "Reshape" not in str(error):
                    raise SynthesisError(f"Piper failed on {len(ids)} phoneme ids: "
                                         f"{type(error).__name__}: {error}") from None
                scale *= 4
                continue
            audio = np.asarray(audio, dtype=np.float32).reshape(-1)
            samples = (np.asarray(durations).reshape(-1) * config.hop_length).astype(np.int64)
            if samples.size != len(ids) or int(samples.sum()) != audio.size:
                raise SynthesisError(f"Piper alignment does not cover the audio "
                                     f"({int(samples.sum())} vs {audio.size} samples)")
            return audio, samples
        raise SynthesisError(f"Piper needed more noise than {_MAX_TRIES} tries allowed")
