"""The offline composer: a deterministic script from phrase banks, no network.

Two speakers make a service call (below); 3-6 make a meeting (`pipeline.writers.meeting`).

The script is laid out first (who speaks each turn, which speaker boundary carries a
backchannel, an interruption or an overlap, which turns pause) so that the scenario's quotas
are met exactly, then each turn gets text long enough for what happens in it:
>= 8 words before a backchannel, >= 15 words when the next turn interrupts it, >= 6 (>= 10)
words with one (two) pauses, never more than 35.

Quota meanings: `backchannels` = turns of kind "backchannel"; `interruptions` = turns with
`interrupts`; `overlaps` = turns with `overlap`; `pauses` = pause points, i.e. the total of
all `pauses` indices (one per paused turn; a second one only when more pauses than turns are
asked for). A speaker boundary carries at most one backchannel, interruption or overlap,
interruptions are never adjacent, so the quotas fit when interruptions <= turns // 2 and
interruptions + overlaps + backchannels <= turns - 1; larger quotas are capped in that order.
"""

from __future__ import annotations

import random

from pipeline.schema import DialogueScript, Phenomena, ScenarioSpec, Turn
from pipeline.writers.meeting import write_meeting
from pipeline.writers.phrasebank import EN, DomainBank, LanguageBank
from pipeline.writers.phrasebank_hu import HU
from pipeline.writers.slots import Slot, pause_points

_BANKS: dict[str, LanguageBank] = {"en": EN, "hu": HU}
_PROPER_SLOTS = ("{user}", "{agent}", "{org}", "{place}")
MAX_WORDS = 35


class OfflineComposer:
    """Default dialogue writer: same scenario (seed) in, identical script out."""

    name = "offline"
    known_languages = tuple(_BANKS)

    def __init__(self, label: str = "offline") -> None:
        self.generator = label

    def meta(self) -> dict:
        return {"generator": self.generator, "model": None, "prompt_version": None}

    def write(self, scenario: ScenarioSpec) -> DialogueScript:
        bank = _BANKS.get(scenario.language)
        if bank is None:
            raise ValueError(f"language: {scenario.language!r} is not supported by the offline "
                             f"composer; use one of {self.known_languages}")
        domain = bank.domains.get(scenario.domain)
        if domain is None:
            raise ValueError(f"domain: {scenario.domain!r} has no {scenario.language!r} phrases; "
                             f"use one of {tuple(bank.domains)}")
        if not 2 <= len(scenario.speakers) <= 6:
            raise ValueError(f"speakers: the offline composer writes 2 to 6 speakers, "
                             f"scenario {scenario.id} has {len(scenario.speakers)}")
        rng = random.Random(f"offline:{scenario.seed}")
        if len(scenario.speakers) > 2:
            return write_meeting(scenario, bank, domain, rng)
        ids = [s.id for s in scenario.speakers]
        agent = scenario.assistant if scenario.assistant in ids else ids[1]
        user = ids[0] if ids[1] == agent else ids[1]
        values = {
            "user": scenario.speaker(user).name, "agent": scenario.speaker(agent).name,
            "org": rng.choice(domain.orgs), "when": rng.choice(bank.when),
            "price": rng.choice(domain.prices or bank.prices),
            "place": rng.choice(domain.places or ("",)),
        }
        slots = layout(scenario.target_turns, scenario.phenomena, rng)
        texts = _Writer(bank, domain, values, rng).texts(slots)
        turns: list[Turn] = []
        who = {"user": user, "assistant": agent}
        for slot, text in zip(slots, texts, strict=True):
            speaker = who[slot.role]
            listener = agent if speaker == user else user
            turns.append(Turn(speaker=speaker, text=text, interrupts=slot.interrupts,
                              overlap=slot.overlap, addressee=listener,
                              pauses=pause_points(text, slot.pauses, rng)))
            if slot.backchannel_after:
                turns.append(Turn(speaker=listener, text=rng.choice(bank.backchannels),
                                  kind="backchannel", addressee=speaker))
        return DialogueScript(scenario_id=scenario.id, language=scenario.language, turns=turns)


