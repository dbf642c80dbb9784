"""What the offline composers lay out before any text exists: turn slots and pause points.

Shared by the 2-party composer (`pipeline.writers.offline`) and the meeting composer
(`pipeline.writers.meeting`); it imports neither, so the two do not import each other.
"""

from __future__ import annotations

import random
from dataclasses import dataclass


@dataclass
class Slot:
    """One kind="turn" turn before it has text."""

    role: str  # "user" or "assistant"
    interrupts: bool = False
    overlap: bool = False
    backchannel_after: bool = False
    backchannels: int = 0  # meetings: listeners acknowledging this turn (1 or 2)
    interrupted: bool = False
    pauses: int = 0

    def min_words(self) -> int:
        need = {0: 2, 1: 6}.get(self.pauses, 10)
        if self.backchannel_after:
            need = max(need, 8 if self.backchannels < 2 else 12)
        if self.interrupted:
            need = max(need, 15)
        return need


def pause_points(text: str, count: int, rng: random.Random) -> list[int]:
    """Pause after punctuation where possible: that is where people stop to think."""
    if count == 0:
        return []
    words = text.split()
    inside = range(1, len(words) - 1)
    marked = [i for i in inside if words[i][-1] in ",.?!;:"]
    rest = [i for i in inside if i not in marked]
    rng.shuffle(marked)
    rng.shuffle(rest)
    return sorted((marked + rest)[:count])
