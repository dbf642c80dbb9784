"""Labels derived from a timeline: duplex frame labels and ASR segments."""

from pipeline.labels.asr import asr_segments
from pipeline.labels.duplex import duplex_labels

__all__ = ["asr_segments", "duplex_labels"]
