"""On-disk cache of LLM answers, so a rerun of the same config sends no request.

The key is a SHA-256 of everything that decides the answer: model, the full message list
(prompt template version included through its text), the scenario seed and the sampling
parameters. Each entry is a small JSON file written to a temporary name and renamed, so
parallel workers and killed runs never leave a half-written entry. Errors are never cached.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
from pathlib import Path


def cache_key(model: str, messages: list[dict], seed: int, params: dict) -> str:
    material = json.dumps({"model": model, "messages": messages, "seed": seed,
                           "params": params}, sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(material.encode()).hexdigest()


class ResponseCache:
    """`get` / `put` of answer dicts by key; a None root disables the cache."""

    def __init__(self, root: Path | None) -> None:
        self.root = root

    def _path(self, key: str) -> Path:
        assert self.root is not None
        return self.root / key[:2] / f"{key}.json"

    def get(self, key: str) -> dict | None:
        if self.root is None:
            return None
        try:
            return json.loads(self._path(key).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None

    def put(self, key: str, answer: dict) -> None:
        if self.root is None:
            return
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = path.with_name(f".{path.name}.{os.getpid()}.{random.randrange(1 << 30)}")
        temporary.write_text(json.dumps(answer, ensure_ascii=False), encoding="utf-8")
        os.replace(temporary, path)
