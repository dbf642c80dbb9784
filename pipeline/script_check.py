"""The validate stage: consistency checks every writer's script must pass.

Small defects are repaired (a pause index past the end of a turn is dropped); anything that
would make the audio or the labels wrong rejects the script with a short reason that
run.json counts.
"""

from __future__ import annotations

from pipeline.schema import DialogueScript, ScenarioSpec, Turn


class ScriptRejected(ValueError):
    """The script cannot be used; `reason` is the counted category."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason


def check_script(script: DialogueScript, scenario: ScenarioSpec) -> DialogueScript:
    speakers = {s.id for s in scenario.speakers}
    if script.language != scenario.language:
        raise ScriptRejected("wrong_language",
                             f"script is {script.language!r}, scenario {scenario.language!r}")
    if not script.turns:
        raise ScriptRejected("empty_script", "no turns")
    repaired: list[Turn] = []
    for index, turn in enumerate(script.turns):
        if turn.speaker not in speakers:
            raise ScriptRejected("unknown_speaker",
                                 f"turn {index} speaker {turn.speaker!r} not in {sorted(speakers)}")
        if not turn.text.strip():
            raise ScriptRejected("empty_turn", f"turn {index} has no text")
        if turn.addressee != "all" and turn.addressee not in speakers:
            turn = turn.model_copy(update={"addressee": "all"})
        words = len(turn.words)
        pauses = sorted({p for p in turn.pauses if 0 <= p < words - 1})
        if index == 0 and (turn.interrupts or turn.overlap or turn.kind == "backchannel"):
            turn = turn.model_copy(update={"interrupts": False, "overlap": False, "kind": "turn"})
        repaired.append(turn.model_copy(update={"text": turn.text.strip(), "pauses": pauses}))
    if sum(1 for t in repaired if t.kind == "turn") < 2:
        raise ScriptRejected("too_few_turns", "fewer than two turns")
    return script.model_copy(update={"turns": repaired})
