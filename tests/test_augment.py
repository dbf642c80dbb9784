"""Each augmentation does what it says, measured on real signals."""

import numpy as np
import pytest
import soundfile as sf

from pipeline.augment import (
    AugmentSettings,
    active_power,
    add_noise,
    apply_gains,
    augment,
    check_settings,
    colored_noise,
    dialogue_rng,
    draw_room,
    integrated_loudness,
    loudness_gain_db,
    reverberate,
    room_impulse_responses,
    telephone_band,
)

RATE = 16000


def speechlike(seconds: float, rng: np.random.Generator, rate: int = RATE) -> np.ndarray:
    """Harmonic bursts (0.3 s on, 0.15 s off) with a broadband component, like voiced speech."""
    t = np.arange(int(seconds * rate)) / rate
    f0 = 140.0
    tone = sum(np.sin(2 * np.pi * f0 * k * t) / k for k in range(1, 30) if f0 * k < rate / 2)
    envelope = ((t % 0.45) < 0.3).astype(np.float64)
    signal = 0.2 * envelope * (tone + 0.3 * rng.standard_normal(t.size))
    return signal.astype(np.float32)


def band_energy_ratio_db(signal: np.ndarray, rate: int, above_hz: float) -> float:
    """Energy above `above_hz` relative to the total, in dB."""
    spectrum = np.abs(np.fft.rfft(signal.astype(np.float64))) ** 2
    freqs = np.fft.rfftfreq(signal.size, 1 / rate)
    return 10 * np.log10(spectrum[freqs > above_hz].sum() / spectrum.sum() + 1e-30)


def independent_snr_db(clean: np.ndarray, noisy: np.ndarray, rate: int) -> float:
    """SNR as a listener would measure it: speech power over the 20 ms frames where the clean
    signal is active (within 40 dB of its loudest frame), over the power of noisy - clean."""
    hop = int(0.02 * rate)
    n = clean.size // hop * hop
    frames = clean[:n].astype(np.float64).reshape(-1, hop)
    power = (frames ** 2).mean(axis=1)
    speech = power[power >= power.max() * 1e-4].mean()
    noise = noisy.astype(np.float64) - clean
    return 10 * np.log10(speech / np.mean(noise ** 2))


@pytest.mark.parametrize("color", ["white", "pink", "brown"])
@pytest.mark.parametrize("snr", [0.0, 12.5, 30.0])
def test_noise_is_added_at_the_requested_snr(color, snr):
    rng = np.random.default_rng(1)
    clean = speechlike(3.0, rng)
    noise = colored_noise(clean.size, {"white": 0, "pink": 1, "brown": 2}[color], rng)
    noisy = add_noise(clean, noise, snr, RATE)
    assert abs(independent_snr_db(clean, noisy, RATE) - snr) < 1.0


def test_coloured_noise_has_the_right_spectral_slope():
    rng = np.random.default_rng(2)
    slopes = {}
    for name, exponent in (("white", 0), ("pink", 1), ("brown", 2)):
        noise = colored_noise(2 ** 16, exponent, rng).astype(np.float64)
        power = np.abs(np.fft.rfft(noise)) ** 2
        freqs = np.fft.rfftfreq(noise.size)
        band = (freqs > 0.01) & (freqs < 0.4)
        slopes[name] = np.polyfit(np.log10(freqs[band]), np.log10(power[band]), 1)[0]
    assert slopes["white"] == pytest.approx(0, abs=0.1)
    assert slopes["pink"] == pytest.approx(-1, abs=0.1)
    assert slopes["brown"] == pytest.approx(-2, abs=0.1)


@pytest.mark.parametrize("target", [-30.0, -23.0, -16.0])
def test_loudness_normalisation_hits_the_target(target):
    clean = speechlike(4.0, np.random.default_rng(3))
    gain_db = loudness_gain_db(clean, RATE, target)
    assert gain_db is not None
    normalised = clean * 10 ** (gain_db / 20)
    assert abs(integrated_loudness(normalised, RATE) - target) < 0.5


