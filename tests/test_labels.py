import math
import random

import numpy as np
import pytest

from pipeline.labels import asr_segments, duplex_labels
from pipeline.render import render
from pipeline.schema import DialogueScript, FrameEvent, FrameState, Turn
from pipeline.timeline import arrange
from pipeline.timing import TimingModel, TimingSettings
from tests.conftest import tone_utterance
from tests.test_timeline import MIXED

FRAME = 0.08


def arranged(seed: int):
    script = DialogueScript(scenario_id="t", language="en", turns=MIXED)
    utterances = [tone_utterance(i, t.speaker, t.text.split()) for i, t in enumerate(MIXED)]
    timeline = arrange(script, utterances, TimingModel(TimingSettings(), random.Random(seed)))
    return utterances, timeline


@pytest.mark.parametrize("seed", range(10))
def test_frame_count_matches_duration(seed):
    _, timeline = arranged(seed)
    labels = duplex_labels(timeline, "b", FRAME)
    assert labels.num_frames == math.ceil(timeline.duration_s / FRAME)
    assert len(labels.event) == labels.num_frames


@pytest.mark.parametrize("seed", range(10))
def test_speak_frames_coincide_with_assistant_audio(seed):
    utterances, timeline = arranged(seed)
    labels = duplex_labels(timeline, "b", FRAME)
    rendered = render(timeline, utterances, ["a", "b"], 16000)
    assistant = rendered.channels[1]
    hop = int(FRAME * 16000)
    for frame, state in enumerate(labels.state):
        energy = float(np.abs(assistant[frame * hop:(frame + 1) * hop]).max(initial=0.0))
        centre = (frame + 0.5) * FRAME
        inside_turn = any(
            s.speaker == "b" and s.kind == "turn" and s.start_s <= centre < s.end_s
            for s in timeline.segments
        )
        if state is FrameState.SPEAK:
            assert inside_turn
        if inside_turn:
            assert state is FrameState.SPEAK
        if energy > 0.05 and state is not FrameState.BACKCHANNEL:
            # audible assistant audio is labelled speech, except frames straddling an edge
            edge = any(abs(centre - t) < FRAME for s in timeline.segments if s.speaker == "b"
                       for t in (s.start_s, s.end_s))
            assert state is FrameState.SPEAK or edge


def test_events_mark_turns_backchannels_and_the_yield():
    _, timeline = arranged(4)
    labels = duplex_labels(timeline, "b", FRAME)
    assistant_turns = [s for s in timeline.segments if s.speaker == "b" and s.kind == "turn"]
    starts = [i for i, e in enumerate(labels.event) if e is FrameEvent.TURN_START]
    assert len(starts) == len(assistant_turns)
    assert FrameEvent.BC_START in labels.event  # turn 1 is the assistant's backchannel
    user_labels = duplex_labels(timeline, "a", FRAME)
    assert FrameEvent.BC_START not in user_labels.event
    # the user's barge-in on the assistant (turn 3 interrupts turn 2) gives a YIELD
    cut = next(s for s in timeline.segments if s.cut_at_s is not None)
    assert cut.speaker == "b"
    assert FrameEvent.YIELD in labels.event
    axes = {e.axis for e in labels.axis_events}
    assert {"interruption", "turn_taking", "backchannel"} <= axes


def test_asr_segments_hold_only_spoken_words():
    _, timeline = arranged(2)
    segments = asr_segments("d", "en", timeline)
    assert len(segments) == len(timeline.segments)
    cut = next(s for s in timeline.segments if s.cut_at_s is not None)
    segment = next(s for s in segments if s.id == f"d-{cut.turn:03d}")
    assert segment.text == " ".join(w for w, _, _ in cut.words)
    assert len(segment.text.split()) < len(MIXED[cut.turn].text.split())
    assert segment.end_s == cut.cut_at_s


def test_mix_never_clips():
    turns = [Turn(speaker="a", text="x " * 20), Turn(speaker="b", text="y " * 20, overlap=True)]
    script = DialogueScript(scenario_id="t", language="en", turns=turns)
    loud = [tone_utterance(i, t.speaker, t.text.split()) for i, t in enumerate(turns)]
    for u in loud:
        u.samples *= 3.2
    timeline = arrange(script, loud, TimingModel(TimingSettings(), random.Random(0)))
    rendered = render(timeline, loud, ["a", "b"], 16000)
    assert np.abs(rendered.mix).max() <= 0.99
    assert np.abs(rendered.channels).max() <= 0.99
    assert rendered.mix.shape[0] == rendered.channels.shape[1]
