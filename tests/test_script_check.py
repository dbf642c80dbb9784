"""Script checks: turn bounds, phenomena, language identification, near-duplicates."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pipeline.devserver import compose
from pipeline.prompts import scenario_brief
from pipeline.schema import DialogueScript
from pipeline.script_check import ScriptChecker, ScriptRejected, check_script, turn_bounds
from pipeline.writers.offline import OfflineComposer
from tests.llm_support import scenarios


def composed(count: int = 6):
    batch = scenarios(count)
    return batch, [OfflineComposer().write(s) for s in batch]


def reason(call) -> str:
    with pytest.raises(ScriptRejected) as error:
        call()
    return error.value.reason


def test_offline_scripts_pass_every_check():
    batch, scripts = composed(12)
    checker = ScriptChecker()
    for scenario, script in zip(batch, scripts, strict=True):
        assert checker.check(script, scenario).turns


def test_turn_count_outside_bounds_is_rejected():
    (scenario, *_), (script, *_) = composed(1)
    low, high = turn_bounds(scenario.target_turns, 0.5)
    assert low <= sum(t.kind == "turn" for t in script.turns) <= high
    short = script.model_copy(update={"turns": script.turns[:3]})
    assert reason(lambda: check_script(short, scenario, turn_tolerance=0.5)) == "turn_count"
    assert check_script(short, scenario).turns  # without bounds the spine's checks pass


def test_missing_phenomenon_is_rejected():
    batch, scripts = composed(8)
    scenario, script = next((s, x) for s, x in zip(batch, scripts, strict=True)
                            if s.phenomena.backchannels > 0)
    plain = script.model_copy(update={"turns": [t for t in script.turns
                                                if t.kind != "backchannel"]})
    assert reason(lambda: check_script(plain, scenario, phenomena=True)) == "missing_phenomena"


def test_script_in_another_language_is_rejected_by_language_id():
    scenario = scenarios(2)[1]
    assert scenario.language == "hu"
    other = DialogueScript.model_validate_json(compose(scenario_brief(scenario), language="en"))
    assert other.language == "hu"  # the label lies; the text is English
    checker = ScriptChecker()
    assert checker.detect_language(" ".join(t.text for t in other.turns)) == "en"
    assert reason(lambda: checker.check(other, scenario)) == "wrong_language"


def test_near_duplicate_is_rejected_and_first_copy_kept():
    batch, scripts = composed(2)
    checker = ScriptChecker()
    checker.check(scripts[0], batch[0])
    twin_scenario = batch[0].model_copy(update={"id": "dlg-9999999-twin"})
    twin = scripts[0].model_copy(update={"scenario_id": twin_scenario.id})
    edited = twin.model_copy(update={"turns": [twin.turns[0].model_copy(
        update={"text": twin.turns[0].text + " okay"}), *twin.turns[1:]]})
    assert reason(lambda: checker.check(edited, twin_scenario)) == "near_duplicate"
    assert checker.check(scripts[1], batch[1])  # a different dialogue still passes


def test_duplicate_index_is_seeded_from_finished_shards(tmp_path):
    batch, scripts = composed(1)
    shard = tmp_path / "train-00000.parquet"
    pq.write_table(pa.table({"script": [scripts[0].model_dump_json()]}), shard)
    checker = ScriptChecker()
    assert checker.remember_shards([shard]) == 1
    twin_scenario = batch[0].model_copy(update={"id": "dlg-9999999-twin"})
    twin = scripts[0].model_copy(update={"scenario_id": twin_scenario.id})
    assert reason(lambda: checker.check(twin, twin_scenario)) == "near_duplicate"


def test_disabled_checks_let_everything_through():
    scenario = scenarios(2)[1]
    other = DialogueScript.model_validate_json(compose(scenario_brief(scenario), language="en"))
    checker = ScriptChecker({"language_id": False, "near_duplicate_threshold": None,
                             "turn_tolerance": None, "phenomena": False})
    assert checker.check(other, scenario)
    assert checker.check(other, scenario)  # the same script twice: dedup is off
