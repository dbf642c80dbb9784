"""Helpers the ASR exporters share: option checks, speaker identities, audio files, text.

Speaker identity: inside a dialogue speakers are `spk0`, `spk1`…; across a dataset the same
TTS voice is the same "speaker" for an ASR trainer, so every export names a speaker by its
full voice id (`espeak:hu+f3:adult`, schema.voice_id), as the segments and the card do.
Audio leaves the dataset as 16 kHz mono files (FLAC or 16-bit WAV).
"""

from __future__ import annotations

import io
import json
import os
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf
import soxr

from pipeline.dataset import decode_audio, iter_rows
from pipeline.schema import voice_id
from pipeline.textnorm import TextNormalizer

AUDIO_FORMATS = {"flac": ("FLAC", "PCM_16"), "wav": ("WAV", "PCM_16")}


def check_options(name: str, options: dict, defaults: dict[str, Any]) -> dict[str, Any]:
    """Defaults overlaid with the user's options; an unknown key fails with its full name."""
    unknown = sorted(set(options) - set(defaults))
    if unknown:
        raise ValueError(
            f"options.{name}: unknown key(s) {unknown}; allowed: {sorted(defaults)}"
        )
    merged = {**defaults, **options}
    if "audio_format" in merged and merged["audio_format"] not in AUDIO_FORMATS:
        raise ValueError(f"options.{name}.audio_format: {merged['audio_format']!r} is unknown; "
                         f"allowed: {sorted(AUDIO_FORMATS)}")
    return merged


def normalizer(name: str, value: Any) -> TextNormalizer | None:
    """`normalize: false` (or `enabled: false`) keeps text as written; a dict configures
    TextNormalizer."""
    if value is False or value is None:
        return None
    settings = {} if value is True else dict(value)
    if not settings.pop("enabled", True):
        return None
    try:
        return TextNormalizer.from_options(settings)
    except (TypeError, ValueError) as error:
        raise ValueError(f"options.{name}.{error}") from None


def speaker_key(voice: dict, local: str) -> str:
    """The dataset-wide speaker name of a voice: its full id (local id when it has none)."""
    return voice_id(voice or {}) or local


def speaker_names(dataset: Path) -> dict[tuple[str, str], str]:
    """(dialogue id, local speaker id) -> dataset-wide speaker name; reads no audio."""
    names = {}
    for row in iter_rows(dataset, "dialogues", columns=["id", "speakers"]):
        for spec in row["speakers"]:
            names[(row["id"], spec["id"])] = speaker_key(spec.get("voice") or {}, spec["id"])
    return names


def to_rate(samples: np.ndarray, rate: int, target: int) -> np.ndarray:
    if samples.ndim == 2:
        samples = samples.mean(axis=1)
    if rate == target:
        return samples.astype(np.float32)
    return soxr.resample(samples, rate, target).astype(np.float32)


def write_audio(path: Path, samples: np.ndarray, rate: int, audio_format: str) -> float:
    """Write mono audio; returns its duration in seconds (frames / rate)."""
    kind, subtype = AUDIO_FORMATS[audio_format]
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, np.clip(samples, -1.0, 1.0), rate, format=kind, subtype=subtype)
    return len(samples) / rate


def cell_audio(cell: dict, rate: int) -> np.ndarray:
    samples, source_rate = decode_audio(cell)
    return to_rate(samples, source_rate, rate)


def flac_cell_duration(cell: dict) -> tuple[int, int]:
    info = sf.info(io.BytesIO(cell["bytes"]))
    return info.frames, info.samplerate


def write_jsonl(path: Path, rows: Iterable[dict]) -> int:
    """Atomic JSONL write (temp file + rename); returns the number of rows."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    count = 0
    with temporary.open("w", encoding="utf-8") as handle:
        for row in rows:
            handle.write(json.dumps(row, ensure_ascii=False) + "\n")
            count += 1
    os.replace(temporary, path)
    return count


def read_jsonl(path: Path) -> Iterator[dict]:
    with Path(path).open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, 1):
            if line.strip():
                try:
                    yield json.loads(line)
                except json.JSONDecodeError as error:
                    raise ValueError(f"{path}:{number}: not a JSON line ({error.msg})") from None


def language_filter(options: dict) -> set[str] | None:
    languages = options.get("languages")
    if languages is None:
        return None
    return {languages} if isinstance(languages, str) else set(languages)
