"""Exports of a generated dataset into the layouts trainers read.

Each exporter is a module with `export(dataset: Path, out_dir: Path, options: dict) -> dict`
(the dict summarises what was written). `duplexsynth export format=<name>` or
`view=<name>` picks one from the registries below.
"""

FORMATS: dict[str, str] = {
    "nemo": "pipeline.exports.nemo",
    "lhotse": "pipeline.exports.lhotse",
    "rttm": "pipeline.exports.rttm",
    "stm": "pipeline.exports.stm",
}
VIEWS: dict[str, str] = {
    "bayling": "pipeline.exports.bayling",
    "moshi": "pipeline.exports.moshi",
}
