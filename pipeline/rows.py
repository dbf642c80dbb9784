"""The rows between stages: their keys and forms, and the typed outcome each row carries.

Across Ray a row stays a plain dict (Ray Data moves dicts and pandas frames, not classes),
so this module is the one place its keys are written down (`StageRow`) and converted:
`carry` keeps the pipeline's own keys of a row a foreign stage returned (the vLLM engine
adds and drops columns), `clean` undoes pandas' NaN for a column only some rows set, and
`decode` / `encode` turn a JSON or pickled column into its type and back.

A row's fate is one of three outcomes, stored in its `reject` column:
- `Written`: `reject` is None; the sink writes the dialogue.
- `Rejected(reason, detail)`: `reject` is the reason run.json counts (`synthesis_failed`).
- `Deferred(reason, detail)`: no dialogue yet but not a bad one (LLM budget spent, endpoint
  down); `reject` is `deferred:<reason>`, and the sink leaves the row's whole shard unwritten
  so the next run of the same config retries it.
The stored strings are a public contract (run.json `counts.rejected` / `counts.deferred`,
the shards' metadata): `Outcome.from_dict(o.to_dict()) == o` and the forms are pinned in
tests/test_rows.py.
"""

from __future__ import annotations

import json
import pickle
from dataclasses import dataclass
from typing import Any, ClassVar, TypedDict

from pipeline.schema import DialogueScript, ScenarioSpec

DEFERRED_PREFIX = "deferred:"
DETAIL_CHARS = 300
"""A reject's detail is cut to this many characters: run.json keeps one example per reason."""

# Reasons the stages and the driver give themselves (the script checks' reasons live in
# pipeline/script_check.py, `asr_mismatch` in asr_gate.py, `over_budget` in budget.py).
SYNTHESIS_FAILED = "synthesis_failed"
LLM_ERROR = "llm_error"
BUDGET_EXHAUSTED = "budget_exhausted"  # deferred: the LLM budget is spent, the run stops
WRITER_STOPPED = "writer_stopped"  # deferred: the endpoint refuses every request


class Outcome:
    """What became of a row: `Written`, `Rejected` or `Deferred` (module docstring)."""

    def stored(self) -> str | None:
        """The `reject` column's value."""
        raise NotImplementedError

    def to_dict(self) -> dict[str, Any]:
        """The row columns that carry this outcome (`reject`, and `reject_detail` if any)."""
        raise NotImplementedError

    @staticmethod
    def from_dict(row: dict[str, Any]) -> Outcome:
        """The outcome a row carries; a missing or NaN `reject` (pandas) is `Written`."""
        detail = row.get("reject_detail")
        return Outcome.parse(row.get("reject"), detail if isinstance(detail, str) else None)

    @staticmethod
    def parse(stored: Any, detail: str | None = None) -> Outcome:
        """The outcome of a stored `reject` value (the inverse of `stored()`)."""
        if not isinstance(stored, str) or not stored:
            return WRITTEN
        if stored.startswith(DEFERRED_PREFIX):
            return Deferred(stored[len(DEFERRED_PREFIX):], detail)
        return Rejected(stored, detail)


@dataclass(frozen=True)
class Written(Outcome):
    def stored(self) -> None:
        return None

    def to_dict(self) -> dict[str, Any]:
        return {"reject": None}


WRITTEN = Written()


@dataclass(frozen=True)
class _Reasoned(Outcome):
    reason: str
    detail: str | None = None
    prefix: ClassVar[str] = ""

    def stored(self) -> str:
        return self.prefix + self.reason

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"reject": self.stored()}
        if self.detail is not None:
            out["reject_detail"] = self.detail[:DETAIL_CHARS]
        return out


@dataclass(frozen=True)
class Rejected(_Reasoned):
    """The dialogue cannot be used; `reason` is the category run.json counts."""


@dataclass(frozen=True)
class Deferred(_Reasoned):
    """Not a bad dialogue but none yet: its shard is left for the next run."""

    prefix: ClassVar[str] = DEFERRED_PREFIX

    @property
    def stops_run(self) -> bool:
        """A spent LLM budget stops the stream: every later row would be deferred alike."""
        return self.reason == BUDGET_EXHAUSTED


class StageRow(TypedDict, total=False):
    """The keys a row gathers on its way, in stage order, with their forms.

    JSON columns are `str`, pickled ones `bytes` (pickle protocol 5, internal to a run and
    never stored): both keep Arrow blocks to plain binary columns between stages.
    """

    index: int  # position in the run's plan (splits.py global index)
    local: int  # position inside the split; decides the shard with sink.shard_dialogues
    split: str
    shard: int
    reject: str | None  # the outcome (Outcome.stored); None while the row is fine
    reject_detail: str | None  # the first DETAIL_CHARS of why, for run.json's examples
    writer_error: str | None  # the endpoint's one line when it refuses everything
    stage_s: str  # JSON {stage: seconds} this row spent per stage (stages.STAGE_SECONDS)
    id: str  # scenario id (schema.scenario_id)
    scenario: str  # JSON ScenarioSpec (plan; the ASR check may revoice it)
    script: str | None  # JSON DialogueScript (write, repaired by validate)
    writer: str | None  # JSON writer provenance (model, prompt version)
    llm_usage: str | None  # JSON token and cost counts of this row's requests
    utterances: bytes | None  # pickled list[Utterance] (speak; None once assembled)
    asr: str | None  # JSON ASR check outcome (checks.asr.enabled)
    dialogue: bytes | None  # pickled dialogue row in JSON form (assemble; features.py types it)
    segments: bytes | None  # pickled list of segment rows
    audio_s: float  # seconds of the rendered mix, for the budget goal


ROW_KEYS: tuple[str, ...] = tuple(StageRow.__annotations__)

_JSON_TYPES: dict[str, Any] = {"scenario": ScenarioSpec, "script": DialogueScript}
_JSON_KEYS = ("stage_s", "writer", "llm_usage", "asr")
_PICKLED_KEYS = ("utterances", "dialogue", "segments")


def carry(row: dict[str, Any]) -> dict[str, Any]:
    """The pipeline's own keys of `row` (those it has), dropping a foreign stage's columns."""
    return {key: row[key] for key in ROW_KEYS if key in row}


def clean(row: dict[str, Any]) -> dict[str, Any]:
    """pandas gives NaN where a column only some rows set; the stages expect None."""
    return {key: (None if isinstance(value, float) and value != value else value)
            for key, value in row.items()}


def decode(row: dict[str, Any], key: str) -> Any:
    """The typed value of a JSON or pickled column (None stays None)."""
    value = row.get(key)
    if value is None:
        return None
    if key in _JSON_TYPES:
        return _JSON_TYPES[key].model_validate_json(value)
    if key in _JSON_KEYS:
        return json.loads(value)
    if key in _PICKLED_KEYS:
        return pickle.loads(value)
    raise KeyError(f"row key {key!r} has no encoded form (StageRow lists the keys)")


def encode(key: str, value: Any) -> str | bytes | None:
    """The column form of a typed value (the inverse of `decode`)."""
    if value is None:
        return None
    if key in _JSON_TYPES:
        return value.model_dump_json()
    if key in _JSON_KEYS:
        return json.dumps(value)
    if key in _PICKLED_KEYS:
        return pickle.dumps(value, protocol=5)
    raise KeyError(f"row key {key!r} has no encoded form (StageRow lists the keys)")
