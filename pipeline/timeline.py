"""The arrange stage: place every synthesized utterance on one conversation clock.

Pure: (script, utterances, timing model) -> Timeline. The script says *what* happens
(backchannel, barge-in, overlapped transfer, mid-turn pause); the timing model says *when*.
An overlap may last longer than the next turn (the turn is then said inside the floor, as
often in meetings) but never starts before the floor does, so turns stay in script order.
Each turn is placed against the end of the turn before it (not the longest one still
running), so a measured offset is the drawn one; a speaker never overlaps themself.
Only words actually spoken survive: a barged-in turn keeps the words that end by its cut.
"""

from __future__ import annotations

from collections.abc import Sequence

from pipeline.schema import Chunk, DialogueScript, Placed, Timeline, Turn, Utterance
from pipeline.timeline_barge_in import MIN_LEAD_S, can_be_interrupted, interrupt
from pipeline.timing import TimingModel


def arrange(
    script: DialogueScript, utterances: Sequence[Utterance], timing: TimingModel
) -> Timeline:
    if timing.settings.segment_model is not None:  # a fitted profile: segment by segment
        from pipeline.timeline_segments import arrange_segments

        return arrange_segments(script, utterances, timing)
    if len(utterances) != len(script.turns):
        raise ValueError(
            f"arrange got {len(utterances)} utterances for {len(script.turns)} turns"
        )
    placed: list[Placed] = []
    last_end: dict[str, float] = {}
    floor: Placed | None = None
    acknowledged = -1.0  # end of the last backchannel inside the current floor
    for index, (turn, utterance) in enumerate(zip(script.turns, utterances, strict=True)):
        chunks = _chunks_with_pauses(turn, utterance, timing)
        earliest = last_end.get(turn.speaker, -1.0) + timing.settings.min_self_gap_s
        if turn.kind == "backchannel" and floor is not None and floor.speaker != turn.speaker:
            earliest = max(earliest, acknowledged + timing.backchannel_delay())
            start = _backchannel_start(floor, utterance.duration_s, earliest, timing)
        elif floor is None:
            start = 0.0
        elif turn.interrupts and can_be_interrupted(floor, turn.speaker):
            start = interrupt(floor, earliest, timing)
        else:
            floor_end = floor.end_s
            if floor.speaker == turn.speaker:
                start = floor_end + timing.same_speaker_gap(turn.speaker)
            elif turn.overlap:
                overlap = min(timing.overlap(), floor_end - floor.start_s - MIN_LEAD_S,
                              0.5 * utterance.duration_s)  # no turn said inside another
                start = floor_end - max(0.0, overlap)
            else:
                previous = script.turns[floor.turn].text
                start = floor_end + timing.gap(turn.speaker, previous, turn.text)
        start = max(0.0, start, earliest)
        segment = _place(index, turn, utterance, chunks, start)
        placed.append(segment)
        last_end[turn.speaker] = segment.end_s
        if turn.kind == "backchannel":
            acknowledged = segment.end_s
        if turn.kind == "turn" or floor is None:
            floor = segment
            acknowledged = -1.0
    duration = max(p.end_s for p in placed) + timing.settings.tail_s
    return Timeline(duration_s=round(duration, 4), segments=placed)


def floor_duration(segment: Placed) -> float:
    return segment.end_s - segment.start_s


def _chunks_with_pauses(turn: Turn, utterance: Utterance, timing: TimingModel) -> list[Chunk]:
    """Split the utterance between words where the script asks for a mid-turn pause."""
    cuts: list[tuple[float, float]] = []
    words = utterance.words
    for after in sorted(set(turn.pauses)):
        if 0 <= after < len(words) - 1:
            split = 0.5 * (words[after][2] + words[after + 1][1])
            cuts.append((split, timing.pause()))
    chunks: list[Chunk] = []
    src_start, shift = 0.0, 0.0
    for split, pause in cuts:
        chunks.append(Chunk(src_start_s=src_start, src_end_s=split, dst_start_s=src_start + shift))
        shift += pause
        src_start = split
    chunks.append(
        Chunk(src_start_s=src_start, src_end_s=utterance.duration_s, dst_start_s=src_start + shift)
    )
    return chunks


def _place(
    index: int, turn: Turn, utterance: Utterance, chunks: list[Chunk], start: float
) -> Placed:
    moved = [
        Chunk(src_start_s=c.src_start_s, src_end_s=c.src_end_s, dst_start_s=c.dst_start_s + start)
        for c in chunks
    ]
    words = [
        (text, _to_absolute(moved, begin, start=True), _to_absolute(moved, end))
        for text, begin, end in utterance.words
    ]
    return Placed(
        turn=index,
        speaker=turn.speaker,
        start_s=round(start, 4),
        end_s=round(moved[-1].dst_end_s, 4),
        kind=turn.kind,
        addressee=turn.addressee,
        words=words,
        chunks=moved,
    )


def _to_absolute(chunks: list[Chunk], src_time: float, start: bool = False) -> float:
    """Mix time (s) of an utterance time. A word's start on a cut belongs to the chunk after
    the pause, its end to the chunk before: abutting words are never stretched across it."""
    for chunk in chunks[:-1]:
        if src_time < chunk.src_end_s or (not start and src_time == chunk.src_end_s):
            return round(chunk.dst_start_s + max(0.0, src_time - chunk.src_start_s), 4)
    last = chunks[-1]
    return round(last.dst_start_s + min(max(0.0, src_time - last.src_start_s),
                                        last.src_end_s - last.src_start_s), 4)


def _backchannel_start(
    host: Placed, duration: float, earliest: float, timing: TimingModel
) -> float:
    """Start a backchannel just after a word boundary of the host, ending before the host does.

    Boundaries at a mid-turn pause are preferred: that is where listeners acknowledge.
    """
    boundaries = [end for _, _, end in host.words[:-1]]
    fits = [
        b for b in boundaries
        if b + timing.settings.backchannel_delay_max_s + duration <= host.end_s and b >= earliest
    ]
    pauses = [b for b in fits if _pause_follows(host, b)]
    pool = pauses or fits[len(fits) // 4: max(len(fits) // 4 + 1, 3 * len(fits) // 4)] or fits
    if not pool:
        return host.end_s + timing.gap()
    return timing.rng.choice(pool) + timing.backchannel_delay()


def _pause_follows(host: Placed, boundary: float) -> bool:
    for text_after in host.words:
        if text_after[1] > boundary:
            return text_after[1] - boundary > 0.3
    return False
