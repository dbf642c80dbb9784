"""A small real dataset for export/mix tests: the pipeline's own stages (offline composer,
eSpeak NG, timeline, render, labels) run in-process, written by the real ShardWriter."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from pipeline.config import GenerateConfig
from pipeline.shard_sink import flush
from pipeline.sink import ShardWriter
from pipeline.splits import dialogue_counts
from pipeline.stages import AssembleStage, SpeakStage, ValidateStage, WriteStage
from pipeline.stream import plan_shard

ROOT = Path(__file__).resolve().parent.parent


def build_dataset(root: Path, dialogues: int = 4, shard: int = 2, *overrides: str) -> Path:
    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        cfg = compose("generate", overrides=[f"budget.dialogues={dialogues}",
                                             f"sink.shard_dialogues={shard}", *overrides])
    config = GenerateConfig.check(OmegaConf.to_container(cfg, resolve=True))
    stage_config = config.model_dump()
    names = list(config.splits)
    writer = ShardWriter(root, config.sink.sample_rate)
    for position, (name, count) in enumerate(dialogue_counts(dialogues, config.splits).items()):
        shards = list(range((count + shard - 1) // shard))
        if not shards:
            continue
        item = {"split": name, "position": position, "count": len(names)}
        frame = pd.DataFrame([row for number in shards for row in
                              plan_shard({**item, "shard": number}, stage_config, shard, count)])
        for stage in (WriteStage, ValidateStage, SpeakStage, AssembleStage):
            frame = stage(stage_config)(frame)
        for number in shards:
            flush(writer, name, number,
                  [r for r in frame.to_dict("records") if r["shard"] == number])
    return root
