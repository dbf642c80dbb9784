"""The interface every TTS backend implements (DESIGN section 6).

A backend is per-worker state: `setup()` loads the expensive thing once (an engine, a
model), then `synthesize()` turns one turn's text into an `Utterance` with word timings.
Backends without native timings take them from `pipeline.tts.align.energy_align`.
"""

from __future__ import annotations

import random
from typing import Protocol, runtime_checkable

from pipeline.schema import Utterance


class SynthesisError(RuntimeError):
    """A turn could not be synthesized (empty text, silent audio, unknown voice).

    Permanent for this input: the speak stage rejects the dialogue with a counted reason
    instead of retrying.
    """


@runtime_checkable
class TtsBackend(Protocol):
    name: str

    def setup(self) -> None:
        """Load the engine or model; once per worker process, safe to call again."""
        ...

    def voices(self, language: str) -> list[dict]:
        """The voice registry for a BCP-47 language (`en`, `hu`, `en-US` ...). Each voice
        has a stable `id` (same id = same voice in every dialogue) and, where known,
        `gender` and `age_band`."""
        ...

    def pick_voices(self, language: str, count: int, rng: random.Random) -> list[dict]:
        """`count` distinct registry voices for one dialogue; the same rng state gives the
        same list. Backends may accept `attributes=[{gender, age_band}, ...]` to narrow it."""
        ...

    def synthesize(self, text: str, voice: dict, turn: int, speaker: str) -> Utterance:
        """One turn's audio; `words` has one (token, start_s, end_s) per `text.split()`
        token, in order, monotonic, inside the utterance. Raises SynthesisError."""
        ...
