"""`python -m pipeline.bench --only peer`: Lhotse's meeting simulator against `tts=corpus`.

Both sides get the same single-speaker corpus, recorded here with eSpeak NG (8 voices x 30
utterances, 16 kHz FLAC, a NeMo manifest), and both are timed end to end:

- Lhotse (`lhotse.workflows.meeting_simulation.ConversationalMeetingSimulator`, its default
  pause/overlap distributions, two speakers a meeting): `simulate` + rendering every
  MixedCut (`load_audio`, which mixes the tracks) + writing one FLAC mix per meeting, in
  this process, one core. Its number of meetings is chosen to give about the audio our run
  wrote (a small untimed pilot gives its mean meeting length).
- ours: `generate tts=corpus` with the default outputs (mix, channels, segments, labels) in a
  child process (pipeline.bench_probe), Ray's start-up included.

`lhotse_ratio` is our output audio seconds per wall second over Lhotse's (target >= 1.0).
Without the `lhotse` extra the group says so in one line and the bench exits non-zero.
"""

from __future__ import annotations

import importlib.util
import json
import random
import tempfile
import time
from pathlib import Path

import numpy as np

CORPUS_VOICES = 8
CORPUS_UTTERANCES = 30
CORPUS_RATE = 16000
PEER_DIALOGUES = 128
"""Our dialogues in the comparison: about 2 h of output audio with the default plan, so
start-up counts but does not dominate (the issue's size)."""
PILOT_MEETINGS = 16

_VOCABULARY = ("morning evening river window garden station coffee letter ticket doctor market "
          "weather holiday kitchen picture question answer number minute yesterday tomorrow "
          "bridge village office teacher student music dinner table city country travel train "
          "money paper story family friend meeting project problem reason moment water light "
          "street corner school summer winter season colour forest mountain island harbour "
          "careful quickly slowly really always never usually maybe certainly probably "
          "think know want need like bring carry follow finish open close begin remember "
          "explain answer visit call wait change move build write read listen speak")


class PeerMissing(SystemExit):
    """The peer group cannot run here; the message is the one line to print."""


def require_lhotse() -> None:
    if importlib.util.find_spec("lhotse") is None:
        raise PeerMissing("bench peer: lhotse is not installed; install a CPU torch wheel, "
                          "then pip install -e '.[lhotse]' (see the audio extra)")


def _sentence(rng: random.Random) -> str:
    words = rng.sample(sorted(set(_VOCABULARY.split())), rng.randint(6, 14))
    return " ".join(words).capitalize() + "."


def build_corpus(folder: Path, voices: int = CORPUS_VOICES,
                 utterances: int = CORPUS_UTTERANCES, seed: int = 7) -> Path:
    """Record a single-speaker corpus with eSpeak NG: `voices` English voices, `utterances`
    seeded random sentences each, 16 kHz mono FLAC under `folder/audio`, and a NeMo manifest
    (interleaved across speakers, as a real one). Returns the manifest's path."""
    import soundfile as sf
    import soxr

    from pipeline.tts.espeak import EspeakBackend

    backend = EspeakBackend()
    backend.setup()
    registry = backend.voices("en")
    if len(registry) < voices:
        raise ValueError(f"bench peer: eSpeak has {len(registry)} English voices, "
                         f"{voices} asked")
    rng = random.Random(seed)
    chosen = rng.sample(registry, voices)
    (folder / "audio").mkdir(parents=True, exist_ok=True)
    lines = []
    for k in range(utterances):
        for v, voice in enumerate(chosen):
            text = _sentence(rng)
            spoken = backend.synthesize(text, voice, k, f"spk{v}")
            audio = soxr.resample(spoken.samples, spoken.sample_rate, CORPUS_RATE)
            pad = np.zeros(int(0.1 * CORPUS_RATE), dtype=np.float32)
            audio = np.concatenate([pad, audio.astype(np.float32), pad])
            name = f"audio/spk{v}_{k:03d}.flac"
            sf.write(folder / name, np.clip(audio, -1.0, 1.0), CORPUS_RATE, format="FLAC",
                     subtype="PCM_16")
            lines.append({"audio_filepath": name, "duration": round(len(audio) / CORPUS_RATE, 4),
                          "text": text, "speaker": f"spk{v}"})
    manifest = folder / "manifest.jsonl"
    manifest.write_text("".join(json.dumps(line) + "\n" for line in lines), encoding="utf-8")
    return manifest


