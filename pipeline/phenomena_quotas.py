"""Phenomenon quotas and who speaks next: the counts a scenario asks its script for.

Pure arithmetic over the plan settings (pipeline.scenarios): stochastic rounding keeps each
count's mean at its expectation, and caps keep every quota within what the turns can hold.
"""

from __future__ import annotations

import math
import random
from typing import Protocol

from pipeline.schema import Phenomena


class QuotaRates(Protocol):
    """The plan settings a quota depends on (pipeline.scenarios.PlanSettings has them)."""

    backchannel_rate: float
    interruption_rate: float
    overlap_rate: float
    pause_rate: float
    side_talk_rate: float
    transfers: str

MEETING_ROLES = ("chair", "participant", "assistant")
DEFAULT_NEXT_SPEAKER: dict[str, dict[str, float]] = {
    "chair": {"chair": 0.05, "participant": 0.6, "assistant": 0.35},
    "participant": {"chair": 0.3, "participant": 0.4, "assistant": 0.3},
    "assistant": {"chair": 0.35, "participant": 0.6, "assistant": 0.05},
}
STAY_AFTER_BACKCHANNEL = 0.4  # 2-party: chance the floor holder goes on after a backchannel
BACKCHANNEL_BY_NEXT = 0.9  # meetings: chance a backchannel comes from the next speaker
BACKCHANNEL_PAIR = 1.0  # meetings: chance a backchannel joins another listener's in one turn


def next_speaker_matrix(
    roles: list[str], role_matrix: dict[str, dict[str, float]] | None = None
) -> list[list[float]]:
    """Speaker-level first-order Markov matrix (rows sum to 1) from a role-level one.

    P(next = j | current = i) = M[role_i][role_j] / |speakers with role_j|.
    """
    matrix = role_matrix or DEFAULT_NEXT_SPEAKER
    members = {role: roles.count(role) for role in set(roles)}
    rows = []
    for role in roles:
        row = [matrix[role].get(other, 0.0) / members[other] for other in roles]
        total = sum(row)
        if total <= 0:
            raise ValueError(f"plan.next_speaker: row {role!r} gives no speaker a chance")
        rows.append([round(p / total, 6) for p in row])
    return rows


def change_probability(matrix: list[list[float]] | None) -> float:
    """Long-run share of turn boundaries where the speaker changes (1.0 for 2-party)."""
    if matrix is None:
        return 1.0
    size = len(matrix)
    weights = [1.0 / size] * size
    for _ in range(200):  # power iteration to the stationary distribution
        weights = [sum(weights[i] * matrix[i][j] for i in range(size)) for j in range(size)]
    return 1.0 - sum(weights[i] * matrix[i][i] for i in range(size))


def quotas(settings: QuotaRates, turns: int, speakers: int, rng: random.Random,
            matrix: list[list[float]] | None = None) -> Phenomena:
    """Draw phenomenon counts around their expectations and cap them to what fits.

    Stochastic rounding keeps the mean equal to the expectation (an expected 0.6 interruption
    becomes 1 interruption in 60 % of scenarios). Expected speaker transfers: 2-party
    dialogues alternate except where the floor holder goes on after a backchannel; meetings
    change speaker as often as their Markov matrix says. `pauses` counts pause points (word
    indices), one per paused turn unless more pauses than turns are asked for.
    """
    boundaries = turns - 1
    rate = min(settings.backchannel_rate, 0.95)
    expected_backchannels = rate / (1.0 - rate) * turns
    hosts = expected_backchannels  # turns followed by backchannels
    if matrix is None:
        change = 1.0 - STAY_AFTER_BACKCHANNEL  # at a backchannel's boundary
        transfers = boundaries - STAY_AFTER_BACKCHANNEL * expected_backchannels
        next_not_listener = STAY_AFTER_BACKCHANNEL
    else:
        hosts = expected_backchannels / (1.0 + BACKCHANNEL_PAIR)
        change = change_probability(matrix)
        transfers = boundaries * change
        next_not_listener = (1.0 - change) + change * (1.0 - BACKCHANNEL_BY_NEXT) * (
            1.0 - 1.0 / (speakers - 1))
    transfers = max(0.0, transfers)
    if settings.transfers == "segments":
        # a host turn with backchannels gives one overlapped transfer (host -> first one),
        # one transfer per further backchannel, and one more to the next turn unless the
        # last backchannel's speaker takes it; the host's own transfer is no longer counted
        counted = transfers + expected_backchannels + hosts * (next_not_listener - change)
        overlapped = max(0.0, settings.overlap_rate * counted - hosts)
    else:
        overlapped = settings.overlap_rate * transfers
    interruptions = stochastic_round(min(settings.interruption_rate * transfers, overlapped),
                                      rng)
    overlaps = stochastic_round(max(0.0, overlapped - interruptions), rng)
    backchannels = stochastic_round(expected_backchannels, rng)
    pauses = stochastic_round(settings.pause_rate * turns, rng)
    interruptions = min(interruptions, (boundaries + 1) // 2)  # never two in a row
    overlaps = min(overlaps, boundaries - interruptions)
    backchannels = min(backchannels, boundaries - interruptions - overlaps)
    side_talk = 0
    if speakers > 2:
        side_talk = stochastic_round(settings.side_talk_rate * turns, rng)
    return Phenomena(backchannels=backchannels, interruptions=interruptions,
                     pauses=min(pauses, 2 * turns), overlaps=overlaps, side_talk=side_talk)


def stochastic_round(value: float, rng: random.Random) -> int:
    low = math.floor(value)
    return low + (1 if rng.random() < value - low else 0)
