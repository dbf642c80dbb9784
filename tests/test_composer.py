"""The offline composer: deterministic, in the right language, obeying the script conventions."""

from __future__ import annotations

import random
import re

import pytest

from pipeline.scenarios import PlanSettings, plan_scenario
from pipeline.schema import DialogueScript, ScenarioSpec
from pipeline.writers import OfflineComposer, make_writer

ENGLISH_TOKENS = {"um", "uh", "okay", "yeah", "the", "and", "you", "sorry", "yes", "please"}
HUNGARIAN_LETTERS = set("áéíóöőúüű")


def voices(language: str, count: int, rng: random.Random) -> list[dict]:
    return [{"name": f"v{i}"} for i in range(count)]


def scenarios(language: str, count: int = 200, **rates: float) -> list[ScenarioSpec]:
    settings = PlanSettings(languages=(language,), **rates)
    return [plan_scenario(i, 2024, settings, voices) for i in range(count)]


def tokens(script: DialogueScript) -> list[str]:
    text = " ".join(t.text for t in script.turns).lower()
    return re.findall(r"[^\W\d_]+(?:['-][^\W\d_]+)*", text)


def test_same_scenario_gives_the_same_script() -> None:
    scenario = scenarios("en", 1)[0]
    assert OfflineComposer().write(scenario) == OfflineComposer().write(scenario)


def test_different_seeds_give_different_scripts() -> None:
    scenario = scenarios("hu", 1)[0]
    other = scenario.model_copy(update={"seed": scenario.seed + 1})
    assert OfflineComposer().write(scenario).turns != OfflineComposer().write(other).turns


def test_hungarian_scripts_are_hungarian() -> None:
    for scenario in scenarios("hu"):
        script = OfflineComposer().write(scenario)
        assert script.language == "hu"
        assert HUNGARIAN_LETTERS & set(" ".join(t.text for t in script.turns))
        assert not ENGLISH_TOKENS & set(tokens(script)), script


def test_english_scripts_have_no_hungarian_letters() -> None:
    for scenario in scenarios("en"):
        script = OfflineComposer().write(scenario)
        assert not HUNGARIAN_LETTERS & set(" ".join(t.text for t in script.turns).lower())


def test_spoken_style_fillers_appear() -> None:
    en = {w for s in scenarios("en", 50) for w in tokens(OfflineComposer().write(s))}
    hu = {w for s in scenarios("hu", 50) for w in tokens(OfflineComposer().write(s))}
    assert {"um", "well"} <= en
    assert {"hát", "szóval", "ööö"} <= hu


@pytest.mark.parametrize("language", ["en", "hu"])
def test_script_conventions_hold(language: str) -> None:
    for scenario in scenarios(language):
        check_conventions(scenario, OfflineComposer().write(scenario))


@pytest.mark.parametrize("language", ["en", "hu"])
def test_conventions_hold_under_heavy_phenomena(language: str) -> None:
    heavy = {"backchannel_rate": 0.5, "interruption_rate": 0.5, "pause_rate": 1.0,
             "overlap_rate": 0.9, "min_turns": 2, "max_turns": 20}
    for scenario in scenarios(language, 100, **heavy):
        check_conventions(scenario, OfflineComposer().write(scenario))


def check_conventions(scenario: ScenarioSpec, script: DialogueScript) -> None:
    ids = {s.id for s in scenario.speakers}
    turns = script.turns
    assert script.scenario_id == scenario.id
    assert turns[0].kind == "turn" and not turns[0].interrupts and not turns[0].overlap
    last_turn_speaker = None
    for i, turn in enumerate(turns):
        words = turn.words
        assert turn.speaker in ids
        assert turn.addressee in ids - {turn.speaker}
        assert turn.text == turn.text.strip() and turn.text
        if turn.kind == "backchannel":
            before = turns[i - 1]
            assert 1 <= len(words) <= 2
            assert before.kind == "turn" and before.speaker != turn.speaker
            assert len(before.words) >= 6
            assert not (turn.interrupts or turn.overlap or turn.pauses)
            continue
        assert 2 <= len(words) <= 35, turn.text
        if turn.interrupts:
            before = turns[i - 1]
            assert before.kind == "turn" and before.speaker != turn.speaker
            assert len(before.words) >= 8
            assert not turn.overlap
        if turn.overlap:
            assert turn.speaker != last_turn_speaker
        if turn.pauses:
            assert len(words) >= 6
            assert all(1 <= p <= len(words) - 2 for p in turn.pauses)
            assert len(set(turn.pauses)) == len(turn.pauses)
        last_turn_speaker = turn.speaker
    quotas = scenario.phenomena
    assert sum(t.kind == "turn" for t in turns) == scenario.target_turns
    assert sum(t.kind == "backchannel" for t in turns) == quotas.backchannels
    assert sum(t.interrupts for t in turns) == quotas.interruptions
    assert sum(t.overlap for t in turns) == quotas.overlaps
    assert sum(len(t.pauses) for t in turns) == quotas.pauses


def test_the_user_usually_opens_and_speakers_mostly_alternate() -> None:
    openers = changes = pairs = 0
    for scenario in scenarios("en"):
        turns = [t for t in OfflineComposer().write(scenario).turns if t.kind == "turn"]
        user = next(s.id for s in scenario.speakers if s.role == "user")
        openers += turns[0].speaker == user
        changes += sum(a.speaker != b.speaker for a, b in zip(turns, turns[1:], strict=False))
        pairs += len(turns) - 1
    assert openers > 140
    assert changes / pairs > 0.85


def test_interruptions_sound_like_interruptions() -> None:
    starts = ("sorry", "hang on", "let me stop", "bocsánat", "elnézést", "várjon",
              "ne haragudjon", "egy pillanat")
    for language in ("en", "hu"):
        for scenario in scenarios(language, 100):
            for turn in OfflineComposer().write(scenario).turns:
                if turn.interrupts:
                    assert turn.text.lower().startswith(starts), turn.text


def test_unknown_language_or_domain_names_the_field() -> None:
    scenario = scenarios("en", 1)[0]
    with pytest.raises(ValueError, match="language"):
        OfflineComposer().write(scenario.model_copy(update={"language": "de"}))
    with pytest.raises(ValueError, match="domain"):
        OfflineComposer().write(scenario.model_copy(update={"domain": "astrology"}))


def test_make_writer_builds_the_offline_composer() -> None:
    assert isinstance(make_writer({"name": "offline"}), OfflineComposer)
    with pytest.raises(ValueError, match="writer.name"):
        make_writer({"name": "nope"})
