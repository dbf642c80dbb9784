"""`duplexsynth view dataset=D out.dir=V`, and the viewer `generate viewer.enabled=true` writes."""

from __future__ import annotations

import logging
import sys
from pathlib import Path

from pipeline.config import ViewJobConfig, ViewSettings
from pipeline.viewer.site import SiteResult, ViewError, write_site

log = logging.getLogger("duplexsynth")


def view_job(raw: dict) -> SiteResult:
    from pipeline.jobs_common import checked, dataset_and_out, fail

    dataset, out = dataset_and_out(raw, "the viewer site")
    config = checked(ViewJobConfig, raw)
    try:
        result = write_site(Path(dataset), Path(out), split=config.split, limit=config.limit,
                            ids=config.ids, px_per_s=config.px_per_s, audio=config.audio)
    except ViewError as error:
        fail(error)
        raise
    print(f"view: {len(result.pages)} dialogue pages, {result.bytes / 1e6:.1f} MB -> "
          f"{result.index} (open it in a browser; no server needed)", file=sys.stderr)
    return result


def view_after_run(dataset: Path, settings: ViewSettings) -> Path | None:
    """The viewer beside the card for the first `settings.dialogues` dialogues. A failure here
    costs nothing already written: it is logged and the card is written without the link."""
    if not settings.enabled:
        return None
    target = Path(dataset) / settings.dir
    try:
        result = write_site(Path(dataset), target, limit=settings.dialogues,
                            audio=settings.audio)
    except Exception as error:  # noqa: BLE001 - the dataset is complete; the viewer is extra
        log.warning("viewer failed: %s", error)
        print(f"duplexsynth: the viewer failed ({type(error).__name__}: {error}); retry with "
              f"`duplexsynth view dataset={dataset} out.dir={target}`", file=sys.stderr)
        return None
    print(f"viewer: {result.index} ({len(result.pages)} dialogues)", file=sys.stderr)
    return result.index
