"""Labeeb: a private, local, plugin-based voice and vision assistant."""

__version__ = "0.1.0"
