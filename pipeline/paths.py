"""Where the package's data folders are, in one place.

duplexsynth is installed from its checkout (`pip install -e .`), so the folders it reads at
run time sit beside the `pipeline` package in the repository root: conf/ (Hydra configs),
prompts/ (LLM prompt templates), data_cards/ (the dataset card template). A private local
Ray instance also puts REPO_ROOT on its workers' PYTHONPATH. This module imports nothing
from the package, so every layer may use it.
"""

from __future__ import annotations

from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
CONF_DIR = REPO_ROOT / "conf"
PROMPTS_DIR = REPO_ROOT / "prompts"
DATA_CARDS_DIR = REPO_ROOT / "data_cards"
