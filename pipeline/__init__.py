"""duplexsynth: synthetic full-duplex conversational speech data."""

__version__ = "0.1.0"
