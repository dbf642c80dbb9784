"""The data card's Hub front matter: written by the libraries that read it, then read back.

The YAML front matter is produced by huggingface_hub's `DatasetCardData` and datasets'
`MetadataConfigs` / `DatasetInfosDict` (configs with data_files, dataset_info with the shards'
own Audio-typed features), then checked by parsing it back with `DatasetCard` and datasets
(the Hub's validate-yaml endpoint is not reachable here). pipeline/card.py renders the rest.
"""

from __future__ import annotations

from pathlib import Path

import yaml

from pipeline.card_stats import DatasetStats
from pipeline.dataset import shard_paths
from pipeline.dataset import splits as split_names
from pipeline.sink import DIALOGUES, SEGMENTS, read_schema, shard_pattern
from pipeline.storage import locate

SIZE_CATEGORIES = ((1_000, "n<1K"), (10_000, "1K<n<10K"), (100_000, "10K<n<100K"),
                   (1_000_000, "100K<n<1M"), (10_000_000, "1M<n<10M"),
                   (100_000_000, "10M<n<100M"))


class CardError(ValueError):
    """The card cannot be written or does not validate; the message says what to fix."""


def size_category(rows: int) -> str:
    for limit, name in SIZE_CATEGORIES:
        if rows < limit:
            return name
    return "n>100M" if rows < 1_000_000_000 else "other"


def card_metadata(dataset: Path, stats: DatasetStats, pretty_name: str, license: str,
                  task_categories: list[str], tags: list[str]):
    """The YAML front matter as a DatasetCardData, written by the libraries that read it;
    `license`, `task_categories` and `tags` are the `card.*` settings (pipeline/card.py)."""
    from datasets import DatasetInfo, Features, SplitDict, SplitInfo
    from datasets.info import DatasetInfosDict
    from datasets.utils.metadata import MetadataConfigs
    from huggingface_hub import DatasetCardData

    languages = sorted({code.split("-")[0].lower() for code in stats.languages})
    card_data = DatasetCardData(
        pretty_name=pretty_name,
        language=languages,
        license=license,
        annotations_creators=["machine-generated"],
        language_creators=["machine-generated"],
        multilinguality="monolingual" if len(languages) == 1 else "multilingual",
        size_categories=[size_category(max(stats.dialogues, stats.segments))],
        source_datasets=["original"],
        task_categories=list(task_categories),
        tags=list(tags),
    )
    names = split_names(dataset)
    MetadataConfigs({
        config: {"data_files": [{"split": name, "path": f"data/{config}/{shard_pattern(name)}"}
                                for name in names],
                 **({"default": True} if config == DIALOGUES else {})}
        for config in (DIALOGUES, SEGMENTS)
    }).to_dataset_card_data(card_data)
    infos = {}
    for config in (DIALOGUES, SEGMENTS):
        features = Features.from_arrow_schema(read_schema(shard_paths(dataset, config)[0]))
        files = stats.files[config]
        splits = SplitDict()
        for name in names:
            per_split = stats.splits[name]
            splits.add(SplitInfo(name=name, num_bytes=files["splits"][name]["uncompressed_bytes"],
                                 num_examples=(per_split.dialogues if config == DIALOGUES
                                               else per_split.segments)))
        infos[config] = DatasetInfo(features=features, splits=splits, config_name=config,
                                    download_size=files["bytes"],
                                    dataset_size=files["uncompressed_bytes"])
    DatasetInfosDict(infos).to_dataset_card_data(card_data)
    return card_data


def validate_card(text: str, dataset: Path) -> None:
    """Parse the card back as the Hub and `datasets` would; raise CardError on any problem."""
    from datasets import Features
    from datasets.info import DatasetInfosDict
    from datasets.utils.metadata import MetadataConfigs
    from huggingface_hub import DatasetCard

    try:
        card = DatasetCard(text)
        configs = MetadataConfigs.from_dataset_card_data(card.data)
        infos = DatasetInfosDict.from_dataset_card_data(card.data)
    except (ValueError, TypeError, yaml.YAMLError) as error:
        raise CardError(f"card metadata does not parse: {error}") from error
    data = card.data.to_dict()
    for key in ("language", "license", "task_categories", "size_categories", "tags",
                "pretty_name"):
        if not data.get(key):
            raise CardError(f"card metadata: `{key}` is missing")
    if data["size_categories"][0] not in {name for _, name in SIZE_CATEGORIES} | {"n>100M"}:
        raise CardError(f"card metadata: size_categories {data['size_categories']} is unknown")
    if set(configs) != {DIALOGUES, SEGMENTS} or set(infos) != {DIALOGUES, SEGMENTS}:
        raise CardError(f"card metadata: configs {sorted(configs)} / dataset_info "
                        f"{sorted(infos)} must both be {[DIALOGUES, SEGMENTS]}")
    for config in (DIALOGUES, SEGMENTS):
        for entry in configs[config]["data_files"]:
            if not locate(dataset).glob(entry["path"]):
                raise CardError(f"card configs.{config}: {entry['path']} matches no file")
        shard_features = Features.from_arrow_schema(
            read_schema(shard_paths(dataset, config)[0]))
        if infos[config].features != shard_features:
            raise CardError(f"card dataset_info.{config}: features differ from the shards")
    if "synthetic" not in card.text.lower():
        raise CardError("card text must say that the speech is synthetic")
