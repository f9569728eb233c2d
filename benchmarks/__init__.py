"""Labeeb's benchmarks: the reference and Labeeb side by side, reported as ratios."""
