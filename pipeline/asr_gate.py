"""The ASR round trip: transcribe each synthesized utterance with Whisper, score it against
its text, and say which utterances fail the language's bound.

Why: TTS drops words, repeats itself or babbles; a row's `text` is only trustworthy if the
audio says it. Scoring: both sides go through the same normaliser — `pipeline.textnorm`
(numbers spelled out, lowercase, punctuation off) and, for English, whisper-normalizer's
EnglishTextNormalizer (the Whisper paper's: British/American spellings, titles, fillers,
one form for numbers) — then jiwer's WER or CER. Utterances with fewer than `min_words`
normalised reference words (backchannels such as "mhm", which Whisper leaves out) are scored
but not judged.

Cost: Whisper pads every input to a 30 s window, so one window per short utterance spends most
of its time on silence. A dialogue's utterances are packed into one buffer with `gap_s` of
silence between them and transcribed in one pass with word timestamps; each word goes to the
utterance its midpoint falls in (about 4x cheaper than one call per utterance, and Whisper
reads each turn with its neighbours as context).
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

import numpy as np

from pipeline.schema import Utterance
from pipeline.textnorm import TextNormalizer
from pipeline.whisper_models import load_whisper, timed_words

log = logging.getLogger("duplexsynth")

WHISPER_RATE = 16000
ASR_MISMATCH = "asr_mismatch"
Metric = Literal["wer", "cer"]


@dataclass(frozen=True)
class LanguageGate:
    """What the gate uses for one language: model (name or folder), metric, bound."""

    model: str
    metric: Metric
    max_error: float


@dataclass(frozen=True)
class AsrSettings:
    """`checks.asr` as plain values (see conf/checks/default.yaml for units and defaults)."""

    enabled: bool = False
    model: str = "tiny.en"
    metric: Metric = "wer"
    max_error: float = 0.15
    languages: dict[str, dict[str, Any]] = field(default_factory=dict)
    min_words: int = 3
    retries: int = 1
    device: str = "cpu"
    compute_type: str = "int8"
    cpu_threads: int = 2
    beam_size: int = 1
    gap_s: float = 1.0
    workers: int | None = None
    num_cpus: float = 0.25
    models_dir: str = "~/.cache/duplexsynth/models"

    @classmethod
    def from_config(cls, config: dict | None) -> AsrSettings:
        return cls(**dict(config or {}))

    def for_language(self, language: str) -> LanguageGate:
        """The language's own entry (`languages.<code>`), falling back to the top-level keys."""
        own = self.languages.get(language.split("-")[0].lower()) or {}
        return LanguageGate(model=own.get("model") or self.model,
                            metric=own.get("metric") or self.metric,
                            max_error=float(own.get("max_error") if own.get("max_error")
                                            is not None else self.max_error))


@lru_cache(maxsize=1)
def _english() -> Any:
    from whisper_normalizer.english import EnglishTextNormalizer

    return EnglishTextNormalizer()


_TEXTNORM = TextNormalizer()


def normalise(text: str, language: str) -> str:
    """The form both reference and hypothesis are scored in."""
    text = _TEXTNORM(text, language)
    if language.split("-")[0].lower() == "en":
        text = _english()(text)
    return " ".join(text.split())


def error_rate(reference: str, hypothesis: str, metric: Metric) -> float:
    """WER or CER of normalised texts; an empty reference scores 0 against an empty
    hypothesis and 1 otherwise (jiwer refuses empty references)."""
    import jiwer

    if not reference:
        return 0.0 if not hypothesis else 1.0
    score = jiwer.wer if metric == "wer" else jiwer.cer
    return float(score(reference, hypothesis))


@dataclass
class UtteranceCheck:
    """One utterance's outcome: `error` of `asr_text` against `text`; `judged` is False for
    utterances too short to judge, `passed` whether it is within the bound (True if unjudged)."""

    turn: int
    speaker: str
    text: str
    asr_text: str
    error: float
    judged: bool
    passed: bool

    def to_dict(self) -> dict[str, Any]:
        return {"turn": self.turn, "speaker": self.speaker, "asr_text": self.asr_text,
                "asr_error": round(self.error, 4), "judged": self.judged, "passed": self.passed}


