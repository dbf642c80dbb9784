"""The arrange stage for a fitted profile: place speech segments the way the corpus does.

Pure: (script, utterances, timing model with a `SegmentModel`) -> Timeline. The corpus was
measured as speech segments (`pipeline.segments`: words merged across silences <= 50 ms),
so the timeline is built from the same units, in start order:
1. each turn is cut into pieces where the script asks for a mid-turn pause; silences the
   voice leaves between words that the corpus's speakers do not leave are closed up, so a
   piece is one speech segment, as long as the corpus's are (splitting turns further
   made segments shorter and same-speaker runs longer than the corpus's);
2. the backchannels that follow a turn in the script go after one of its segments, so the
   turn's speaker resumes after them, as in meetings;
3. each segment is placed against the one placed before it (the previous segment in start
   order): by the same speaker after a within-speaker pause; by someone whose own segment
   is still running after that speaker's own end plus a resume pause; otherwise at a
   transfer offset drawn for segments of these lengths, never before the previous segment
   starts and never overlapping the speaker's own speech. The script's overlap requests
   keep the draw negative; barge-ins cut the previous turn as in `pipeline.timeline`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from pipeline.schema import Chunk, DialogueScript, Placed, Timeline, Turn, Utterance
from pipeline.segments import MERGE_SILENCE_S, speech_segments
from pipeline.timeline import MIN_LEAD_S, _can_be_interrupted, _interrupt
from pipeline.timing import TimingModel
from pipeline.timing_stats import Interval

KEEP_S = 0.02  # audio kept on each side of a joined silence (40 ms left: one segment)


@dataclass
class _Piece:
    """One speech segment's worth of a turn: source spans, each with its start relative to
    the piece, and the piece's speech segments (relative too)."""

    turn: int
    speaker: str
    parts: list[tuple[float, float, float]]  # (src start, src end, start in the piece)
    segments: list[tuple[float, float]]
    first_of_turn: bool = False
    dst_start_s: float = 0.0


@dataclass
class _Clock:
    last: Interval | None = None  # the last speech segment in start order
    own_end: dict[str, float] = field(default_factory=dict)


def arrange_segments(script: DialogueScript, utterances: Sequence[Utterance],
                     timing: TimingModel) -> Timeline:
    if len(utterances) != len(script.turns):
        raise ValueError(f"arrange got {len(utterances)} utterances for {len(script.turns)} "
                         "turns")
    model = timing.settings.segment_model
    assert model is not None, "arrange_segments needs a profile with a segment model"
    rng = timing.rng
    clock = _Clock()
    placed: dict[int, Placed] = {}
    index = 0
    turns = script.turns
    while index < len(turns):
        host = index
        followers = []
        index += 1
        while index < len(turns) and turns[index].kind == "backchannel" and \
                turns[index].speaker != turns[host].speaker:
            followers.append(index)
            index += 1
        pieces = _split(host, turns[host], utterances[host], timing)
        last = len(pieces) - 1  # each follower goes after the host's k-th piece
        spots = [rng.randrange(last) if last and rng.random() < model.resume_share else last
                 for _ in followers]
        order: list[_Piece | int] = []
        for k, piece in enumerate(pieces):
            order += [piece] + [f for f, spot in zip(followers, spots, strict=True)
                                if spot == k]
        floor = placed.get(host - 1) if host else None
        for item in order:
            if isinstance(item, int):
                piece = _split(item, turns[item], utterances[item], timing, whole=True)[0]
                _place_piece(piece, turns[item], clock, timing)
                placed[item] = _to_placed(item, turns[item], utterances[item], [piece])
                continue
            if item.first_of_turn and turns[host].interrupts and floor is not None and \
                    _can_be_interrupted(floor, item.speaker):
                earliest = clock.own_end.get(item.speaker, -1.0) + model.min_pause_s
                item.dst_start_s = max(0.0, _interrupt(floor, earliest, timing)
                                       - item.segments[0][0])
                clock.own_end[floor.speaker] = floor.end_s
                _advance(clock, item)
                continue
            _place_piece(item, turns[host], clock, timing)
        placed[host] = _to_placed(host, turns[host], utterances[host], pieces)
    segments = [placed[k] for k in range(len(turns))]
    duration = max(p.end_s for p in segments) + timing.settings.tail_s
    return Timeline(duration_s=round(duration, 4), segments=segments)


