"""The process's libespeak-ng (from `espeakng-loader`), driven through ctypes.

libespeak-ng keeps all of its state (voice, parameters, the synthesis callback, internal
buffers) in C globals, so a process holds exactly one engine: `engine()` creates it lazily
and every synthesis holds its lock (pipeline.tts.espeak wraps it as a TTS backend).
"""

from __future__ import annotations

import ctypes
import os
import threading

import numpy as np

from pipeline.tts.base import SynthesisError

# speak_lib.h constants (API revision 12).
_AUDIO_OUTPUT_SYNCHRONOUS = 2
_POS_CHARACTER = 1
_CHARS_UTF8 = 1
_PHONEMES = 0x100  # text inside [[ ]] is eSpeak phoneme input
_EVENT_LIST_TERMINATED = 0
EVENT_WORD = 1
_PARAM_RATE, _PARAM_VOLUME, _PARAM_PITCH, _PARAM_RANGE = 1, 2, 3, 4


class _Event(ctypes.Structure):
    _fields_ = [
        ("type", ctypes.c_int),
        ("unique_identifier", ctypes.c_uint),
        ("text_position", ctypes.c_int),  # 1-based character index into the text
        ("length", ctypes.c_int),
        ("audio_position", ctypes.c_int),  # ms from the start of the message's audio
        ("sample", ctypes.c_int),
        ("user_data", ctypes.c_void_p),
        ("id", ctypes.c_int * 2),  # union {int; const char*; char[8]}
    ]


_SynthCallback = ctypes.CFUNCTYPE(
    ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.POINTER(_Event)
)


class _Engine:
    """The process's libespeak-ng. Use through `engine()`; `synthesize` is thread-safe."""

    def __init__(self) -> None:
        import espeakng_loader

        lib = ctypes.CDLL(espeakng_loader.get_library_path())
        lib.espeak_Initialize.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_int]
        lib.espeak_Initialize.restype = ctypes.c_int
        lib.espeak_SetSynthCallback.argtypes = [_SynthCallback]
        lib.espeak_SetSynthCallback.restype = None
        lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
        lib.espeak_SetVoiceByName.restype = ctypes.c_int
        lib.espeak_SetParameter.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int]
        lib.espeak_SetParameter.restype = ctypes.c_int
        lib.espeak_Synth.argtypes = [
            ctypes.c_char_p,
            ctypes.c_size_t,
            ctypes.c_uint,
            ctypes.c_int,
            ctypes.c_uint,
            ctypes.c_uint,
            ctypes.POINTER(ctypes.c_uint),
            ctypes.c_void_p,
        ]
        lib.espeak_Synth.restype = ctypes.c_int
        data_path = espeakng_loader.get_data_path().encode()
        sample_rate = lib.espeak_Initialize(_AUDIO_OUTPUT_SYNCHRONOUS, 0, data_path, 0)
        if sample_rate <= 0:
            raise SynthesisError(f"espeak_Initialize failed with data path {data_path!r}")
        self.lib = lib
        self.sample_rate = int(sample_rate)
        self.lock = threading.Lock()
        self._pcm: list[np.ndarray] = []
        self._events: list[tuple[int, int, int]] = []
        # Kept on the engine for the life of the process: the C library calls it later,
        # and a collected ctypes callback is a segfault.
        self._callback = _SynthCallback(self._on_audio)
        lib.espeak_SetSynthCallback(self._callback)

    def _on_audio(self, wav, num_samples, events) -> int:
        try:
            if num_samples > 0 and wav:
                # one copy out of the C buffer; np.ctypeslib.as_array built a ctypes array
                # type per call (a tenth of the speak stage's time, profiled)
                self._pcm.append(np.frombuffer(ctypes.string_at(wav, num_samples * 2),
                                               dtype=np.int16))
            i = 0
            while events and events[i].type != _EVENT_LIST_TERMINATED:
                event = events[i]
                self._events.append((event.type, event.text_position, event.audio_position))
                i += 1
            return 0
        except Exception:  # noqa: BLE001 - must not cross into C; abort the message
            return 1

    def synthesize(
        self, text: str, voice_name: str, rate: int, pitch: int, pitch_range: int, volume: int
    ) -> tuple[np.ndarray, list[tuple[int, int, int]]]:
        """int16 PCM and (event type, 1-based text position, audio ms) for one message."""
        data = text.encode("utf-8")
        with self.lock:
            self._pcm, self._events = [], []
            try:
                if self.lib.espeak_SetVoiceByName(voice_name.encode()) != 0:
                    raise SynthesisError(
                        f"eSpeak has no voice {voice_name!r}; use one from "
                        "EspeakBackend().voices(language)"
                    )
                for param, value in (
                    (_PARAM_RATE, rate),
                    (_PARAM_PITCH, pitch),
                    (_PARAM_RANGE, pitch_range),
                    (_PARAM_VOLUME, volume),
                ):
                    self.lib.espeak_SetParameter(param, int(value), 0)
                status = self.lib.espeak_Synth(
                    data, len(data) + 1, 0, _POS_CHARACTER, 0, _CHARS_UTF8 | _PHONEMES, None, None
                )
                if status != 0:
                    raise SynthesisError(f"espeak_Synth returned error {status} for {text!r}")
                pcm = np.concatenate(self._pcm) if self._pcm else np.zeros(0, np.int16)
                return pcm, self._events
            finally:
                self._pcm, self._events = [], []


_ENGINE: _Engine | None = None
_ENGINE_LOCK = threading.Lock()


def engine() -> _Engine:
    global _ENGINE
    if _ENGINE is None:
        with _ENGINE_LOCK:
            if _ENGINE is None:
                _ENGINE = _Engine()
    return _ENGINE


def _reset_locks_after_fork() -> None:
    """A child forked while another thread synthesized must not inherit a held lock."""
    global _ENGINE_LOCK
    _ENGINE_LOCK = threading.Lock()
    if _ENGINE is not None:
        _ENGINE.lock = threading.Lock()


os.register_at_fork(after_in_child=_reset_locks_after_fork)
