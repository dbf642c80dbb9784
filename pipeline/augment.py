"""Acoustic augmentation of a rendered dialogue: gain, room, noise, telephone band, loudness.

Why: models trained on clean studio TTS fail on real rooms, phones and levels. Every step is
a pure function over float32 numpy arrays (pipeline/augment_signal.py); `augment()` here
chains them for one dialogue with a generator seeded from the scenario, and returns a
JSON-ready record of every draw, which the assemble stage stores in the row's provenance, so
a row can be reproduced and filtered.

Order (what a listener would hear): per-speaker gain -> one room per dialogue, each speaker
at its own position, one microphone -> sum -> additive noise at a drawn SNR -> optional
telephone band (8 kHz, 300-3400 Hz, 8-bit mu-law) -> loudness normalisation of the mix.

The per-speaker `channels` stay dry: they get the speaker's gain and the same final scale as
the mix, but no room, noise or telephone, so channel k is the clean target for speaker k in
the mix (separation, enhancement, duplex training with clean assistant audio). Units:
seconds, Hz, dB, LUFS; levels are linear amplitudes of float audio in [-1, 1].
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from pipeline.augment_signal import (
    ACTIVE_FRAME_S,
    ACTIVE_THRESHOLD_DB,
    MIN_LOUDNESS_S,
    MU,
    NOISE_SUFFIXES,
    SPEED_OF_SOUND_M_S,
    TELEPHONE_BAND_HZ,
    TELEPHONE_RATE,
    Room,
    active_power,
    add_noise,
    apply_gains,
    colored_noise,
    db_to_gain,
    integrated_loudness,
    loudness_gain_db,
    noise_files,
    noise_from_file,
    reverberate,
    room_impulse_responses,
    telephone_band,
)
from pipeline.render import Rendered

# The signal steps live in pipeline.augment_signal; they stay importable from here.
__all__ = [
    "ACTIVE_FRAME_S", "ACTIVE_THRESHOLD_DB", "MIN_LOUDNESS_S", "MU", "NOISE_COLORS",
    "NOISE_SUFFIXES", "PEAK_LIMIT", "SPEED_OF_SOUND_M_S", "TELEPHONE_BAND_HZ", "TELEPHONE_RATE",
    "AugmentSettings", "Augmented", "NoiseSettings", "Room", "RoomSettings", "active_power",
    "add_noise", "apply_gains", "augment", "augment_rendered", "check_settings",
    "colored_noise", "db_to_gain", "dialogue_rng", "draw_room", "integrated_loudness",
    "loudness_gain_db", "noise_files", "noise_from_file", "reverberate",
    "room_impulse_responses", "telephone_band",
]

PEAK_LIMIT = 0.98
NOISE_COLORS = {"white": 0.0, "pink": 1.0, "brown": 2.0}


# ----------------------------------------------------------------------------- settings


@dataclass(frozen=True)
class NoiseSettings:
    """Additive noise: `prob` per dialogue, SNR drawn uniformly in `snr_db` (dB, active
    speech power over noise power); from the files in `dir` when set, else synthetic
    coloured noise of one of `colors` (white, pink = 1/f, brown = 1/f^2)."""

    prob: float = 0.0
    snr_db: tuple[float, float] = (10.0, 30.0)
    dir: str | None = None
    colors: tuple[str, ...] = ("white", "pink", "brown")


@dataclass(frozen=True)
class RoomSettings:
    """Shoebox rooms simulated with pyroomacoustics: size in metres between `size_min_m`
    and `size_max_m` per axis, reverberation time RT60 drawn in `rt60_s` (seconds),
    speakers at least `min_distance_m` from the microphone and 0.5 m from the walls."""

    prob: float = 0.0
    size_min_m: tuple[float, float, float] = (3.0, 3.0, 2.4)
    size_max_m: tuple[float, float, float] = (8.0, 6.0, 3.5)
    rt60_s: tuple[float, float] = (0.2, 0.6)
    min_distance_m: float = 0.5
    max_order: int = 60


@dataclass(frozen=True)
class AugmentSettings:
    """The `augment` config group. `enabled=False` (augment=none) leaves the render as is."""

    enabled: bool = False
    gain_db: tuple[float, float] = (0.0, 0.0)
    noise: NoiseSettings = field(default_factory=NoiseSettings)
    room: RoomSettings = field(default_factory=RoomSettings)
    telephone_prob: float = 0.0
    loudness_lufs: float | None = None

    @classmethod
    def from_config(cls, config: dict[str, Any] | None) -> AugmentSettings:
        """From the `augment` config group; an unknown key raises ValueError naming it."""
        config = dict(config or {})
        _no_unknown("augment", config, {"enabled", "gain_db", "noise", "room", "telephone",
                                        "loudness"})
        noise = dict(config.pop("noise", None) or {})
        room = dict(config.pop("room", None) or {})
        telephone = dict(config.pop("telephone", None) or {})
        loudness = dict(config.pop("loudness", None) or {})
        _no_unknown("augment.noise", noise, {"prob", "snr_db", "dir", "colors"})
        _no_unknown("augment.room", room, {"prob", "size_min_m", "size_max_m", "rt60_s",
                                           "min_distance_m", "max_order"})
        _no_unknown("augment.telephone", telephone, {"prob"})
        _no_unknown("augment.loudness", loudness, {"target_lufs"})
        return cls(
            enabled=bool(config.get("enabled", False)),
            gain_db=_pair(config.get("gain_db", (0.0, 0.0))),
            noise=NoiseSettings(
                prob=float(noise.get("prob", 0.0)),
                snr_db=_pair(noise.get("snr_db", (10.0, 30.0))),
                dir=noise.get("dir"),
                colors=tuple(noise.get("colors", ("white", "pink", "brown"))),
            ),
            room=RoomSettings(
                prob=float(room.get("prob", 0.0)),
                size_min_m=_triple(room.get("size_min_m", (3.0, 3.0, 2.4))),
                size_max_m=_triple(room.get("size_max_m", (8.0, 6.0, 3.5))),
                rt60_s=_pair(room.get("rt60_s", (0.2, 0.6))),
                min_distance_m=float(room.get("min_distance_m", 0.5)),
                max_order=int(room.get("max_order", 60)),
            ),
            telephone_prob=float(telephone.get("prob", 0.0)),
            loudness_lufs=(None if loudness.get("target_lufs") is None
                           else float(loudness["target_lufs"])),
        )


def _no_unknown(prefix: str, config: dict[str, Any], known: set[str]) -> None:
    unknown = sorted(set(config) - known)
    if unknown:
        raise ValueError(f"{prefix}.{unknown[0]}: unknown key; known keys: {sorted(known)}")


def _pair(value: Sequence[float]) -> tuple[float, float]:
    low, high = (float(v) for v in value)
    return low, high


def _triple(value: Sequence[float]) -> tuple[float, float, float]:
    x, y, z = (float(v) for v in value)
    return x, y, z


def check_settings(settings: AugmentSettings) -> None:
    """Raise ValueError naming the `augment.*` key, the value and the fix."""
    for key, (low, high) in (("augment.gain_db", settings.gain_db),
                             ("augment.noise.snr_db", settings.noise.snr_db),
                             ("augment.room.rt60_s", settings.room.rt60_s)):
        if low > high:
            raise ValueError(f"{key}={[low, high]}: low must not exceed high")
    for key, prob in (("augment.noise.prob", settings.noise.prob),
                      ("augment.room.prob", settings.room.prob),
                      ("augment.telephone.prob", settings.telephone_prob)):
        if not 0.0 <= prob <= 1.0:
            raise ValueError(f"{key}={prob}: must be in [0, 1]")
    unknown = [c for c in settings.noise.colors if c not in NOISE_COLORS]
    if unknown or not settings.noise.colors:
        raise ValueError(f"augment.noise.colors={list(settings.noise.colors)}: use some of "
                         f"{sorted(NOISE_COLORS)}")
    if settings.noise.dir is not None:
        noise_files(settings.noise.dir)
    room = settings.room
    if any(lo > hi for lo, hi in zip(room.size_min_m, room.size_max_m, strict=True)):
        raise ValueError(f"augment.room.size_min_m={list(room.size_min_m)} exceeds "
                         f"size_max_m={list(room.size_max_m)} on some axis")
    if min(room.size_min_m) < 2.0:
        raise ValueError(f"augment.room.size_min_m={list(room.size_min_m)}: every side must be "
                         ">= 2 m so speakers fit 0.5 m from the walls")
    if room.rt60_s[0] <= 0:
        raise ValueError(f"augment.room.rt60_s={list(room.rt60_s)}: must be > 0 seconds")


# --------------------------------------------------------------- per-dialogue draws


def draw_room(settings: RoomSettings, speakers: int, rng: np.random.Generator) -> Room:
    """A shoebox with the microphone at a random spot and each speaker on a circle around it
    at a random azimuth and distance, 1.1-1.8 m high, at least 0.5 m from every wall."""
    size = tuple(float(rng.uniform(lo, hi))
                 for lo, hi in zip(settings.size_min_m, settings.size_max_m, strict=True))
    margin = 0.5
    mic = (float(rng.uniform(margin, size[0] - margin)),
           float(rng.uniform(margin, size[1] - margin)),
           float(rng.uniform(0.8, min(1.5, size[2] - margin))))
    sources = []
    for _ in range(speakers):
        for _attempt in range(100):
            azimuth = rng.uniform(0.0, 2.0 * np.pi)
            distance = rng.uniform(settings.min_distance_m, max(settings.min_distance_m, 3.0))
            x = mic[0] + distance * np.cos(azimuth)
            y = mic[1] + distance * np.sin(azimuth)
            if margin <= x <= size[0] - margin and margin <= y <= size[1] - margin:
                break
        else:  # a small room: fall back to the nearest legal spot
            x = float(np.clip(x, margin, size[0] - margin))
            y = float(np.clip(y, margin, size[1] - margin))
        z = float(rng.uniform(1.1, min(1.8, size[2] - margin)))
        sources.append((round(float(x), 3), round(float(y), 3), round(z, 3)))
    rt60 = float(rng.uniform(*settings.rt60_s))
    return Room(size_m=tuple(round(v, 3) for v in size), rt60_s=round(rt60, 3),  # type: ignore[arg-type]
                mic_m=tuple(round(v, 3) for v in mic), sources_m=tuple(sources))  # type: ignore[arg-type]


# --------------------------------------------------------------------------- the whole chain


@dataclass
class Augmented:
    mix: np.ndarray  # (samples,) float32
    channels: np.ndarray  # (speakers, samples) float32, dry (see the module docstring)
    record: dict[str, Any]  # every draw, JSON-ready


def augment(
    channels: np.ndarray,
    sample_rate: int,
    speakers: Sequence[str],
    settings: AugmentSettings,
    rng: np.random.Generator,
) -> Augmented:
    """Apply the configured chain to one dialogue's dry (speakers, samples) channels.

    The same channels, settings and rng state give the same output and record.
    """
    channels = np.asarray(channels, dtype=np.float32)
    if not settings.enabled:
        return Augmented(mix=channels.sum(axis=0), channels=channels, record={"enabled": False})
    record: dict[str, Any] = {"enabled": True, "sample_rate": sample_rate}
    gains = [round(float(rng.uniform(*settings.gain_db)), 2) for _ in speakers]
    record["gain_db"] = dict(zip(speakers, gains, strict=True))
    dry = apply_gains(channels, gains)

    wet = dry
    record["room"] = None
    if rng.random() < settings.room.prob:
        room = draw_room(settings.room, len(speakers), rng)
        rirs = room_impulse_responses(room, sample_rate, settings.room.max_order)
        wet = np.stack([reverberate(row, rir) for row, rir in zip(dry, rirs, strict=True)])
        record["room"] = {"size_m": list(room.size_m), "rt60_s": room.rt60_s,
                          "mic_m": list(room.mic_m),
                          "sources_m": dict(zip(speakers, map(list, room.sources_m),
                                                strict=True))}
    mix = wet.sum(axis=0).astype(np.float32)

    record["noise"] = None
    if rng.random() < settings.noise.prob:
        snr = round(float(rng.uniform(*settings.noise.snr_db)), 2)
        if settings.noise.dir is not None:
            files = noise_files(settings.noise.dir)
            path = files[int(rng.integers(0, len(files)))]
            noise, offset = noise_from_file(path, mix.size, sample_rate, rng)
            source = {"file": path.name, "offset_s": round(offset, 3)}
        else:
            color = settings.noise.colors[int(rng.integers(0, len(settings.noise.colors)))]
            noise = colored_noise(mix.size, NOISE_COLORS[color], rng)
            source = {"color": color}
        mix = add_noise(mix, noise, snr, sample_rate)
        record["noise"] = {"snr_db": snr, **source}

    record["telephone"] = bool(rng.random() < settings.telephone_prob)
    if record["telephone"]:
        mix = telephone_band(mix, sample_rate)

    scale = 1.0
    record["loudness"] = None
    if settings.loudness_lufs is not None:
        gain_db = loudness_gain_db(mix, sample_rate, settings.loudness_lufs)
        if gain_db is not None:
            gain_db = round(gain_db, 3)
            scale = db_to_gain(gain_db)
            record["loudness"] = {"target_lufs": settings.loudness_lufs,
                                  "gain_db": gain_db}
    peak = max(float(np.max(np.abs(mix))) if mix.size else 0.0,
               float(np.max(np.abs(dry))) if dry.size else 0.0) * scale
    if peak > PEAK_LIMIT:
        scale *= PEAK_LIMIT / peak
        record["peak_limited_db"] = round(20.0 * np.log10(PEAK_LIMIT / peak), 2)
    return Augmented(mix=(mix * scale).astype(np.float32),
                     channels=(dry * scale).astype(np.float32), record=record)


def dialogue_rng(scenario_seed: int) -> np.random.Generator:
    """The augmentation generator of one dialogue: independent of the timing draws."""
    return np.random.default_rng([scenario_seed, 0xA0D10])


def augment_rendered(
    rendered: Rendered, speakers: Sequence[str], config: dict[str, Any] | None,
    scenario_seed: int,
) -> tuple[Rendered, dict[str, Any]]:
    """The assemble stage's step: augment a render with the `augment` config group, seeded
    by the scenario. Disabled: the render comes back untouched (bit-identical output)."""
    settings = AugmentSettings.from_config(config)
    if not settings.enabled:
        return rendered, {"enabled": False}
    out = augment(rendered.channels, rendered.sample_rate, speakers, settings,
                  dialogue_rng(scenario_seed))
    return Rendered(sample_rate=rendered.sample_rate, channels=out.channels, mix=out.mix), \
        out.record
