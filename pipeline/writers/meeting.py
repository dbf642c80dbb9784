"""Multi-party scripts (3-6 speakers) for the offline composer: a meeting with an assistant.

Layout first, text second, as in the 2-party composer:
1. who speaks: the chair opens, then each next speaker is drawn from the scenario's
   first-order Markov matrix (`ScenarioSpec.next_speaker`);
2. whom they address: a human turn followed by the assistant is addressed to the assistant;
   the assistant answers the human it follows; a human turn followed by another human is
   side talk (addressed to that human) for `phenomena.side_talk` of them and to `all`
   otherwise;
3. phenomena: interruptions and overlaps on speaker changes (interruptions never adjacent),
   backchannels by a listener after any turn: the next speaker (who acknowledges, then
   takes the floor) with probability BACKCHANNEL_BY_NEXT, else the addressee when it is a
   person, else anyone else; with probability BACKCHANNEL_PAIR a second listener joins a
   turn that already has one (two listeners acknowledging one speaker, as in meetings);
4. text from the meeting bank and the domain's 2-party lines, padded to what the turn needs.
"""

from __future__ import annotations

import random

from pipeline.phenomena_quotas import BACKCHANNEL_BY_NEXT, BACKCHANNEL_PAIR, next_speaker_matrix
from pipeline.schema import DialogueScript, ScenarioSpec, Turn
from pipeline.writers.phrasebank import DomainBank, LanguageBank
from pipeline.writers.phrasebank_meeting import MEETING_BANKS, MeetingBank
from pipeline.writers.slots import Slot, pause_points

MAX_WORDS = 35
_PHONE_WORDS = ("calling", "hívom")  # 2-party requests that only fit a phone call


def write_meeting(scenario: ScenarioSpec, bank: LanguageBank, domain: DomainBank,
                  rng: random.Random) -> DialogueScript:
    ids = [s.id for s in scenario.speakers]
    roles = {s.id: s.role for s in scenario.speakers}
    assistant = scenario.assistant if scenario.assistant in ids else ids[-1]
    chair = next((i for i in ids if roles[i] == "chair"), next(i for i in ids if i != assistant))
    matrix = scenario.next_speaker or next_speaker_matrix([roles[i] for i in ids])
    count = max(2, scenario.target_turns)
    order = [chair]
    while len(order) < count:
        row = matrix[ids.index(order[-1])]
        order.append(rng.choices(ids, weights=row)[0])
    if assistant not in order:  # the assistant takes part in every meeting
        order[1 + rng.randrange(count - 1)] = assistant

    addressees = _addressees(order, assistant, scenario.phenomena.side_talk, rng)
    changes = [b for b in range(1, count) if order[b] != order[b - 1]]
    interrupt_at = _non_adjacent([b for b in changes if 2 <= b <= count - 2] or changes,
                                 scenario.phenomena.interruptions, rng)
    free = [b for b in changes if b not in interrupt_at]
    overlap_at = set(rng.sample(free, min(scenario.phenomena.overlaps, len(free))))
    free = [b for b in range(1, count) if b not in interrupt_at | overlap_at]
    backchannel_at: dict[int, int] = {}
    for _ in range(scenario.phenomena.backchannels):
        singles = [b for b, n in backchannel_at.items() if n == 1 and len(ids) >= 3]
        if singles and (rng.random() < BACKCHANNEL_PAIR or len(backchannel_at) == len(free)):
            backchannel_at[rng.choice(singles)] = 2
        elif len(backchannel_at) < len(free):
            backchannel_at[rng.choice([b for b in free if b not in backchannel_at])] = 1

    slots = [Slot(role="assistant" if s == assistant else "user") for s in order]
    for b in range(1, count):
        slots[b].interrupts, slots[b].overlap = b in interrupt_at, b in overlap_at
        slots[b - 1].interrupted = b in interrupt_at
        slots[b - 1].backchannel_after = b in backchannel_at
        slots[b - 1].backchannels = backchannel_at.get(b, 0)
    pauses = min(scenario.phenomena.pauses, 2 * count)
    for index in rng.sample(range(count), min(pauses, count)):
        slots[index].pauses += 1
    for index in rng.sample(range(count), max(0, pauses - count)):
        slots[index].pauses += 1

    names = {s.id: s.name for s in scenario.speakers}
    values = {"agent": names[assistant], "org": rng.choice(domain.orgs),
              "when": rng.choice(bank.when), "price": rng.choice(domain.prices or bank.prices),
              "place": rng.choice(domain.places or ("",))}
    writer = _MeetingWriter(MEETING_BANKS[scenario.language], bank, domain, values, names,
                            assistant, rng)
    turns: list[Turn] = []
    for index, (speaker, slot) in enumerate(zip(order, slots, strict=True)):
        floor_role = roles[order[index - 1]] if index else ""
        text = writer.text(index, count, speaker, roles[speaker], addressees[index], slot,
                           floor_role)
        turns.append(Turn(speaker=speaker, text=text, interrupts=slot.interrupts,
                          overlap=slot.overlap, addressee=addressees[index],
                          pauses=pause_points(text, slot.pauses, rng)))
        if slot.backchannel_after:
            following = order[index + 1] if index + 1 < count else speaker
            listener = addressees[index]
            if following != speaker and rng.random() < BACKCHANNEL_BY_NEXT:
                listener = following
            elif listener in ("all", speaker):
                listener = rng.choice([i for i in ids if i != speaker])
            listeners = [listener]
            if slot.backchannels > 1:  # another listener first, the chosen one last
                listeners.insert(0, rng.choice([i for i in ids if i not in (speaker, listener)]))
            texts = rng.sample(bank.backchannels, len(listeners))
            turns += [Turn(speaker=who, text=text, kind="backchannel", addressee=speaker)
                      for who, text in zip(listeners, texts, strict=True)]
    return DialogueScript(scenario_id=scenario.id, language=scenario.language, turns=turns)


