"""Phrase banks of the offline composer: English and Hungarian spoken-style sentences.

Hungarian lines are fixed, full sentences in the formal register (magázás); slots take only
forms that need no inflection: names and organisations in the nominative, `{when}` as a
ready adverbial ("holnap délután háromkor"), `{place}` already in the case its sentences
need. Paired tuples keep question and answer together so that a reply fits its question.
Slots: {user} {agent} {org} {when} {price} {place}.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class DomainBank:
    """Domain-specific lines; `agent_questions` are (assistant asks, user answers)."""

    orgs: tuple[str, ...]
    requests: tuple[str, ...]
    agent_questions: tuple[tuple[str, str], ...]
    user_questions: tuple[tuple[str, str], ...]
    offers: tuple[str, ...]
    user_more: tuple[str, ...]
    agent_more: tuple[str, ...]
    prices: tuple[str, ...] = ()
    places: tuple[str, ...] = ()


@dataclass(frozen=True)
class LanguageBank:
    """Generic conversational lines of one language plus its domains."""

    fillers: tuple[str, ...]
    backchannels: tuple[str, ...]
    interrupt_user: tuple[str, ...]
    interrupt_agent: tuple[str, ...]
    greet_user: tuple[str, ...]
    greet_agent: tuple[str, ...]
    clarify: tuple[str, ...]
    rephrase: tuple[str, ...]
    confirm: tuple[str, ...]
    ack_user: tuple[str, ...]
    ack_agent: tuple[str, ...]
    smalltalk: tuple[tuple[str, str], ...]
    preclose_user: tuple[str, ...]
    preclose_agent: tuple[str, ...]
    close_user: tuple[str, ...]
    close_agent: tuple[str, ...]
    user_more: tuple[str, ...]
    agent_more: tuple[str, ...]
    wrapup_agent: tuple[str, ...]  # pads the assistant's goodbye
    hold_agent: tuple[str, ...]  # pads the assistant's greeting
    when: tuple[str, ...]
    prices: tuple[str, ...]
    keep_capital: tuple[str, ...] = ()  # first words that stay capitalised after a filler
    domains: dict[str, DomainBank] = field(default_factory=dict)


EN_DOMAINS = {
    "travel_booking": DomainBank(
        orgs=("Sunway Travel", "Blue Sky Tours"),
        places=("Rome", "Lisbon", "Vienna", "Prague", "Athens"),
        prices=("a hundred and twenty euros", "eighty-five euros", "two hundred euros"),
        requests=("I'd like to book a flight to {place} for two people.",
                  "I'm calling because I want to book a weekend trip to {place}.",
                  "I need to change the date of my flight, if that's possible."),
        agent_questions=(
            ("Where would you like to fly from?",
             "From London, and it's just me and a colleague."),
            ("How many passengers will be travelling?", "Just two of us, me and a colleague."),
            ("Do you prefer a window seat or an aisle seat?",
             "A window seat would be lovely, if there's one left."),
            ("Would you like to add checked luggage?",
             "No, just hand luggage, we're travelling light this time."),
            ("When would you like to leave?", "We'd like to leave {when}, if anything is free."),
        ),
        user_questions=(
            ("How much would that cost in total?",
             "It comes to about {price} per person, taxes included."),
            ("Is breakfast included at the hotel?",
             "Yes, breakfast is included every morning from seven."),
            ("Can I cancel it later if my plans change?",
             "You can cancel free of charge up to twenty-four hours before departure."),
        ),
        offers=("I can offer you a direct flight {when} for {price}.",
                "There's still a seat left on the morning flight, shall I reserve it?"),
        user_more=("We were there once last summer and we really loved it.",),
        agent_more=("Seats go quite fast at this time of year.",),
    ),
    "doctor_appointment": DomainBank(
        orgs=("Saint Luke's Clinic", "Riverside Health Centre"),
        requests=("I'd like to make an appointment with the family doctor.",
                  "I'm calling because my throat has been sore for a few days.",
                  "I need to move my appointment next week to another day."),
        agent_questions=(
            ("How long have you had these symptoms?",
             "It started about three days ago and it's getting worse."),
            ("Do you have a fever?", "I had a slight temperature last night, but it's gone now."),
            ("Could you tell me your date of birth, please?",
             "Sure, it's the twelfth of May, nineteen eighty-seven."),
            ("Which time would suit you best?", "{when} would be best for me, if it's free."),
        ),
        user_questions=(
            ("Do I need to bring anything with me?",
             "Just bring your ID card and your insurance card."),
            ("How long does the examination usually take?",
             "It usually takes about fifteen or twenty minutes."),
            ("Could you tell me which doctor is on duty that day?",
             "Doctor Miller is on duty that day, she's very thorough."),
        ),
        offers=("We still have a free slot {when}, would that work for you?",
                "I can put you in with Doctor Miller {when}."),
        user_more=("I work during the day, so an afternoon slot would be better for me.",),
        agent_more=("If your symptoms get worse, please call us again straight away.",),
    ),
    "tech_support": DomainBank(
        orgs=("NetLine Support", "FastNet Broadband"),
        requests=("My internet at home hasn't been working since last night.",
                  "I'm calling because the router keeps blinking and there's no internet.",
                  "I can't log in to my account, even though my password is definitely right."),
        agent_questions=(
            ("Have you tried restarting the router yet?",
             "Yes, I switched it off and on twice, but it didn't help."),
            ("What colour is the light on the device?",
             "The one on the left is blinking orange, the others are off."),
            ("Could you give me your customer number, please?",
             "Sure, one second, I'll find it on my bill."),
            ("Is the problem only on one device?",
             "No, neither the laptop nor the phone can get online."),
        ),
        user_questions=(
            ("How long will it take to fix this?",
             "If it doesn't work remotely, a technician can come out {when}."),
            ("Will I have to pay extra for this?",
             "No, the repair is free, because the fault is on our side."),
            ("Can I use mobile data in the meantime?",
             "Yes, feel free to use your mobile data until then."),
        ),
        offers=("I'm restarting your connection remotely now, it may take a few minutes.",
                "I can send a technician {when}, would that suit you?"),
        user_more=("I work from home, so it's really quite urgent for me.",),
        agent_more=("I can see in the system that there was a small fault in your area too.",),
    ),
    "restaurant": DomainBank(
        orgs=("The Golden Spoon", "Little House Bistro"),
        requests=("I'd like to book a table for four {when}.",
                  "I'm calling to book a table for a birthday dinner.",
                  "I wanted to ask if you still have a free table for tonight."),
        agent_questions=(
            ("How many people will there be?", "Six of us, including two children."),
            ("Would you like to sit inside or on the terrace?",
             "On the terrace, if the weather is nice."),
            ("What name should I put the booking under?", "Under {user}, please."),
            ("Does anyone have a food allergy?", "Yes, one of my friends can't eat gluten."),
        ),
        user_questions=(
            ("Do you have a vegetarian menu as well?",
             "Yes, we have two vegetarian main courses every day."),
            ("Can we pay by card?", "Of course, you can pay by card or in cash."),
            ("Is there parking near the restaurant?",
             "Yes, there's a small free car park behind the building."),
        ),
        offers=("We still have a nice table by the window {when}.",
                "I can give you a table in the private room, it's a bit quieter there."),
        user_more=("My friends said the fish soup here is really good.",),
        agent_more=("At weekends it's worth booking a few days in advance.",),
    ),
    "banking": DomainBank(
        orgs=("Riverbank", "Northern Savings Bank"),
        prices=("about two hundred euros", "around a hundred and eighty euros"),
        requests=("I'm calling because I've lost my bank card.",
                  "I'd like to block my card, I can't find it anywhere.",
                  "I'd like to ask about the terms of a personal loan."),
        agent_questions=(
            ("When did you last use the card?",
             "Yesterday afternoon at the shop, I haven't seen it since."),
            ("Could you confirm your date of birth for security?",
             "Sure, it's the third of March, nineteen ninety."),
            ("Would you like to order a new card?", "Yes, please, I need one as soon as possible."),
            ("What amount were you thinking of?",
             "About ten thousand euros, over five years."),
        ),
        user_questions=(
            ("How long does it take for the new card to arrive?",
             "We post the new card within five to seven working days."),
            ("Is there a fee for that?", "No, issuing the new card is free of charge."),
            ("What would the monthly payment be?",
             "It would be {price} a month, but that also depends on the interest rate."),
        ),
        offers=("I've blocked the card right now, so nobody can use it any more.",
                "I can book you an appointment at our branch {when}."),
        user_more=("I got quite a fright when I noticed it was missing.",),
        agent_more=("For security reasons this call is being recorded.",),
    ),
    "weather_smalltalk": DomainBank(
        orgs=("the National Weather Line", "Meteo Info"),
        requests=("I wanted to ask what the weather will be like at the weekend.",
                  "We're going hiking and I wonder if it's going to rain tomorrow.",
                  "I'd like to know whether I need an umbrella tomorrow."),
        agent_questions=(
            ("Which city are you interested in?", "Manchester, my sister lives there."),
            ("Which day did you have in mind exactly?",
             "Saturday, because that's when we're going hiking."),
            ("Where are you planning to go hiking?", "Up in the hills north of the city."),
        ),
        user_questions=(
            ("Will there be storms as well?",
             "Showers and thunderstorms may develop in the afternoon."),
            ("How warm will it get during the day?",
             "Temperatures will be around twenty-two to twenty-five degrees."),
            ("Is it going to be windy?",
             "The wind will be fresh in the morning but it calms down by the evening."),
        ),
        offers=("I'd suggest taking an umbrella, because it may rain in the afternoon.",
                "Saturday looks sunny and pleasant, ideal for a hike."),
        user_more=("Last year we got soaked on a hike, so now I'm more careful.",),
        agent_more=("The forecast can still change overnight, so it's worth checking again.",),
    ),
    "shopping": DomainBank(
        orgs=("Home Store Online", "Fashion Point"),
        requests=("I ordered a coat last week, but it still hasn't arrived.",
                  "I'd like to return a pair of shoes because they're too small.",
                  "I wanted to ask if the blue sweater comes in a bigger size."),
        agent_questions=(
            ("Could you give me your order number, please?",
             "Yes, one moment, it's here in the email."),
            ("What size would you need?", "I'd need a size forty-two, if you have it."),
            ("How did you pay for the order?", "By card, right when I placed the order."),
            ("Would you like to exchange it, or would you prefer a refund?",
             "I'd rather exchange it for a bigger size."),
        ),
        user_questions=(
            ("When will the parcel arrive?",
             "According to the courier it will be delivered {when}."),
            ("Do I have to pay for the return?", "No, returns are free within thirty days."),
            ("Can I pick it up in the shop instead?",
             "Yes, you can collect it at our shop in the city centre."),
        ),
        offers=("I'll send you a return label by email.",
                "I'll put the bigger size aside for you today."),
        user_more=("It's meant to be a present, so it really needs to arrive on time.",),
        agent_more=("Deliveries are unfortunately a bit slower at this time of year.",),
    ),
    "museum_tourism": DomainBank(
        orgs=("the City Museum", "Castle Hill Tourist Office"),
        prices=("twelve euros", "fifteen euros"),
        requests=("I'd like to book tickets for a guided tour.",
                  "I wanted to ask how late the museum is open.",
                  "I'd like to organise a group visit for a school class."),
        agent_questions=(
            ("How many tickets would you like?", "Two adults and two children."),
            ("Which day would you like to come?", "We'd come {when}, if there's room then."),
            ("Would you like the tour in English or in French?",
             "In English, please, thank you."),
            ("Are there any students or pensioners in the group?",
             "Yes, the children are all students, they have student cards."),
        ),
        user_questions=(
            ("How much is a ticket?", "An adult ticket is {price}, and students pay half."),
            ("Are we allowed to take photos in the exhibition?",
             "Yes, you can take photos as long as you don't use a flash."),
            ("Is there a cafe or a cloakroom in the museum?",
             "Yes, there's a cafe and a free cloakroom on the ground floor."),
        ),
        offers=("The guided tour starts {when} and takes about an hour.",
                "I can reserve places for you on the morning tour."),
        user_more=("The kids are really looking forward to it, especially the dinosaurs.",),
        agent_more=("At weekends it's worth arriving early, because it gets busy.",),
    ),
}

EN = LanguageBank(
    fillers=("Um,", "Uh,", "Well,", "So,", "You know,", "I mean,", "Okay, so", "Hmm,"),
    backchannels=("Mhm.", "Yeah.", "Right.", "Okay.", "Uh-huh.", "I see.", "Sure.", "Got it."),
    interrupt_user=("Sorry, wait.", "Sorry, sorry, one second.", "Hang on a second.",
                    "Sorry to jump in here."),
    interrupt_agent=("Sorry to interrupt.", "Let me stop you there for a second.",
                     "Sorry, just a quick question."),
    greet_user=("Hi, this is {user}.", "Hello, my name is {user}.", "Hi there, {user} speaking.",
                "Good morning, this is {user} calling."),
    greet_agent=("Good morning, {org}, this is {agent} speaking, how can I help you?",
                 "Hello, you've reached {org}, my name is {agent}. What can I do for you?",
                 "Hi, {org}, {agent} here. How can I help you today?"),
    clarify=("Sorry, could you repeat that?",
             "I'm not sure I followed, could you say that again?",
             "Sorry, what was the last part?", "Could you say that a bit more slowly, please?"),
    rephrase=("Of course, let me say that again.", "Sure, no problem, I'll go over it once more."),
    confirm=("Okay, I've noted that down.", "Alright, I have that in the system now.",
             "Perfect, that's all noted.", "Great, let me just write that down."),
    ack_user=("Yes, that works for me.", "Okay, sounds good.", "Yes, please.",
              "Perfect, thank you.", "Alright, that's fine."),
    ack_agent=("Okay, got it.", "Alright, thanks.", "Sure, no problem.", "Understood, thanks."),
    smalltalk=(
        ("By the way, the weather is really strange today, isn't it?",
         "Ha, yes, it really is, I hope it clears up soon."),
        ("Sorry, it's a bit noisy here, I'm walking to the bus stop.",
         "No worries at all, I can hear you fine."),
        ("I have to say, you're being very patient with me today.",
         "Oh, that's kind of you, thank you."),
        ("It's been such a busy week, honestly.",
         "I know the feeling, it's been a long week here too."),
    ),
    preclose_user=("Okay, I think that's everything I needed, thank you so much.",
                   "Great, that covers it, thanks for your help."),
    preclose_agent=("Is there anything else I can help you with today?",
                    "Was there anything else you wanted to ask?"),
    close_user=("No, that's all, thanks. Bye!", "Thank you, have a nice day, goodbye.",
                "Thanks again, bye bye."),
    close_agent=("You're welcome, {user}, have a lovely day. Goodbye!",
                 "My pleasure. Thanks for calling {org}, goodbye.", "Glad I could help, bye now."),
    user_more=("I hope that makes sense.", "I just want to make sure everything is in order.",
               "It's quite important for me, to be honest.",
               "I tried to sort it out myself earlier, but it didn't work.",
               "A friend of mine told me you could help with this."),
    agent_more=("I'll check everything on my side as well.",
                "It should only take a minute or two.",
                "I just want to make sure we get it right for you.",
                "You'll also get a confirmation by email afterwards."),
    wrapup_agent=("You'll also get a confirmation by email afterwards.",
                  "Perfect, everything is noted in the system.",
                  "It was a pleasure talking to you."),
    hold_agent=("Thank you for waiting.", "Sorry about the wait, it's a busy morning."),
    when=("tomorrow at three", "on Friday at ten", "next Tuesday at eight in the morning",
          "on Thursday at noon", "on Monday at half past nine", "on Wednesday afternoon at four"),
    prices=("about fifty euros", "around eighty euros"),
    keep_capital=("I", "I'm", "I'd", "I've", "I'll", "Manchester", "Saturday", "Doctor"),
    domains=EN_DOMAINS,
)

