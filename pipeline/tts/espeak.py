"""eSpeak NG backend: libespeak-ng from `espeakng-loader`, driven through ctypes.

Why a process-wide engine: libespeak-ng keeps all of its state (voice, parameters, the
synthesis callback, internal buffers) in C globals, so a process can hold exactly one
engine however many Python objects wrap it. `engine()` creates it lazily on first use and
every synthesis holds its lock; an `EspeakBackend` instance is only configuration. Ray runs
one backend per worker process, which is also one engine per process.

Not bit-reproducible across calls in one process: libespeak-ng keeps its pitch-flutter
phase (and some other wavegen state) in function-static variables that no API resets, so
the same text and voice come out ~1 % longer or shorter depending on what was synthesized
before (words and timings agree to a few tens of ms). The same call sequence in a fresh
process gives identical audio.

Word timings come from the engine's WORD events (start of each word's slot, in ms) and are
tightened to the spoken audio by `pipeline.tts.align.refine_word_ends`.
"""

from __future__ import annotations

import random
import re
from itertools import pairwise

import numpy as np

from pipeline.schema import Utterance
from pipeline.tts.align import refine_word_ends, trim_to_words, voiced_frames
from pipeline.tts.base import SynthesisError
from pipeline.tts.espeak_engine import EVENT_WORD, engine

# Language voices (files under espeak-ng-data/lang/) per BCP-47 primary language.
ACCENTS: dict[str, tuple[str, ...]] = {
    "en": (
        "en-us",
        "en",  # British English
        "en-gb-scotland",
        "en-gb-x-rp",
        "en-gb-x-gbclan",
        "en-gb-x-gbcwmd",
        "en-029",
        "en-us-nyc",
    ),
    "hu": ("hu",),
}

# Variants (espeak-ng-data/voices/!v) that sound like a plain human speaker and declare a
# gender. Left out: klatt* and robot/effect voices (no gender, or not human-sounding) and
# whisper* (unvoiced, breaks the energy-based timings).
VARIANTS: dict[str, tuple[str, ...]] = {
    "male": (
        "m1",
        "m2",
        "m3",
        "m4",
        "m5",
        "m6",
        "m7",
        "m8",
        "Andy",
        "Lee",
        "Denis",
        "antonio",
        "travis",
        "victor",
        "michel",
    ),
    "female": (
        "f1",
        "f2",
        "f3",
        "f4",
        "f5",
        "Annie",
        "Andrea",
        "belinda",
        "linda",
        "steph",
        "anika",
        "aunty",
        "grandma",
    ),
}


AGE_BANDS = ("young", "adult", "senior")
_VARIANT_AGES = {"grandma": ("senior",), "aunty": ("adult", "senior")}

# Tokens eSpeak reads wrongly, respelled for synthesis only (the Utterance keeps the
# script's tokens). Keys are the lower-cased token without surrounding punctuation; a value
# in [[...]] is eSpeak phoneme input. Found in eSpeak's phoneme output: it spells
# "mhm" letter by letter (en "em aitch em"), reads hu "mm" as "milliméter", and hu "..."
# as "pont pont pont".
_HUM = "[[m'hm]]"
RESPELL: dict[str, dict[str, str]] = {
    "en": {
        **dict.fromkeys(("mhm", "mhmm", "m-hm", "mm-hm", "mm-hmm", "mmhm", "mmhmm"), _HUM),
        **dict.fromkeys(("hm", "hmm", "hmmm"), "hmm"),
        **dict.fromkeys(("mm", "mmm"), "[[m'm]]"),
    },
    "hu": {
        **dict.fromkeys(("mhm", "mhmm", "m-hm", "mm-hm", "mm-hmm", "mmhm", "mmhmm"), _HUM),
        **dict.fromkeys(("hm", "hmm", "hmmm"), "[[h'm]]"),
        **dict.fromkeys(("mm", "mmm"), "[[m'm]]"),
    },
}
_ELLIPSIS = {"hu": ","}  # replaces "..." and "…" inside tokens
_TOKEN_PARTS = re.compile(r"^(\W*)(.*?)(\W*)$", re.DOTALL)


def speech_tokens(tokens: list[str], language: str) -> list[str]:
    """What eSpeak is given for each script token (same count, same order)."""
    respell = RESPELL.get(language, {})
    ellipsis = _ELLIPSIS.get(language)
    spoken = []
    for token in tokens:
        token = token.replace("[[", "[").replace("]]", "]")  # no accidental phoneme input
        lead, core, trail = _TOKEN_PARTS.match(token).groups()
        core = respell.get(core.lower(), core)
        token = lead + core + trail
        if ellipsis is not None:
            token = token.replace("...", ellipsis).replace("\u2026", ellipsis)
        spoken.append(token)
    return spoken


