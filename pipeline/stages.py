"""Stages as small classes over rows: usable directly in tests, wired by Ray in run.py.

A row is a dict that grows as it passes: `index`, `id`, `scenario` (JSON) → `script` (JSON) →
`utterances` (pickled audio, internal to the run) → `dialogue` / `segments` (final Parquet
rows, pickled); pipeline/rows.py lists every key and its form. A stage that cannot handle a
row gives it a Rejected or Deferred outcome (its `reject` column) and every later stage
passes the row through, so the sink still knows its shard is complete.
"""

from __future__ import annotations

import hashlib
import json
import pickle
import random
import time
from collections.abc import Callable
from typing import Any

import pandas as pd

from pipeline import __version__
from pipeline.asr_gate import asr_columns, asr_summary
from pipeline.augment import augment_rendered
from pipeline.labels import asr_segments, duplex_labels
from pipeline.render import render
from pipeline.rows import SYNTHESIS_FAILED, WRITER_STOPPED, Deferred, Outcome, Rejected, Written
from pipeline.scenarios import plan_scenario
from pipeline.schema import DialogueScript, ScenarioSpec, Utterance, voice_id
from pipeline.script_check import ScriptRejected, WriterStopped, check_script
from pipeline.sink import flac_bytes, shard_pattern
from pipeline.timeline import arrange
from pipeline.timing import TimingModel, TimingSettings
from pipeline.tts.base import SynthesisError
from pipeline.writers import make_writer

Row = dict[str, Any]


def config_hash(config: dict) -> str:
    return hashlib.sha256(json.dumps(config, sort_keys=True).encode()).hexdigest()[:16]


STAGE_SECONDS = "stage_s"
"""Row column: JSON {stage: seconds} this row spent in each stage (its share of a batch's
call), summed by the driver into run.json's `profile` for `python -m pipeline.bench`."""


def add_stage_seconds(row: Row, seconds: dict[str, float]) -> None:
    spent = json.loads(row.get(STAGE_SECONDS) or "{}")
    for stage, value in seconds.items():
        spent[stage] = spent.get(stage, 0.0) + value
    row[STAGE_SECONDS] = json.dumps(spent)


def charge_stage(rows: list[Row], stage: str, started: float) -> list[Row]:
    """Share the batch's wall time since `started` out equally over its rows."""
    share = (time.perf_counter() - started) / max(len(rows), 1)
    for row in rows:
        add_stage_seconds(row, {stage: share})
    return rows


class Laps:
    """Wall seconds between successive `lap(name)` calls, summed per name."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}
        self._last = time.perf_counter()

    def lap(self, name: str) -> None:
        now = time.perf_counter()
        self.seconds[name] = self.seconds.get(name, 0.0) + now - self._last
        self._last = now


class RowStage:
    """Base for stages: `setup()` builds the expensive thing once per worker."""

    stage = "stage"  # name in the per-stage seconds (STAGE_SECONDS)
    skip_reason: Callable[[Row], str | None] | None = None
    """Set by the stream's gate (stream.Gated): asked before each row's work, so a row of a
    split that was finished while its batch was in progress passes on rejected without work
    (a Piper dialogue is seconds of synthesis; a batch of spares would be tens)."""

    def __init__(self, config: dict) -> None:
        self.config = config
        self._ready = False

    def setup(self) -> None:  # noqa: B027 - optional hook
        pass

    def process(self, row: Row) -> Row:
        raise NotImplementedError

    def __call__(self, batch: pd.DataFrame) -> pd.DataFrame:
        if not self._ready:
            self.setup()
            self._ready = True
        started = time.perf_counter()
        rows = [self._guarded(row) for row in batch.to_dict("records")]
        return _frame(charge_stage(rows, self.stage, started), batch)

    def _guarded(self, row: Row) -> Row:
        if not isinstance(Outcome.from_dict(row), Written):
            return row
        if self.skip_reason is not None and (reason := self.skip_reason(row)):
            return {**row, **Rejected(reason).to_dict()}
        return self.process(row)


def _frame(rows: list[Row], batch: pd.DataFrame) -> pd.DataFrame:
    """Rows to a frame with the union of their keys: a rejected first row lacks later keys."""
    columns = list(dict.fromkeys(key for row in rows for key in row)) if rows else batch.columns
    return pd.DataFrame(rows, columns=columns)


class PlanStage(RowStage):
    """index -> ScenarioSpec; voices come from the TTS backend's registry (no engine needed)."""

    stage = "plan"

    def setup(self) -> None:
        from pipeline.config import GenerateConfig
        from pipeline.derive import plan_settings
        from pipeline.split_plan import split_plan_settings
        from pipeline.tts import backend_from_config

        config = GenerateConfig.model_validate(self.config)
        self.settings, self.pickers = split_plan_settings(
            config, backend_from_config(self.config["tts"]), plan_settings(config))

    def process(self, row: Row) -> Row:
        split = row["split"]
        scenario = plan_scenario(int(row["index"]), self.config["seed"], self.settings[split],
                                 self.pickers[split])
        return {**row, "id": scenario.id, "scenario": scenario.model_dump_json()}


