"""Data types that flow between stages (DESIGN section 2).

JSON-facing types (scenario, script, timeline, labels, segments) are pydantic models so
LLM writers can request their JSON schema and every stage can validate what it receives.
`Utterance` carries raw audio and stays a plain dataclass.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field


class Phenomena(BaseModel):
    """How many of each conversational phenomenon a scenario asks for."""

    backchannels: int = 0
    interruptions: int = 0
    pauses: int = 0
    overlaps: int = 0
    side_talk: int = 0


class SpeakerSpec(BaseModel):
    id: str
    name: str
    role: str
    persona: str = ""
    voice: dict = Field(default_factory=dict, description="backend-specific voice parameters")


def voice_id(voice: dict) -> str:
    """The one speaker identity of a voice across the dataset, its exports and the card:
    the registry's stable `id` (`espeak:en-us+m3:adult`), else backend and name."""
    if voice.get("id"):
        return str(voice["id"])
    if voice.get("name"):
        return f"{voice.get('backend', 'tts')}:{voice['name']}"
    return ""


class ScenarioSpec(BaseModel):
    id: str
    index: int = Field(description="position in the run's plan; decides the shard")
    language: str
    domain: str
    situation: str
    speakers: list[SpeakerSpec]
    assistant: str | None
    target_turns: int
    phenomena: Phenomena = Field(default_factory=Phenomena)
    generator: str = "offline"
    seed: int
    next_speaker: list[list[float]] | None = Field(
        None, description="multi-party: P(next speaker j | speaker i), rows in speaker order")

    def speaker(self, speaker_id: str) -> SpeakerSpec:
        for spec in self.speakers:
            if spec.id == speaker_id:
                return spec
        raise KeyError(f"speaker {speaker_id!r} is not in scenario {self.id}")


def scenario_id(run_seed: int, index: int) -> str:
    """Stable id: the same seed and index give the same id on every machine and rerun."""
    digest = hashlib.sha1(f"{run_seed}:{index}".encode()).hexdigest()[:10]
    return f"dlg-{index:07d}-{digest}"


class Turn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    speaker: str
    text: str
    kind: Literal["turn", "backchannel"] = "turn"
    interrupts: bool = Field(False, description="barges in on the previous speaker, who is cut")
    overlap: bool = Field(
        False, description="starts shortly before the previous speaker finishes; nobody is cut"
    )
    addressee: str = "all"
    pauses: list[int] = Field(
        default_factory=list, description="0-based word indices after which the speaker pauses"
    )

    @property
    def words(self) -> list[str]:
        return self.text.split()


class DialogueScript(BaseModel):
    model_config = ConfigDict(extra="forbid")

    scenario_id: str
    language: str
    turns: list[Turn]


@dataclass
class Utterance:
    """One synthesized turn. `words` are (text, start_s, end_s) relative to the utterance."""

    turn: int
    speaker: str
    sample_rate: int
    samples: np.ndarray
    words: list[tuple[str, float, float]] = field(default_factory=list)

    @property
    def duration_s(self) -> float:
        return len(self.samples) / self.sample_rate


class Chunk(BaseModel):
    """A piece of an utterance's audio copied to an absolute position in the mix."""

    src_start_s: float
    src_end_s: float
    dst_start_s: float

    @property
    def dst_end_s(self) -> float:
        return self.dst_start_s + (self.src_end_s - self.src_start_s)


class Placed(BaseModel):
    turn: int
    speaker: str
    start_s: float
    end_s: float = Field(description="where this speaker's audio stops (the cut, if cut)")
    kind: Literal["turn", "backchannel"]
    cut_at_s: float | None = None
    addressee: str = "all"
    words: list[tuple[str, float, float]] = Field(default_factory=list)
    chunks: list[Chunk] = Field(default_factory=list, exclude=True)

    @property
    def text(self) -> str:
        return " ".join(word for word, _, _ in self.words)


class Timeline(BaseModel):
    duration_s: float
    segments: list[Placed]

    def to_json(self) -> str:
        return self.model_dump_json()


class FrameState(StrEnum):
    LISTEN = "LISTEN"
    SPEAK = "SPEAK"
    BACKCHANNEL = "BACKCHANNEL"
    IGNORE = "IGNORE"


class FrameEvent(StrEnum):
    NONE = "none"
    TURN_START = "TURN_START"
    TURN_END = "TURN_END"
    YIELD = "YIELD"
    BC_START = "BC_START"


Axis = Literal["pause", "turn_taking", "backchannel", "interruption", "side_talk"]


class AxisEvent(BaseModel):
    """A window (seconds, absolute in the dialogue) where a duplex model is tested.

    `speaker` is the other party whose speech makes the event, `response_s` when the reference
    assistant reacted (its TURN_START, BC_START, or where its audio stopped after a barge-in).
    """

    axis: Axis
    start_s: float
    end_s: float
    expected: str
    speaker: str | None = None
    addressee: str | None = None
    response_s: float | None = None


class DuplexLabels(BaseModel):
    frame_s: float
    assistant: str
    state: list[FrameState]
    event: list[FrameEvent]
    axis_events: list[AxisEvent] = Field(default_factory=list)
    words: list[tuple[str, float, float]] = Field(
        default_factory=list, description="assistant words actually spoken, absolute seconds"
    )
    user_vad: list[int] = Field(
        default_factory=list, description="1 where any other party speaks, per frame"
    )
    addressee: list[str] = Field(
        default_factory=list,
        description="per frame: addressee of the other party's speech ('' when nobody speaks)",
    )

    @property
    def num_frames(self) -> int:
        return len(self.state)


class AsrSegment(BaseModel):
    id: str
    dialogue_id: str
    speaker: str
    start_s: float
    end_s: float
    text: str
    language: str
    turn: int | None = Field(None, description="the script turn this segment speaks")

    @property
    def duration_s(self) -> float:
        return self.end_s - self.start_s
