"""Acoustic augmentation of a rendered dialogue: gain, room, noise, telephone band, loudness.

Why: models trained on clean studio TTS fail on real rooms, phones and levels. Every step is
a pure function over float32 numpy arrays; `augment()` chains them for one dialogue with a
generator seeded from the scenario, and returns a JSON-ready record of every draw, which the
assemble stage stores in the row's provenance, so a row can be reproduced and filtered.

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
from pathlib import Path
from typing import Any

import numpy as np
import soxr

from pipeline.render import Rendered

PEAK_LIMIT = 0.98
SPEED_OF_SOUND_M_S = 343.0
TELEPHONE_RATE = 8000
TELEPHONE_BAND_HZ = (300.0, 3400.0)
MU = 255.0
NOISE_COLORS = {"white": 0.0, "pink": 1.0, "brown": 2.0}
NOISE_SUFFIXES = (".wav", ".flac", ".ogg")
ACTIVE_FRAME_S = 0.02
ACTIVE_THRESHOLD_DB = -40.0
MIN_LOUDNESS_S = 0.4  # BS.1770 gating blocks are 400 ms


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


# ------------------------------------------------------------------------ pure signal steps


def db_to_gain(db: float) -> float:
    return float(10.0 ** (db / 20.0))


def apply_gains(channels: np.ndarray, gains_db: Sequence[float]) -> np.ndarray:
    """Scale row k of (speakers, samples) by gains_db[k] decibels; returns a new array."""
    factors = np.array([db_to_gain(g) for g in gains_db], dtype=np.float32)[:, None]
    return (channels * factors).astype(np.float32)


def active_power(signal: np.ndarray, sample_rate: int, frame_s: float = ACTIVE_FRAME_S,
                 threshold_db: float = ACTIVE_THRESHOLD_DB) -> float:
    """Mean power over the frames whose RMS is within `threshold_db` of the loudest frame,
    so the silences between turns do not dilute the speech level (cf. ITU-T P.56)."""
    x = np.asarray(signal, dtype=np.float64).reshape(-1)
    hop = max(1, int(round(frame_s * sample_rate)))
    if x.size == 0:
        return 0.0
    frames = np.pad(x, (0, (-x.size) % hop)).reshape(-1, hop)
    power = np.mean(frames * frames, axis=1)
    peak = float(power.max())
    if peak <= 0.0:
        return 0.0
    active = power >= peak * 10.0 ** (threshold_db / 10.0)
    return float(power[active].mean())


def colored_noise(length: int, exponent: float, rng: np.random.Generator) -> np.ndarray:
    """Gaussian noise whose power spectrum falls as 1/f^exponent (0 white, 1 pink, 2 brown),
    unit RMS. Shaped in the frequency domain; the DC bin is zeroed."""
    if length <= 0:
        return np.zeros(0, dtype=np.float32)
    spectrum = np.fft.rfft(rng.standard_normal(length))
    freqs = np.fft.rfftfreq(length)
    scale = np.zeros_like(freqs)
    scale[1:] = freqs[1:] ** (-exponent / 2.0)
    noise = np.fft.irfft(spectrum * scale, n=length)
    rms = float(np.sqrt(np.mean(noise * noise)))
    return (noise / max(rms, 1e-12)).astype(np.float32)


def add_noise(signal: np.ndarray, noise: np.ndarray, snr_db: float,
              sample_rate: int) -> np.ndarray:
    """signal + noise scaled so that active_power(signal) / power(noise) = snr_db.

    `noise` must be at least as long as `signal` (only its first len(signal) samples are
    used). A silent signal is returned unchanged.
    """
    if len(noise) < len(signal):
        raise ValueError(f"noise has {len(noise)} samples, signal {len(signal)}")
    noise = np.asarray(noise[: len(signal)], dtype=np.float64)
    speech = active_power(signal, sample_rate)
    noise_power = float(np.mean(noise * noise))
    if speech <= 0.0 or noise_power <= 0.0:
        return signal.astype(np.float32, copy=True)
    scale = np.sqrt(speech / (noise_power * 10.0 ** (snr_db / 10.0)))
    return (signal + scale * noise).astype(np.float32)


def noise_files(folder: str | Path) -> list[Path]:
    """Audio files (wav, flac, ogg) under `folder`, sorted so a seed picks the same one."""
    root = Path(folder).expanduser()
    if not root.is_dir():
        raise ValueError(f"augment.noise.dir={str(folder)!r} is not a folder; point it at a "
                         "folder of noise recordings or set it to null for synthetic noise")
    files = sorted(p for p in root.rglob("*") if p.suffix.lower() in NOISE_SUFFIXES)
    if not files:
        raise ValueError(f"augment.noise.dir={str(folder)!r} holds no {NOISE_SUFFIXES} file")
    return files


def noise_from_file(path: Path, length: int, sample_rate: int,
                    rng: np.random.Generator) -> tuple[np.ndarray, float]:
    """`length` samples of the file (mono, resampled) from a random offset, looped when the
    file is shorter; returns (noise, offset_s)."""
    import soundfile as sf

    data, rate = sf.read(str(path), dtype="float32", always_2d=True)
    mono = data.mean(axis=1)
    mono = soxr.resample(mono, rate, sample_rate, quality="HQ") if rate != sample_rate else mono
    if mono.size == 0 or not np.any(mono):
        raise ValueError(f"noise file {path} is silent")
    offset = int(rng.integers(0, mono.size))
    reps = -(-(offset + length) // mono.size)
    return np.tile(mono, reps)[offset: offset + length].astype(np.float32), offset / sample_rate


@dataclass(frozen=True)
class Room:
    """One simulated room: size (m), RT60 (s), microphone and one source per speaker (m)."""

    size_m: tuple[float, float, float]
    rt60_s: float
    mic_m: tuple[float, float, float]
    sources_m: tuple[tuple[float, float, float], ...]


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


def room_impulse_responses(room: Room, sample_rate: int, max_order: int = 60) -> list[np.ndarray]:
    """One RIR per source (pyroomacoustics image-source method, Sabine absorption for the
    RT60), each cut to start 2 ms before its direct path so that convolving does not delay
    the speech: word times in the timeline stay valid."""
    import pyroomacoustics as pra

    absorption, order = pra.inverse_sabine(room.rt60_s, list(room.size_m))
    shoebox = pra.ShoeBox(list(room.size_m), fs=sample_rate,
                          materials=pra.Material(absorption), max_order=min(order, max_order))
    for source in room.sources_m:
        shoebox.add_source(list(source))
    shoebox.add_microphone(list(room.mic_m))
    shoebox.compute_rir()
    lead = int(0.002 * sample_rate)
    rirs = []
    for rir in shoebox.rir[0]:
        rir = np.asarray(rir, dtype=np.float64)
        direct = int(np.argmax(np.abs(rir)))
        rirs.append(rir[max(0, direct - lead):].astype(np.float32))
    return rirs


def reverberate(signal: np.ndarray, rir: np.ndarray) -> np.ndarray:
    """Convolve with a room impulse response, keeping the signal's length (the tail that
    would run past the end is dropped)."""
    from scipy.signal import fftconvolve

    if signal.size == 0:
        return signal.astype(np.float32, copy=True)
    return fftconvolve(signal, rir, mode="full")[: signal.size].astype(np.float32)


def telephone_band(signal: np.ndarray, sample_rate: int) -> np.ndarray:
    """Narrowband telephone: down to 8 kHz, 300-3400 Hz band-pass, 8-bit mu-law (G.711
    style) encode and decode, back up to `sample_rate`. Same length as the input; nothing
    is left above 4 kHz (the upsampling filter removes the images)."""
    from scipy.signal import butter, sosfilt

    if signal.size == 0:
        return signal.astype(np.float32, copy=True)
    narrow = soxr.resample(signal.astype(np.float32), sample_rate, TELEPHONE_RATE, quality="VHQ")
    sos = butter(4, TELEPHONE_BAND_HZ, btype="bandpass", fs=TELEPHONE_RATE, output="sos")
    narrow = sosfilt(sos, narrow)
    peak = float(np.max(np.abs(narrow)))
    scale = max(peak, 1e-9)
    x = np.clip(narrow / scale, -1.0, 1.0)
    encoded = np.sign(x) * np.log1p(MU * np.abs(x)) / np.log1p(MU)
    quantized = np.round((encoded + 1.0) / 2.0 * MU) / MU * 2.0 - 1.0
    decoded = np.sign(quantized) * ((1.0 + MU) ** np.abs(quantized) - 1.0) / MU * scale
    wide = soxr.resample(decoded.astype(np.float32), TELEPHONE_RATE, sample_rate, quality="VHQ")
    out = np.zeros(signal.size, dtype=np.float32)
    out[: min(signal.size, wide.size)] = wide[: signal.size]
    return out


def integrated_loudness(signal: np.ndarray, sample_rate: int) -> float | None:
    """BS.1770-4 integrated loudness (LUFS) with pyloudnorm; None when too short or silent."""
    import pyloudnorm

    if signal.size < MIN_LOUDNESS_S * sample_rate:
        return None
    value = float(pyloudnorm.Meter(sample_rate).integrated_loudness(signal.astype(np.float64)))
    return value if np.isfinite(value) else None


def loudness_gain_db(signal: np.ndarray, sample_rate: int, target_lufs: float) -> float | None:
    """The gain (dB) that brings `signal` to `target_lufs`; None if it cannot be measured."""
    measured = integrated_loudness(signal, sample_rate)
    return None if measured is None else target_lufs - measured


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
