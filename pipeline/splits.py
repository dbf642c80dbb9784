"""Dataset splits (train / validation / test …): fixed at plan time, disjoint by voice and
scenario template.

A split is decided before any work, from the config alone: scenario index `g` of a run
belongs to split `g % K` (K splits, in config order) as that split's local index `g // K`,
so shards of every split are known up front and a rerun finds them again. The voice
registry of each language and the planner's situation templates are partitioned once per
run seed (a seeded shuffle cut by the shares, each split getting at least what one
dialogue needs); a split's dialogues draw voices and situations only from its own part, so
no voice and no template is in two splits. Where a partition cannot give every split its
own part (a corpus with a handful of speakers, `plan.domains` with one situation), the run
fails (voices) or shares that resource across splits and says so in run.json (templates).

Budgets are per split: `budget.dialogues` is shared out by largest remainder (every split at
least one dialogue while there are enough); `budget.hours` gives each split `share·H`.
Splits are generated one after the other, smallest share first; the largest split goes last
and takes `H` minus what the others wrote, so the total lands within the budget's band even
where a small split cannot hit its own share exactly.
"""

from __future__ import annotations

import math
import random
import re
from collections.abc import Callable, Iterable

DEFAULT_SPLITS: dict[str, float] = {"train": 0.9, "validation": 0.05, "test": 0.05}
SPLIT_NAME = re.compile(r"^[A-Za-z0-9_]+$")
"""Hugging Face split names are \\w+; `-` separates the split from the shard number."""


def check_splits(splits: dict[str, float] | None) -> dict[str, float]:
    """The splits of a run, validated: names are \\w+, shares are > 0 and sum to 1.
    A share of 0 leaves that split out (so an override can drop a default split)."""
    splits = dict(DEFAULT_SPLITS if splits is None else splits)
    kept = {}
    for name, share in splits.items():
        if not SPLIT_NAME.match(str(name)):
            raise ValueError(f"splits.{name}: a split name is letters, digits and _ only")
        if share is None or not isinstance(share, int | float) or share < 0:
            raise ValueError(f"splits.{name}: the share must be a number >= 0 (got {share!r})")
        if share > 0:
            kept[str(name)] = float(share)
    if not kept:
        raise ValueError("splits: no split with a share above 0; e.g. splits={train:1.0}")
    total = sum(kept.values())
    if abs(total - 1.0) > 1e-6:
        raise ValueError(f"splits: shares {kept} sum to {total:g}, not 1; make them add up to "
                         "1 (Hydra merges splits={...} into the default train/validation/test: "
                         "give a split 0 to drop it, e.g. splits={train:1.0,validation:0,test:0}"
                         ")")
    return kept


def global_index(position: int, local: int, count: int) -> int:
    """Scenario index of the run for local index `local` of the split at `position`."""
    return local * count + position


def dialogue_counts(total: int, splits: dict[str, float]) -> dict[str, int]:
    """`total` dialogues shared out by largest remainder; every split gets at least one
    while `total` allows (taken from the largest split)."""
    names = list(splits)
    raw = {name: total * splits[name] for name in names}
    counts = {name: math.floor(value) for name, value in raw.items()}
    by_remainder = sorted(names, key=lambda n: (-(raw[n] - counts[n]), names.index(n)))
    for name in by_remainder[: total - sum(counts.values())]:
        counts[name] += 1
    if total >= len(names):
        for name in names:
            while counts[name] == 0:
                donor = max(names, key=lambda n: counts[n])
                counts[donor] -= 1
                counts[name] += 1
    return counts


def stream_order(splits: dict[str, float]) -> list[str]:
    """Order of generation: smallest share first, the largest last (it absorbs the hours
    the others missed)."""
    names = list(splits)
    return sorted(names, key=lambda n: (splits[n], -names.index(n)))


def partition(keys: Iterable[str], splits: dict[str, float], seed: int, salt: str,
              minimum: int = 1) -> dict[str, set[str]] | None:
    """Keys cut into one disjoint part per split by a seeded shuffle, sized by share, each
    part at least `minimum` keys; None when there are too few keys for that."""
    ordered = sorted(set(keys))
    names = list(splits)
    if len(ordered) < minimum * len(names):
        return None
    random.Random(f"{seed}:splits:{salt}").shuffle(ordered)
    sizes = {name: max(minimum, math.floor(len(ordered) * splits[name])) for name in names}
    largest = max(names, key=lambda n: splits[n])
    sizes[largest] = len(ordered) - sum(size for name, size in sizes.items() if name != largest)
    if sizes[largest] < minimum:
        return None
    parts, start = {}, 0
    for name in names:
        parts[name] = set(ordered[start:start + sizes[name]])
        start += sizes[name]
    return parts


def voice_pools(voices: Callable[[str], list[dict]], languages: Iterable[str],
                splits: dict[str, float], seed: int, per_dialogue: int,
                key: Callable[[dict], str]) -> dict[str, dict[str, list[dict]]]:
    """split -> language -> that split's registry voices. Raises ValueError (one line) when
    a language's registry cannot give every split `per_dialogue` voices of its own."""
    pools: dict[str, dict[str, list[dict]]] = {name: {} for name in splits}
    for language in languages:
        registry = voices(language)
        parts = partition((key(v) for v in registry), splits, seed, f"voices:{language}",
                          minimum=per_dialogue)
        if parts is None:
            raise ValueError(
                f"splits: the tts registry has {len(registry)} {language!r} voices, too few to "
                f"give each of the {len(splits)} splits {per_dialogue} voices of its own; use "
                "fewer splits (e.g. splits={train:1.0}) or a backend with more voices")
        for name, part in parts.items():
            pools[name][language] = [v for v in registry if key(v) in part]
    return pools


def template_pools(templates: dict[str, list[str]], splits: dict[str, float],
                   seed: int) -> tuple[dict[str, set[str]], bool]:
    """split -> allowed situation templates, and whether they are disjoint. `templates`
    maps a group (language + dyad/meeting) to its template lines; a group too small to give
    every split one line is shared by all splits."""
    allowed: dict[str, set[str]] = {name: set() for name in splits}
    disjoint = True
    for group, lines in sorted(templates.items()):
        parts = partition(lines, splits, seed, f"templates:{group}")
        if parts is None:
            disjoint = False
            parts = {name: set(lines) for name in splits}
        for name, part in parts.items():
            allowed[name] |= part
    return allowed, disjoint


def pool_picker(backend, pools: dict[str, list[dict]]):
    """A voice picker (scenarios.VoicePicker) limited to one split's voices: the backend's
    own `pick_voices(..., pool=)` where it takes a pool, else a seeded sample of the pool."""
    import inspect

    takes_pool = "pool" in inspect.signature(backend.pick_voices).parameters

    def pick(language: str, count: int, rng: random.Random) -> list[dict]:
        pool = pools[language]
        if takes_pool:
            return backend.pick_voices(language, count, rng, pool=pool)
        return rng.sample(pool, count)

    return pick


def voices_needed(tts: dict, speakers: int | tuple[int, int] | list[int]) -> int:
    """Distinct registry voices each split needs: the largest dialogue's speaker count, or 1
    where the backend may reuse a voice as a recorded variant (`tts.allow_shared_voice`)."""
    return 1 if tts.get("allow_shared_voice") else max_speakers(speakers)


def max_speakers(speakers: int | tuple[int, int] | list[int]) -> int:
    return speakers if isinstance(speakers, int) else max(speakers)
