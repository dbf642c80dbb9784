"""One density for the signed offset of a speaker transfer (seconds; negative = overlap).

Human conversation has no hole at zero: offsets form one distribution with its mode a
little after the end of the previous turn (≈ +200 ms, Stivers et al. 2009, PNAS 106:10587;
Heldner & Edlund 2010, J. Phonetics 38:555) and overlaps as its left tail. The script may
*request* an overlap for a transfer (or ask for none); such a request conditions the draw
on the sign by inverse-CDF sampling inside that side, so the two sides still meet at zero
and, when the script's share of overlaps equals the density's, the mixture of the two
conditioned draws is the density itself.

- `JohnsonSU`: the human default. Johnson's S_U family (Johnson 1949, Biometrika 36:149):
  x = loc + scale * sinh((z - a) / b), z ~ N(0, 1); unbounded on both sides, skewed, with
  closed-form quantiles. `from_targets` solves its four parameters from what a run aims
  for: the share of transfers that overlap, the median gap, the median overlap and a tail
  weight `b` (smaller = heavier tails).
- `SignedKde`: a Gaussian kernel density over observed signed offsets (a fitted corpus),
  conditioned on the sign by redrawing.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from statistics import NormalDist

import numpy as np

_NORMAL = NormalDist()
_SQRT_2PI = math.sqrt(2.0 * math.pi)
MAX_REDRAWS = 64


@dataclass(frozen=True)
class JohnsonSU:
    """x = loc + scale * sinh((z - a) / b); all values in seconds."""

    a: float
    b: float
    loc: float
    scale: float
    min_s: float = -1.5  # the density is truncated to [min_s, max_s]
    max_s: float = 3.0

    @classmethod
    def from_targets(cls, overlap_share: float, gap_median_s: float, overlap_median_s: float,
                     tail_weight: float = 0.8, min_s: float = -1.5,
                     max_s: float = 3.0) -> JohnsonSU:
        """The density with P(x < 0) = overlap_share, median(x | x >= 0) = gap_median_s and
        median(-x | x < 0) = overlap_median_s, for tail weight b = tail_weight.

        Not every triple is reachable for a given b (one unimodal density cannot have long
        overlaps and short gaps at once); the error says which limit was hit.
        """
        if not 0.0 < overlap_share < 1.0:
            raise ValueError(f"timing.offset: overlap share {overlap_share} must be in (0, 1)")
        if gap_median_s <= 0 or overlap_median_s <= 0 or tail_weight <= 0:
            raise ValueError("timing.offset: gap median, overlap median and tail_weight must "
                             "be > 0")
        b = tail_weight
        z0 = _NORMAL.inv_cdf(overlap_share)
        zg = _NORMAL.inv_cdf((1.0 + overlap_share) / 2.0)
        zo = _NORMAL.inv_cdf(overlap_share / 2.0)

        def ratio(a: float) -> float:  # (gap median) / (overlap median); falls as a grows
            s0 = math.sinh((z0 - a) / b)
            return (math.sinh((zg - a) / b) - s0) / (s0 - math.sinh((zo - a) / b))

        want, low, high = gap_median_s / overlap_median_s, -30.0, 30.0
        if not ratio(high) <= want <= ratio(low):
            limit = gap_median_s / ratio(high)
            raise ValueError(
                f"timing.offset: overlap_median_s={overlap_median_s} is too long for a gap "
                f"median of {gap_median_s} s with tail_weight={b}; use at most "
                f"{limit:.3f} s or a smaller tail_weight")
        for _ in range(200):
            middle = 0.5 * (low + high)
            low, high = (middle, high) if ratio(middle) > want else (low, middle)
        a = 0.5 * (low + high)
        s0 = math.sinh((z0 - a) / b)
        scale = gap_median_s / (math.sinh((zg - a) / b) - s0)
        return cls(a=a, b=b, loc=-scale * s0, scale=scale, min_s=min_s, max_s=max_s)

    def quantile(self, u: float) -> float:
        u = min(max(u, 1e-12), 1.0 - 1e-12)
        return self.loc + self.scale * math.sinh((_NORMAL.inv_cdf(u) - self.a) / self.b)

    def cdf(self, x: float) -> float:
        return _NORMAL.cdf(self.a + self.b * math.asinh((x - self.loc) / self.scale))

    def pdf(self, x):
        """Density at x (a float or a numpy array of seconds)."""
        y = (np.asarray(x, dtype=float) - self.loc) / self.scale
        z = self.a + self.b * np.arcsinh(y)
        return self.b / (self.scale * np.sqrt(1.0 + y * y)) * np.exp(-0.5 * z * z) / _SQRT_2PI

    def overlap_share(self) -> float:
        """P(x < 0) of the density truncated to [min_s, max_s] (what `draw()` gives)."""
        first, last = self.cdf(self.min_s), self.cdf(self.max_s)
        return (self.cdf(0.0) - first) / (last - first)

    def mode(self, step_s: float = 0.001) -> float:
        grid = np.arange(self.min_s, self.max_s, step_s)
        return float(grid[int(np.argmax(self.pdf(grid)))])

    def draw(self, rng: random.Random, overlap: bool | None = None) -> float:
        """A signed offset in [min_s, max_s] (the density truncated there, by inverse CDF:
        no mass piles up at the bounds); `overlap` True / False keeps the negative / other
        side."""
        zero, first, last = self.cdf(0.0), self.cdf(self.min_s), self.cdf(self.max_s)
        low, high = {None: (first, last), True: (first, zero), False: (zero, last)}[overlap]
        value = self.quantile(low + (high - low) * rng.random())
        if overlap:
            return max(self.min_s, min(value, -1e-3))
        return min(self.max_s, max(value, self.min_s if overlap is None else 0.0))


@dataclass(frozen=True)
class SignedKde:
    """Gaussian KDE over observed signed offsets: one observation plus N(0, bandwidth_s)."""

    samples: tuple[float, ...]
    bandwidth_s: float

    def draw(self, rng: random.Random, overlap: bool | None = None) -> float:
        """Rejection from the whole density keeps the conditioned side exact up to zero."""
        for _ in range(MAX_REDRAWS):
            value = rng.choice(self.samples) + rng.gauss(0.0, self.bandwidth_s)
            if overlap is None or (value < 0) == overlap:
                return value
        side = [s for s in self.samples if (s < 0) == overlap]
        return rng.choice(side) if side else (-1e-3 if overlap else 0.0)

    def pdf(self, x):
        """Density at x (float or numpy array), summed over the kernels in blocks."""
        points = np.atleast_1d(np.asarray(x, dtype=float))
        samples = np.asarray(self.samples, dtype=float)
        out = np.zeros_like(points)
        for start in range(0, samples.size, 512):
            block = samples[start:start + 512]
            out += np.exp(-0.5 * ((points[:, None] - block[None, :]) / self.bandwidth_s) ** 2
                          ).sum(axis=1)
        out /= samples.size * self.bandwidth_s * _SQRT_2PI
        return out if np.ndim(x) else float(out[0])

    def cdf(self, x: float) -> float:
        return sum(_NORMAL.cdf((x - s) / self.bandwidth_s) for s in self.samples) / len(
            self.samples)
