"""Which clips of a dialogue become Full-Duplex-Bench samples, and where they start and end.

Pure functions of a `DuplexDialogue` (seconds, absolute dialogue time). Each benchmark task
takes the axis events it tests and cuts one clip per event with two rules the benchmark's
scripts rely on:
- a clean start: the reference assistant says nothing in the clip's first `CLEAN_START_S`
  (the benchmark's inputs begin with the user, and a model must not be scored on speech that
  was already running before it heard anything);
- an end the scripts' whole-output rules can read: a pause clip ends before the reference's
  next speech (pause handling counts any speech in output.wav), a turn-taking or interruption
  clip holds enough of the reference answer for the benchmark's take-over rule (≥ 1 s from
  first to last word, or more than 3 words; we ask ≥ 1.2 s of span), a backchannel clip ends
  before the reference takes the floor.
A clip that cannot meet them is skipped with a counted reason (the returned string).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from pipeline.duplex_clips import DuplexDialogue, anchor_turn, response_turn
from pipeline.schema import AxisEvent, Placed
from pipeline.score_fdb import KEEP_WINDOW_S

CLEAN_START_S = 1.0
PRE_ROLL_S = 0.5
GAP_S = 0.05
ANSWER_AFTER_S = 0.5
MAX_ANSWER_S = 8.0
PAUSE_AFTER_S = 1.0
MAX_CLIP_S = 40.0
KEPT_SPEECH_SHARE = 0.6  # of the keep window after a user backchannel, as the talker's words
ANSWER_MIN_SPAN_S = 1.2  # the take-over rule's 1 s + a margin for VAD / ASR word edges

# task -> (benchmark version, our axis, expected behaviour)
TASKS: dict[str, tuple[str, str, str]] = {
    "v1.0/pause_handling": ("v1.0", "pause", "listen"),
    "v1.0/smooth_turn_taking": ("v1.0", "turn_taking", "take_turn"),
    "v1.0/backchannel": ("v1.0", "backchannel", "backchannel"),
    "v1.0/user_interruption": ("v1.0", "interruption", "yield"),
    "v1.5/user_interruption": ("v1.5", "interruption", "yield"),
    "v1.5/user_backchannel": ("v1.5", "backchannel", "keep_speaking"),
}


@dataclass
class TaskClip:
    """One sample: the clip window, the event(s) it tests and the turns around them."""

    task: str
    start_s: float
    end_s: float
    events: list[AxisEvent]
    context: Placed | None = None        # the user turn before (interruption: the one answered)
    focus: Placed | None = None          # the user turn the event is about (barge-in, host...)
    answer: Placed | None = None         # the reference reply scored for take-over / latency
    extra: dict = field(default_factory=dict)


def assistant_segments(dialogue: DuplexDialogue) -> list[Placed]:
    return sorted((s for s in dialogue.timeline.segments if s.speaker == dialogue.assistant),
                  key=lambda s: s.start_s)


def other_turns(dialogue: DuplexDialogue) -> list[Placed]:
    return sorted((s for s in dialogue.timeline.segments
                   if s.speaker != dialogue.assistant and s.kind == "turn"),
                  key=lambda s: s.start_s)


def clean_start(dialogue: DuplexDialogue, wanted_s: float, latest_s: float) -> float | None:
    """The earliest start ≥ wanted_s with no assistant speech in its first CLEAN_START_S.

    None when that start would pass `latest_s` (the event would lose its lead-in).
    """
    start = max(0.0, wanted_s)
    own = assistant_segments(dialogue)
    for _ in range(len(own) + 1):
        blocking = [s for s in own if s.start_s < start + CLEAN_START_S and s.end_s > start]
        if not blocking:
            break
        start = max(s.end_s for s in blocking) + GAP_S
    return round(start, 4) if start <= latest_s else None


def first_assistant_after(dialogue: DuplexDialogue, t: float) -> Placed | None:
    return next((s for s in assistant_segments(dialogue) if s.start_s >= t), None)


def next_other_turn(dialogue: DuplexDialogue, after_s: float) -> Placed | None:
    return next((s for s in other_turns(dialogue) if s.start_s > after_s), None)


def takes_turn(words: list[tuple[str, float, float]]) -> bool:
    """The reference answer passes the benchmark's take-over rule (≥ 1 s from first to last
    word, or > 3 words) by its span alone, with a margin, so a transcript from any ASR — or
    the VAD approximation, which sees only speech spans — agrees that it takes the turn."""
    return bool(words) and words[-1][2] - words[0][1] >= ANSWER_MIN_SPAN_S


def answer_end(dialogue: DuplexDialogue, answer: Placed, not_after: Placed | None) -> float:
    end = min(answer.end_s + ANSWER_AFTER_S, answer.start_s + MAX_ANSWER_S,
              dialogue.timeline.duration_s)
    if not_after is not None and not_after.start_s > answer.start_s:
        end = min(end, not_after.start_s - GAP_S)
    return round(end, 4)


def words_between(seg: Placed, start: float, end: float) -> list[tuple[str, float, float]]:
    return [w for w in seg.words if w[1] >= start and w[2] <= end]


def spoken_share(seg: Placed, start: float, end: float) -> float:
    """Share of [start, end] (s) covered by the segment's words."""
    covered = sum(max(0.0, min(w[2], end) - max(w[1], start)) for w in seg.words)
    return covered / (end - start)


