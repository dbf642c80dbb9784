"""`duplexsynth export dataset=D out.dir=O format=nemo|lhotse|rttm|stm` or `view=bayling|moshi`
(`split=NAME` exports one split; unset = every split).

`exclude=` (dialogue ids, or an evalset folder: its dialogue_ids.txt) keeps evaluation
dialogues out of every format and view: the dataset readers skip them (and their segments),
and the duplex views also list them in their `exclude_ids`.
"""

from __future__ import annotations

import json
import os
import sys
from importlib import import_module
from pathlib import Path
from types import ModuleType

from pipeline.dataset import excluding, resolve
from pipeline.exports import FORMATS, VIEWS
from pipeline.holdout import excluded_ids
from pipeline.jobs import dataset_and_out, fail


def preflight(name: str, module: ModuleType, options: dict) -> None:
    """Fail before anything is written: options known, the exporter's extras importable
    (its own `check(options)` where it has one)."""
    if hasattr(module, "check"):
        module.check(options)
    elif hasattr(module, "DEFAULTS"):
        from pipeline.exports.common import check_options

        check_options(name, options, module.DEFAULTS)


def check_writable(out: Path) -> None:
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe = out / f".write-test-{os.getpid()}"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as error:
        raise ValueError(f"out.dir: {out} is not writable ({error.strerror}); pick another "
                         "folder") from None


def export_job(raw: dict) -> dict:
    dataset, out = dataset_and_out(raw, "the export")
    chosen: list[tuple[str, str]] = []
    for key, registry in (("format", FORMATS), ("view", VIEWS)):
        names = raw.get(key) or []
        for name in [names] if isinstance(names, str) else names:
            if name not in registry:
                fail(ValueError(f"{key}: {name!r} is unknown; allowed: {sorted(registry)}"))
            chosen.append((name, registry[name]))
    if not chosen:
        fail(ValueError(f"set format=<{'|'.join(FORMATS)}> or view=<{'|'.join(VIEWS)}>"))
    try:
        exclude = excluded_ids(raw.get("exclude"))
    except ValueError as error:
        fail(error)
    root = Path(out).expanduser().resolve()
    modules, options = {}, {}
    try:
        for name, module in chosen:
            options[name] = dict((raw.get("options") or {}).get(name) or {})
            if exclude and name in VIEWS:
                options[name]["exclude_ids"] = sorted(
                    exclude | set(options[name].get("exclude_ids") or []))
            modules[name] = import_module(module)
            preflight(name, modules[name], options[name])
        check_writable(root)
    except (ValueError, ImportError) as error:
        fail(error)
    summaries = {}
    with excluding(exclude):  # every reader skips them, formats and views alike
        for name, _ in chosen:  # reads only `split=` (dataset_and_out selected it)
            summaries[name] = modules[name].export(resolve(dataset), root / name,
                                                   options[name])
            print(f"{name}: {json.dumps(summaries[name])}", file=sys.stderr)
    return summaries
