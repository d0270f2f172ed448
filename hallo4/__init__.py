"""Hallo4 Studio: audio-driven portrait animation (Hallo4 re-implementation + a CPU lite engine)."""

__version__ = "0.1.0"