def word_starts(tokens: list[str], events: list[tuple[int, int, int]], end_s: float) -> list[float]:
    """Start of each token's slot (seconds) from WORD events over `" ".join(tokens)`.

    An event belongs to the token containing its character (a space belongs to the next
    token); the first event of a token gives its start, later ones (a number read as
    several words) are ignored. A token gets an event's time only if it is later than the
    previous anchored token's; tokens without one (punctuation, words eSpeak merged) share
    the time between the anchors around them in proportion to their lengths.
    """
    owner: list[int] = []  # character index -> token index
    for k, token in enumerate(tokens):
        owner.extend([k] * len(token))
        owner.append(k + 1)  # the space after token k
    anchors: dict[int, float] = {}
    last_k, last_t = -1, -1.0
    for kind, position, audio_ms in events:
        if kind != EVENT_WORD or not 1 <= position <= len(owner):
            continue
        k, t = owner[position - 1], audio_ms / 1000.0
        if k >= len(tokens) or k <= last_k or t > end_s:
            continue
        if k == 0 or t > last_t:
            anchors[k], last_k, last_t = t, k, t
    anchors.setdefault(0, 0.0)
    starts = [0.0] * len(tokens)
    anchored = sorted(anchors) + [len(tokens)]
    for a, b in pairwise(anchored):
        t_a = anchors[a]
        t_b = anchors[b] if b < len(tokens) else max(end_s, t_a)
        lengths = np.array([len(tokens[k]) for k in range(a, b)], dtype=np.float64)
        offsets = np.concatenate(([0.0], np.cumsum(lengths)[:-1])) / lengths.sum()
        for k, frac in zip(range(a, b), offsets, strict=True):
            starts[k] = t_a + frac * (t_b - t_a)
    return starts


