"""Barge-ins, shared by both arrangers (`pipeline.timeline`, `pipeline.timeline_segments`).

Which floor may be interrupted and where the interrupter comes in and the floor is cut, at
a word boundary. Imports neither arranger, so the two do not import each other.
"""

from __future__ import annotations

from pipeline.schema import Chunk, Placed
from pipeline.timing import TimingModel

MIN_WORDS_TO_INTERRUPT = 3
MIN_LEAD_S = 0.1  # an overlapping turn starts at least this long after the floor's start


def can_be_interrupted(floor: Placed, speaker: str) -> bool:
    return (
        floor.speaker != speaker
        and floor.kind == "turn"
        and floor.cut_at_s is None
        and len(floor.words) >= MIN_WORDS_TO_INTERRUPT
    )


def interrupt(floor: Placed, earliest: float, timing: TimingModel) -> float:
    """Barge in during one of the floor's middle words and cut the floor at a word boundary.

    The barged-in speaker goes on for a reaction time, then stops at the end of the word it
    is saying. Returns the interrupter's start.
    """
    words = floor.words
    count = len(words)
    candidates = [
        w for w in range(max(1, int(count * 0.3)), max(2, int(count * 0.75)))
        if w < count - 1 and words[w][1] >= earliest
    ]
    if not candidates:
        return floor.end_s + timing.gap()
    reaction = timing.reaction()
    chosen = timing.rng.choice(candidates)
    barge_in = words[chosen][1] + timing.rng.uniform(0.0, words[chosen][2] - words[chosen][1])
    threshold = barge_in + reaction
    cut_word = next((j for j in range(chosen, count) if words[j][2] >= threshold), count - 1)
    if cut_word >= count - 1:
        cut_word = count - 2
        barge_in = min(barge_in, words[cut_word][2] - 0.05)
    cut_at = words[cut_word][2]
    floor.cut_at_s = round(cut_at, 4)
    floor.end_s = round(cut_at, 4)
    floor.words = words[: cut_word + 1]
    floor.chunks = truncate(floor.chunks, cut_at)
    return barge_in


def truncate(chunks: list[Chunk], cut_at: float) -> list[Chunk]:
    kept: list[Chunk] = []
    for chunk in chunks:
        if chunk.dst_start_s >= cut_at:
            break
        if chunk.dst_end_s > cut_at:
            length = cut_at - chunk.dst_start_s
            chunk = Chunk(src_start_s=chunk.src_start_s, src_end_s=chunk.src_start_s + length,
                          dst_start_s=chunk.dst_start_s)
        kept.append(chunk)
    return kept