class WriteStage(RowStage):
    """Scenario → script. Adds `script`, `writer` (JSON for provenance), `llm_usage` (JSON).

    Writers with `write_many` get the whole batch at once so their requests overlap;
    `spent` is what finished shards already cost ({"tokens", "usd"}) for the budget.
    """

    stage = "write"

    def __init__(self, config: dict, spent: dict | None = None) -> None:
        super().__init__(config)
        self.spent = spent or {}

    def setup(self) -> None:
        from pipeline.writers.usage import Budget

        budget_config = self.config.get("budget") or {}
        budget = Budget(max_tokens=budget_config.get("max_tokens"),
                        max_usd=budget_config.get("max_usd"),
                        spent_tokens=int(self.spent.get("tokens", 0)),
                        spent_usd=float(self.spent.get("usd", 0.0)))
        if self.config["tts"]["name"] == "corpus":  # real utterances: the corpus is the script
            from pipeline.corpus import CorpusWriter

            self.writer = CorpusWriter()
        else:
            self.writer = make_writer(self.config["writer"], self.config.get("checks"), budget)
        meta = getattr(self.writer, "meta", None)
        self.meta = json.dumps(meta() if meta else {"writer": getattr(self.writer, "name", "")})

    def __call__(self, batch: pd.DataFrame) -> pd.DataFrame:
        if not self._ready:
            self.setup()
            self._ready = True
        started = time.perf_counter()
        rows = batch.to_dict("records")
        if not hasattr(self.writer, "write_many"):
            return _frame(charge_stage([self._guarded(row) for row in rows], self.stage, started),
                          batch)
        todo = [i for i, row in enumerate(rows) if isinstance(Outcome.from_dict(row), Written)]
        scenarios = [ScenarioSpec.model_validate_json(rows[i]["scenario"]) for i in todo]
        out = [{**row, "script": None, "writer": self.meta, "llm_usage": None} for row in rows]
        try:
            results = self.writer.write_many(scenarios)
        except WriterStopped as error:  # every row would fail alike: the driver stops the run
            for i in todo:
                out[i].update(Deferred(WRITER_STOPPED).to_dict(), writer_error=str(error))
            return _frame(charge_stage(out, self.stage, started), batch)
        for i, scenario, result in zip(todo, scenarios, results, strict=True):
            usage = dict(self.writer.pop_usage(scenario.id))
            out[i]["llm_usage"] = json.dumps(usage) if usage else None
            if isinstance(result, ScriptRejected):
                out[i].update(result.outcome.to_dict())
            else:
                out[i]["script"] = result.model_dump_json()
        return _frame(charge_stage(out, self.stage, started), batch)

    def process(self, row: Row) -> Row:
        scenario = ScenarioSpec.model_validate_json(row["scenario"])
        base = {**row, "script": None, "writer": self.meta, "llm_usage": None}
        try:
            script = check_script(self.writer.write(scenario), scenario)
        except ScriptRejected as rejected:
            return {**base, "reject": rejected.outcome.stored()}
        return {**base, "script": script.model_dump_json()}


