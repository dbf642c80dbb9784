"""Text-to-speech backends behind one interface (`TtsBackend`).

`make_backend("espeak", **options)` builds a backend by its config name; backends are
imported lazily so that a worker only loads the engine it uses.
"""

from __future__ import annotations

import importlib

from pipeline.tts.base import SynthesisError, TtsBackend

BACKENDS: dict[str, str] = {
    "espeak": "pipeline.tts.espeak:EspeakBackend",
    "coqui": "pipeline.tts.coqui:CoquiBackend",
    "piper": "pipeline.tts.piper:PiperBackend",
    "corpus": "pipeline.corpus:CorpusBackend",
}


def make_backend(name: str, **options) -> TtsBackend:
    """Build the backend registered as `name` with its config options (not set up yet)."""
    try:
        target = BACKENDS[name]
    except KeyError:
        known = ", ".join(sorted(BACKENDS))
        raise ValueError(f"tts backend {name!r} is unknown; choose one of: {known}") from None
    module_name, class_name = target.split(":")
    backend_cls = getattr(importlib.import_module(module_name), class_name)
    return backend_cls(**options)


def backend_from_config(config: dict) -> TtsBackend:
    """Build from a `tts` config group: `name` plus that backend's constructor options.

    With `per_language` ({language: backend name}) the result routes each language to its
    backend (pipeline.tts.mixed); `name`'s backend gets the options, the others defaults."""
    options = {k: tuple(v) if isinstance(v, list) else v for k, v in config.items()
               if k not in ("name", "per_language")}
    per_language = config.get("per_language")
    if not per_language:
        return make_backend(config["name"], **options)
    from pipeline.tts.mixed import PerLanguageBackend

    backends = {name: make_backend(name, **(options if name == config["name"] else {}))
                for name in dict.fromkeys(per_language.values())}
    return PerLanguageBackend(backends, dict(per_language))


__all__ = ["BACKENDS", "SynthesisError", "TtsBackend", "backend_from_config", "make_backend"]
