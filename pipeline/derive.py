"""Settings derived from the checked `generate` config, beside pipeline.config.

The plan's phenomenon rates default to the timing model's quotas, so deriving the plan needs
the timing settings too; both, and the run's timing targets (run.json `timing.target`), are
computed here (not in run.py) so that a stage or a test can derive them without importing
the driver.
"""

from __future__ import annotations

from pipeline.config import GenerateConfig
from pipeline.scenarios import PlanSettings
from pipeline.timing import TimingSettings

__all__ = ["plan_settings", "timing_settings", "timing_target"]


def timing_settings(config: GenerateConfig) -> TimingSettings:
    return TimingSettings.from_config(config.timing.model_dump())


def timing_target(config: GenerateConfig) -> dict:
    """Targets of the run: the timing config or profile, unless plan rates override them.

    An explicit `plan.overlap_rate` / `plan.backchannel_rate` sets that target only where
    transfers are counted the way the plan counts them ("turns").
    """
    targets = timing_settings(config).targets
    values = targets.as_dict()
    if targets.definition == "turns":
        if config.plan.overlap_rate is not None:
            values["overlap_transfer_ratio"] = config.plan.overlap_rate
        if config.plan.backchannel_rate is not None:
            values["backchannel_share"] = config.plan.backchannel_rate
    return {"values": values, "definition": targets.definition}


def plan_settings(config: GenerateConfig) -> PlanSettings:
    """Plan knobs; overlap and backchannel rates default to the timing model's quotas."""
    plan = config.plan
    timing = timing_settings(config)
    return PlanSettings(
        languages=tuple(config.languages),
        speakers=plan.speakers if isinstance(plan.speakers, int) else tuple(plan.speakers),
        domains=tuple(plan.domains),
        min_turns=plan.min_turns,
        max_turns=plan.max_turns,
        backchannel_rate=(timing.backchannel_share if plan.backchannel_rate is None
                          else plan.backchannel_rate),
        interruption_rate=(timing.interruption_rate if plan.interruption_rate is None
                           else plan.interruption_rate),
        pause_rate=plan.pause_rate,
        # a fitted profile draws overlaps from the corpus: the plan asks only for barge-ins
        overlap_rate=(plan.overlap_rate if plan.overlap_rate is not None
                      else timing.interruption_rate if timing.segment_model is not None
                      else timing.targets.overlap_transfer_ratio),
        side_talk_rate=plan.side_talk_rate,
        next_speaker=plan.next_speaker,
        transfers=("turns" if plan.overlap_rate is not None or timing.segment_model is not None
                   else timing.targets.definition),
        generator="corpus" if config.tts.name == "corpus" else config.writer.generator,
    )