class ValidateStage(RowStage):
    """Language ID and near-duplicate checks over the whole run: run it as ONE actor.

    Near-duplicates are looked up per split (the checker's scope): one stream carries every
    split, and the sink checks a row against the dialogues earlier splits wrote
    (script_check.WrittenTwins). On resume a split's index is seeded from the shards that
    were finished before the stream (`prior`: split -> shard paths) of the splits generated
    up to it, so a rerun judges the remaining scenarios against the same earlier scripts as a
    fresh run.
    """

    stage = "validate"

    def __init__(self, config: dict, output_dir: Any = None,
                 splits: dict[str, float] | None = None,
                 prior: dict[str, list[str]] | None = None) -> None:
        """`output_dir`: the sink's folder, URI or storage Location (None: no resume);
        `splits`: the run's split shares (their order of generation, splits.stream_order,
        decides what seeds whom; None: every finished shard seeds every split)."""
        super().__init__(config)
        self.output_dir = output_dir
        self.splits = splits
        self.prior = prior
        self.seeded: set[str] = set()

    def setup(self) -> None:
        from pipeline.script_check import ScriptChecker

        checks = dict(self.config.get("checks") or {})
        if self.config["tts"]["name"] == "corpus":
            # real transcripts: the corpus, not a writer, decides turn count and phenomena
            checks.update(phenomena=False, turn_tolerance=None)
        self.checker = ScriptChecker(checks)

    def _seed(self, split: str) -> None:
        """A near-duplicate across splits is a duplicate too: the split's index starts with
        the finished shards of the splits generated before it and its own, as in a fresh
        run (listed before the stream, so no shard this stream writes is read here)."""
        self.seeded.add(split)
        if not self.output_dir:
            return
        from pipeline.splits import stream_order

        prior = self.prior if self.prior is not None else self._list_prior()
        if self.splits is None:
            scope = list(prior)
        else:
            order = stream_order(self.splits) if split in self.splits else [split]
            scope = order[:order.index(split) + 1]
        self.checker.remember_shards([path for name in scope for path in prior.get(name, [])],
                                     scope=split)

    def _list_prior(self) -> dict[str, list[str]]:
        from pipeline.storage import locate

        location = locate(self.output_dir)
        found: dict[str, list[str]] = {}
        for path in location.glob("data", "dialogues", shard_pattern()):
            shown = location.show(path[len(location.root):].lstrip("/"))
            found.setdefault(path.rsplit("/", 1)[-1].rsplit("-", 1)[0], []).append(shown)
        return {name: sorted(paths) for name, paths in found.items()}

    def process(self, row: Row) -> Row:
        split = row.get("split")
        if split not in self.seeded:
            self._seed(split)
        scenario = ScenarioSpec.model_validate_json(row["scenario"])
        script = DialogueScript.model_validate_json(row["script"])
        try:
            script = self.checker.check(script, scenario, scope=split)
        except ScriptRejected as rejected:
            return {**row, "reject": rejected.outcome.stored()}
        return {**row, "script": script.model_dump_json()}


class SpeakStage(RowStage):
    stage = "speak"

    def setup(self) -> None:
        from pipeline.tts import backend_from_config

        self.backend = backend_from_config(self.config["tts"])
        self.backend.setup()

    def process(self, row: Row) -> Row:
        scenario = ScenarioSpec.model_validate_json(row["scenario"])
        script = DialogueScript.model_validate_json(row["script"])
        utterances: list[Utterance] = []
        try:
            for index, turn in enumerate(script.turns):
                voice = scenario.speaker(turn.speaker).voice
                utterances.append(self.backend.synthesize(turn.text, voice, index, turn.speaker))
        except SynthesisError:
            return {**row, "utterances": None, **Rejected(SYNTHESIS_FAILED).to_dict()}
        return {**row, "utterances": pickle.dumps(utterances, protocol=5)}


def voice_provenance(scenario: ScenarioSpec) -> list[dict]:
    """Per speaker: the backend, voice id and model file hash (None where a backend has no
    model file, e.g. eSpeak) and the prosody the voice was given."""
    keys = ("length_scale", "noise_scale", "noise_w_scale", "pitch_factor", "shared_voice",
            "rate", "pitch", "range")
    return [{"speaker": s.id, "backend": s.voice.get("backend"), "voice_id": s.voice.get("id"),
             "model_sha256": s.voice.get("model_sha256"),
             **{k: s.voice[k] for k in keys if k in s.voice}} for s in scenario.speakers]


def dialogue_backend(scenario: ScenarioSpec, configured: str) -> str:
    """The backend that voiced the dialogue (per-language runs mix backends across rows)."""
    used = {str(s.voice["backend"]) for s in scenario.speakers if s.voice.get("backend")}
    return used.pop() if len(used) == 1 else configured


