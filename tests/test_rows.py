"""The inter-stage row's outcomes and codec (pipeline/rows.py).

The stored reason strings are a public contract: run.json counts them (`counts.rejected`,
`counts.deferred`) and the shards' metadata keeps them, so their exact forms are pinned here.
"""

from __future__ import annotations

import math

import pytest

from pipeline.budget import OVER_BUDGET
from pipeline.rows import (
    BUDGET_EXHAUSTED,
    LLM_ERROR,
    ROW_KEYS,
    SYNTHESIS_FAILED,
    WRITER_STOPPED,
    WRITTEN,
    Deferred,
    Outcome,
    Rejected,
    Written,
    carry,
    clean,
    decode,
    encode,
)
from pipeline.script_check import ScriptDeferred, ScriptRejected
from tests.llm_support import scenarios


def test_stored_forms_are_pinned():
    assert WRITTEN.to_dict() == {"reject": None}
    assert Rejected(SYNTHESIS_FAILED).to_dict() == {"reject": "synthesis_failed"}
    assert Rejected(LLM_ERROR).stored() == "llm_error"
    assert Rejected(OVER_BUDGET).stored() == "over_budget"
    assert Deferred(BUDGET_EXHAUSTED).stored() == "deferred:budget_exhausted"
    assert Deferred(WRITER_STOPPED).to_dict() == {"reject": "deferred:writer_stopped"}
    assert Rejected("near_duplicate", "x" * 400).to_dict() == {
        "reject": "near_duplicate", "reject_detail": "x" * 300}


@pytest.mark.parametrize("outcome", [WRITTEN, Rejected("turn_count", "3 turns"),
                                     Rejected("asr_mismatch"), Deferred("llm_unavailable"),
                                     Deferred(BUDGET_EXHAUSTED, "spent 10 of 10 tokens")])
def test_to_dict_and_from_dict_round_trip(outcome: Outcome):
    assert Outcome.from_dict(outcome.to_dict()) == outcome
    assert Outcome.parse(outcome.stored()).stored() == outcome.stored()


def test_from_dict_reads_what_pandas_and_older_rows_hold():
    assert isinstance(Outcome.from_dict({"reject": math.nan}), Written)
    assert isinstance(Outcome.from_dict({}), Written)
    assert Outcome.from_dict({"reject": "deferred:budget_exhausted"}).stops_run
    assert not Outcome.from_dict({"reject": "deferred:llm_unavailable"}).stops_run
    assert Outcome.from_dict({"reject": "empty_script", "reject_detail": math.nan}) \
        == Rejected("empty_script")


def test_script_exceptions_carry_their_outcome():
    rejected = ScriptRejected("wrong_language", "reads as 'de'")
    assert rejected.outcome == Rejected("wrong_language", "reads as 'de'")
    deferred = ScriptDeferred(BUDGET_EXHAUSTED, "spent")
    assert deferred.reason == "deferred:budget_exhausted"  # what tests and logs have seen
    assert deferred.outcome == Deferred(BUDGET_EXHAUSTED, "spent") and deferred.outcome.stops_run


def test_codec_round_trips_the_encoded_columns(make_utterance):
    scenario = scenarios(1)[0]
    row = {"scenario": encode("scenario", scenario), "stage_s": encode("stage_s", {"plan": 0.5}),
           "utterances": encode("utterances", [make_utterance(0, "A", ["hello", "there"])])}
    assert decode(row, "scenario") == scenario
    assert decode(row, "stage_s") == {"plan": 0.5}
    assert decode(row, "utterances")[0].words == make_utterance(0, "A", ["hello", "there"]).words
    assert decode({"script": None}, "script") is None
    with pytest.raises(KeyError, match="'index' has no encoded form"):
        decode({"index": 1}, "index")


def test_carry_keeps_the_pipeline_keys_and_clean_undoes_nan():
    row = {"index": 1, "stage_s": "{}", "messages": [], "generated_text": "{}",
           "reject": math.nan}
    assert carry(row) == {"index": 1, "stage_s": "{}", "reject": row["reject"]}
    assert clean(carry(row))["reject"] is None
    assert len(set(ROW_KEYS)) == len(ROW_KEYS)
