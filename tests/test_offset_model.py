"""The signed-offset model: one density through zero, sign requests, targets on a seed."""

from __future__ import annotations

import random

import numpy as np
import pytest

from pipeline.offset_model import JohnsonSU, SignedKde
from pipeline.timing import TimingModel, TimingSettings, Variety, is_dispreferred

DRAWS = 10_000


def hole_ratio(offsets: np.ndarray) -> float:
    """Density in [-100, 0) ms over density in [0, 100) ms (a hole at zero -> near 0)."""
    below = ((offsets >= -0.1) & (offsets < 0)).sum()
    above = ((offsets >= 0) & (offsets < 0.1)).sum()
    return below / above


def test_default_density_has_no_hole_at_zero() -> None:
    settings = TimingSettings()
    rng = random.Random(3)
    draws = np.array([settings.offset.draw(rng) for _ in range(DRAWS)])
    assert hole_ratio(draws) >= 1 / 3
    # every 100 ms bin from -300 ms to +500 ms is populated: no gap anywhere near zero
    counts, _ = np.histogram(draws, bins=np.arange(-0.3, 0.51, 0.1))
    assert counts.min() >= 0.01 * DRAWS
    assert 0.15 <= settings.offset.mode() <= 0.25  # mode near +200 ms


def test_sign_requests_condition_without_cutting_a_hole() -> None:
    """Drawing overlaps for the overlapped share and gaps for the rest is the density."""
    density = TimingSettings().offset
    share = density.overlap_share()
    rng = random.Random(5)
    draws = np.array([density.draw(rng, overlap=rng.random() < share) for _ in range(DRAWS)])
    free = np.array([density.draw(rng) for _ in range(DRAWS)])
    assert hole_ratio(draws) >= 1 / 3
    assert (draws < 0).mean() == pytest.approx((free < 0).mean(), abs=0.02)
    for quantile in (0.1, 0.25, 0.5, 0.75, 0.9):
        assert np.quantile(draws, quantile) == pytest.approx(np.quantile(free, quantile),
                                                             abs=0.03)
    assert all(density.draw(rng, overlap=True) < 0 for _ in range(500))
    assert all(density.draw(rng, overlap=False) >= 0 for _ in range(500))


@pytest.mark.parametrize(("share", "gap", "overlap", "weight"),
                         [(0.239, 0.22, 0.30, 0.55), (0.4, 0.5, 0.3, 0.8)])
def test_density_solved_from_targets_hits_them(share, gap, overlap, weight) -> None:
    density = JohnsonSU.from_targets(share, gap, overlap, weight, min_s=-10, max_s=10)
    rng = random.Random(11)
    draws = np.array([density.draw(rng) for _ in range(DRAWS)])
    assert (draws < 0).mean() == pytest.approx(share, rel=0.05)
    assert np.median(draws[draws >= 0]) == pytest.approx(gap, rel=0.05)
    assert np.median(-draws[draws < 0]) == pytest.approx(overlap, rel=0.05)


def test_unreachable_targets_fail_naming_the_knob() -> None:
    with pytest.raises(ValueError, match="overlap_median_s=2.0 is too long"):
        JohnsonSU.from_targets(0.3, 0.2, 2.0, 1.5)


def test_timing_model_on_a_fixed_seed_meets_gap_and_overlap_targets() -> None:
    """Transfers as the arranger asks for them: the planned overlapped share, the rest gaps;
    barge-ins are left out (they follow the reaction-time model)."""
    settings = TimingSettings(variety=Variety(1.0, 1.0, 1.0))
    share = settings.offset.cdf(0.0)
    rng = random.Random(9)
    offsets = []
    for dialogue in range(DRAWS // 20):  # each dialogue's speakers draw their own pace
        model = TimingModel(settings, random.Random(dialogue), ["a", "b"])
        offsets += [-model.overlap() if rng.random() < share else model.gap(rng.choice("ab"))
                    for _ in range(20)]
    offsets = np.array(offsets)
    assert np.median(offsets[offsets >= 0]) == pytest.approx(0.22, rel=0.10)
    barge_ins = settings.interruption_rate
    expected = (settings.turn_overlap_ratio - barge_ins) / (1 - barge_ins)
    assert (offsets < 0).mean() == pytest.approx(expected, rel=0.10)
    assert hole_ratio(offsets) >= 1 / 3


def test_variety_questions_faster_dispreferred_slower() -> None:
    settings = TimingSettings()
    draws = {}
    for name, previous, text in (("question", "Is it open?", "Yes, it is."),
                                 ("statement", "It is open.", "Good."),
                                 ("dispreferred", "Is it open?", "No, sorry, it is not.")):
        model = TimingModel(settings, random.Random(4))
        draws[name] = np.median([model.gap(None, previous, text) for _ in range(2000)])
    assert draws["question"] < draws["statement"] < draws["dispreferred"]
    assert is_dispreferred("Sajnos nem.") and not is_dispreferred("Yes, of course.")


def test_signed_kde_is_continuous_through_zero_and_conditions_on_sign() -> None:
    rng = random.Random(1)
    samples = tuple(rng.gauss(0.2, 0.4) for _ in range(3000))
    kde = SignedKde(samples, bandwidth_s=0.08)
    draws = np.array([kde.draw(rng) for _ in range(DRAWS)])
    assert hole_ratio(draws) >= 1 / 3
    assert all(kde.draw(rng, overlap=True) < 0 for _ in range(300))
    assert all(kde.draw(rng, overlap=False) >= 0 for _ in range(300))
