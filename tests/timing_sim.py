"""The pure plan → compose → speak → arrange path, without Ray, for timing statistics."""

from __future__ import annotations

import random
from collections.abc import Callable

from pipeline.config import GenerateConfig
from pipeline.derive import plan_settings, timing_settings, timing_target
from pipeline.scenarios import plan_scenario
from pipeline.schema import Utterance
from pipeline.timeline import arrange
from pipeline.timing import TimingModel
from pipeline.timing_stats import TimingAccumulator, intervals_from_timeline
from pipeline.writers import OfflineComposer

Speak = Callable[[str, dict, int, str], Utterance]


def simulate(raw: dict, dialogues: int, speak: Speak,
             pick_voices: Callable | None = None) -> tuple[dict, dict, list]:
    """(target, achieved, timelines) of `dialogues` dialogues generated from config `raw`."""
    config = GenerateConfig.check(raw)
    settings = plan_settings(config)
    timing = timing_settings(config)
    target = timing_target(config)
    picker = pick_voices or (lambda lang, n, rng: [{"name": f"v{i}"} for i in range(n)])
    composer = OfflineComposer()
    stats = TimingAccumulator(definition=target["definition"])
    timelines = []
    for index in range(dialogues):
        scenario = plan_scenario(index, config.seed, settings, picker)
        script = composer.write(scenario)
        utterances = [speak(t.text, scenario.speaker(t.speaker).voice, i, t.speaker)
                      for i, t in enumerate(script.turns)]
        model = TimingModel(timing, random.Random(scenario.seed),
                            [s.id for s in scenario.speakers])
        timeline = arrange(script, utterances, model)
        stats.add_dialogue(intervals_from_timeline(timeline.model_dump(), target["definition"]))
        timelines.append((scenario, script, timeline))
    return target["values"], stats.result(), timelines