def pause_clip(dialogue: DuplexDialogue, event: AxisEvent) -> TaskClip | str:
    host = anchor_turn(dialogue, event)
    if host is None:
        return "no_turn"
    before = [s for s in assistant_segments(dialogue) if s.end_s <= event.start_s]
    wanted = max([host.start_s - PRE_ROLL_S] + [s.end_s + GAP_S for s in before])
    start = clean_start(dialogue, wanted, event.start_s - CLEAN_START_S)
    if start is None:
        return "no_clean_start"
    nxt = first_assistant_after(dialogue, start)
    end = event.end_s + PAUSE_AFTER_S
    if nxt is not None:
        end = min(end, nxt.start_s - GAP_S)
    if end < event.end_s + 0.2:
        return "reply_inside_pause"
    return TaskClip("v1.0/pause_handling", start, round(end, 4), [event], focus=host)


def turn_taking_clip(dialogue: DuplexDialogue, event: AxisEvent) -> TaskClip | str:
    user = anchor_turn(dialogue, event)
    answer = response_turn(dialogue, event)
    if user is None or answer is None:
        return "no_turn"
    before = [s for s in assistant_segments(dialogue) if s.end_s <= answer.start_s
              and s is not answer]
    wanted = max([user.start_s - PRE_ROLL_S] + [s.end_s + GAP_S for s in before])
    start = clean_start(dialogue, wanted, min(event.start_s, answer.start_s) - CLEAN_START_S)
    if start is None:
        return "no_clean_start"
    end = answer_end(dialogue, answer, next_other_turn(dialogue, answer.start_s))
    if not takes_turn(words_between(answer, start, end)):
        return "answer_too_short"
    return TaskClip("v1.0/smooth_turn_taking", start, end, [event], focus=user, answer=answer)


def held_turn(dialogue: DuplexDialogue, event: AxisEvent) -> Placed | None:
    return next((s for s in assistant_segments(dialogue) if s.kind == "turn"
                 and s.start_s <= event.start_s <= s.end_s), None)


def lead_in(dialogue: DuplexDialogue, event: AxisEvent) -> tuple[float, Placed, Placed] | str:
    """Clean start before the assistant turn an overlap event falls into, and that turn."""
    context, held = anchor_turn(dialogue, event), held_turn(dialogue, event)
    if context is None or held is None or context is held:
        return "no_turn"
    before = [s for s in assistant_segments(dialogue) if s.end_s <= held.start_s
              and s is not held]
    wanted = max([context.start_s - PRE_ROLL_S] + [s.end_s + GAP_S for s in before])
    start = clean_start(dialogue, wanted, held.start_s - CLEAN_START_S)
    if start is None:
        return "no_clean_start"
    return start, context, held


def barge_in_turn(dialogue: DuplexDialogue, event: AxisEvent) -> Placed | None:
    return next((s for s in dialogue.timeline.segments if s.speaker == event.speaker
                 and abs(s.start_s - event.start_s) < 1e-3), None)


def interruption_clips(dialogue: DuplexDialogue, event: AxisEvent) -> list[TaskClip] | str:
    lead = lead_in(dialogue, event)
    if isinstance(lead, str):
        return lead
    start, context, held = lead
    barge = barge_in_turn(dialogue, event)
    answer = response_turn(dialogue, event)
    if barge is None or answer is None:
        return "no_answer"
    end = answer_end(dialogue, answer, next_other_turn(dialogue, barge.start_s))
    if end <= barge.end_s or not takes_turn(words_between(answer, barge.end_s, end)):
        return "answer_too_short"
    return [TaskClip(task, start, end, [event], context=context, focus=barge, answer=answer,
                     extra={"held": held}) for task in
            ("v1.0/user_interruption", "v1.5/user_interruption")]


