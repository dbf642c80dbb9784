"""The plan stage: turn (run seed, index) into a ScenarioSpec, with no I/O and no Ray.

Everything is drawn from a generator seeded by `f"{run_seed}:{index}"`, so a scenario is the
same on every machine and rerun, and shards can be planned independently. Phenomenon quotas
follow the timing settings (DESIGN section 5 by default, a fitted profile otherwise): the
share of speaker transfers that overlap is split into barge-ins (`interruption_rate` per
transfer) and plain overlaps, and backchannels make up `backchannel_rate` of contributions.
Quotas are capped so that a script of `target_turns` turns can meet them all: each speaker
boundary carries at most one backchannel, interruption or overlap.

Multi-party scenarios (3-6 speakers) are meetings: a human chair, human participants and
the assistant as one participant. Who speaks next follows a first-order Markov matrix over
roles (`next_speaker`), expanded to speakers by splitting a role's probability evenly among
its members; the speaker-level matrix is part of the scenario. `side_talk` counts turns
between humans not addressed to the assistant.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass

from pipeline.phenomena_quotas import MEETING_ROLES, next_speaker_matrix, quotas
from pipeline.schema import ScenarioSpec, SpeakerSpec, scenario_id

VoicePicker = Callable[[str, int, random.Random], list[dict]]
"""(language, number of speakers, rng) -> one backend-specific voice dict per speaker."""

@dataclass(frozen=True)
class PlanSettings:
    """Knobs of the plan stage; rates are expectations, quotas are drawn per scenario."""

    languages: tuple[str, ...] = ("en", "hu")
    speakers: int | tuple[int, int] = 2  # a count, or an inclusive (min, max) range
    domains: tuple[str, ...] = ()  # empty = every domain known for the language
    min_turns: int = 8
    max_turns: int = 16
    backchannel_rate: float = 0.18  # backchannels per contribution (turns + backchannels)
    interruption_rate: float = 0.08  # per speaker change
    pause_rate: float = 0.25  # mid-turn pauses per turn
    overlap_rate: float = 0.30  # share of speaker transfers overlapped, barge-ins included
    side_talk_rate: float = 0.2  # multi-party: share of human turns addressed to a human
    next_speaker: dict[str, dict[str, float]] | None = None  # role matrix; None = default
    transfers: str = "turns"  # how the target counts transfers: "turns" or "segments"
    generator: str = "offline"
    situations: frozenset[str] | None = None  # a split's templates (splits.py); None = all


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

# Multi-party situations: a group talks among itself and with the assistant in the room.
_MEETING_SITUATIONS: dict[str, dict[str, tuple[str, ...]]] = {
    "en": {
        "travel_booking": ("A team plans its autumn offsite and asks the assistant to book "
                           "the trip.",
                           "A family decides where to go for the weekend and books it with "
                           "the assistant."),
        "doctor_appointment": ("A family sorts out check-ups for everyone with the clinic's "
                               "assistant.",),
        "tech_support": ("Office colleagues whose network is down troubleshoot it with the "
                         "support assistant.",),
        "restaurant": ("Friends plan a birthday dinner and book a table through the "
                       "assistant.",),
        "banking": ("A couple and their adviser discuss a loan with the bank's assistant.",),
        "weather_smalltalk": ("Hikers plan a weekend trip and check the weather with the "
                              "assistant.",),
        "shopping": ("Flatmates sort out a late online order with the shop's assistant.",),
        "museum_tourism": ("Teachers plan a class trip to the museum with the visitor "
                           "assistant.",),
    },
    "hu": {
        "travel_booking": ("Egy csapat az őszi kihelyezett ülését tervezi, és az asszisztenssel "
                           "foglaltatja le az utat.",
                           "Egy család eldönti, hová menjen hétvégén, és az asszisztenssel "
                           "foglal."),
        "doctor_appointment": ("Egy család a rendelő asszisztensével egyezteti mindenki "
                               "szűrővizsgálatát.",),
        "tech_support": ("Irodai kollégák a támogató asszisztenssel együtt keresik, miért nincs "
                         "hálózat.",),
        "restaurant": ("Barátok születésnapi vacsorát szerveznek, és az asszisztensen keresztül "
                       "foglalnak asztalt.",),
        "banking": ("Egy házaspár és a tanácsadójuk a bank asszisztensével beszéli meg a "
                    "kölcsönt.",),
        "weather_smalltalk": ("Túrázók hétvégi kirándulást terveznek, és az asszisztenstől "
                              "kérdezik az időjárást.",),
        "shopping": ("Lakótársak egy késő internetes rendelés ügyét intézik a bolt "
                     "asszisztensével.",),
        "museum_tourism": ("Tanárok osztálykirándulást terveznek a múzeumba a látogatói "
                           "asszisztenssel.",),
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
        "chair": ("firm, keeps time", "friendly, gives everyone a say"),
        "participant": ("keen, full of ideas", "careful, asks a lot of questions",
                        "quiet but precise", "jokes a lot"),
    },
    "hu": {
        "user": ("udvarias, kicsit bizonytalan", "siet", "beszédes és barátságos",
                 "alapos, mindent kétszer ellenőriz"),
        "assistant": ("türelmes ügyfélszolgálatos", "vidám és gyors ügyintéző",
                      "nyugodt, pontos ügyintéző"),
        "chair": ("határozott, tartja az időt", "barátságos, mindenkit szóhoz juttat"),
        "participant": ("lelkes, sok ötlete van", "óvatos, sokat kérdez",
                        "csendes, de pontos", "tréfás kedvű"),
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
    every_domain = settings.domains or known_domains(language)
    allowed = settings.situations  # a split: only domains holding one of its templates
    domains = [d for d in every_domain
               if allowed is None or set(_SITUATIONS[language][d]) & allowed]
    domain = rng.choice(domains)
    situation = rng.choice(_pick_from(_SITUATIONS[language][domain], allowed))
    count = _speaker_count(settings, rng)
    target_turns = rng.randint(settings.min_turns, settings.max_turns)
    seed = rng.getrandbits(63)

    names = rng.sample(_NAMES[language], count)
    assistant_slot = rng.randrange(count)
    roles = _roles(count, assistant_slot, rng)
    if count > 2:
        meetings = _pick_from(_MEETING_SITUATIONS[language][domain], allowed)
        if not meetings:  # the split holds no meeting template of this domain: take one it has
            domain, meetings = rng.choice([
                (d, _pick_from(_MEETING_SITUATIONS[language][d], allowed)) for d in every_domain
                if _pick_from(_MEETING_SITUATIONS[language][d], allowed)])
        situation = rng.choice(meetings)
    voice_rng = random.Random(f"{run_seed}:{index}:voices")
    picked = voices(language, count, voice_rng)
    if len(picked) != count:
        raise ValueError(f"voices: picker returned {len(picked)} voices for {count} speakers")
    speakers = [
        SpeakerSpec(id=f"spk{slot}", name=names[slot], role=roles[slot],
                    persona=rng.choice(_PERSONAS[language][roles[slot]]),
                    voice=dict(picked[slot]))
        for slot in range(count)
    ]
    matrix = next_speaker_matrix(roles, settings.next_speaker) if count > 2 else None
    phenomena = quotas(settings, target_turns, count, rng, matrix)
    return ScenarioSpec(
        id=scenario_id(run_seed, index), index=index, language=language, domain=domain,
        situation=situation, speakers=speakers, assistant=f"spk{assistant_slot}",
        target_turns=target_turns, phenomena=phenomena, generator=settings.generator, seed=seed,
        next_speaker=matrix,
    )


def _pick_from(lines: tuple[str, ...], allowed: frozenset[str] | None) -> list[str]:
    return list(lines) if allowed is None else [line for line in lines if line in allowed]


def situation_templates(settings: PlanSettings) -> dict[str, list[str]]:
    """Situation templates the plan can draw, grouped (language, dyad or meeting) so that a
    split partition gives every split templates of each kind."""
    groups: dict[str, list[str]] = {}
    for language in settings.languages:
        domains = settings.domains or known_domains(language)
        for kind, table in (("dyad", _SITUATIONS), ("meeting", _MEETING_SITUATIONS)):
            groups[f"{language}:{kind}"] = [s for d in domains for s in table[language][d]]
    return groups


def _speaker_count(settings: PlanSettings, rng: random.Random) -> int:
    if isinstance(settings.speakers, int):
        return settings.speakers
    low, high = settings.speakers
    return rng.randint(low, high)


def _roles(count: int, assistant_slot: int, rng: random.Random) -> list[str]:
    """2 speakers: user + assistant. More: a meeting with one chair among the humans."""
    if count == 2:
        return ["assistant" if slot == assistant_slot else "user" for slot in range(2)]
    humans = [slot for slot in range(count) if slot != assistant_slot]
    chair = rng.choice(humans)
    return ["assistant" if slot == assistant_slot else "chair" if slot == chair
            else "participant" for slot in range(count)]


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
    low, high = ((settings.speakers, settings.speakers) if isinstance(settings.speakers, int)
                 else tuple(settings.speakers))
    if not 2 <= low <= high <= 6:
        raise ValueError(f"speakers: {settings.speakers} is not supported; use an int in 2..6 "
                         "or (min, max) with 2 <= min <= max <= 6")
    for role, row in (settings.next_speaker or {}).items():
        if role not in MEETING_ROLES or set(row) - set(MEETING_ROLES):
            raise ValueError(f"next_speaker: roles must be {MEETING_ROLES}, got {role!r}: "
                             f"{sorted(row)}")
        if any(p < 0 for p in row.values()) or sum(row.values()) <= 0:
            raise ValueError(f"next_speaker.{role}: probabilities must be >= 0, sum > 0")
    if settings.next_speaker is not None and set(settings.next_speaker) != set(MEETING_ROLES):
        raise ValueError(f"next_speaker: needs a row for each of {MEETING_ROLES}")
    if not 2 <= settings.min_turns <= settings.max_turns:
        raise ValueError(f"min_turns/max_turns: need 2 <= min_turns <= max_turns, got "
                         f"{settings.min_turns}, {settings.max_turns}")
    for name in ("backchannel_rate", "interruption_rate", "pause_rate", "overlap_rate",
                 "side_talk_rate"):
        value = getattr(settings, name)
        if not 0.0 <= value <= 1.0:
            raise ValueError(f"{name}: {value} is outside [0, 1]")
