"""Pure signal steps of the acoustic augmentation, over float32 numpy arrays.

Each function takes its randomness as an argument (a numpy Generator) or has none, so it is
a function of its inputs; `pipeline.augment` draws the parameters per dialogue and chains
these steps. Units: seconds, Hz, dB, LUFS; levels are linear amplitudes of float audio in
[-1, 1]. The heavy libraries (soundfile, pyroomacoustics, scipy, pyloudnorm) are imported
inside the step that needs them, so a run without augmentation never loads them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soxr

SPEED_OF_SOUND_M_S = 343.0
TELEPHONE_RATE = 8000
TELEPHONE_BAND_HZ = (300.0, 3400.0)
MU = 255.0
NOISE_SUFFIXES = (".wav", ".flac", ".ogg")
ACTIVE_FRAME_S = 0.02
ACTIVE_THRESHOLD_DB = -40.0
MIN_LOUDNESS_S = 0.4  # BS.1770 gating blocks are 400 ms


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
