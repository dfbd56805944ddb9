"""Adaptive runs: each sample measured only until its class is settled.

``qhw submit --adaptive --shots S`` measures in rounds. Round 0 gives every
sample ``S // 8`` shots (at least 32, the fewest a first prediction reads
well from); each later round doubles the shots a sample has had, up to S,
for the samples still unsettled after the one before. A sample's counts are
the sum of its rounds.

When a sample is settled:

- With ``--model M`` (a hybrid classifier trained on any run of the same
  feature set): its class no longer depends on shot noise. The counts so far
  give a point prediction; DRAWS outcome distributions are drawn from the
  Dirichlet posterior of those counts (Perks' prior: one pseudo-count spread
  over the outcomes, PRIOR each; Jeffreys' 1/2 each would add 16 shots of
  nothing to a 5-qubit sample's 128) and classified too; the sample is
  settled when at least CONFIDENCE of the draws give the point prediction's
  class.
- Without a model: its distribution stopped changing. The Hellinger distance
  between its frequencies before and after the round is below TOLERANCE on
  every circuit of the sample (round 0 has nothing to compare: every sample
  gets a second round).

A sample that has had S shots is settled whatever it reads. The rounds are
the ledger's (qhw.rounds.advance_round): a round starts only when the round
before is collected, in one compare-and-set with its jobs.
"""

from __future__ import annotations

import numpy as np

from qhw.errors import ParameterError
from qhw.records import (  # noqa: F401 (the settings and their constants are this module's to explain)
    CONFIDENCE,
    DRAWS,
    FIRST_ROUND_DIVISOR,
    MIN_FIRST_SHOTS,
    PRIOR,
    TOLERANCE,
    AdaptiveSettings,
    ModelRecord,
)
from qhw.store import ArtifactStore, RunCounts

#: Rows of posterior draws classified in one model call (a few MB of float32).
DRAW_ROWS = 65_536


def check_model(model: ModelRecord, feature_set_id: int) -> None:
    """A model that may decide an adaptive run of this feature set.

    Raises:
        ConfigError: a classical model, or one of another feature set.
    """
    if model.kind != "hybrid":
        raise ParameterError("model_id", f"{model.id} is {model.kind}; an adaptive run needs a hybrid model (trained on a run's outcomes)")
    if model.feature_set_id != feature_set_id:
        raise ParameterError("model_id", f"{model.id} was trained on feature set {model.feature_set_id}, not feature set {feature_set_id} of this run"
        )


def load_classifier(artifacts: ArtifactStore, model: ModelRecord, input_dim: int):
    """The Keras model of a hybrid model record, checked against the run's inputs.

    Raises:
        ArtifactError: its weights are missing or unreadable.
        ConfigError: it reads another number of outcome probabilities.
    """
    from qhw.training import load_model

    classifier = load_model(artifacts, model)
    expected = classifier.input_shape[-1]
    if expected != input_dim:
        raise ParameterError("model_id", f"{model.id} reads {expected} outcome probabilities a sample, this run gives {input_dim}")
    return classifier


def unsettled_by_model(classifier, counts: RunCounts, settings: AdaptiveSettings, seed: int) -> np.ndarray:
    """(n,) True for the samples whose class still moves with shot noise."""
    n = len(counts.counts)
    if n == 0:
        return np.zeros(0, dtype=bool)
    x = counts.frequencies().reshape(n, -1)
    point = _classes(classifier, x)
    rng = np.random.default_rng(seed)
    agree = np.zeros(n, dtype=np.int64)
    # The posterior of each circuit's outcome probabilities given its counts:
    # Dirichlet(counts + prior), drawn as normalised gamma variates, and
    # classified in batches of whole draws (one model call for many).
    alpha = counts.counts.astype(np.float64) + settings.prior
    per_batch = max(1, DRAW_ROWS // n)
    for start in range(0, settings.draws, per_batch):
        batch = min(per_batch, settings.draws - start)
        gamma = rng.standard_gamma(np.broadcast_to(alpha, (batch, *alpha.shape)))
        drawn = (gamma / gamma.sum(axis=-1, keepdims=True)).reshape(batch * n, -1).astype(np.float32)
        agree += (_classes(classifier, drawn).reshape(batch, n) == point).sum(axis=0)
    return agree < settings.confidence * settings.draws


def unsettled_by_change(before: RunCounts, after: RunCounts, settings: AdaptiveSettings) -> np.ndarray:
    """(n,) True for the samples whose frequencies moved by TOLERANCE or more
    (Hellinger distance, on any circuit) in the round between ``before`` and ``after``."""
    p, q = before.frequencies(np.float64), after.frequencies(np.float64)
    distance = np.sqrt(np.clip(1 - np.sqrt(p * q).sum(axis=-1), 0, None))
    return (distance >= settings.tolerance).any(axis=1)


def _classes(classifier, x: np.ndarray) -> np.ndarray:
    return np.argmax(classifier.predict(x, verbose=0, batch_size=4096), axis=1)