def judge(texts: list[str], hypotheses: list[str], utterances: list[Utterance], language: str,
          gate: LanguageGate, min_words: int) -> list[UtteranceCheck]:
    """Score each utterance's transcript against its text with the language's bound."""
    checks = []
    for text, hypothesis, utterance in zip(texts, hypotheses, utterances, strict=True):
        reference = normalise(text, language)
        heard = normalise(hypothesis, language)
        error = error_rate(reference, heard, gate.metric)
        judged = len(reference.split()) >= min_words
        checks.append(UtteranceCheck(turn=utterance.turn, speaker=utterance.speaker, text=text,
                                     asr_text=hypothesis.strip(), error=error, judged=judged,
                                     passed=not judged or error <= gate.max_error))
    return checks


def pack(utterances: list[Utterance], gap_s: float) -> tuple[np.ndarray, list[tuple[float, float]]]:
    """Utterances resampled to 16 kHz mono and joined with `gap_s` of silence; returns the
    buffer and each utterance's (start_s, end_s) in it."""
    import soxr

    gap = np.zeros(int(round(gap_s * WHISPER_RATE)), np.float32)
    parts, spans, cursor = [], [], 0
    for utterance in utterances:
        audio = np.asarray(utterance.samples, dtype=np.float32)
        if audio.ndim > 1:
            audio = audio.mean(axis=-1)
        if utterance.sample_rate != WHISPER_RATE:
            audio = soxr.resample(audio, utterance.sample_rate, WHISPER_RATE).astype(np.float32)
        spans.append((cursor / WHISPER_RATE, (cursor + len(audio)) / WHISPER_RATE))
        parts += [audio, gap]
        cursor += len(audio) + len(gap)
    buffer = np.concatenate(parts) if parts else np.zeros(0, np.float32)
    return buffer, spans


def assign_words(words: list[tuple[str, float, float]],
                 spans: list[tuple[float, float]]) -> list[str]:
    """Each (word, start_s, end_s) goes to the span holding its midpoint, else the nearest
    span; returns the joined words per span (Whisper words carry their leading space)."""
    texts: list[list[str]] = [[] for _ in spans]
    starts = np.array([s for s, _ in spans]) if spans else np.zeros(0)
    ends = np.array([e for _, e in spans]) if spans else np.zeros(0)
    for word, start, end in words:
        middle = (start + end) / 2
        distance = np.maximum(starts - middle, 0) + np.maximum(middle - ends, 0)
        texts[int(np.argmin(distance))].append(word)
    return ["".join(parts).strip() for parts in texts]


class WhisperTranscriber:
    """One faster-whisper model on this worker, used for a language forced per call."""

    def __init__(self, path: Path, settings: AsrSettings) -> None:
        self.path = path
        self.settings = settings
        self.model = load_whisper(path, settings.device, settings.compute_type,
                                  settings.cpu_threads)

    def transcribe_packed(self, utterances: list[Utterance], language: str) -> list[str]:
        """Transcripts of the utterances, from one pass over the packed buffer."""
        if not utterances:
            return []
        buffer, spans = pack(utterances, self.settings.gap_s)
        words = timed_words(self.model, buffer, language, self.settings.beam_size)
        return assign_words(words, spans)


def asr_columns(asr: str | None) -> dict[int, dict[str, Any]]:
    """turn -> {"asr_text", "asr_error"} for segment rows (empty when the gate is off)."""
    if not asr:
        return {}
    return {t["turn"]: {"asr_text": t["asr_text"], "asr_error": t["asr_error"]}
            for t in json.loads(asr)["turns"]}


def asr_summary(asr: str | None) -> tuple[dict[str, Any], dict | None]:
    """Dialogue-level scalars (max / mean error over judged utterances, retries) and the
    gate's provenance (model, path, sha256, metric, bound); all None when the gate is off."""
    if not asr:
        return {"asr_error_max": None, "asr_error_mean": None, "asr_retries": None}, None
    outcome = json.loads(asr)
    errors = [t["asr_error"] for t in outcome["turns"] if t["judged"]]
    return ({"asr_error_max": max(errors) if errors else None,
             "asr_error_mean": round(sum(errors) / len(errors), 4) if errors else None,
             "asr_retries": outcome["retries"]}, outcome["gate"])
