"""`python -m pipeline.bench --only piper`: the Piper backend's overhead and timing accuracy.

`piper_throughput_ratio`: dialogue audio seconds per wall second of a `generate tts=piper
languages=[en]` run (one speak worker, Ray already up, as `tts_throughput_ratio` for eSpeak)
over raw Piper's audio seconds per wall second on the same turns, with the same voices and
prosody, in one Ray worker process (one CPU, one onnxruntime intra-op thread: the speak
worker's setting and priority, since Ray starts its workers at a higher nice value than the
driver): `PiperVoice.synthesize` on the plain model, no alignments, no seeded noise.
Synthesis dominates both; what is left is what the pipeline adds (word alignment, arrange,
render, FLAC, Parquet, Ray's start of its worker processes). The run has
`Sizes.piper_dialogues` (32: about 30 minutes of speech, four shards), so start-up counts as
it does for a user's run of an hour or more would count it less; `_steady` leaves out
everything before the first shard is written.

`piper_raw_audio_s_per_cpu_s` is raw Piper's audio per CPU second of its process (its speed
on one core, less disturbed than wall time when the machine is shared).

`piper_word_timing_error_ms`: our word boundaries (each token phonemized alone) against the
boundaries read from Piper's own alignments when it phonemizes the whole sentence, on
SENTENCES with noise scales 0 (so both runs are deterministic and differ only in
phonemization). Times are relative to the first word's start; the error is the absolute
difference of every word start and end, mean and max. Sentences where eSpeak's own word
split differs from the script's are counted (`..._word_count_mismatch`): Piper's alignment
alone cannot time them per script word, which is why we phonemize word by word.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

SENTENCES = (
    "I think we should leave a little earlier tomorrow.",
    "Could you send me the file before lunch?",
    "Well, on the other hand, the train is usually on time.",
    "My sister moved to a small town near the coast.",
    "That sounds great, let me check my calendar.",
    "The meeting starts at nine in the big room upstairs.",
    "Do you know whether the shop is open on Sundays?",
    "I have never seen so many people at the station.",
    "We could try the new place around the corner.",
    "Honestly, I forgot to buy the milk again.",
    "The weather was terrible, so we stayed inside all day.",
    "Can you tell me how long the drive takes?",
    "He said the results would be ready by Friday.",
    "It is cheaper if you book the tickets online.",
    "Let me know when you get home tonight.",
    "The children were playing in the garden after school.",
    "I would rather walk, it is only ten minutes.",
    "She asked whether the report was finished.",
    "Our flight was delayed by almost two hours.",
    "Thanks for your help, I really appreciate it.",
)
SPACE = " "
PIPELINE_OVERRIDES = ("tts=piper", "languages=[en]", "tts.allow_shared_voice=true",
                      "splits={train:1.0,validation:0,test:0}", "ray.speak_workers=1")
"""The bench's `generate` run: one split, since the packaged joe voice is the only English
voice and every split needs a voice of its own."""


def piper_word_bounds(alignments, sample_rate: int) -> list[tuple[float, float]]:
    """Word spans from Piper's own phoneme alignments (one sentence), by the rule the backend
    uses: a word is its speech phonemes; a word space with no pause is split between the two
    words it joins."""
    from pipeline.tts.piper_words import PAUSES

    words: list[list[float]] = []
    clock = 0
    current: list[float] | None = None
    space = (-1, -1)
    for item in alignments:
        start, end = clock, clock + item.num_samples
        clock = end
        if item.phoneme in ("^", "$"):
            continue
        if item.phoneme == SPACE:
            if current is not None:
                words.append(current)
                current = None
                space = (start, end)
            continue
        if item.phoneme in PAUSES:
            continue
        if current is None:
            if words and words[-1][1] == space[0] and start == space[1]:  # no pause between
                words[-1][1] = start = (space[0] + space[1]) / 2
            current = [start, end]
        else:
            current[1] = end
    if current is not None:
        words.append(current)
    return [(a / sample_rate, b / sample_rate) for a, b in words]


def word_timing_error() -> dict:
    from pipeline.tts.piper import PiperBackend

    backend = PiperBackend(voices=("en_US-joe-medium",))
    voice = dict(backend.voices("en")[0], length_scale=1.0, noise_scale=0.0, noise_w_scale=0.0)
    from piper import PiperVoice, SynthesisConfig

    plain = PiperVoice.load(voice["model_path"], voice["config_path"], include_alignments=True)
    quiet = SynthesisConfig(length_scale=1.0, noise_scale=0.0, noise_w_scale=0.0)
    errors, mismatched = [], 0
    for text in SENTENCES:
        ours = backend.synthesize(text, voice, 0, "a").words
        chunks = list(plain.synthesize(text, quiet, include_alignments=True))
        theirs = piper_word_bounds(chunks[0].phoneme_alignments, chunks[0].sample_rate)
        if len(chunks) != 1 or len(theirs) != len(ours):
            mismatched += 1
            continue
        ours0, theirs0 = ours[0][1], theirs[0][0]
        for (_, start, end), (their_start, their_end) in zip(ours, theirs, strict=True):
            errors += [abs((start - ours0) - (their_start - theirs0)),
                       abs((end - ours0) - (their_end - theirs0))]
    return {
        "piper_word_timing_error_ms_mean": round(1000 * sum(errors) / max(len(errors), 1), 2),
        "piper_word_timing_error_ms_max": round(1000 * max(errors, default=0.0), 2),
        "piper_word_timing_sentences": len(SENTENCES) - mismatched,
        "piper_word_timing_word_count_mismatch": mismatched,
    }


def raw_piper_throughput(output_dir: Path) -> dict:
    """Plain Piper on every Piper-voiced turn of the run's dialogues, one process, one
    intra-op thread."""
    import json

    import onnxruntime
    from piper import PiperVoice, SynthesisConfig
    from piper.config import PiperConfig

    from pipeline.dataset import iter_dialogues
    from pipeline.schema import DialogueScript, ScenarioSpec

    jobs, voices = [], {}
    for row in iter_dialogues(output_dir, ["scenario", "script"]):
        scenario = ScenarioSpec.model_validate(row["scenario"])
        script = DialogueScript.model_validate(row["script"])
        voices_of = [(turn.text, scenario.speaker(turn.speaker).voice) for turn in script.turns]
        jobs += [(text, voice) for text, voice in voices_of if voice.get("backend") == "piper"]
    for _, voice in jobs:
        if voice["model_path"] not in voices:
            options = onnxruntime.SessionOptions()
            options.intra_op_num_threads, options.inter_op_num_threads = 1, 1
            session = onnxruntime.InferenceSession(voice["model_path"], sess_options=options,
                                                   providers=["CPUExecutionProvider"])
            config = PiperConfig.from_dict(json.loads(Path(voice["config_path"]).read_text()))
            voices[voice["model_path"]] = PiperVoice(session=session, config=config)

    def speak(text: str, voice: dict) -> float:
        settings = SynthesisConfig(
            speaker_id=voice.get("speaker_id"), noise_scale=voice["noise_scale"],
            noise_w_scale=voice["noise_w_scale"],
            length_scale=voice["length_scale"] * voice.get("pitch_factor", 1.0))
        return sum(len(chunk.audio_float_array) / chunk.sample_rate
                   for chunk in voices[voice["model_path"]].synthesize(text, settings))

    speak(*jobs[0])  # warm-up
    started, cpu_started = time.perf_counter(), time.process_time()
    audio_s = sum(speak(text, voice) for text, voice in jobs)
    return {"audio_s": audio_s, "wall_s": time.perf_counter() - started,
            "cpu_s": time.process_time() - cpu_started, "turns": len(jobs)}


def raw_piper_in_ray_worker(output_dir: Path) -> dict:
    """`raw_piper_throughput` inside one Ray task (num_cpus=1) of a private local Ray: the
    process environment and priority of a speak worker, so the two sides differ only in
    what the pipeline does around synthesis."""
    import ray

    from pipeline import paths

    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False,
             runtime_env={"env_vars": {"PYTHONPATH": str(paths.REPO_ROOT)}})
    try:
        return ray.get(ray.remote(num_cpus=1)(raw_piper_throughput).remote(output_dir))
    finally:
        ray.shutdown()


def piper_figures(sizes) -> dict:
    from pipeline.bench_run import run_pipeline

    dialogues = sizes.piper_dialogues
    overrides = PIPELINE_OVERRIDES
    with tempfile.TemporaryDirectory(prefix="duplexsynth-bench-piper-") as tmp:
        run = run_pipeline(Path(tmp, "piper"), dialogues, overrides)
        raw = raw_piper_in_ray_worker(run.output_dir)
    raw_rate = raw["audio_s"] / raw["wall_s"]
    figures = {
        "piper_throughput_ratio": round(run.audio_s / run.generate_s / raw_rate, 3),
        "piper_throughput_ratio_steady": round(
            run.audio_s * (1 - min(run.figures["shard_dialogues"], dialogues) / dialogues)
            / run.steady_s / raw_rate, 3) if dialogues > run.figures["shard_dialogues"] else None,
        "piper_raw_audio_s_per_s": round(raw_rate, 2),
        # CPU seconds of this process: the per-core speed, less sensitive to a busy machine
        "piper_raw_audio_s_per_cpu_s": round(raw["audio_s"] / raw["cpu_s"], 2),
        "piper_raw_turn_audio_s": round(raw["audio_s"], 1),
        "piper_pipeline_audio_s_per_s": round(run.audio_s / run.generate_s, 2),
        "piper_pipeline_dialogues": run.figures["dialogues"],
        "piper_pipeline_audio_s": round(run.audio_s, 1),
        "piper_pipeline_generate_s": round(run.generate_s, 2),
        "piper_stage_s_speak": run.figures["profile"]["stage_s"].get("speak"),
        "piper_first_row_s": run.figures["profile"]["first_row_s"],
    }
    figures.update(word_timing_error())
    return figures