def _split(index: int, turn: Turn, utterance: Utterance, timing: TimingModel,
           whole: bool = False) -> list[_Piece]:
    """Cut the utterance into pieces where the script asks for a mid-turn pause.

    Silences the voice leaves between words that are shorter than the corpus's 5th-percentile
    within-speaker pause (`SegmentModel.join_silence_s`) are shortened to 2 * KEEP_S, so
    they do not split a segment where the corpus's speakers never do; longer ones stay.
    """
    model = timing.settings.segment_model
    words = utterance.words
    if not words:
        return [_Piece(index, turn.speaker, [(0.0, utterance.duration_s, 0.0)],
                       [(0.0, utterance.duration_s)], first_of_turn=True)]
    cuts = [] if whole else sorted({k for k in turn.pauses if 0 <= k < len(words) - 1})
    bounds = [0.0] + [0.5 * (words[k][2] + words[k + 1][1]) for k in cuts] + [
        utterance.duration_s]
    pieces = []
    for lo, hi in zip(bounds, bounds[1:], strict=False):
        group = [w for w in words if lo <= w[1] < hi]
        parts, spans = _join(group, lo, hi, model.join_silence_s)
        own = speech_segments([Interval(turn.speaker, b, e) for b, e in spans])
        segments = [(i.start_s, i.end_s) for i in own] or [(0.0, hi - lo)]
        pieces.append(_Piece(index, turn.speaker, parts, segments))
    pieces[0].first_of_turn = True
    return pieces


def _join(group: list, lo: float, hi: float, join_s: float
          ) -> tuple[list[tuple[float, float, float]], list[tuple[float, float]]]:
    """Source parts of [lo, hi) with short silences between words taken out, and the word
    spans relative to the piece."""
    parts: list[tuple[float, float, float]] = []
    spans: list[tuple[float, float]] = []
    begin, removed = lo, 0.0
    for k, (_, start, end) in enumerate(group):
        if k:
            silence = start - group[k - 1][2]
            if MERGE_SILENCE_S < silence <= join_s:
                cut_from, cut_to = group[k - 1][2] + KEEP_S, start - KEEP_S
                parts.append((begin, cut_from, begin - lo - removed))
                removed += cut_to - cut_from
                begin = cut_to
        spans.append((start - lo - removed, end - lo - removed))
    parts.append((begin, hi, begin - lo - removed))
    return parts, spans


def _place_piece(piece: _Piece, turn: Turn, clock: _Clock, timing: TimingModel) -> None:
    """Start the piece so that its first speech segment follows `clock.last` as the corpus
    does (module docstring, step 3)."""
    model = timing.settings.segment_model
    lead = piece.segments[0][0]  # silence inside the piece before its first word
    first_len = piece.segments[0][1] - piece.segments[0][0]
    last = clock.last
    own = clock.own_end.get(piece.speaker)
    if last is None:
        start = 0.0
    elif last.speaker == piece.speaker:
        start = last.end_s + model.pause(timing.rng)
    elif own is not None and own > last.end_s:
        start = own + model.resume(timing.rng)
    else:
        previous_len = last.end_s - last.start_s
        lower = -previous_len + min(MIN_LEAD_S, 0.5 * previous_len)
        if own is not None:
            lower = max(lower, own + model.min_pause_s - last.end_s)
        request = True if (piece.first_of_turn and turn.overlap) else None
        start = last.end_s + model.offset(timing.rng, previous_len, first_len, lower, request)
    piece.dst_start_s = max(0.0, start - lead)  # audio never starts before the mix
    _advance(clock, piece)


def _advance(clock: _Clock, piece: _Piece) -> None:
    base = piece.dst_start_s
    last = piece.segments[-1]
    clock.last = Interval(piece.speaker, base + last[0], base + last[1])
    clock.own_end[piece.speaker] = max(clock.own_end.get(piece.speaker, 0.0), base + last[1])


def _to_placed(index: int, turn: Turn, utterance: Utterance, pieces: list[_Piece]) -> Placed:
    chunks = [Chunk(src_start_s=a, src_end_s=b, dst_start_s=round(p.dst_start_s + rel, 4))
              for p in pieces for a, b, rel in p.parts if b > a]
    chunks.sort(key=lambda c: c.src_start_s)

    def absolute(t: float) -> float:
        for chunk in chunks:
            if t <= chunk.src_end_s:
                return round(chunk.dst_start_s + max(0.0, t - chunk.src_start_s), 4)
        return round(chunks[-1].dst_end_s, 4)

    words = [(text, absolute(b), absolute(e)) for text, b, e in utterance.words]
    return Placed(turn=index, speaker=turn.speaker, start_s=round(chunks[0].dst_start_s, 4),
                  end_s=round(chunks[-1].dst_end_s, 4), kind=turn.kind,
                  addressee=turn.addressee, words=words, chunks=chunks)
