"""Typed nested columns: the Parquet form round-trips to the models' JSON form exactly."""

from __future__ import annotations

import json

import pyarrow as pa

from pipeline.config import GenerateConfig
from pipeline.derive import plan_settings
from pipeline.features import decode_columns, dialogue_features, encode_columns
from pipeline.scenarios import plan_scenario
from pipeline.schema import (
    AxisEvent,
    DialogueScript,
    DuplexLabels,
    Placed,
    Timeline,
    Turn,
    voice_id,
)
from pipeline.tts.espeak import EspeakBackend


def json_form_row(with_duplex: bool) -> dict:
    config = GenerateConfig.check({"budget": {"dialogues": 4}})
    scenario = plan_scenario(3, 7, plan_settings(config), EspeakBackend().pick_voices)
    script = DialogueScript(scenario_id=scenario.id, language=scenario.language, turns=[
        Turn(speaker="spk0", text="Hello there, 42 friends.", pauses=[1]),
        Turn(speaker="spk1", text="Mhm.", kind="backchannel", interrupts=True)])
    timeline = Timeline(duration_s=3.25, segments=[
        Placed(turn=0, speaker="spk0", start_s=0.0, end_s=1.7, kind="turn",
               words=[("Hello", 0.0, 0.4), ("there,", 0.45, 0.9)]),
        Placed(turn=1, speaker="spk1", start_s=1.2, end_s=1.5, kind="backchannel",
               cut_at_s=1.5, addressee="spk0", words=[("Mhm.", 1.2, 1.5)])])
    duplex = DuplexLabels(frame_s=0.08, assistant="spk1", state=["LISTEN", "BACKCHANNEL"],
                          event=["none", "BC_START"], user_vad=[1, 0], addressee=["spk1", ""],
                          words=[("Mhm.", 1.2, 1.5)],
                          axis_events=[AxisEvent(axis="backchannel", start_s=1.0, end_s=2.0,
                                                 expected="backchannel", response_s=None)])
    return {
        "speakers": [s.model_dump(mode="json") for s in scenario.speakers],
        "scenario": scenario.model_dump(mode="json"),
        "script": script.model_dump(mode="json"),
        "timeline": timeline.model_dump(mode="json"),
        "duplex": duplex.model_dump(mode="json") if with_duplex else None,
        "provenance": {"writer": {"name": "offline"}, "augment": {"gain_db": {"spk0": -1.5}}},
    }


def test_nested_columns_round_trip_through_arrow_to_the_same_dicts():
    schema = dialogue_features(16000).arrow_schema
    wanted = [name for name in schema.names if name in json_form_row(True)]
    schema = pa.schema([schema.field(name) for name in wanted])
    for with_duplex in (True, False):
        row = json_form_row(with_duplex)
        stored = pa.Table.from_pylist([encode_columns(row)], schema=schema).to_pylist()[0]
        assert isinstance(stored["timeline"]["segments"][0]["words"][0], dict)
        assert isinstance(stored["provenance"], str)  # heterogeneous: stays JSON text
        back = decode_columns(stored)
        for spec in back["speakers"]:
            assert spec.pop("voice_id") == voice_id(spec["voice"])
        assert json.dumps(back, sort_keys=True) == json.dumps(
            json.loads(json.dumps(row)), sort_keys=True)


def test_a_dataset_written_before_typed_columns_still_reads():
    row = json_form_row(True)
    old = {name: json.dumps(value) for name, value in row.items()}
    assert decode_columns(old)["timeline"] == json.loads(json.dumps(row["timeline"]))