class EspeakBackend:
    """The default TTS backend: fast, offline, en + hu (DESIGN section 6).

    Options (config `tts=espeak`): `rate` in words per minute, `pitch` and `pitch_range`
    on eSpeak's 0-100 scale (50 = the variant's own), each an inclusive [low, high] range
    that the voice registry (`voices`) spreads its voices over; `volume` 0-200
    (100 = normal); `threshold_db`, the silence threshold relative to the peak used to
    tighten word times.
    """

    name = "espeak"

    def __init__(
        self,
        rate: tuple[int, int] = (150, 190),
        pitch: tuple[int, int] = (35, 70),
        pitch_range: tuple[int, int] = (40, 90),
        volume: int = 100,
        threshold_db: float = -50.0,
        lead_s: float = 0.02,
        tail_s: float = 0.05,
    ) -> None:
        for key, (low, high) in (("rate", rate), ("pitch", pitch), ("pitch_range", pitch_range)):
            if low > high:
                raise ValueError(f"tts option {key}={[low, high]}: low must not exceed high")
        self.rate = (int(rate[0]), int(rate[1]))
        self.pitch = (int(pitch[0]), int(pitch[1]))
        self.pitch_range = (int(pitch_range[0]), int(pitch_range[1]))
        self.volume = int(volume)
        self.threshold_db = float(threshold_db)
        self.lead_s = float(lead_s)
        self.tail_s = float(tail_s)

    @property
    def sample_rate(self) -> int:
        return engine().sample_rate

    def setup(self) -> None:
        engine()

    @staticmethod
    def _accents(language: str) -> tuple[str, ...]:
        primary = language.replace("_", "-").split("-")[0].lower()
        if primary not in ACCENTS:
            known = ", ".join(sorted(ACCENTS))
            raise ValueError(
                f"espeak backend has no voices for language {language!r}; supported: {known}"
            )
        return ACCENTS[primary]

    def voices(self, language: str) -> list[dict]:
        """The voice registry of a language: accent x variant x age band, fixed prosody.

        Every entry has a stable `id` (`espeak:<accent>+<variant>:<age band>`): the same id
        always means the same parameters, in every dialogue and run with these options, so
        ASR training can count and balance speakers. Age bands set prosody inside the option
        ranges: young = upper third of pitch and rate, adult = middle, senior = lower third
        (and a narrower pitch range); each voice sits at a fixed point inside its band.
        """
        return [
            self._voice(accent, variant, gender, band)
            for accent in self._accents(language)
            for gender, variants in VARIANTS.items()
            for variant in variants
            for band in AGE_BANDS
            if band in _VARIANT_AGES.get(variant, AGE_BANDS)
        ]

    def _voice(self, accent: str, variant: str, gender: str, band: str) -> dict:
        voice_id = f"{self.name}:{accent}+{variant}:{band}"
        place = random.Random(voice_id)
        third = {"young": 2, "adult": 1, "senior": 0}[band]

        def inside(bounds: tuple[int, int], third_index: int) -> int:
            low, high = bounds
            step = (high - low) / 3
            return int(round(low + step * (third_index + place.random())))

        return {
            "backend": self.name,
            "id": voice_id,
            "name": f"{accent}+{variant}",
            "language": accent.split("-")[0],
            "gender": gender,
            "age_band": band,
            "rate": inside(self.rate, third),
            "pitch": inside(self.pitch, third),
            "range": inside(self.pitch_range, 0 if band == "senior" else 1 + place.randrange(2)),
        }

    def pick_voices(
        self, language: str, count: int, rng: random.Random,
        attributes: list[dict] | None = None, pool: list[dict] | None = None,
    ) -> list[dict]:
        """`count` registry voices with distinct variants (so they sound distinct).

        `attributes` (one dict per speaker, keys `gender` / `age_band`) narrow each pick;
        without them genders alternate from a random start and age bands are drawn. `pool`
        (a split's share of the registry) limits the choice; a drawn gender or age band the
        pool lacks is then relaxed rather than failing.
        """
        registry = self.voices(language) if pool is None else list(pool)
        variants = {v["name"].split("+")[1] for v in registry}
        if not 0 <= count <= len(variants):
            raise ValueError(
                f"pick_voices count={count}: espeak has {len(variants)} distinct variants "
                "per language"
            )
        if attributes is not None and len(attributes) != count:
            raise ValueError(f"pick_voices: {len(attributes)} attribute sets for {count} voices")
        genders = sorted(VARIANTS)
        first = rng.randrange(len(genders))
        picked: list[dict] = []
        used: set[str] = set()
        for slot in range(count):
            wanted = dict(attributes[slot]) if attributes else {
                "gender": genders[(first + slot) % len(genders)],
                "age_band": rng.choice(AGE_BANDS)}
            unused = [v for v in registry if v["name"].split("+")[1] not in used]
            candidates = [v for v in unused if all(v.get(k) == val for k, val in wanted.items())]
            if not candidates and pool is not None and not attributes:
                candidates = ([v for v in unused if v.get("gender") == wanted["gender"]]
                              or unused)
            if not candidates:
                raise ValueError(f"pick_voices: no unused {language!r} voice with {wanted}; "
                                 f"available attributes: gender {genders}, age_band {AGE_BANDS}")
            voice = rng.choice(candidates)
            used.add(voice["name"].split("+")[1])
            picked.append(voice)
        return picked

    def synthesize(self, text: str, voice: dict, turn: int, speaker: str) -> Utterance:
        tokens = text.split()
        where = f"turn {turn} (speaker {speaker!r})"
        if not tokens:
            raise SynthesisError(f"{where}: text is empty; nothing to synthesize")
        if "name" not in voice:
            raise SynthesisError(f"{where}: voice {voice!r} has no 'name' (e.g. 'en-us+m3')")
        language = str(voice["name"]).split("+")[0].split("-")[0].lower()
        spoken = speech_tokens(tokens, language)
        lib = engine()
        pcm, events = lib.synthesize(
            " ".join(spoken),
            str(voice["name"]),
            rate=min(max(int(voice.get("rate", 175)), 80), 450),
            pitch=min(max(int(voice.get("pitch", 50)), 0), 100),
            pitch_range=min(max(int(voice.get("range", 50)), 0), 100),
            volume=int(voice.get("volume", self.volume)),
        )
        sr = lib.sample_rate
        samples = pcm.astype(np.float32) / np.float32(32768.0)
        if samples.size == 0 or not voiced_frames(samples, sr).any():
            raise SynthesisError(
                f"{where}: eSpeak produced no audio for {text!r} with voice {voice['name']!r}"
            )
        duration = samples.size / sr
        starts = word_starts(spoken, events, duration)
        spans = refine_word_ends(samples, sr, starts, duration, threshold_db=self.threshold_db)
        words = [(tok, s, e) for tok, (s, e) in zip(tokens, spans, strict=True)]
        samples, words = trim_to_words(samples, sr, words, self.lead_s, self.tail_s)
        return Utterance(turn=turn, speaker=speaker, sample_rate=sr, samples=samples, words=words)
