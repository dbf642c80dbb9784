"""Dialogues seen from the assistant's side, and clips cut around their axis events.

Shared by the BayLing / Moshi views, the evaluation sets and the DPO pairs. A clip is a time
window of a dialogue (seconds); its timeline is the dialogue's, shifted and trimmed, and its
labels are derived again from that timeline, so they always match the clip's audio.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pipeline.dataset import decode_audio, iter_dialogues
from pipeline.labels.duplex import duplex_labels
from pipeline.schema import AxisEvent, DuplexLabels, Placed, Timeline

CONTEXT_BEFORE_S = 0.3
MAX_CLIP_S = 40.0


@dataclass
class DuplexDialogue:
    id: str
    language: str
    assistant: str
    speakers: list[str]
    timeline: Timeline
    labels: DuplexLabels
    channels: np.ndarray  # (samples, speakers) float32
    sample_rate: int

    @property
    def assistant_audio(self) -> np.ndarray:
        return self.channels[:, self.speakers.index(self.assistant)]

    @property
    def user_audio(self) -> np.ndarray:
        """Every other party summed: what a duplex model hears on its input channel."""
        others = [i for i, s in enumerate(self.speakers) if s != self.assistant]
        return self.channels[:, others].sum(axis=1).astype(np.float32)

    def cut(self, audio: np.ndarray, start_s: float, end_s: float) -> np.ndarray:
        begin = int(round(start_s * self.sample_rate))
        end = int(round(end_s * self.sample_rate))
        out = np.zeros(end - begin, dtype=np.float32)
        piece = audio[max(0, begin): min(len(audio), end)]
        out[max(0, -begin): max(0, -begin) + len(piece)] = piece
        return out


def iter_duplex(dataset: Path) -> Iterator[DuplexDialogue]:
    """Dialogues that carry duplex labels (ASR-only dialogues without an assistant are skipped)."""
    for row in iter_dialogues(dataset):
        if not row.get("duplex"):
            continue
        channels, rate = decode_audio(row["channels"])
        if channels.ndim == 1:
            channels = channels[:, None]
        yield DuplexDialogue(
            id=row["id"], language=row["language"], assistant=row["duplex"]["assistant"],
            speakers=[s["id"] for s in row["speakers"]],
            timeline=Timeline.model_validate(row["timeline"]),
            labels=DuplexLabels.model_validate(row["duplex"]),
            channels=channels, sample_rate=rate,
        )


def anchor_turn(dialogue: DuplexDialogue, event: AxisEvent) -> Placed | None:
    """The other party's turn an event belongs to (for a barge-in: the turn it interrupts)."""
    segments = sorted(dialogue.timeline.segments, key=lambda p: p.start_s)
    others = [s for s in segments if s.speaker != dialogue.assistant and s.kind == "turn"]
    if event.axis == "interruption" or event.expected == "keep_speaking":
        held = next((s for s in segments if s.speaker == dialogue.assistant and s.kind == "turn"
                     and s.start_s <= event.start_s <= s.end_s), None)
        if held is None:
            return None
        before = [s for s in others if s.start_s <= held.start_s]
        return before[-1] if before else held
    if event.axis == "turn_taking":
        return next((s for s in others if abs(s.end_s - event.start_s) < 1e-3), None)
    return next((s for s in others if s.start_s <= event.start_s <= s.end_s + 1e-3
                 and (event.speaker is None or s.speaker == event.speaker)), None)


def response_turn(dialogue: DuplexDialogue, event: AxisEvent) -> Placed | None:
    """The assistant turn that answers the event (turn-taking, or the reply after a barge-in)."""
    turns = [s for s in dialogue.timeline.segments
             if s.speaker == dialogue.assistant and s.kind == "turn"]
    if event.axis == "turn_taking" and event.response_s is not None:
        return next((s for s in turns if abs(s.start_s - event.response_s) < 1e-3), None)
    if event.axis == "interruption":
        later = [s for s in turns if s.start_s > event.start_s]
        return min(later, key=lambda s: s.start_s) if later else None
    return None


def clip_bounds(dialogue: DuplexDialogue, event: AxisEvent, after_s: float,
                whole_response: bool) -> tuple[float, float] | None:
    """[start, end) around an event: from its context turn to after_s past the event window.

    The start never cuts an assistant utterance; with `whole_response` neither does the end,
    and the assistant's answer is included in full (training samples).
    """
    anchor = anchor_turn(dialogue, event)
    if anchor is None:
        return None
    start = max(0.0, anchor.start_s - CONTEXT_BEFORE_S)
    end = event.end_s + after_s
    if whole_response and (answer := response_turn(dialogue, event)) is not None:
        end = max(end, answer.end_s + CONTEXT_BEFORE_S)
    own = [s for s in dialogue.timeline.segments if s.speaker == dialogue.assistant]
    for _ in range(len(own) + 1):
        straddle = [s for s in own if s.start_s < start < s.end_s]
        if whole_response:
            straddle += [s for s in own if s.start_s < end < s.end_s]
        if not straddle:
            break
        start = min([start] + [s.start_s - 0.05 for s in straddle if s.start_s < start])
        end = max([end] + [s.end_s + 0.05 for s in straddle if s.end_s > end])
    start, end = max(0.0, start), min(dialogue.timeline.duration_s, end)
    if end - start > MAX_CLIP_S or end <= event.start_s:
        return None
    return round(start, 4), round(end, 4)


def clip_timeline(timeline: Timeline, start_s: float, end_s: float) -> Timeline:
    segments = []
    for seg in timeline.segments:
        if seg.end_s <= start_s or seg.start_s >= end_s:
            continue
        words = [(w, round(a - start_s, 4), round(b - start_s, 4))
                 for w, a, b in seg.words if a >= start_s and b <= end_s]
        cut = seg.cut_at_s if seg.cut_at_s is not None and seg.cut_at_s <= end_s else None
        segments.append(seg.model_copy(update={
            "start_s": round(max(seg.start_s, start_s) - start_s, 4),
            "end_s": round(min(seg.end_s, end_s) - start_s, 4),
            "cut_at_s": None if cut is None else round(cut - start_s, 4),
            "words": words, "chunks": [],
        }))
    return Timeline(duration_s=round(end_s - start_s, 4), segments=segments)


def shift_event(event: AxisEvent, start_s: float) -> AxisEvent:
    return event.model_copy(update={
        "start_s": round(event.start_s - start_s, 4), "end_s": round(event.end_s - start_s, 4),
        "response_s": None if event.response_s is None else round(event.response_s - start_s, 4),
    })


def clip_labels(dialogue: DuplexDialogue, start_s: float, end_s: float) -> DuplexLabels:
    timeline = clip_timeline(dialogue.timeline, start_s, end_s)
    return duplex_labels(timeline, dialogue.assistant, dialogue.labels.frame_s)
