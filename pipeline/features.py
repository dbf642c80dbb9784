"""Typed nested columns: `datasets` features derived from the schema models, and the codec
between a model's JSON form (what every job reads) and its Parquet form.

The Parquet form is plain Arrow types, so `datasets` filters on them and the Hub viewer shows
them as columns: a model becomes a struct, a list a list, `str | None` a nullable string.
Two fields change shape on the way in and back on the way out, so readers see exactly the
dicts of `Model.model_dump(mode="json")`:
- word alignments, `(word, start_s, end_s)` tuples, are stored as structs
  {word, start_s, end_s} (named fields in the viewer) and read back as `[word, start, end]`;
- free-form dicts (a speaker's backend-specific `voice`) are stored as JSON text.
Deriving the features from the models keeps one source of truth: a field added to a model
is a new typed column without touching the sink.
"""

from __future__ import annotations

import json
import types
import typing
from enum import Enum
from functools import cache
from typing import Any, Literal, Union, get_args, get_origin

from pydantic import BaseModel

WORD_FIELDS = ("word", "start_s", "end_s")


def _is_word_tuple(annotation: Any) -> bool:
    return get_origin(annotation) is tuple and get_args(annotation) == (str, float, float)


def _strip_optional(annotation: Any) -> Any:
    if get_origin(annotation) in (Union, types.UnionType):
        rest = [a for a in get_args(annotation) if a is not type(None)]
        if len(rest) == 1:
            return rest[0]
    return annotation


@cache
def _fields(model: type[BaseModel]) -> dict[str, Any]:
    hints = typing.get_type_hints(model)
    return {name: hints[name] for name, info in model.model_fields.items() if not info.exclude}


def feature_of(annotation: Any) -> Any:
    """The `datasets` feature of one annotation (model, list, scalar, dict)."""
    from datasets import List, Value

    annotation = _strip_optional(annotation)
    origin = get_origin(annotation)
    if _is_word_tuple(annotation):
        return {"word": Value("string"), "start_s": Value("float64"), "end_s": Value("float64")}
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return {name: feature_of(hint) for name, hint in _fields(annotation).items()}
    if origin is list:
        return List(feature_of(get_args(annotation)[0]))
    if origin is Literal or (isinstance(annotation, type) and issubclass(annotation, Enum)):
        return Value("string")
    scalar = {bool: "bool", int: "int64", float: "float64", str: "string"}
    if annotation in scalar:
        return Value(scalar[annotation])
    return Value("string")  # dict / Any: JSON text


def _is_scalar(annotation: Any) -> bool:
    return annotation in (bool, int, float, str) or get_origin(annotation) is Literal or (
        isinstance(annotation, type) and issubclass(annotation, Enum))


@cache
def _codec(annotation: Any, forward: bool) -> Any:
    """A function converting one value of `annotation` (JSON form -> Parquet form when
    `forward`, else back), built once per annotation: shards hold many rows."""
    annotation = _strip_optional(annotation)
    if _is_word_tuple(annotation):
        if forward:
            return lambda v: None if v is None else dict(zip(WORD_FIELDS, v, strict=True))
        return lambda v: None if v is None else [v["word"], v["start_s"], v["end_s"]]
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        parts = {name: _codec(hint, forward) for name, hint in _fields(annotation).items()}
        if forward:
            return lambda v: None if v is None else {n: f(v.get(n)) for n, f in parts.items()}
        return lambda v: None if v is None else {n: f(v[n]) for n, f in parts.items() if n in v}
    if get_origin(annotation) is list:
        item = get_args(annotation)[0]
        if _is_scalar(_strip_optional(item)):
            return lambda v: None if v is None else list(v)
        convert = _codec(item, forward)
        return lambda v: None if v is None else [convert(x) for x in v]
    if _is_scalar(annotation):
        return lambda v: v
    if forward:  # dict / Any: JSON text
        return lambda v: None if v is None else json.dumps(v, ensure_ascii=False)
    return lambda v: json.loads(v) if isinstance(v, str) else v


def encode(value: Any, annotation: Any) -> Any:
    """A model's JSON form (model_dump(mode="json")) -> the Parquet form of `feature_of`."""
    return _codec(annotation, True)(value)


