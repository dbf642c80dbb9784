"""Meetings: roles, addressees, side talk, the Markov next-speaker matrix, and labels."""

from __future__ import annotations

import random
import re
from collections import Counter

import pytest

from pipeline.labels import duplex_labels
from pipeline.phenomena_quotas import DEFAULT_NEXT_SPEAKER
from pipeline.scenarios import PlanSettings, plan_scenario
from pipeline.schema import FrameState
from pipeline.timeline import arrange
from pipeline.timing import TimingModel, TimingSettings
from pipeline.writers import OfflineComposer
from tests.conftest import tone_utterance

HUNGARIAN_LETTERS = set("áéíóöőúüű")
ENGLISH_TOKENS = {"the", "and", "you", "okay", "yes", "please", "sorry", "thanks"}


def voices(language: str, count: int, rng: random.Random) -> list[dict]:
    return [{"name": f"v{i}", "id": f"v{i}"} for i in range(count)]


def meetings(language: str, count: int = 120, speakers=(3, 6), **extra):
    settings = PlanSettings(languages=(language,), speakers=speakers, **extra)
    return [plan_scenario(i, 99, settings, voices) for i in range(count)]


def test_meeting_plans_have_roles_and_a_markov_matrix() -> None:
    sizes = Counter()
    for plan in meetings("en"):
        roles = Counter(s.role for s in plan.speakers)
        sizes[len(plan.speakers)] += 1
        assert roles["assistant"] == 1 and roles["chair"] == 1
        assert roles["participant"] == len(plan.speakers) - 2
        assert plan.speaker(plan.assistant).role == "assistant"
        assert len({s.name for s in plan.speakers}) == len(plan.speakers)
        assert len(plan.next_speaker) == len(plan.speakers)
        assert all(abs(sum(row) - 1) < 1e-5 for row in plan.next_speaker)
        assert plan.phenomena.side_talk >= 0
    assert set(sizes) == {3, 4, 5, 6}
    assert plan_scenario(0, 1, PlanSettings(), voices).next_speaker is None


@pytest.mark.parametrize("language", ["en", "hu"])
def test_meeting_scripts_carry_addressees_and_side_talk(language: str) -> None:
    side_talk = to_assistant = 0
    for plan in meetings(language):
        script = OfflineComposer().write(plan)
        ids = {s.id for s in plan.speakers}
        humans = ids - {plan.assistant}
        turns = [t for t in script.turns if t.kind == "turn"]
        assert len(turns) == plan.target_turns
        assert any(t.speaker == plan.assistant for t in turns)
        assert plan.speaker(turns[0].speaker).role == "chair"
        for index, turn in enumerate(turns):
            assert turn.addressee in (ids | {"all"}) - {turn.speaker}
            assert 2 <= len(turn.words) <= 35, turn.text
            if turn.speaker in humans and turn.addressee in humans:
                side_talk += 1
                assert turns[index + 1].speaker == turn.addressee  # the addressee answers
            if turn.addressee == plan.assistant:
                to_assistant += 1
                assert turns[index + 1].speaker == plan.assistant
        for before, turn in zip(script.turns, script.turns[1:], strict=False):
            if turn.kind == "backchannel":
                assert turn.speaker != before.speaker and len(turn.words) <= 2
        text = " ".join(t.text for t in script.turns)
        words = set(re.findall(r"[^\W\d_]+", text.lower()))
        if language == "hu":
            assert HUNGARIAN_LETTERS & set(text) and not ENGLISH_TOKENS & words, text
        else:
            assert not HUNGARIAN_LETTERS & set(text.lower()), text
    assert side_talk > 50 and to_assistant > 50


def test_next_speaker_follows_the_matrix() -> None:
    counts: Counter = Counter()
    for plan in meetings("en", 300, speakers=4):
        roles = {s.id: s.role for s in plan.speakers}
        turns = [t for t in OfflineComposer().write(plan).turns if t.kind == "turn"]
        for before, after in zip(turns, turns[1:], strict=False):
            counts[(roles[before.speaker], roles[after.speaker])] += 1
    for role, row in DEFAULT_NEXT_SPEAKER.items():
        total = sum(counts[(role, other)] for other in row)
        for other, p in row.items():
            assert counts[(role, other)] / total == pytest.approx(p, abs=0.06), (role, other)


def test_custom_matrix_is_used() -> None:
    matrix = {"chair": {"assistant": 1.0}, "assistant": {"participant": 1.0},
              "participant": {"chair": 1.0}}
    for plan in meetings("en", 20, speakers=3, next_speaker=matrix):
        roles = [plan.speaker(t.speaker).role
                 for t in OfflineComposer().write(plan).turns if t.kind == "turn"]
        assert roles[:4] == ["chair", "assistant", "participant", "chair"]


def test_side_talk_becomes_ignore_in_the_assistant_labels() -> None:
    found = 0
    for plan in meetings("en", 40, speakers=4):
        script = OfflineComposer().write(plan)
        utterances = [tone_utterance(i, t.speaker, t.text.split())
                      for i, t in enumerate(script.turns)]
        timeline = arrange(script, utterances, TimingModel(
            TimingSettings(), random.Random(plan.seed), [s.id for s in plan.speakers]))
        assert [p.addressee for p in timeline.segments] == [t.addressee for t in script.turns]
        labels = duplex_labels(timeline, plan.assistant, 0.08)
        side = [p for p in timeline.segments if p.kind == "turn" and p.speaker != plan.assistant
                and p.addressee not in ("all", plan.assistant)]
        windows = [e for e in labels.axis_events if e.axis == "side_talk"]
        # every side-talk window is a side-talk turn (a turn the assistant itself answers
        # into is not a clean "ignore" example, so labels may leave it out)
        assert {e.start_s for e in windows} <= {p.start_s for p in side}
        for segment in side:
            found += 1
            word = max(segment.words, key=lambda w: w[2] - w[1])
            middle = (word[1] + word[2]) / 2  # inside speech, not a gap between words
            others_active = any(
                p is not segment and p.start_s <= middle < p.end_s for p in timeline.segments)
            if not others_active:
                assert labels.state[int(middle / 0.08)] == FrameState.IGNORE
        # side talk is to be ignored; while the assistant holds the floor it keeps speaking
        assert all(e.expected in ("ignore", "keep_speaking") for e in windows)
    assert found > 20
