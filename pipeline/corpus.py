"""Real-utterance mode (`tts=corpus`): conversations assembled from a single-speaker corpus.

Why: the Hungarian study (SASC) found that conversations assembled from real read or
spontaneous utterances, placed with a human timing model, add something that synthetic text
and TTS alone do not. No LLM and no TTS run in this mode; the spine stays the same:

- plan: `CorpusBackend.pick_voices` pairs distinct corpus speakers and gives each a window of
  its utterances, consecutive in corpus order (order kept), with their ids and texts, stored
  in the scenario's `SpeakerSpec.voice`;
- write: `CorpusWriter` (chosen automatically when `tts.name == "corpus"`) lays the turns out
  round-robin, each turn the next utterance of its speaker, and marks overlapped transfers
  and barge-ins from the scenario's quotas; no backchannels (the corpus has none);
- speak: `CorpusBackend.synthesize` returns the utterance's real audio, word times from the
  shared energy aligner, trimmed to the speech;
- arrange / render / label: unchanged, so the timing model places the real utterances.

A corpus is a NeMo manifest (JSONL: `audio_filepath`, `duration`, `text`, `speaker`,
optional `offset`; relative paths resolve against the manifest's folder) or a Parquet file
with `text`, `speaker` and `audio` (a `datasets` Audio struct {bytes, path}) or
`audio_filepath`. Utterance ids are row positions in the file, so the driver and every
worker index the same corpus identically.
"""

from __future__ import annotations

import io
import json
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from pipeline.schema import DialogueScript, ScenarioSpec, Turn, Utterance
from pipeline.tts.align import energy_align, trim_to_words, voiced_frames
from pipeline.tts.base import SynthesisError

SPOKEN_CACHE_BYTES = 512 * 2**20
"""Aligned recordings a speak worker keeps (bytes of float32 samples): a corpus's utterances
recur in many dialogues, and reading, aligning and trimming one again gives the same result
(profiled: the speak stage's whole cost in corpus mode)."""
MIN_WORDS_TO_INTERRUPT = 3  # the barged-in turn must have words left to cut (timeline.py)


@dataclass(frozen=True)
class CorpusUtterance:
    index: int
    speaker: str
    text: str
    audio_path: str | None  # absolute; None when the audio bytes are in the Parquet file
    offset_s: float = 0.0
    duration_s: float | None = None


def _normal_text(text: str) -> str:
    return " ".join(str(text).split())


def load_corpus(path: str | Path) -> list[CorpusUtterance]:
    """Index a NeMo manifest (.json / .jsonl) or a Parquet file; raises ValueError naming the
    file, line and missing field, so a bad corpus fails before any work."""
    source = Path(path).expanduser().resolve()
    if not source.is_file():
        raise ValueError(f"manifest={str(path)!r} does not exist; point tts.manifest at a NeMo "
                         "JSONL manifest or a Parquet file with text, speaker and audio")
    if source.suffix == ".parquet":
        return _load_parquet(source)
    utterances = []
    with source.open(encoding="utf-8") as lines:
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            try:
                entry = json.loads(line)
            except json.JSONDecodeError as error:
                raise ValueError(f"{source}:{number}: not JSON ({error.msg})") from None
            for key in ("audio_filepath", "text", "speaker"):
                if entry.get(key) in (None, ""):
                    raise ValueError(f"{source}:{number}: field {key!r} is missing; corpus mode "
                                     "needs audio_filepath, text and speaker on every line")
            audio = Path(entry["audio_filepath"])
            audio = audio if audio.is_absolute() else source.parent / audio
            utterances.append(CorpusUtterance(
                index=len(utterances), speaker=str(entry["speaker"]),
                text=_normal_text(entry["text"]), audio_path=str(audio),
                offset_s=float(entry.get("offset") or 0.0),
                duration_s=None if entry.get("duration") is None else float(entry["duration"])))
    return utterances


def _load_parquet(source: Path) -> list[CorpusUtterance]:
    import pyarrow.parquet as pq

    names = set(pq.read_schema(source).names)
    missing = {"text", "speaker"} - names
    if missing or not names & {"audio", "audio_filepath"}:
        raise ValueError(f"{source}: columns {sorted(names)}; corpus mode needs text, speaker "
                         "and audio (struct bytes/path) or audio_filepath")
    columns = ["text", "speaker"] + (["audio_filepath"] if "audio" not in names else [])
    table = pq.read_table(source, columns=columns).to_pylist()
    return [CorpusUtterance(
        index=i, speaker=str(row["speaker"]), text=_normal_text(row["text"]),
        audio_path=(str((source.parent / row["audio_filepath"]).resolve())
                    if "audio_filepath" in row else None))
        for i, row in enumerate(table)]