def layout(turns: int, phenomena: Phenomena, rng: random.Random) -> list[Slot]:
    """Place phenomena on speaker boundaries and roles on turns (see module docstring)."""
    count = max(2, turns)
    boundaries = count - 1  # boundary b sits between turn b-1 and turn b
    interruptions = min(phenomena.interruptions, count // 2)
    # prefer not to cut the opening greeting or interrupt with the goodbye
    for low, high in ((2, count - 2), (1, count - 2), (1, boundaries)):
        span = high - low + 1
        if interruptions <= (span + 1) // 2:
            break
    picks = sorted(rng.sample(range(span - interruptions + 1), interruptions))
    interrupt_at = {low + pick + k for k, pick in enumerate(picks)}  # never adjacent
    free = [b for b in range(1, count) if b not in interrupt_at]
    overlap_at = set(rng.sample(free, min(phenomena.overlaps, len(free))))
    free = [b for b in free if b not in overlap_at]
    backchannel_at = set(rng.sample(free, min(phenomena.backchannels, len(free))))

    slots = [Slot(role="user" if rng.random() < 0.8 else "assistant")]
    for b in range(1, count):
        role = slots[-1].role
        stays = b in backchannel_at and b > 1 and rng.random() < 0.4
        slots.append(Slot(role=role if stays else _other(role),
                          interrupts=b in interrupt_at, overlap=b in overlap_at))
        slots[b - 1].backchannel_after = b in backchannel_at
        slots[b - 1].interrupted = b in interrupt_at
    pauses = min(phenomena.pauses, 2 * count)
    for index in rng.sample(range(count), min(pauses, count)):
        slots[index].pauses += 1
    for index in rng.sample(range(count), max(0, pauses - count)):
        slots[index].pauses += 1
    return slots


def _other(role: str) -> str:
    return "assistant" if role == "user" else "user"


class _Writer:
    """Chooses a dialogue move per turn and turns it into spoken-style text."""

    def __init__(self, bank: LanguageBank, domain: DomainBank, values: dict[str, str],
                 rng: random.Random) -> None:
        self.bank, self.domain, self.values, self.rng = bank, domain, values, rng
        self.used: set[str] = set()
        self.pending: dict[str, tuple[list[str], str]] = {}
        self.requested = False
        self.last_agent: list[str] = []
        self.last_move = ""

    def texts(self, slots: list[Slot]) -> list[str]:
        out = []
        for index, slot in enumerate(slots):
            stays = index > 0 and slots[index - 1].role == slot.role
            move, core = self._move(index, len(slots), slot.role, stays)
            self.last_move = move
            if slot.role == "assistant":
                self.last_agent = core
            out.append(self._render(slot, move, core))
        return out

    def _move(self, index: int, count: int, role: str, stays: bool) -> tuple[str, list[str]]:
        """The dialogue act of turn `index` and its template sentences."""
        bank, domain = self.bank, self.domain
        user = role == "user"
        closing = (index == count - 1 and count >= 3) or (index == count - 2 and count >= 5)
        if closing:
            # answer what is still open, then say goodbye
            owed = self.pending.pop(role)[0] if not stays and role in self.pending else []
            move = "close" if index == count - 1 else "preclose"
            lines = {("user", "close"): bank.close_user, ("user", "preclose"): bank.preclose_user,
                     ("assistant", "close"): bank.close_agent,
                     ("assistant", "preclose"): bank.preclose_agent}[(role, move)]
            return move, owed + [self._pick(lines)]
        if index == 0 and not user:
            return "open", [self._pick(bank.greet_agent)]
        if user and not self.requested:
            self.requested = True
            greet = [self._pick(bank.greet_user)] if index <= 1 else []
            return "request", greet + [self._pick(domain.requests)]
        if not stays and role in self.pending:
            core, move = self.pending.pop(role)
            return move, core
        if user:
            return self._user_move(stays)
        return self._agent_move()

    def _user_move(self, stays: bool) -> tuple[str, list[str]]:
        bank, rng = self.bank, self.rng
        questions = self._unused_pairs(self.domain.user_questions)
        chats = self._unused_pairs(bank.smalltalk)
        options = [("more", 0.2)]
        if questions:
            options.append(("question", 0.45))
        if chats:
            options.append(("smalltalk", 0.15))
        if not stays and self.last_move in ("answer", "offer", "ask"):
            options.append(("clarify", 0.1))
        if not stays and self.last_move in ("offer", "confirm"):
            options.append(("ack", 0.3))
        move = _weighted(options, rng)
        if move in ("question", "smalltalk"):
            ask, reply = rng.choice(questions if move == "question" else chats)
            self.used.add(ask)
            self.pending["assistant"] = ([reply], "answer" if move == "question" else "chat")
            return move, [ask]
        if move == "clarify":
            self.pending["assistant"] = ([self._pick(bank.rephrase)] + self.last_agent, "answer")
            return move, [self._pick(bank.clarify)]
        if move == "ack":
            return move, [self._pick(bank.ack_user)]
        return move, [self._pick(self.domain.user_more + bank.user_more)]

    def _agent_move(self) -> tuple[str, list[str]]:
        bank, rng = self.bank, self.rng
        asks = self._unused_pairs(self.domain.agent_questions)
        options = [("offer", 0.25), ("more", 0.1)]
        if asks:
            options.append(("ask", 0.45))
        if self.last_move in ("request", "detail", "more", "ack"):
            options.append(("confirm", 0.2))
        move = _weighted(options, rng)
        if move == "ask":
            ask, reply = rng.choice(asks)
            self.used.add(ask)
            self.pending["user"] = ([reply], "detail")
            return move, [ask]
        if move == "offer":
            if rng.random() < 0.6:
                self.pending["user"] = ([self._pick(bank.ack_user)], "ack")
            return move, [self._pick(self.domain.offers)]
        if move == "confirm":
            return move, [self._pick(bank.confirm)]
        return move, [self._pick(self.domain.agent_more + bank.agent_more)]

    def _render(self, slot: Slot, move: str, core: list[str]) -> str:
        """Fill slots, pad to the slot's minimum length, add fillers and disfluencies."""
        bank, rng = self.bank, self.rng
        sentences = [self._fill(s) for s in core]
        user = slot.role == "user"
        pools = {("user", "preclose"): bank.ack_user, ("user", "close"): bank.preclose_user,
                 ("assistant", "preclose"): bank.confirm + bank.wrapup_agent,
                 ("assistant", "close"): bank.wrapup_agent, ("assistant", "open"): bank.hold_agent}
        default = (self.domain.user_more + bank.user_more if user
                   else self.domain.agent_more + bank.agent_more)
        pool = pools.get((slot.role, move), default)
        prefix: list[tuple[str, bool]] = []
        if slot.interrupts:
            prefix = [(rng.choice(bank.interrupt_user if user else bank.interrupt_agent), False)]
        while _count(prefix + sentences) > MAX_WORDS and len(sentences) > 1:
            sentences.pop(0)  # an owed answer plus a goodbye can run too long
        need = slot.min_words()
        if slot.interrupts or rng.random() < 0.2:
            need = max(need, rng.randint(10, 20))  # some long turns, as in real talk
        before = move in ("close", "preclose", "ask", "open")
        while _count(prefix + sentences) < need:
            room = MAX_WORDS - _count(prefix + sentences)
            fits = [p for p in pool if len(p.split()) <= room and p not in self.used]
            fits = fits or [p for p in pool if len(p.split()) <= room]
            if not fits:
                break
            extra = self._fill(rng.choice(fits))
            self.used.add(extra[0])
            sentences.insert(len(sentences) - 1 if before else len(sentences), extra)
        plain = " ".join(text for text, _ in prefix + sentences)
        if not prefix and rng.random() < 0.35:
            sentences[0] = self._filler(sentences[0])
        if len(sentences) > 1 and rng.random() < 0.15:
            sentences[-1] = self._filler(sentences[-1])
        if rng.random() < 0.12:
            pick = rng.randrange(len(sentences))
            sentences[pick] = self._stutter(sentences[pick])
        text = " ".join(text for text, _ in prefix + sentences)
        return text if len(text.split()) <= MAX_WORDS else plain

    def _fill(self, template: str) -> tuple[str, bool]:
        """(text, starts with a proper noun) for one template sentence."""
        text = template.format(**self.values)
        return text[0].upper() + text[1:], template.startswith(_PROPER_SLOTS)

    def _filler(self, sentence: tuple[str, bool]) -> tuple[str, bool]:
        filler = self.rng.choice(self.bank.fillers)
        return f"{filler} {self._lower(sentence)}", False

    def _stutter(self, sentence: tuple[str, bool]) -> tuple[str, bool]:
        """Repeat the first word ("I, I'd like"), the commonest disfluency in dialogue."""
        text, proper = sentence
        words = text.split()
        if len(words) < 4:
            return sentence
        first = words[0].rstrip(",.?!")
        return f"{first}, {self._lower(sentence)}", proper

    def _lower(self, sentence: tuple[str, bool]) -> str:
        text, proper = sentence
        first = text.split()[0].rstrip(",.?!")
        if proper or first in self.bank.keep_capital:
            return text
        return text[0].lower() + text[1:]

    def _pick(self, options: tuple[str, ...]) -> str:
        fresh = [o for o in options if o not in self.used] or list(options)
        choice = self.rng.choice(fresh)
        self.used.add(choice)
        return choice

    def _unused_pairs(self, pairs: tuple[tuple[str, str], ...]) -> list[tuple[str, str]]:
        return [pair for pair in pairs if pair[0] not in self.used]


def _count(sentences: list[tuple[str, bool]]) -> int:
    return sum(len(text.split()) for text, _ in sentences)


def _weighted(options: list[tuple[str, float]], rng: random.Random) -> str:
    names = [name for name, _ in options]
    return rng.choices(names, weights=[weight for _, weight in options])[0]
