"""`exclude=` for the training jobs: dialogue ids that must never reach training data.

The value is a dialogue id, a list of ids, or a folder written by `duplexsynth evalset`
(its `dialogue_ids.txt` is read), or a list mixing them — so an evaluation set built from
the same dataset can be held out of `dpo` and `export view=...` by naming its folder.
"""

from __future__ import annotations

from pathlib import Path

ID_LIST = "dialogue_ids.txt"  # written by pipeline.evalset


def excluded_ids(value: object) -> set[str]:
    """The ids named by `exclude=`; a folder without the id list is a one-line error."""
    if value in (None, "", []):
        return set()
    items = value if isinstance(value, list | tuple) else [value]
    ids: set[str] = set()
    for item in items:
        text = str(item)
        path = Path(text).expanduser()
        if path.is_dir():
            listing = path / ID_LIST
            if not listing.is_file():
                raise ValueError(f"exclude: {path} has no {ID_LIST}; name a folder written by "
                                 "`duplexsynth evalset`, or list dialogue ids")
            ids |= {line.strip() for line in listing.read_text().splitlines() if line.strip()}
        elif "/" in text or text.startswith("."):
            raise ValueError(f"exclude: {text} is not a folder; name an evalset folder or "
                             "list dialogue ids")
        else:
            ids.add(text)
    return ids
