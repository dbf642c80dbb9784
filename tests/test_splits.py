"""Splits: fixed before any work, disjoint by voice and situation template, budgets per split."""

from __future__ import annotations

import random
from collections import Counter

import pytest

from pipeline.config import ConfigError, GenerateConfig
from pipeline.derive import plan_settings
from pipeline.scenarios import plan_scenario
from pipeline.schema import voice_id
from pipeline.sink import ShardStats, shard_name, shard_pattern, split_of
from pipeline.split_plan import budget_goal, split_plan_settings, total_goal
from pipeline.splits import (
    DEFAULT_SPLITS,
    check_splits,
    dialogue_counts,
    global_index,
    partition,
    stream_order,
    voice_pools,
)
from pipeline.tts import backend_from_config


def config(**overrides) -> GenerateConfig:
    return GenerateConfig.check({"budget": {"dialogues": 40}, **overrides})


def test_shares_must_sum_to_one_and_names_must_be_plain():
    assert check_splits(None) == DEFAULT_SPLITS
    assert check_splits({"train": 1.0, "validation": 0, "test": 0}) == {"train": 1.0}
    for bad, key in (({"train": 0.9, "test": 0.2}, "sum to 1.1"),
                     ({"tr-ain": 1.0}, "splits.tr-ain"), ({"train": -1, "x": 2}, "splits.train")):
        with pytest.raises(ValueError, match=key) as error:
            check_splits(bad)
        assert "\n" not in str(error.value)
    with pytest.raises(ConfigError, match="splits: shares") as error:
        config(splits={"train": 0.5, "test": 0.1})
    assert "\n" not in str(error.value)


def test_shard_names_carry_the_split_in_one_place():
    name = shard_name("validation", 3)
    assert name == "validation-00003.parquet" and split_of(name) == "validation"
    from fnmatch import fnmatch

    assert fnmatch(name, shard_pattern("validation")) and fnmatch(name, shard_pattern())
    assert not fnmatch(shard_name("validation_extra", 0), shard_pattern("validation"))


def test_dialogue_counts_add_up_and_every_split_gets_one():
    for total in (3, 6, 40, 1001):
        counts = dialogue_counts(total, DEFAULT_SPLITS)
        assert sum(counts.values()) == total and min(counts.values()) >= 1
    assert dialogue_counts(1000, DEFAULT_SPLITS) == {"train": 900, "validation": 50, "test": 50}
    assert dialogue_counts(2, DEFAULT_SPLITS)["train"] >= 1


def test_run_indices_of_splits_never_collide():
    count = len(DEFAULT_SPLITS)
    seen = {global_index(position, local, count) for position in range(count)
            for local in range(50)}
    assert len(seen) == 150


def test_partition_is_disjoint_and_seeded():
    keys = [f"v{i}" for i in range(100)]
    parts = partition(keys, DEFAULT_SPLITS, seed=1, salt="x")
    assert sum(len(p) for p in parts.values()) == 100
    assert not parts["train"] & parts["test"] and not parts["validation"] & parts["test"]
    assert parts == partition(keys, DEFAULT_SPLITS, seed=1, salt="x")
    assert parts != partition(keys, DEFAULT_SPLITS, seed=2, salt="x")
    assert partition(keys[:5], DEFAULT_SPLITS, seed=1, salt="x", minimum=2) is None


@pytest.mark.parametrize("speakers", [2, [3, 5]])
def test_each_split_plans_only_its_own_voices_and_templates(speakers):
    cfg = config(plan={"speakers": speakers})
    backend = backend_from_config(cfg.tts.model_dump())
    settings, pickers = split_plan_settings(cfg, backend, plan_settings(cfg))
    again, _ = split_plan_settings(cfg, backend, plan_settings(cfg))
    assert settings == again  # the same seed gives the same split assignment
    voices: dict[str, set[str]] = {}
    situations: dict[str, set[str]] = {}
    for position, name in enumerate(cfg.splits):
        voices[name], situations[name] = set(), set()
        for local in range(12):
            index = global_index(position, local, len(cfg.splits))
            scenario = plan_scenario(index, cfg.seed, settings[name], pickers[name])
            ids = [voice_id(s.voice) for s in scenario.speakers]
            assert len(set(ids)) == len(ids)
            voices[name].update(ids)
            situations[name].add(scenario.situation)
            assert scenario.situation in settings[name].situations
    names = list(cfg.splits)
    for i, a in enumerate(names):
        for b in names[i + 1:]:
            assert not voices[a] & voices[b], (a, b)
            assert not situations[a] & situations[b], (a, b)
    other_cfg = config(seed=99, plan={"speakers": speakers})
    other, _ = split_plan_settings(other_cfg, backend, plan_settings(other_cfg))
    assert other["validation"].situations != settings["validation"].situations


def test_too_few_voices_for_the_splits_is_one_clear_error():
    registry = [{"backend": "corpus", "name": f"s{i}"} for i in range(5)]
    with pytest.raises(ValueError, match="too few to give each of the 3 splits 2 voices"):
        voice_pools(lambda language: registry, ["hu"], DEFAULT_SPLITS, 1, 2, voice_id)
    pools = voice_pools(lambda language: registry, ["hu"], {"train": 0.6, "test": 0.4}, 1, 2,
                        voice_id)
    assert sorted(len(p["hu"]) for p in pools.values()) == [2, 3]


class Shards:
    """Stands in for ShardWriter.totals(split) in a budget simulation."""

    def __init__(self) -> None:
        self.stats: dict[str, ShardStats] = {}

    def totals(self, split: str | None = None) -> ShardStats:
        total = ShardStats()
        for name, stats in self.stats.items():
            if split in (None, name):
                total.add(stats)
        return total


@pytest.mark.parametrize("hours", [0.35, 20.0])
def test_hours_budget_holds_in_total_and_per_split_when_large(hours):
    cfg = GenerateConfig.check({"budget": {"hours": hours, "dialogues": None}})
    shards, rng = Shards(), random.Random(5)
    for split in stream_order(cfg.splits):
        goal = budget_goal(cfg, shards, split)
        stats = shards.stats.setdefault(split, ShardStats())
        for _ in range(5000):
            if goal.reached():
                break
            seconds = rng.uniform(20, 120)  # default dialogues last about 20 s to 2 min
            if goal.offer(seconds):
                stats.written += 1
                stats.audio_s += seconds
    report = total_goal(cfg, shards).report()
    assert report["met"], report
    if hours >= 20:
        for split, share in cfg.splits.items():
            written = shards.totals(split).audio_s / 3600
            assert abs(written - share * hours) <= share * hours * cfg.budget.tolerance, split
    assert Counter({k: v.written for k, v in shards.stats.items()})["validation"] >= 1
