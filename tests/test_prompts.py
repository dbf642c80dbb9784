"""Prompt templates: both languages render, examples are valid, the version pins the text."""

from __future__ import annotations

import json
import shutil

import pytest

from pipeline.prompts import PROMPTS_DIR, PromptSet
from pipeline.schema import DialogueScript, Phenomena, ScenarioSpec, SpeakerSpec
from pipeline.script_check import ScriptChecker
from tests.llm_support import scenarios


@pytest.mark.parametrize("language", ["en", "hu"])
def test_few_shot_example_passes_every_check(language):
    example = json.loads((PROMPTS_DIR / language / "example.json").read_text())
    brief = example["brief"]
    scenario = ScenarioSpec(
        id=brief["scenario_id"], index=0, language=brief["language"], domain=brief["domain"],
        situation=brief["situation"], speakers=[SpeakerSpec(**s) for s in brief["speakers"]],
        assistant=brief["assistant"], target_turns=brief["target_turns"],
        phenomena=Phenomena(**brief["phenomena"]), seed=0)
    script = DialogueScript.model_validate(example["script"])
    assert ScriptChecker().check(script, scenario) == script


def test_messages_hold_schema_example_and_scenario():
    prompts = PromptSet()
    for scenario in scenarios(2):
        messages = prompts.messages(scenario)
        assert [m["role"] for m in messages] == ["system", "user", "assistant", "user"]
        assert '"DialogueScript"' in messages[0]["content"] or "Turn" in messages[0]["content"]
        assert scenario.id in messages[-1]["content"]
        assert scenario.situation in messages[-1]["content"]
        DialogueScript.model_validate_json(messages[2]["content"])
    hungarian = prompts.messages(scenarios(2)[1])
    assert "magyar" in hungarian[0]["content"]


def test_version_changes_with_the_template_text(tmp_path):
    copy = tmp_path / "prompts"
    shutil.copytree(PROMPTS_DIR, copy)
    before = PromptSet(copy).version
    assert before == PromptSet().version
    (copy / "en" / "system.j2").write_text((copy / "en" / "system.j2").read_text() + "\nBe brief.")
    assert PromptSet(copy).version != before
    assert PromptSet(copy).version.startswith("dialogue-v1+")


def test_unknown_language_is_explained():
    scenario = scenarios(1)[0].model_copy(update={"language": "fi"})
    with pytest.raises(ValueError, match="no templates for language 'fi'"):
        PromptSet().messages(scenario)