def decode(value: Any, annotation: Any) -> Any:
    """The Parquet form -> the model's JSON form (the inverse of `encode`)."""
    return _codec(annotation, False)(value)


@cache
def _column_models() -> dict[str, Any]:
    from pipeline.schema import DialogueScript, DuplexLabels, ScenarioSpec, SpeakerSpec, Timeline

    return {"speakers": list[SpeakerSpec], "scenario": ScenarioSpec, "script": DialogueScript,
            "timeline": Timeline, "duplex": DuplexLabels | None}


NESTED_COLUMNS = ("speakers", "scenario", "script", "timeline", "duplex")
JSON_COLUMNS = ("provenance",)
"""Kept as JSON text: provenance holds writer- and augmentation-specific dicts whose keys
differ by backend, which a fixed struct would either drop or fill with nulls."""


def dialogue_features(sample_rate: int) -> Any:
    """Features of a `dialogues` row (DESIGN §3): typed nested columns, the mono mix as
    `audio`, and `channels`, a list of mono Audio values, one per speaker in `speakers`
    order (so `datasets` decodes each speaker's track as its own array)."""
    # `datasets` imported here, not at the top: every Ray actor imports the sink for
    # flac_bytes, and `datasets` alone costs each of them ~0.3 s of start-up.
    from datasets import Audio, Features, List, Value

    models = _column_models()
    speaker = {**feature_of(models["speakers"].__args__[0]), "voice_id": Value("string")}
    return Features({
        "id": Value("string"),
        "language": Value("string"),
        "domain": Value("string"),
        "audio": Audio(sampling_rate=sample_rate),
        "channels": List(Audio(sampling_rate=sample_rate)),
        "duration_s": Value("float64"),
        "num_speakers": Value("int32"),
        "speakers": List(speaker),
        "scenario": feature_of(models["scenario"]),
        "script": feature_of(models["script"]),
        "timeline": feature_of(models["timeline"]),
        "duplex": feature_of(models["duplex"]),
        "generator": Value("string"),
        "tts": Value("string"),
        "provenance": Value("string"),
        "asr_error_max": Value("float64"),  # ASR gate (checks.asr): null when it is off
        "asr_error_mean": Value("float64"),
        "asr_retries": Value("int32"),
    })


def segment_features(sample_rate: int) -> Any:
    from datasets import Audio, Features, Value

    return Features({
        "id": Value("string"),
        "dialogue_id": Value("string"),
        "speaker": Value("string"),
        "audio": Audio(sampling_rate=sample_rate),
        "text": Value("string"),
        "start_s": Value("float64"),
        "end_s": Value("float64"),
        "duration_s": Value("float64"),
        "language": Value("string"),
        "voice_id": Value("string"),
        "speaker_label": Value("string"),
        "asr_text": Value("string"),  # ASR gate transcript of the whole utterance
        "asr_error": Value("float64"),  # its WER / CER against the turn's text
    })


def encode_columns(row: dict) -> dict:
    """A dialogue row with its nested columns in JSON form (dicts, as `model_dump(mode=
    "json")` gives them) -> the Parquet form; `speakers` entries gain `voice_id`."""
    from pipeline.schema import voice_id

    models = _column_models()
    out = dict(row)
    for name in NESTED_COLUMNS:
        if name in out:
            out[name] = encode(out[name], models[name])
    if "speakers" in out:
        out["speakers"] = [{**encoded, "voice_id": voice_id(spec.get("voice") or {})}
                           for encoded, spec in zip(out["speakers"], row["speakers"],
                                                    strict=True)]
    for name in JSON_COLUMNS:
        if name in out and not isinstance(out[name], str | None):
            out[name] = json.dumps(out[name], ensure_ascii=False)
    return out


def decode_columns(row: dict) -> dict:
    """The inverse of `encode_columns` for whatever columns `row` holds."""
    models = _column_models()
    for name in NESTED_COLUMNS:
        if name in row:
            value = row[name]
            if isinstance(value, str):  # a dataset written before typed columns
                row[name] = json.loads(value)
                continue
            row[name] = decode(value, models[name])
            if name == "speakers" and value is not None:
                for spec, stored in zip(row[name], value, strict=True):
                    spec["voice_id"] = stored.get("voice_id")
    for name in JSON_COLUMNS:
        if isinstance(row.get(name), str):
            row[name] = json.loads(row[name])
    return row
