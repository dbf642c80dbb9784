"""The driver's side of splits: each split's plan settings and voice picker, its budget goal
credited with finished shards, and the per-split report in run.json (pipeline/splits.py
holds the pure partition rules)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

from pipeline.budget import OVER_BUDGET, BudgetGoal
from pipeline.config import GenerateConfig
from pipeline.scenarios import PlanSettings, situation_templates
from pipeline.schema import voice_id
from pipeline.sink import SEGMENTS, ShardWriter, read_table, sibling
from pipeline.splits import (
    dialogue_counts,
    pool_picker,
    stream_order,
    template_pools,
    voice_pools,
    voices_needed,
)


def split_plan_settings(config: GenerateConfig, backend, base: PlanSettings) -> tuple[dict, dict]:
    """split -> PlanSettings (`base` limited to the split's situation templates) and split ->
    voice picker (its voices): the partitions of pipeline/splits.py, the same for every
    worker of a run."""
    allowed, _ = template_pools(situation_templates(base), config.splits, config.seed)
    pools = voice_pools(backend.voices, config.languages, config.splits, config.seed,
                        voices_needed(config.tts.model_dump(), base.speakers), voice_id)
    settings = {name: replace(base, situations=frozenset(allowed[name]))
                for name in config.splits}
    return settings, {name: pool_picker(backend, pools[name]) for name in config.splits}


def split_goal(config: GenerateConfig, split: str) -> BudgetGoal:
    """The split's own goal before any credit: its share of the dialogues or the hours."""
    budget = config.budget
    if budget.hours:
        return BudgetGoal(hours=budget.hours * config.splits[split], dialogues=None,
                          tolerance=budget.tolerance)
    return BudgetGoal(hours=None, tolerance=budget.tolerance,
                      dialogues=dialogue_counts(budget.dialogues or 0, config.splits)[split])


def budget_goal(config: GenerateConfig, writer: ShardWriter, split: str) -> BudgetGoal:
    """The split's goal, already credited with the shards a previous run finished. The split
    generated last (the largest) takes the hours the others did not write, within the band
    of the whole budget, so the total lands within `budget.tolerance` of `budget.hours`."""
    goal = split_goal(config, split)
    if goal.by_hours and split == stream_order(config.splits)[-1]:
        others = sum(writer.totals(name).audio_s for name in config.splits if name != split)
        rebalance_last(goal, config.budget.hours, config.budget.tolerance, others)
    totals = writer.totals(split)
    goal.written, goal.audio_s = totals.written, totals.audio_s
    if totals.rejected.get(OVER_BUDGET):
        goal.overshoots = goal.patience  # an earlier run stopped on an overshoot: keep its stop
    return goal


def rebalance_last(goal: BudgetGoal, hours: float | None, tolerance: float,
                   others_s: float) -> None:
    """The last split's hours: the budget's `hours` less the `others_s` seconds the other
    splits wrote, its tolerance widened so the band of the whole budget stays the same. The
    driver calls it before a stream; the sink again once the splits before it are written
    (one stream carries every split, pipeline/shard_sink.py)."""
    assert hours is not None
    goal.hours = max(hours - others_s / 3600, 1e-9)
    goal.tolerance = min(0.99, tolerance * hours / goal.hours)


def total_goal(config: GenerateConfig, writer: ShardWriter) -> BudgetGoal:
    """The whole budget over every split, for the report."""
    budget = config.budget
    goal = BudgetGoal(hours=budget.hours, dialogues=None if budget.hours else budget.dialogues,
                      tolerance=budget.tolerance)
    totals = writer.totals()
    goal.written, goal.audio_s = totals.written, totals.audio_s
    return goal


def planned_count(config: GenerateConfig, split: str) -> int:
    """Scenario indices planned for one split (0 when its share rounds to no dialogue)."""
    goal = split_goal(config, split)
    if goal.dialogues == 0:
        return 0
    return goal.planned_indices(config.sink.shard_dialogues)


def split_report(config: GenerateConfig, writer: ShardWriter) -> dict:
    """Per split: share asked, dialogues and hours written, share of the written hours."""
    total_s = writer.totals().audio_s
    report = {}
    for name, share in config.splits.items():
        totals = writer.totals(name)
        voices = set()
        for path in writer.finished_shards(name):
            voices.update(read_table(sibling(path, SEGMENTS), columns=["voice_id"])
                          .column("voice_id").to_pylist())
        report[name] = {"share": share, "dialogues": totals.written,
                        "hours": round(totals.audio_s / 3600, 4),
                        "written_share": round(totals.audio_s / total_s, 4) if total_s else 0.0,
                        "voices": len(voices)}
    return report


def spares_gate(config: GenerateConfig, writer: ShardWriter, split: str, todo: list[int],
                 is_done: Callable[[int], bool]) -> Callable[[int], bool]:
    """Shared runs (sink.shared): a shard past `budget.dialogues` (a spare for rejects) may be
    claimed only once every shard before it is written and the budget is still short, as a
    single run would reach it; otherwise runs in flight together overshoot the budget."""
    size = config.sink.shard_dialogues
    goal = split_goal(config, split)

    def may_claim(shard: int) -> bool:
        if goal.by_hours or shard * size < (goal.dialogues or 0):
            return True
        return (all(is_done(s) for s in todo if s < shard)
                and not budget_goal(config, writer, split).reached())
    return may_claim
