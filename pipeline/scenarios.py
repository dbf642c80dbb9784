"""The plan stage: turn (run seed, index) into a ScenarioSpec, with no I/O and no Ray.

Everything is drawn from a generator seeded by `f"{run_seed}:{index}"`, so a scenario is the
same on every machine and rerun, and shards can be planned independently. Phenomenon quotas
follow DESIGN section 5 (backchannels ~16-19 % of contributions, ~30 % of speaker transfers
overlapped) and are capped so that a 2-party script of `target_turns` turns can meet them all:
each speaker boundary carries at most one backchannel, interruption or overlap.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable
from dataclasses import dataclass

from pipeline.schema import Phenomena, ScenarioSpec, SpeakerSpec, scenario_id

VoicePicker = Callable[[str, int, random.Random], list[dict]]
"""(language, number of speakers, rng) -> one backend-specific voice dict per speaker."""


@dataclass(frozen=True)
class PlanSettings:
    """Knobs of the plan stage; rates are expectations, quotas are drawn per scenario."""

    languages: tuple[str, ...] = ("en", "hu")
    speakers: int = 2
    domains: tuple[str, ...] = ()  # empty = every domain known for the language
    min_turns: int = 8
    max_turns: int = 16
    backchannel_rate: float = 0.18  # backchannels per contribution (turns + backchannels)
    interruption_rate: float = 0.08  # per speaker change
    pause_rate: float = 0.25  # mid-turn pauses per turn
    overlap_rate: float = 0.30  # share of speaker transfers overlapped (Switchboard ~30 %)
    generator: str = "offline"


# Situations are one line in the scenario's own language; the slugs are shared across
# languages so that writers and reports can group by domain.
_SITUATIONS: dict[str, dict[str, tuple[str, ...]]] = {
    "en": {
        "travel_booking": (
            "A caller books a weekend flight for two people.",
            "A traveller wants to change the date of an existing flight.",
            "A customer asks about a package holiday with breakfast included.",
        ),
        "doctor_appointment": (
            "A patient with a sore throat asks for an appointment with the family doctor.",
            "A patient needs to move next week's check-up to another day.",
        ),
        "tech_support": (
            "A customer's home internet stopped working last night.",
            "A user cannot log in to their account although the password is right.",
            "The router keeps blinking orange and there is no connection.",
        ),
        "restaurant": (
            "A guest books a table for a birthday dinner.",
            "A caller asks whether there is a free table tonight and about vegetarian dishes.",
        ),
        "banking": (
            "A customer lost their bank card and wants to block it.",
            "A customer asks about the terms of a personal loan.",
        ),
        "weather_smalltalk": (
            "A caller planning a hike asks what the weather will be like at the weekend.",
            "Someone wants to know whether to take an umbrella tomorrow.",
        ),
        "shopping": (
            "A customer's online order has not arrived yet.",
            "A customer wants to return shoes that are too small.",
            "A shopper asks whether a sweater is available in a bigger size.",
        ),
        "museum_tourism": (
            "A family books tickets for a guided museum tour.",
            "A teacher organises a school group visit to the museum.",
        ),
    },
    "hu": {
        "travel_booking": (
            "Egy telefonáló hétvégi repülőutat foglal két főre.",
            "Egy utas szeretné módosítani a már lefoglalt repülőjegye dátumát.",
            "Egy ügyfél reggelivel együtt kínált társasutazásról érdeklődik.",
        ),
        "doctor_appointment": (
            "Egy torokfájós beteg időpontot kér a háziorvoshoz.",
            "Egy betegnek át kell tennie a jövő heti vizsgálatát egy másik napra.",
        ),
        "tech_support": (
            "Egy ügyfélnél tegnap este óta nem működik az otthoni internet.",
            "Egy felhasználó nem tud belépni a fiókjába, pedig jó a jelszava.",
            "A router folyamatosan narancssárgán villog, és nincs kapcsolat.",
        ),
        "restaurant": (
            "Egy vendég asztalt foglal egy születésnapi vacsorára.",
            "Egy telefonáló szabad asztalról és vegetáriánus ételekről érdeklődik estére.",
        ),
        "banking": (
            "Egy ügyfél elvesztette a bankkártyáját, és le szeretné tiltatni.",
            "Egy ügyfél a személyi kölcsön feltételeiről érdeklődik.",
        ),
        "weather_smalltalk": (
            "Egy kirándulást tervező telefonáló a hétvégi időjárásról kérdez.",
            "Valaki azt szeretné tudni, kell-e holnap esernyőt vinnie.",
        ),
        "shopping": (
            "Egy vásárló internetes rendelése még nem érkezett meg.",
            "Egy vásárló vissza szeretne küldeni egy cipőt, mert kicsi lett.",
            "Egy vásárló azt kérdezi, kapható-e egy pulóver nagyobb méretben.",
        ),
        "museum_tourism": (
            "Egy család jegyet foglal egy vezetett múzeumi tárlatra.",
            "Egy tanár iskolai csoportos látogatást szervez a múzeumba.",
        ),
    },
}

_NAMES: dict[str, tuple[str, ...]] = {
    "en": ("Emma", "Oliver", "Sophie", "James", "Grace", "Daniel", "Chloe", "Samuel",
           "Lucy", "Henry", "Mia", "Thomas"),
    "hu": ("Anna", "Bence", "Zsófia", "Gergő", "Réka", "Levente", "Eszter", "Máté",
           "Katalin", "Dávid", "Noémi", "Balázs"),
}

_PERSONAS: dict[str, dict[str, tuple[str, ...]]] = {
    "en": {
        "user": ("polite and a little hesitant", "in a hurry", "chatty and friendly",
                 "detail-oriented, double-checks everything"),
        "assistant": ("patient customer service agent", "cheerful and efficient agent",
                      "calm, precise agent"),
    },
    "hu": {
        "user": ("udvarias, kicsit bizonytalan", "siet", "beszédes és barátságos",
                 "alapos, mindent kétszer ellenőriz"),
        "assistant": ("türelmes ügyfélszolgálatos", "vidám és gyors ügyintéző",
                      "nyugodt, pontos ügyintéző"),
    },
}


def known_languages() -> tuple[str, ...]:
    """Languages the planner has situations, names and personas for."""
    return tuple(_SITUATIONS)


def known_domains(language: str) -> tuple[str, ...]:
    """Domain slugs with situations in `language`."""
    _check_language(language)
    return tuple(_SITUATIONS[language])


def plan_scenario(
    index: int, run_seed: int, settings: PlanSettings, voices: VoicePicker
) -> ScenarioSpec:
    """Plan scenario `index` of a run; the same (run_seed, index, settings) gives the same spec."""
    _check_settings(settings)
    rng = random.Random(f"{run_seed}:{index}")
    language = settings.languages[index % len(settings.languages)]
    domains = settings.domains or known_domains(language)
    domain = rng.choice(domains)
    situation = rng.choice(_SITUATIONS[language][domain])
    count = _speaker_count(settings, rng)
    target_turns = rng.randint(settings.min_turns, settings.max_turns)
    phenomena = _quotas(settings, target_turns, count, rng)
    seed = rng.getrandbits(63)

    names = rng.sample(_NAMES[language], count)
    assistant_slot = rng.randrange(count)
    voice_rng = random.Random(f"{run_seed}:{index}:voices")
    picked = voices(language, count, voice_rng)
    if len(picked) != count:
        raise ValueError(f"voices: picker returned {len(picked)} voices for {count} speakers")
    speakers = []
    for slot in range(count):
        role = "assistant" if slot == assistant_slot else "user"
        speakers.append(SpeakerSpec(
            id=f"spk{slot}", name=names[slot], role=role,
            persona=rng.choice(_PERSONAS[language][role]), voice=dict(picked[slot]),
        ))
    return ScenarioSpec(
        id=scenario_id(run_seed, index), index=index, language=language, domain=domain,
        situation=situation, speakers=speakers, assistant=f"spk{assistant_slot}",
        target_turns=target_turns, phenomena=phenomena, generator=settings.generator, seed=seed,
    )


def _speaker_count(settings: PlanSettings, rng: random.Random) -> int:
    """One place to grow a (min, max) range later; `rng` is reserved for that draw."""
    return settings.speakers


def _quotas(settings: PlanSettings, turns: int, speakers: int, rng: random.Random) -> Phenomena:
    """Draw phenomenon counts around their expectations and cap them to what fits.

    Stochastic rounding keeps the mean equal to the expectation (an expected 0.6 interruption
    becomes 1 interruption in 60 % of scenarios). `pauses` counts pause points (word
    indices), one per paused turn unless more pauses than turns are asked for.
    """
    transfers = turns - 1  # speaker boundaries between consecutive turns
    rate = min(settings.backchannel_rate, 0.95)
    backchannels = _stochastic_round(rate / (1.0 - rate) * turns, rng)
    interruptions = _stochastic_round(settings.interruption_rate * transfers, rng)
    overlaps = _stochastic_round(settings.overlap_rate * transfers, rng)
    pauses = _stochastic_round(settings.pause_rate * turns, rng)
    interruptions = min(interruptions, (transfers + 1) // 2)  # never two in a row
    overlaps = min(overlaps, transfers - interruptions)
    backchannels = min(backchannels, transfers - interruptions - overlaps)
    return Phenomena(backchannels=backchannels, interruptions=interruptions,
                     pauses=min(pauses, 2 * turns), overlaps=overlaps, side_talk=0)


def _stochastic_round(value: float, rng: random.Random) -> int:
    low = math.floor(value)
    return low + (1 if rng.random() < value - low else 0)


def _check_language(language: str) -> None:
    if language not in _SITUATIONS:
        raise ValueError(f"language: {language!r} is not known; use one of {known_languages()}")


def _check_settings(settings: PlanSettings) -> None:
    """Fail before any work with the field name, the value and what is allowed."""
    if not settings.languages:
        raise ValueError(f"languages: empty; use some of {known_languages()}")
    for language in settings.languages:
        _check_language(language)
        for domain in settings.domains:
            if domain not in _SITUATIONS[language]:
                raise ValueError(f"domain: {domain!r} is not known for {language!r}; "
                                 f"use one of {known_domains(language)}")
    if settings.speakers != 2:
        raise ValueError(f"speakers: {settings.speakers} is not supported yet; use 2")
    if not 2 <= settings.min_turns <= settings.max_turns:
        raise ValueError(f"min_turns/max_turns: need 2 <= min_turns <= max_turns, got "
                         f"{settings.min_turns}, {settings.max_turns}")
    for name in ("backchannel_rate", "interruption_rate", "pause_rate", "overlap_rate"):
        value = getattr(settings, name)
        if not 0.0 <= value <= 1.0:
            raise ValueError(f"{name}: {value} is outside [0, 1]")
