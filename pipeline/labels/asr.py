"""ASR segments: one per placed utterance, holding only the words actually spoken."""

from __future__ import annotations

from pipeline.schema import AsrSegment, Timeline


def asr_segments(dialogue_id: str, language: str, timeline: Timeline) -> list[AsrSegment]:
    segments = []
    for placed in sorted(timeline.segments, key=lambda p: p.start_s):
        if not placed.words:
            continue
        segments.append(
            AsrSegment(
                id=f"{dialogue_id}-{placed.turn:03d}",
                dialogue_id=dialogue_id,
                speaker=placed.speaker,
                start_s=placed.start_s,
                end_s=placed.end_s,
                text=placed.text,
                language=language,
                turn=placed.turn,
            )
        )
    return segments