def _addressees(order: list[str], assistant: str, side_talk: int,
                rng: random.Random) -> list[str]:
    out: list[str] = []
    candidates: list[int] = []
    for index, speaker in enumerate(order):
        following = order[index + 1] if index + 1 < len(order) else None
        previous = order[index - 1] if index else None
        if speaker == assistant:
            out.append(previous if previous not in (None, assistant) else "all")
        elif following == assistant:
            out.append(assistant)
        else:
            out.append("all")
            if following not in (None, speaker):
                candidates.append(index)
    for index in rng.sample(candidates, min(side_talk, len(candidates))):
        out[index] = order[index + 1]
    return out


def _non_adjacent(boundaries: list[int], quota: int, rng: random.Random) -> set[int]:
    picked: set[int] = set()
    for b in rng.sample(boundaries, len(boundaries)):
        if len(picked) >= quota:
            break
        if b - 1 not in picked and b + 1 not in picked:
            picked.add(b)
    return picked


class _MeetingWriter:
    """Turns (speaker, role, addressee, slot) into spoken-style text, keeping Q&A pairs."""

    def __init__(self, meeting: MeetingBank, bank: LanguageBank, domain: DomainBank,
                 values: dict[str, str], names: dict[str, str], assistant: str,
                 rng: random.Random) -> None:
        self.assistant = assistant
        self.meeting, self.bank, self.domain = meeting, bank, domain
        self.values, self.names, self.rng = values, names, rng
        self.used: set[str] = set()
        self.owed: dict[str, str] = {}  # speaker -> line they owe (an answer)
        self.requested = False

    def text(self, index: int, count: int, speaker: str, role: str, addressee: str,
             slot, floor_role: str) -> str:
        m, bank, domain = self.meeting, self.bank, self.domain
        self.values.update(user=self.names[speaker],
                           to=self.names.get(addressee, self.names[speaker]))
        core: list[str]
        if index == count - 1:
            closing = {"chair": m.close_chair, "assistant": m.close_assistant}
            core = [self._pick(closing.get(role, m.close_other))]
        elif role == "assistant":
            answer = self.owed.pop(speaker, None)
            core = [answer] if answer else [self._pick(domain.offers + bank.confirm
                                                       + m.assistant_all)]
        elif addressee == self.assistant:
            core = self._to_assistant(addressee)
        elif speaker in self.owed:
            core = [self.owed.pop(speaker)]
            if addressee != "all" and self.rng.random() < 0.5:
                core.append(self._ask_peer(addressee))
        elif addressee != "all":
            core = [self._ask_peer(addressee)] if self.rng.random() < 0.7 else [
                self._pick(m.opinion)]
        else:
            core = [self._pick(m.opinion + domain.user_more)]
        if index == 0:
            core = [self._pick(m.open_chair), self._pick(m.goal_chair)] + (
                core if addressee != "all" else [])
        return self._render(core, slot, role, floor_role, closing=index == count - 1)

    def _to_assistant(self, assistant: str) -> list[str]:
        domain = self.domain
        if not self.requested:
            self.requested = True
            requests = [r for r in domain.requests
                        if not any(w in r.lower() for w in _PHONE_WORDS)] or list(domain.requests)
            return [self._pick(tuple(requests)), self._pick(self.meeting.to_assistant)]
        questions = [q for q in domain.user_questions if q[0] not in self.used]
        if questions:
            ask, reply = self.rng.choice(questions)
            self.used.add(ask)
            self.owed[assistant] = reply
            return [ask]
        return [self._pick(domain.user_more), self._pick(self.meeting.to_assistant)]

    def _ask_peer(self, peer: str) -> str:
        self.owed[peer] = self._pick(self.meeting.reply_peer)
        return self._pick(self.meeting.ask_peer)

    def _render(self, core: list[str], slot, role: str, floor_role: str, closing: bool) -> str:
        """Interrupters open with a barge-in phrase: formal towards the assistant or from
        it, informal between colleagues. Padding goes before a closing line or a final
        question, else after."""
        bank, m, rng = self.bank, self.meeting, self.rng
        sentences = [self._fill(s) for s in core]
        if slot.interrupts:
            pool = (bank.interrupt_agent if role == "assistant" else bank.interrupt_user
                    if floor_role == "assistant" else m.interrupt_peer)
            sentences.insert(0, rng.choice(pool))
        pad = (self.domain.agent_more + bank.agent_more + m.assistant_all
               if role == "assistant" else m.opinion + self.domain.user_more + m.more)
        need = slot.min_words()
        if slot.interrupts or rng.random() < 0.2:
            need = max(need, rng.randint(10, 20))
        while _words(sentences) < need:
            room = MAX_WORDS - _words(sentences)
            fits = [p for p in pad if len(p.split()) <= room and p not in self.used] or [
                p for p in pad if len(p.split()) <= room]
            if not fits:
                break
            extra = rng.choice(fits)
            self.used.add(extra)
            last_first = closing or sentences[-1].endswith("?")
            sentences.insert(len(sentences) - 1 if last_first else len(sentences),
                             self._fill(extra))
        while _words(sentences) > MAX_WORDS and len(sentences) > 1:
            sentences.pop(-1 if slot.interrupts else 0)
        if not slot.interrupts and rng.random() < 0.3:
            first = sentences[0]
            if first.split()[0] not in bank.keep_capital and not first.startswith(
                    tuple(self.names.values())):
                first = first[0].lower() + first[1:]
            candidate = f"{rng.choice(bank.fillers)} {first}"
            if _words([candidate] + sentences[1:]) <= MAX_WORDS:
                sentences[0] = candidate
        return " ".join(sentences)

    def _fill(self, template: str) -> str:
        text = template.format(**self.values)
        return text[0].upper() + text[1:]

    def _pick(self, options: tuple[str, ...]) -> str:
        fresh = [o for o in options if o not in self.used] or list(options)
        choice = self.rng.choice(fresh)
        self.used.add(choice)
        return choice


def _words(sentences: list[str]) -> int:
    return sum(len(s.split()) for s in sentences)
