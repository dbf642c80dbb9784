"""Timing learnt at the level of speech segments (`pipeline.segments`), and drawn back.

What `fit-timing` keeps of a corpus (all seconds), and why each is enough to rebuild it:
- `transfers`: (previous length, next length, offset) of observed transfers. An offset is
  drawn from the observed transfers whose two lengths are nearest (in log) to the ones
  being placed, so that offsets keep their dependence on the segments around them (a
  segment can only start as far inside the previous one as that one is long; a short
  segment deep inside a long one is a backchannel, a long one rarely is);
- `resume_pauses`: when the next speaker's own last segment is still running past the end
  of the previous one (a listener's short segment inside it), the next segment follows the
  speaker's own end by one of these silences;
- `resume_share`: how often a backchannel is followed by its host's own next segment (the
  host goes on after it) rather than by someone else's;
- `same_pauses`: silences between consecutive segments of one speaker (mid-turn pauses);
- `segment_lengths`: lengths of the segments that are not backchannels (for reports).
A small Gaussian jitter (`jitter_s`) smooths the resampled values.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from functools import cached_property

import numpy as np

NEIGHBOURS = 200  # observed transfers an offset is drawn from (of a few thousand kept)
MAX_REDRAWS = 64


@dataclass(frozen=True)
class SegmentModel:
    transfers: tuple[tuple[float, float, float], ...]
    resume_pauses: tuple[float, ...]
    same_pauses: tuple[float, ...]
    segment_lengths: tuple[float, ...]
    jitter_s: float = 0.02
    min_pause_s: float = 0.06  # above the 50 ms merge silence, so pauses stay pauses
    join_silence_s: float = 0.4  # shorter silences between a voice's words are closed up
    resume_share: float = 0.3

    @classmethod
    def from_profile(cls, spec: dict) -> SegmentModel:
        return cls(
            transfers=tuple((float(p), float(n), float(o)) for p, n, o in spec["transfers"]),
            resume_pauses=tuple(float(x) for x in spec["resume_pauses"]),
            same_pauses=tuple(float(x) for x in spec["same_pauses"]),
            segment_lengths=tuple(float(x) for x in spec["segment_lengths"]),
            jitter_s=float(spec.get("jitter_s", 0.02)),
            join_silence_s=float(spec.get("join_silence_s", 0.4)),
            resume_share=float(spec.get("resume_share", 0.3)),
        )

    @cached_property
    def _table(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        values = np.asarray(self.transfers, dtype=float).reshape(-1, 3)
        logs = np.log(np.maximum(values[:, :2], 0.01))
        return logs[:, 0], logs[:, 1], values[:, 2]

    def neighbours(self, previous_s: float, next_s: float) -> np.ndarray:
        """Offsets of the NEIGHBOURS observed transfers closest in (log previous length,
        log next length)."""
        log_prev, log_next, offsets = self._table
        distance = ((log_prev - np.log(max(previous_s, 0.01))) ** 2
                    + (log_next - np.log(max(next_s, 0.01))) ** 2)
        count = min(NEIGHBOURS, offsets.size)
        return offsets[np.argpartition(distance, count - 1)[:count]]

    def offset(self, rng: random.Random, previous_s: float, next_s: float, lower_s: float,
               overlap: bool | None = None) -> float:
        """A transfer offset >= lower_s for segments of these lengths; `overlap` True / False
        (a script's request) keeps the negative / non-negative side."""
        pool = self.neighbours(previous_s, next_s)
        for _ in range(MAX_REDRAWS):
            value = float(pool[rng.randrange(pool.size)]) + rng.gauss(0.0, self.jitter_s)
            if value >= lower_s and (overlap is None or (value < 0) == overlap):
                return value
        if overlap and lower_s < 0:
            return rng.uniform(lower_s, 0.0)
        return max(lower_s, 0.0 if overlap is False else lower_s) + self.pause(
            rng, self.resume_pauses)

    def pause(self, rng: random.Random, pool: tuple[float, ...] | None = None) -> float:
        """A within-speaker silence (or a resume pause), never merged away."""
        values = pool or self.same_pauses
        return max(self.min_pause_s, rng.choice(values) + rng.gauss(0.0, self.jitter_s))

    def resume(self, rng: random.Random) -> float:
        return self.pause(rng, self.resume_pauses)
