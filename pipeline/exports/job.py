"""`duplexsynth export dataset=D out.dir=O format=nemo|lhotse|rttm|stm` or `view=bayling|moshi`.

`exclude=` (dialogue ids, or an evalset folder: its dialogue_ids.txt) keeps evaluation
dialogues out of the duplex training views (it adds to their `exclude_ids`).
"""

from __future__ import annotations

import json
import sys
from importlib import import_module
from pathlib import Path

from pipeline.exports import FORMATS, VIEWS
from pipeline.holdout import excluded_ids
from pipeline.jobs import dataset_and_out, fail


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
    if exclude and (formats := [n for n, _ in chosen if n in FORMATS]):
        fail(ValueError(f"exclude: the formats {formats} do not filter dialogues; exclude= "
                        f"applies to view={sorted(VIEWS)} (export formats separately)"))
    summaries = {}
    for name, module in chosen:
        options = dict((raw.get("options") or {}).get(name) or {})
        if exclude:
            options["exclude_ids"] = sorted(exclude | set(options.get("exclude_ids") or []))
        target = Path(out).expanduser().resolve() / name
        summaries[name] = import_module(module).export(Path(dataset).resolve(), target, options)
        print(f"{name}: {json.dumps(summaries[name])}", file=sys.stderr)
    return summaries