def test_room_adds_a_reverberant_tail_after_the_dry_signal_ends():
    rng = np.random.default_rng(4)
    dry = np.zeros(2 * RATE, dtype=np.float32)
    dry[: RATE // 2] = speechlike(0.5, rng)
    room = draw_room(AugmentSettings.from_config(
        {"room": {"prob": 1, "rt60_s": [0.5, 0.5]}}).room, 1, rng)
    (rir,) = room_impulse_responses(room, RATE)
    wet = reverberate(dry, rir)
    assert wet.size == dry.size
    after = slice(RATE // 2 + int(0.05 * RATE), RATE)  # 50 ms after the dry signal stops
    assert np.sum(dry[after] ** 2) == 0
    tail_db = 10 * np.log10(np.sum(wet[after] ** 2) / np.sum(wet[: RATE // 2] ** 2))
    assert -40 < tail_db < -3
    # The direct path is not delayed: onsets stay where the timeline put them.
    onset = int(np.argmax(np.abs(wet) > 0.05 * np.abs(wet).max()))
    assert onset < int(0.005 * RATE)


def test_longer_rt60_gives_a_longer_tail():
    energies = []
    for rt60 in (0.2, 0.8):
        room = draw_room(AugmentSettings.from_config(
            {"room": {"prob": 1, "rt60_s": [rt60, rt60], "size_min_m": [6, 5, 3],
                      "size_max_m": [6, 5, 3]}}).room, 1, np.random.default_rng(5))
        (rir,) = room_impulse_responses(room, RATE)
        late = rir[int(0.1 * RATE):]
        energies.append(np.sum(late ** 2) / np.sum(rir ** 2))
    assert energies[1] > 3 * energies[0]


def test_room_places_every_speaker_inside_the_room_apart_from_the_mic():
    settings = AugmentSettings.from_config({"room": {"prob": 1}}).room
    for seed in range(20):
        room = draw_room(settings, 4, np.random.default_rng(seed))
        for source in room.sources_m:
            assert all(0.5 <= c <= s - 0.5 + 1e-9 for c, s in zip(source, room.size_m, strict=True))
        assert len(set(room.sources_m)) == 4


@pytest.mark.parametrize("rate", [16000, 24000])
def test_telephone_band_leaves_no_energy_above_4khz(rate):
    clean = speechlike(2.0, np.random.default_rng(6), rate)
    assert band_energy_ratio_db(clean, rate, 4000) > -20  # the input has high band energy
    phone = telephone_band(clean, rate)
    assert phone.size == clean.size
    assert band_energy_ratio_db(phone, rate, 4000) < -60
    assert band_energy_ratio_db(phone, rate, 3600) < -25  # band-pass edge at 3.4 kHz
    low = np.abs(np.fft.rfft(phone)) ** 2
    freqs = np.fft.rfftfreq(phone.size, 1 / rate)
    assert low[freqs < 200].sum() / low.sum() < 0.02  # and below 300 Hz
    # The speech survives band-pass and 8-bit mu-law: bursts stay > 30 dB above the gaps.
    t = np.arange(phone.size) / rate
    on, off = (t % 0.45) < 0.28, ((t % 0.45) > 0.33) & ((t % 0.45) < 0.43)
    assert 10 * np.log10(np.mean(phone[on] ** 2) / np.mean(phone[off] ** 2)) > 30


def test_gains_are_applied_per_speaker():
    rng = np.random.default_rng(7)
    channels = np.stack([speechlike(1.0, rng), speechlike(1.0, rng)])
    out = apply_gains(channels, [-6.0, 3.0])
    ratio_db = 20 * np.log10(np.sqrt(active_power(out[0], RATE) / active_power(channels[0], RATE)))
    assert ratio_db == pytest.approx(-6.0, abs=1e-3)
    ratio_db = 20 * np.log10(np.sqrt(active_power(out[1], RATE) / active_power(channels[1], RATE)))
    assert ratio_db == pytest.approx(3.0, abs=1e-3)


FULL = {"enabled": True, "gain_db": [-8, 0],
        "room": {"prob": 1.0, "rt60_s": [0.2, 0.4]},
        "noise": {"prob": 1.0, "snr_db": [15, 15]},
        "telephone": {"prob": 0.0},
        "loudness": {"target_lufs": -26.0}}


def two_speakers(seconds: float = 3.0) -> np.ndarray:
    rng = np.random.default_rng(8)
    a, b = speechlike(seconds, rng), speechlike(seconds, rng)
    half = a.size // 2
    a[half:] = 0
    b[:half] = 0
    return np.stack([a, b])


def test_full_chain_is_seeded_recorded_and_reproducible():
    settings = AugmentSettings.from_config(FULL)
    channels = two_speakers()
    first = augment(channels, RATE, ["spk0", "spk1"], settings, dialogue_rng(42))
    again = augment(channels, RATE, ["spk0", "spk1"], settings, dialogue_rng(42))
    other = augment(channels, RATE, ["spk0", "spk1"], settings, dialogue_rng(43))
    assert np.array_equal(first.mix, again.mix) and first.record == again.record
    assert not np.array_equal(first.mix, other.mix)
    record = first.record
    assert set(record["gain_db"]) == {"spk0", "spk1"}
    assert all(-8 <= g <= 0 for g in record["gain_db"].values())
    assert set(record["room"]["sources_m"]) == {"spk0", "spk1"}
    assert record["noise"]["snr_db"] == 15 and record["noise"]["color"] in {"white", "pink",
                                                                            "brown"}
    assert record["telephone"] is False
    assert abs(integrated_loudness(first.mix, RATE) - (-26.0)) < 0.5
    assert first.mix.shape == (channels.shape[1],) and first.channels.shape == channels.shape


def test_channels_stay_dry_targets_with_gain_and_the_final_scale():
    settings = AugmentSettings.from_config(FULL)
    channels = two_speakers()
    out = augment(channels, RATE, ["spk0", "spk1"], settings, dialogue_rng(1))
    scale = 10 ** (out.record["loudness"]["gain_db"] / 20)
    for k, speaker in enumerate(["spk0", "spk1"]):
        expected = channels[k] * 10 ** (out.record["gain_db"][speaker] / 20) * scale
        np.testing.assert_allclose(out.channels[k], expected, atol=1e-5)
    assert not np.allclose(out.mix, out.channels.sum(axis=0), atol=1e-3)  # mix is wet


def test_noise_from_a_folder_of_files(tmp_path):
    noise = colored_noise(RATE // 2, 1.0, np.random.default_rng(9)) * 0.1
    sf.write(tmp_path / "hum.wav", noise, 8000)  # another rate, shorter than the dialogue
    settings = AugmentSettings.from_config(
        {"enabled": True, "noise": {"prob": 1, "snr_db": [5, 5], "dir": str(tmp_path)}})
    channels = two_speakers()
    out = augment(channels, RATE, ["a", "b"], settings, dialogue_rng(3))
    assert out.record["noise"]["file"] == "hum.wav"
    clean = channels.sum(axis=0)
    assert abs(independent_snr_db(clean, out.mix, RATE) - 5.0) < 1.0


def test_disabled_changes_nothing():
    channels = two_speakers()
    out = augment(channels, RATE, ["a", "b"], AugmentSettings(), dialogue_rng(3))
    assert out.record == {"enabled": False}
    np.testing.assert_array_equal(out.channels, channels)


@pytest.mark.parametrize("bad, key", [
    ({"gain_db": [3, -3]}, "augment.gain_db"),
    ({"noise": {"prob": 1.5}}, "augment.noise.prob"),
    ({"noise": {"colors": ["purple"]}}, "augment.noise.colors"),
    ({"noise": {"dir": "/nonexistent/noise"}}, "augment.noise.dir"),
    ({"room": {"size_min_m": [1, 1, 1]}}, "augment.room.size_min_m"),
])
def test_bad_settings_name_the_key(bad, key):
    with pytest.raises(ValueError, match=key):
        check_settings(AugmentSettings.from_config({"enabled": True, **bad}))


def test_generate_config_rejects_an_unknown_augment_key():
    from pipeline.config import ConfigError, GenerateConfig

    with pytest.raises(ConfigError, match=r"augment.noise.snr: unknown key"):
        GenerateConfig.check({"augment": {"enabled": True, "noise": {"snr": [1, 2]}}})
    assert GenerateConfig.check({"augment": {"enabled": True, "telephone": {"prob": 1}}})