class CorpusBackend:
    """`tts=corpus`: real recordings instead of synthesis (see the module docstring).

    Options: `manifest` (path), `language` (the corpus's BCP-47 language), `window` (how many
    consecutive utterances of each speaker a dialogue may use), `threshold_db` (aligner's
    silence threshold relative to the utterance peak), `lead_s` / `tail_s` (silence kept
    around the speech after trimming, seconds).
    """

    name = "corpus"

    def __init__(self, manifest: str, language: str = "hu", window: int = 16,
                 threshold_db: float = -45.0, lead_s: float = 0.02, tail_s: float = 0.05) -> None:
        if not manifest:
            raise ValueError("manifest is not set; use tts.manifest=/path/to/manifest.jsonl")
        if window < 2:
            raise ValueError(f"window={window}: must be >= 2 utterances")
        self.manifest = str(Path(manifest).expanduser().resolve())
        self.language = language
        self.window = int(window)
        self.threshold_db = float(threshold_db)
        self.lead_s, self.tail_s = float(lead_s), float(tail_s)
        self.utterances = load_corpus(self.manifest)
        self.by_speaker: dict[str, list[CorpusUtterance]] = {}
        for utterance in self.utterances:
            if utterance.text:
                self.by_speaker.setdefault(utterance.speaker, []).append(utterance)
        usable = [s for s, items in self.by_speaker.items() if len(items) >= 2]
        if len(usable) < 2:
            raise ValueError(f"manifest {self.manifest} has {len(usable)} speaker(s) with >= 2 "
                             "utterances; corpus mode pairs at least 2 speakers")
        self.speakers = sorted(usable)
        self._audio_table: Any = None
        self._spoken: dict[tuple, tuple[np.ndarray, int, list]] = {}
        self._spoken_bytes = 0

    def setup(self) -> None:
        if self.manifest.endswith(".parquet") and self._audio_table is None:
            import pyarrow.parquet as pq

            if "audio" in pq.read_schema(self.manifest).names:
                self._audio_table = pq.read_table(self.manifest, columns=["audio"],
                                                  memory_map=True).column("audio")

    def _check_language(self, language: str) -> None:
        if language.split("-")[0].lower() != self.language.split("-")[0].lower():
            raise ValueError(f"the corpus is {self.language!r}, not {language!r}; set "
                             f"languages=[{self.language}] (or tts.language if it is wrong)")

    def voices(self, language: str) -> list[dict]:
        """One voice per corpus speaker with at least two utterances."""
        self._check_language(language)
        return [{"backend": self.name, "name": speaker} for speaker in self.speakers]

    def pick_voices(self, language: str, count: int, rng: random.Random,
                    pool: list[dict] | None = None) -> list[dict]:
        """`count` distinct corpus speakers (from `pool`, a split's share of `voices()`, when
        given), each with up to `window` consecutive utterances (corpus order) from a random
        start; a text the speaker already has in the window is skipped so that a turn's text
        names exactly one recording."""
        self._check_language(language)
        speakers = self.speakers if pool is None else [v["name"] for v in pool]
        if not 0 <= count <= len(speakers):
            raise ValueError(f"pick_voices count={count}: the corpus has "
                             f"{len(speakers)} usable speakers")
        picked = []
        for speaker in rng.sample(speakers, count):
            items = self.by_speaker[speaker]
            start = rng.randrange(max(1, len(items) - self.window + 1))
            chosen: list[list] = []
            seen: set[str] = set()
            for item in items[start:]:
                if item.text not in seen:
                    seen.add(item.text)
                    chosen.append([item.index, item.text])
                if len(chosen) == self.window:
                    break
            picked.append({"backend": self.name, "name": speaker, "utterances": chosen})
        return picked

    def load_audio(self, utterance: CorpusUtterance) -> tuple[np.ndarray, int]:
        """Mono float32 samples and their rate; honours NeMo `offset` / `duration`."""
        import soundfile as sf

        if utterance.audio_path is None:
            self.setup()
            cell = self._audio_table[utterance.index].as_py()
            if cell.get("bytes"):
                data, rate = sf.read(io.BytesIO(cell["bytes"]), dtype="float32",
                                     always_2d=True)
                return data.mean(axis=1), rate
            path = Path(cell["path"])
            utterance = CorpusUtterance(utterance.index, utterance.speaker, utterance.text,
                                        str(path if path.is_absolute()
                                            else Path(self.manifest).parent / path))
        assert utterance.audio_path is not None
        with sf.SoundFile(utterance.audio_path) as audio:
            rate = audio.samplerate
            audio.seek(int(round(utterance.offset_s * rate)))
            frames = -1 if utterance.duration_s is None else int(round(utterance.duration_s
                                                                        * rate))
            data = audio.read(frames, dtype="float32", always_2d=True)
        return data.mean(axis=1), rate

    def synthesize(self, text: str, voice: dict, turn: int, speaker: str) -> Utterance:
        where = f"turn {turn} (speaker {speaker!r}, corpus speaker {voice.get('name')!r})"
        wanted = _normal_text(text)
        match = next((index for index, item_text in voice.get("utterances", ())
                      if item_text == wanted), None)
        if match is None:
            raise SynthesisError(f"{where}: no utterance of this speaker has the text {text!r}")
        utterance = self.utterances[int(match)]
        tokens = text.split()
        key = (utterance.index, tuple(tokens))
        cached = self._spoken.get(key)
        if cached is None:
            cached = self._speak(utterance, tokens, where)
            if self._spoken_bytes + cached[0].nbytes <= SPOKEN_CACHE_BYTES:
                cached[0].setflags(write=False)  # shared by every dialogue that reuses it
                self._spoken[key] = cached
                self._spoken_bytes += cached[0].nbytes
        samples, rate, words = cached
        return Utterance(turn=turn, speaker=speaker, sample_rate=rate, samples=samples,
                         words=list(words))

    def _speak(self, utterance: CorpusUtterance, tokens: list[str],
               where: str) -> tuple[np.ndarray, int, list]:
        """Read, align and trim one recording: a pure function of the utterance and the
        aligner's options, so `synthesize` keeps the result for the next dialogue."""
        try:
            samples, rate = self.load_audio(utterance)
        except (OSError, RuntimeError) as error:
            raise SynthesisError(f"{where}: cannot read {utterance.audio_path}: {error}") from None
        if samples.size == 0 or not voiced_frames(samples, rate, threshold_db=self.threshold_db
                                                  ).any():
            raise SynthesisError(f"{where}: utterance {utterance.index} is silent")
        words = energy_align(samples, rate, tokens, threshold_db=self.threshold_db)
        samples, words = trim_to_words(samples, rate, words, self.lead_s, self.tail_s)
        return samples.astype(np.float32), rate, words


