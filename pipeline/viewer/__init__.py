"""Static HTML viewer of a generated dataset (`duplexsynth view`): see site.py and page.py."""
