"""One backend per language (`tts.per_language={en: piper, hu: espeak}`).

Why: neural voices exist for some languages only; a run can use Piper where it has voices
and eSpeak elsewhere. The backend named by `tts.name` gets the `tts` node's options; any other
backend in the map gets its own defaults. Every voice dict carries its `backend`, so
synthesis goes to the backend that picked the voice, and rows record it.
"""

from __future__ import annotations

import random

from pipeline.schema import Utterance
from pipeline.tts.base import SynthesisError, TtsBackend


class PerLanguageBackend:
    """Routes registry calls by language and synthesis by the voice's `backend`."""

    name = "per_language"

    def __init__(self, backends: dict[str, TtsBackend], per_language: dict[str, str]) -> None:
        self.backends = backends
        self.per_language = {lang.lower(): name for lang, name in per_language.items()}

    def _for(self, language: str) -> TtsBackend:
        primary = language.replace("_", "-").split("-")[0].lower()
        name = self.per_language.get(primary)
        if name is None:
            raise ValueError(f"tts.per_language has no backend for language {language!r}; "
                             f"it maps {self.per_language}")
        return self.backends[name]

    def setup(self) -> None:
        for backend in self.backends.values():
            backend.setup()

    def voices(self, language: str) -> list[dict]:
        return self._for(language).voices(language)

    def pick_voices(self, language: str, count: int, rng: random.Random,
                    attributes: list[dict] | None = None,
                    pool: list[dict] | None = None) -> list[dict]:
        """The language's backend picks; `pool` (a split's voices) passes through to it."""
        backend = self._for(language)
        options = {} if pool is None else {"pool": pool}
        if attributes is None:
            return backend.pick_voices(language, count, rng, **options)
        return backend.pick_voices(language, count, rng, attributes, **options)

    def check_languages(self, languages: list[str]) -> None:
        for language in languages:
            backend = self._for(language)
            check = getattr(backend, "check_languages", None)
            if check is not None:
                check([language])
            else:
                backend.voices(language)

    def synthesize(self, text: str, voice: dict, turn: int, speaker: str) -> Utterance:
        backend = self.backends.get(str(voice.get("backend", "")))
        if backend is None:
            raise SynthesisError(f"turn {turn}: voice {voice.get('id')!r} names backend "
                                 f"{voice.get('backend')!r}, not one of {sorted(self.backends)}")
        return backend.synthesize(text, voice, turn, speaker)