class AssembleStage(RowStage):
    """arrange → render → label → encode: pure steps fused so raw audio crosses no process."""

    stage = "assemble"

    def setup(self) -> None:
        self.timing_settings = TimingSettings.from_config(self.config.get("timing") or {})

    def process(self, row: Row) -> Row:
        config = self.config
        laps = Laps()
        scenario = ScenarioSpec.model_validate_json(row["scenario"])
        script = DialogueScript.model_validate_json(row["script"])
        utterances: list[Utterance] = pickle.loads(row["utterances"])
        timing = TimingModel(self.timing_settings, random.Random(scenario.seed),
                             [s.id for s in scenario.speakers])
        laps.lap("unpack")
        timeline = arrange(script, utterances, timing)
        laps.lap("arrange")
        speaker_order = [s.id for s in scenario.speakers]
        sample_rate = config["sink"]["sample_rate"]
        rendered = render(timeline, utterances, speaker_order, sample_rate)
        rendered, acoustics = augment_rendered(rendered, speaker_order, config.get("augment"),
                                               scenario.seed)
        laps.lap("render")
        subtype = config["sink"]["flac_subtype"]
        segments = asr_segments(scenario.id, scenario.language, timeline)
        duplex = (
            duplex_labels(timeline, scenario.assistant, config["labels"]["frame_s"])
            if scenario.assistant else None
        )
        laps.lap("label")
        spans = [(int(round(s.start_s * sample_rate)), int(round(s.end_s * sample_rate)))
                 for s in segments]
        mix_flac = flac_bytes(rendered.mix, sample_rate, subtype)
        # one mono file per speaker: `datasets` decodes each as its own array
        channel_flacs = [flac_bytes(channel, sample_rate, subtype)
                         for channel in rendered.channels]
        segment_flacs = [flac_bytes(rendered.mix[begin:end], sample_rate, subtype)
                         for begin, end in spans]
        laps.lap("encode")
        speakers = [spec.model_dump(mode="json") for spec in scenario.speakers]
        voices = {spec.id: voice_id(spec.voice) for spec in scenario.speakers}
        asr_scalars, asr_gate = asr_summary(row.get("asr"))
        asr_by_turn = asr_columns(row.get("asr"))
        dialogue = {  # JSON form; the sink types the nested columns (pipeline/features.py)
            "id": scenario.id,
            "language": scenario.language,
            "domain": scenario.domain,
            "audio": {"bytes": mix_flac, "path": f"{scenario.id}.flac"},
            "channels": [{"bytes": flac, "path": f"{scenario.id}.{spec.id}.flac"}
                         for spec, flac in zip(scenario.speakers, channel_flacs, strict=True)],
            "duration_s": round(rendered.duration_s, 4),
            "num_speakers": len(speaker_order),
            "speakers": speakers,
            "scenario": json.loads(row["scenario"]),
            "script": json.loads(row["script"]),
            "timeline": timeline.model_dump(mode="json"),
            "duplex": duplex.model_dump(mode="json") if duplex else None,
            "generator": scenario.generator,
            "tts": dialogue_backend(scenario, config["tts"]["name"]),
            "provenance": json.dumps({
                "pipeline_version": __version__,
                "run_seed": config["seed"],
                "scenario_seed": scenario.seed,
                "config_hash": config_hash(config),
                "augment": acoustics,
                "writer": json.loads(row.get("writer") or "null"),
                "voices": voice_provenance(scenario),
                "split": row.get("split"),
                **({"asr": asr_gate} if asr_gate else {}),
            }),
            **asr_scalars,
        }
        segment_rows = []
        for segment, (begin, end), flac in zip(segments, spans, segment_flacs, strict=True):
            segment_rows.append({
                "id": segment.id,
                "dialogue_id": segment.dialogue_id,
                "speaker": voices[segment.speaker],
                "audio": {"bytes": flac, "path": f"{segment.id}.flac"},
                "text": segment.text,
                "start_s": segment.start_s,
                "end_s": segment.end_s,
                "duration_s": round((end - begin) / sample_rate, 4),
                "language": segment.language,
                "voice_id": voices[segment.speaker],
                "speaker_label": segment.speaker,
                **asr_by_turn.get(segment.turn, {"asr_text": None, "asr_error": None}),
            })
        out = {
            **row,
            "utterances": None,
            "dialogue": pickle.dumps(dialogue, protocol=5),
            "segments": pickle.dumps(segment_rows, protocol=5),
            "audio_s": rendered.duration_s,
        }
        laps.lap("pack")
        add_stage_seconds(out, laps.seconds)
        return out
