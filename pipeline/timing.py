"""The timing model: how long people leave between, and overlap across, turns.

Defaults follow human conversation studies (DESIGN section 5): gaps between speakers centre
near 200 ms, overlapped transfers have log-normal lengths of a few hundred ms, pauses inside
a turn are longer than gaps between turns, and a barged-in speaker stops at a word boundary
a reaction time after the barge-in. All values are seconds.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass


@dataclass(frozen=True)
class LogNormal:
    """A log-normal draw given by its median (seconds) and sigma (of the log)."""

    median_s: float
    sigma: float
    max_s: float = 10.0

    def draw(self, rng: random.Random) -> float:
        return min(self.max_s, self.median_s * math.exp(rng.gauss(0.0, self.sigma)))


@dataclass(frozen=True)
class TimingSettings:
    gap: LogNormal = LogNormal(0.22, 0.7, 3.0)
    overlap: LogNormal = LogNormal(0.35, 0.5, 1.5)
    same_speaker_gap: LogNormal = LogNormal(0.45, 0.5, 3.0)
    pause: LogNormal = LogNormal(0.75, 0.35, 3.0)
    reaction_min_s: float = 0.2
    reaction_max_s: float = 0.6
    backchannel_delay_min_s: float = 0.05
    backchannel_delay_max_s: float = 0.3
    min_self_gap_s: float = 0.05
    tail_s: float = 0.3

    @classmethod
    def from_config(cls, cfg: dict) -> TimingSettings:
        def lognormal(key: str, default: LogNormal) -> LogNormal:
            spec = cfg.get(key) or {}
            return LogNormal(
                float(spec.get("median_s", default.median_s)),
                float(spec.get("sigma", default.sigma)),
                float(spec.get("max_s", default.max_s)),
            )

        defaults = cls()
        return cls(
            gap=lognormal("gap", defaults.gap),
            overlap=lognormal("overlap", defaults.overlap),
            same_speaker_gap=lognormal("same_speaker_gap", defaults.same_speaker_gap),
            pause=lognormal("pause", defaults.pause),
            reaction_min_s=float(cfg.get("reaction_min_s", defaults.reaction_min_s)),
            reaction_max_s=float(cfg.get("reaction_max_s", defaults.reaction_max_s)),
            backchannel_delay_min_s=float(
                cfg.get("backchannel_delay_min_s", defaults.backchannel_delay_min_s)
            ),
            backchannel_delay_max_s=float(
                cfg.get("backchannel_delay_max_s", defaults.backchannel_delay_max_s)
            ),
            min_self_gap_s=float(cfg.get("min_self_gap_s", defaults.min_self_gap_s)),
            tail_s=float(cfg.get("tail_s", defaults.tail_s)),
        )


class TimingModel:
    """Draws every timing decision of the arranger from one seeded generator."""

    def __init__(self, settings: TimingSettings, rng: random.Random) -> None:
        self.settings = settings
        self.rng = rng

    def gap(self) -> float:
        return self.settings.gap.draw(self.rng)

    def overlap(self) -> float:
        return self.settings.overlap.draw(self.rng)

    def same_speaker_gap(self) -> float:
        return self.settings.same_speaker_gap.draw(self.rng)

    def pause(self) -> float:
        return self.settings.pause.draw(self.rng)

    def reaction(self) -> float:
        return self.rng.uniform(self.settings.reaction_min_s, self.settings.reaction_max_s)

    def backchannel_delay(self) -> float:
        return self.rng.uniform(
            self.settings.backchannel_delay_min_s, self.settings.backchannel_delay_max_s
        )