def lhotse_cuts(manifest: Path):  # noqa: ANN201 - lhotse.CutSet
    """The corpus as Lhotse MonoCuts, one supervision each (speaker, text)."""
    from lhotse import CutSet, MonoCut, Recording, SupervisionSegment

    cuts = []
    for i, line in enumerate(manifest.read_text(encoding="utf-8").splitlines()):
        entry = json.loads(line)
        recording = Recording.from_file(manifest.parent / entry["audio_filepath"],
                                        recording_id=f"utt{i:05d}")
        supervision = SupervisionSegment(id=recording.id, recording_id=recording.id, start=0.0,
                                         duration=recording.duration,
                                         speaker=entry["speaker"], text=entry["text"])
        cuts.append(MonoCut(id=recording.id, start=0.0, duration=recording.duration, channel=0,
                            recording=recording, supervisions=[supervision]))
    return CutSet.from_cuts(cuts)


def lhotse_run(manifest: Path, out: Path, meetings: int, seed: int = 0) -> dict:
    """Lhotse's simulate + render + FLAC write of `meetings` two-speaker meetings; seconds
    and output audio seconds."""
    import soundfile as sf
    from lhotse.workflows.meeting_simulation import ConversationalMeetingSimulator

    cuts = lhotse_cuts(manifest)
    out.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    simulator = ConversationalMeetingSimulator()
    simulator.fit()  # no meetings given: its default distributions
    mixed = simulator.simulate(cuts, num_meetings=meetings, num_speakers_per_meeting=2,
                               seed=seed, num_jobs=1)
    audio_s = 0.0
    for cut in mixed:
        audio = cut.load_audio()  # (channels, samples): the tracks mixed
        sf.write(out / f"{cut.id}.flac", np.clip(audio.T, -1.0, 1.0), cut.sampling_rate,
                 format="FLAC", subtype="PCM_16")
        audio_s += audio.shape[-1] / cut.sampling_rate
    return {"wall_s": time.perf_counter() - started, "audio_s": audio_s, "meetings": len(mixed)}


def peer_figures(dialogues: int = PEER_DIALOGUES, voices: int = CORPUS_VOICES,
                 utterances: int = CORPUS_UTTERANCES) -> dict:
    """`lhotse_ratio` and both sides' rates on one corpus (module docstring)."""
    require_lhotse()
    from pipeline.bench_run import run_pipeline

    with tempfile.TemporaryDirectory(prefix="duplexsynth-peer-") as tmp:
        manifest = build_corpus(Path(tmp, "corpus"), voices, utterances)
        ours = run_pipeline(Path(tmp, "ours"), dialogues,
                            ("tts=corpus", f"tts.manifest={manifest}", "languages=[en]"))
        pilot = lhotse_run(manifest, Path(tmp, "pilot"), PILOT_MEETINGS, seed=1)
        mean_s = pilot["audio_s"] / max(pilot["meetings"], 1)
        meetings = max(1, round(ours.audio_s / max(mean_s, 1e-9)))
        peer = lhotse_run(manifest, Path(tmp, "lhotse"), meetings)
    ours_rate = ours.audio_s / ours.with_ray_start_s
    peer_rate = peer["audio_s"] / peer["wall_s"]
    return {
        "lhotse_ratio": round(ours_rate / peer_rate, 3),
        "lhotse_ratio_without_ray_start": round(ours.audio_s / ours.generate_s / peer_rate, 3),
        "peer_lhotse_audio_s_per_s": round(peer_rate, 1),
        "peer_ours_audio_s_per_s": round(ours_rate, 1),
        "peer_lhotse_audio_s": round(peer["audio_s"], 1),
        "peer_ours_audio_s": round(ours.audio_s, 1),
        "peer_lhotse_meetings": peer["meetings"],
        "peer_ours_dialogues": ours.figures["dialogues"],
        "peer_ours_first_row_s": ours.figures["profile"].get("first_row_s"),
        "peer_ours_ray_init_s": round(ours.figures["ray_init_s"], 2),
        "peer_corpus": f"{voices} voices x {utterances} utterances",
    }
