"""How much a run writes: exactly N dialogues, or H hours of audio within ±tolerance.

The goal counts what is written, not what is planned: rejected dialogues do not count, and
the plan holds spare scenario indices so rejects are replaced. The driver feeds finished
dialogues in index order; the goal says whether to keep each one and when to stop. At the
stop the driver writes the shard in progress with only the indices it has seen (a trimmed
shard, its `planned` count in the shard metadata says how many), so a rerun of the same
config finds the goal already met in the shards and does nothing.

Hours mode keeps a dialogue only if the total stays under H·(1+tolerance) and stops once the
total reaches H; a dialogue that would overshoot is dropped with the reason `over_budget`.
Once the total is within tolerance below H, `patience` overshooting dialogues in a row
(default 1) stop the run there rather than spend more dialogues looking for a short one;
below the band it keeps looking, within the planned spare indices. Durations are seconds of
the rendered mix.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

AVERAGE_DIALOGUE_S = 60.0
OVER_BUDGET = "over_budget"


@dataclass
class BudgetGoal:
    hours: float | None
    dialogues: int | None
    tolerance: float = 0.05
    patience: int = 1
    written: int = 0
    audio_s: float = 0.0
    overshoots: int = 0

    def __post_init__(self) -> None:
        if self.hours is None and self.dialogues is None:
            raise ValueError("budget: set budget.dialogues=N or budget.hours=H")

    @property
    def by_hours(self) -> bool:
        return self.hours is not None

    def planned_indices(self, shard_dialogues: int) -> int:
        """Scenario indices to plan: the goal plus room for rejects (and, in hours mode,
        for dialogues shorter than the assumed average or dropped as over budget)."""
        if self.by_hours:
            assert self.hours is not None
            return max(shard_dialogues, math.ceil(self.hours * 3600 / AVERAGE_DIALOGUE_S * 2)
                       + shard_dialogues)
        assert self.dialogues is not None
        return self.dialogues + max(shard_dialogues, math.ceil(self.dialogues * 0.1))

    def offer(self, audio_s: float) -> bool:
        """A dialogue of `audio_s` seconds is ready: True to write it (and count it)."""
        if self.by_hours:
            assert self.hours is not None
            if self.audio_s + audio_s > self.hours * 3600 * (1 + self.tolerance):
                self.overshoots += 1
                return False
        self.overshoots = 0
        self.written += 1
        self.audio_s += audio_s
        return True

    def reached(self) -> bool:
        if not self.by_hours:
            assert self.dialogues is not None
            return self.written >= self.dialogues
        assert self.hours is not None
        goal = self.hours * 3600
        return self.audio_s >= goal or (
            self.audio_s >= goal * (1 - self.tolerance) and self.overshoots >= self.patience
        )

    def report(self) -> dict:
        hours = self.audio_s / 3600
        if self.by_hours:
            assert self.hours is not None
            met = abs(hours - self.hours) <= self.hours * self.tolerance
        else:
            met = self.written == self.dialogues
        return {"hours": self.hours, "dialogues": None if self.by_hours else self.dialogues,
                "tolerance": self.tolerance, "written_hours": round(hours, 4),
                "written_dialogues": self.written, "met": met}
