"""Shots drawn from exact probabilities: the one draw of every simulator and
engine that computes a distribution first (``statevector``, the density
engine), so that the same seed gives the same counts whichever computed it."""

from __future__ import annotations

import numpy as np


def multinomial_counts(probabilities: np.ndarray, shots: int, seed: int | None) -> np.ndarray:
    """``shots`` shots of every row of exact probabilities (rows, outcomes),
    from one generator seeded by ``seed``: the same seed, the same counts."""
    probabilities = np.clip(probabilities, 0.0, None)
    probabilities /= probabilities.sum(axis=1, keepdims=True)
    return np.random.default_rng(seed).multinomial(shots, probabilities).astype(np.int64)
