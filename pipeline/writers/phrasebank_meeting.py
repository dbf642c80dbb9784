"""Meeting lines of the offline composer (3-6 speakers), English and Hungarian.

Humans talk to each other informally (Hungarian: tegeződés) and to the assistant with the
2-party bank's request and question lines. `{to}` is the addressee's name, `{self}` the
speaker's own; Hungarian uses the name as a vocative, which needs no inflection.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class MeetingBank:
    open_chair: tuple[str, ...]
    goal_chair: tuple[str, ...]
    ask_peer: tuple[str, ...]  # to a named human
    reply_peer: tuple[str, ...]  # answers an ask_peer
    opinion: tuple[str, ...]  # to the room or to a human
    to_assistant: tuple[str, ...]  # hands a task to the assistant
    assistant_all: tuple[str, ...]  # the assistant speaking to the room
    close_chair: tuple[str, ...]
    close_other: tuple[str, ...]
    close_assistant: tuple[str, ...]
    interrupt_peer: tuple[str, ...]  # barging in on a colleague (informal)
    more: tuple[str, ...]  # generic padding for a human turn


EN_MEETING = MeetingBank(
    open_chair=("Okay, everyone, let's get started.", "Right, thanks for coming, let's begin.",
                "Good morning, everyone, shall we start?"),
    goal_chair=("Today we need to sort this out together.",
                "We only have half an hour, so let's keep it short.",
                "I'd like us to make a decision before we leave."),
    ask_peer=("{to}, what do you think?", "{to}, does that work for you?",
              "What's your view on this, {to}?", "{to}, could you check your calendar?",
              "{to}, you dealt with this last time, didn't you?"),
    reply_peer=("Yes, that works for me.", "I'd need to check, but probably yes.",
                "Fine by me, as long as it's not too expensive.",
                "Honestly, I'd prefer a later date.", "I think so, yes, I'll confirm later."),
    opinion=("I think that's a good idea.",
             "To be honest, I'm not sure that works for everyone.",
             "I'd go for the earlier option.", "That sounds reasonable to me.",
             "We should keep an eye on the budget, though.", "Let's not rush this decision.",
             "I agree, let's do it that way.", "Maybe we could split the tasks between us."),
    to_assistant=("Could you check that for us, please?", "Can you look that up for us?",
                  "Could you help us with this?"),
    assistant_all=("I can sum up what we have so far, if that helps.",
                   "I've noted everything down for the group.",
                   "Let me know when you've decided, and I'll take care of the rest."),
    close_chair=("Great, I think we're done, thanks, everyone.",
                 "Okay, that's settled, thank you all.",
                 "Perfect, let's wrap up here, thanks for your time."),
    close_other=("Thanks, everyone.", "Sounds good, see you later.",
                 "Great, thanks for organising this."),
    close_assistant=("Glad I could help, enjoy the rest of your meeting.",
                     "You're welcome, everything is booked. Goodbye, everyone."),
    interrupt_peer=("Sorry, can I just say something?", "Wait, wait, one second.",
                    "Sorry, just a quick thought."),
    more=("I hope that makes sense.", "It's quite important for me, to be honest.",
          "We discussed this briefly last week.",
          "I just want to make sure everyone is happy with it."),
)

HU_MEETING = MeetingBank(
    open_chair=("Jó, akkor kezdjük is el.", "Köszönöm, hogy eljöttetek, kezdjük.",
                "Jó reggelt mindenkinek, indulhatunk?"),
    goal_chair=("Ma ezt kellene közösen elintéznünk.",
                "Csak fél óránk van, úgyhogy haladjunk gyorsan.",
                "Szeretném, ha még ma döntenénk."),
    ask_peer=("{to}, te mit gondolsz?", "{to}, neked ez megfelel?",
              "Mi a véleményed erről, {to}?", "{to}, meg tudnád nézni a naptáradat?",
              "{to}, legutóbb te intézted ezt, nem?"),
    reply_peer=("Igen, nekem megfelel.", "Meg kell néznem, de valószínűleg igen.",
                "Nekem jó, ha nem túl drága.", "Őszintén szólva jobb lenne egy későbbi időpont.",
                "Azt hiszem, igen, később megerősítem."),
    opinion=("Szerintem ez jó ötlet.",
             "Őszintén szólva nem tudom, hogy ez mindenkinek jó-e.",
             "Én a korábbi lehetőséget választanám.", "Ez nekem észszerűnek tűnik.",
             "Azért a költségvetésre figyeljünk oda.", "Ne kapkodjuk el a döntést.",
             "Egyetértek, csináljuk így.", "Talán feloszthatnánk egymás között a feladatokat."),
    to_assistant=("Meg tudná ezt nézni nekünk, kérem?", "Utánanézne ennek, kérem?",
                  "Segítene nekünk ebben?"),
    assistant_all=("Ha segít, összefoglalom, hol tartunk.",
                   "Mindent feljegyeztem a csoport számára.",
                   "Szóljanak, ha döntöttek, és a többit elintézem."),
    close_chair=("Remek, azt hiszem, végeztünk, köszönöm mindenkinek.",
                 "Jó, akkor ez el van intézve, köszönöm mindenkinek.",
                 "Tökéletes, itt be is fejezhetjük, köszönöm az időtöket."),
    close_other=("Köszönöm mindenkinek.", "Rendben, akkor később találkozunk.",
                 "Szuper, köszönöm, hogy megszervezted."),
    close_assistant=("Szívesen segítettem, további jó megbeszélést!",
                     "Szívesen, minden le van foglalva. Viszontlátásra mindenkinek!"),
    interrupt_peer=("Bocs, hadd szóljak közbe.", "Várj, várj, egy pillanat.",
                    "Bocsánat, csak egy gondolat."),
    more=("Remélem, érthető, amit mondok.", "Ez nekem elég fontos, őszintén szólva.",
          "Múlt héten már röviden beszéltünk erről.",
          "Csak azt szeretném, hogy mindenki elégedett legyen."),
)

MEETING_BANKS = {"en": EN_MEETING, "hu": HU_MEETING}