def user_backchannel_clip(dialogue: DuplexDialogue, event: AxisEvent) -> TaskClip | str:
    lead = lead_in(dialogue, event)
    if isinstance(lead, str):
        return lead
    start, context, held = lead
    bc = barge_in_turn(dialogue, event)
    if bc is None:
        return "no_turn"
    end = answer_end(dialogue, held, next_other_turn(dialogue, event.end_s))
    if end <= event.end_s + KEEP_WINDOW_S:
        return "answer_too_short"
    if spoken_share(held, event.end_s, event.end_s + KEEP_WINDOW_S) < KEPT_SPEECH_SHARE:
        return "talker_pauses"  # a backchannel in the talker's pause: the reference resumes
    return TaskClip("v1.5/user_backchannel", start, end, [event], context=context, focus=bc,
                    answer=held, extra={"held": held})


def backchannel_clip(dialogue: DuplexDialogue, events: list[AxisEvent],
                     host: Placed) -> TaskClip | str:
    """One clip per user turn the assistant backchannels in (the benchmark's ICC samples)."""
    before = [s for s in assistant_segments(dialogue) if s.end_s <= host.start_s]
    wanted = max([host.start_s - PRE_ROLL_S] + [s.end_s + GAP_S for s in before])
    start = clean_start(dialogue, wanted, host.end_s - CLEAN_START_S)
    if start is None:
        return "no_clean_start"
    kept = [e for e in events if e.start_s >= start]
    if not kept:
        return "no_clean_start"
    floor = next((s for s in assistant_segments(dialogue)
                  if s.kind == "turn" and s.start_s >= start), None)
    end = min(host.end_s + ANSWER_AFTER_S, dialogue.timeline.duration_s)
    if floor is not None:
        end = min(end, floor.start_s - GAP_S)
    kept = [e for e in kept if e.end_s <= end]
    if not kept:
        return "answer_too_short"
    return TaskClip("v1.0/backchannel", start, round(end, 4), kept, focus=host)


def task_clips(dialogue: DuplexDialogue, tasks: set[str]) -> tuple[list[TaskClip], list[str]]:
    """Every sample of the chosen tasks in one dialogue, and the reasons for skipped ones."""
    clips: list[TaskClip] = []
    skipped: list[str] = []

    def take(task: str, result) -> None:
        if isinstance(result, str):
            skipped.append(f"{task}:{result}")
            return
        for clip in result if isinstance(result, list) else [result]:
            if clip.task not in tasks:
                continue
            if clip.end_s - clip.start_s > MAX_CLIP_S:
                skipped.append(f"{clip.task}:too_long")
                continue
            clips.append(clip)

    hosts: dict[int, tuple[Placed, list[AxisEvent]]] = {}
    for event in dialogue.labels.axis_events:
        if event.axis == "pause" and "v1.0/pause_handling" in tasks:
            take("v1.0/pause_handling", pause_clip(dialogue, event))
        elif event.axis == "turn_taking" and "v1.0/smooth_turn_taking" in tasks:
            take("v1.0/smooth_turn_taking", turn_taking_clip(dialogue, event))
        elif event.axis == "interruption" and tasks & {"v1.0/user_interruption",
                                                        "v1.5/user_interruption"}:
            take("user_interruption", interruption_clips(dialogue, event))
        elif event.axis == "backchannel" and event.expected == "keep_speaking" \
                and "v1.5/user_backchannel" in tasks:
            take("v1.5/user_backchannel", user_backchannel_clip(dialogue, event))
        elif event.axis == "backchannel" and event.expected == "backchannel" \
                and "v1.0/backchannel" in tasks:
            host = next((s for s in other_turns(dialogue)
                         if s.start_s <= event.start_s and event.end_s <= s.end_s), None)
            if host is None:
                skipped.append("v1.0/backchannel:no_turn")
                continue
            hosts.setdefault(id(host), (host, []))[1].append(event)
    for host, events in hosts.values():
        take("v1.0/backchannel", backchannel_clip(dialogue, events, host))
    return clips, skipped
