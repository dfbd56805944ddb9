"""``--quick``: each benchmark at the smallest sizes that still run every step.

tests/test_benchmarks.py runs every script in this folder with ``--quick``,
so that an API change that breaks one fails the test suite instead of the next
person who measures. Figures printed in quick mode mean nothing.
"""

from __future__ import annotations

import argparse

#: A feature set of 60 train and 20 test images, its autoencoder trained one epoch.
FEATURES = {"limit_train": 60, "limit_test": 20, "epochs": 1}
#: Classifiers trained one epoch.
EPOCHS = 1


def add_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--quick", action="store_true", help="the smallest sizes that run every step (a check that the script runs; its figures mean nothing)")


def features(quick: bool) -> dict:
    """Keyword arguments of build_features for the mode."""
    return dict(FEATURES) if quick else {}


def training(quick: bool) -> dict:
    """Keyword arguments of train_hybrid / train_classical for the mode."""
    return {"epochs": EPOCHS} if quick else {}
