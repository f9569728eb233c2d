"""The shared vision processor and its backends."""
