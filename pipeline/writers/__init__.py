"""Dialogue writers: scenario in, DialogueScript out (DESIGN section 6)."""

from __future__ import annotations

from pipeline.writers.offline import OfflineComposer

__all__ = ["OfflineComposer", "make_writer"]


def make_writer(config: dict) -> OfflineComposer:
    """The writer named by `config["name"]`; only the offline composer exists so far."""
    name = config.get("name", "offline")
    if name != OfflineComposer.name:
        raise ValueError(f"writer.name: {name!r} is not available; use 'offline'")
    return OfflineComposer()
