"""The NeMo fine-tuning recipe (GPU only): its config parses and wires our outputs."""

import subprocess
from pathlib import Path

from omegaconf import OmegaConf

RECIPE = Path(__file__).resolve().parent.parent / "jobs" / "nemo_fastconformer"


def test_finetune_config_parses_and_matches_our_exports():
    cfg = OmegaConf.load(RECIPE / "finetune_fastconformer.yaml")
    for key in ("model.train_ds.manifest_filepath", "model.validation_ds.manifest_filepath",
                "model.tokenizer.dir"):
        parent, leaf = key.rsplit(".", 1)
        assert OmegaConf.is_missing(OmegaConf.select(cfg, parent), leaf), f"{key}: from train.sh"
    assert cfg.model.sample_rate == 16000
    assert cfg.model.train_ds.sample_rate == 16000  # interpolation resolves
    assert cfg.model.train_ds.max_duration >= 30.0  # 30 s windows fit
    assert cfg.model.tokenizer.update_tokenizer is True
    assert {"trainer", "exp_manager", "init_from_pretrained_model"} <= set(cfg)


def test_launch_script_is_valid_bash_and_feeds_the_mix_manifest():
    script = RECIPE / "train.sh"
    subprocess.run(["bash", "-n", str(script)], check=True)
    text = script.read_text()
    assert "train_manifest.json" in text and '"<sc>"' in text
    assert "--config-name=finetune_fastconformer" in text
    usage = subprocess.run(["bash", str(script)], capture_output=True, text=True)
    assert usage.returncode == 2 and "MIX_DIR" in usage.stdout
