"""The plan stage: deterministic scenarios with feasible phenomenon quotas."""

from __future__ import annotations

import random

import pytest

from pipeline.scenarios import PlanSettings, known_domains, known_languages, plan_scenario


def voices(language: str, count: int, rng: random.Random) -> list[dict]:
    return [{"name": f"v{i}", "pitch": rng.randint(0, 99)} for i in range(count)]


def test_same_seed_and_index_give_the_same_scenario() -> None:
    first = plan_scenario(5, 42, PlanSettings(), voices)
    again = plan_scenario(5, 42, PlanSettings(), voices)
    assert first == again


def test_different_index_or_seed_gives_a_different_id() -> None:
    ids = {plan_scenario(i, 42, PlanSettings(), voices).id for i in range(50)}
    assert len(ids) == 50
    assert plan_scenario(0, 1, PlanSettings(), voices).id != plan_scenario(0, 2, PlanSettings(),
                                                                           voices).id


def test_languages_round_robin_and_every_domain_is_used() -> None:
    plans = [plan_scenario(i, 3, PlanSettings(), voices) for i in range(400)]
    assert [p.language for p in plans[:4]] == ["en", "hu", "en", "hu"]
    for language in known_languages():
        used = {p.domain for p in plans if p.language == language}
        assert used == set(known_domains(language))


def test_each_language_has_at_least_eight_domains() -> None:
    assert known_languages() == ("en", "hu")
    for language in known_languages():
        assert len(known_domains(language)) >= 8


def test_two_speakers_one_user_one_assistant_with_voices() -> None:
    for index in range(100):
        plan = plan_scenario(index, 9, PlanSettings(), voices)
        assert [s.id for s in plan.speakers] == ["spk0", "spk1"]
        assert sorted(s.role for s in plan.speakers) == ["assistant", "user"]
        assert plan.speaker(plan.assistant).role == "assistant"
        assert len({s.name for s in plan.speakers}) == 2
        assert all(s.voice["name"].startswith("v") and s.persona for s in plan.speakers)
        assert plan.situation


def test_hungarian_situations_and_names_are_hungarian() -> None:
    plans = [plan_scenario(i, 4, PlanSettings(languages=("hu",)), voices) for i in range(60)]
    text = " ".join(p.situation + " " + " ".join(s.name for s in p.speakers) for p in plans)
    assert set("áéíóöőúü") <= set(text.lower())


def test_quotas_follow_the_rates_and_fit_the_turns() -> None:
    settings = PlanSettings()
    plans = [plan_scenario(i, 11, settings, voices) for i in range(1000)]
    turns = sum(p.target_turns for p in plans)
    backchannels = sum(p.phenomena.backchannels for p in plans)
    assert 0.14 < backchannels / (turns + backchannels) < 0.21
    transfers = sum(p.target_turns - 1 - 0.4 * p.phenomena.backchannels for p in plans)
    overlapped = sum(p.phenomena.overlaps + p.phenomena.interruptions for p in plans)
    assert 0.27 < overlapped / transfers < 0.33
    assert 0.2 < sum(p.phenomena.pauses for p in plans) / turns < 0.3
    assert sum(p.phenomena.interruptions > 0 for p in plans) > 500
    for plan in plans:
        q = plan.phenomena
        assert settings.min_turns <= plan.target_turns <= settings.max_turns
        assert q.interruptions <= plan.target_turns // 2
        assert q.interruptions + q.overlaps + q.backchannels <= plan.target_turns - 1
        assert q.side_talk == 0
        assert 0 <= plan.seed < 2**63


def test_zero_rates_give_no_phenomena() -> None:
    settings = PlanSettings(backchannel_rate=0, interruption_rate=0, pause_rate=0, overlap_rate=0)
    for index in range(50):
        assert plan_scenario(index, 1, settings, voices).phenomena.model_dump() == {
            "backchannels": 0, "interruptions": 0, "pauses": 0, "overlaps": 0, "side_talk": 0}


def test_domain_filter_is_respected() -> None:
    settings = PlanSettings(domains=("banking", "restaurant"))
    assert {plan_scenario(i, 1, settings, voices).domain for i in range(40)} == {
        "banking", "restaurant"}


@pytest.mark.parametrize(
    ("settings", "field"),
    [
        (PlanSettings(languages=("de",)), "language"),
        (PlanSettings(domains=("astrology",)), "domain"),
        (PlanSettings(speakers=7), "speakers"),
        (PlanSettings(speakers=(3, 2)), "speakers"),
        (PlanSettings(next_speaker={"chair": {"boss": 1.0}}), "next_speaker"),
        (PlanSettings(min_turns=10, max_turns=4), "min_turns"),
        (PlanSettings(overlap_rate=1.5), "overlap_rate"),
    ],
)
def test_bad_settings_name_the_field(settings: PlanSettings, field: str) -> None:
    with pytest.raises(ValueError, match=field):
        plan_scenario(0, 1, settings, voices)


def test_known_domains_rejects_unknown_language() -> None:
    with pytest.raises(ValueError, match="language"):
        known_domains("xx")