class CorpusWriter:
    """The writer of corpus mode: turns are the picked utterances, round-robin by speaker.

    Same scenario in, same script out. Overlapped transfers and barge-ins follow the
    scenario's quotas on random speaker changes (a barge-in only after a turn of at least
    three words, never two in a row); mid-turn pauses and backchannels are left out because
    a real recording has its own pauses and the corpus holds no backchannels.
    """

    name = "corpus"

    def write(self, scenario: ScenarioSpec) -> DialogueScript:
        rng = random.Random(f"corpus-writer:{scenario.seed}")
        queues = [list(s.voice.get("utterances", ())) for s in scenario.speakers]
        if any(not queue for queue in queues):
            raise ValueError(f"scenario {scenario.id}: a speaker has no corpus utterances; "
                             "plan it with tts=corpus")
        count = min(scenario.target_turns, len(queues) * min(len(q) for q in queues))
        ids = [s.id for s in scenario.speakers]
        turns = []
        for k in range(count):
            slot = k % len(ids)
            _, text = queues[slot][k // len(ids)]
            addressee = ids[(slot + 1) % len(ids)] if len(ids) == 2 else "all"
            turns.append(Turn(speaker=ids[slot], text=text, addressee=addressee))
        transfers = list(range(1, len(turns)))
        rng.shuffle(transfers)
        interrupts = scenario.phenomena.interruptions
        overlaps = scenario.phenomena.overlaps
        for k in transfers:
            before = turns[k - 1]
            if (interrupts and len(before.words) >= MIN_WORDS_TO_INTERRUPT
                    and not before.interrupts and not (k + 1 < len(turns)
                                                       and turns[k + 1].interrupts)):
                turns[k] = turns[k].model_copy(update={"interrupts": True})
                interrupts -= 1
            elif overlaps:
                turns[k] = turns[k].model_copy(update={"overlap": True})
                overlaps -= 1
        return DialogueScript(scenario_id=scenario.id, language=scenario.language, turns=turns)
