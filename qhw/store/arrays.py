"""A feature set's arrays, as ``qhw features build`` saved them in the artifact store."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from qhw.checks import NotAnArchive, load_npz
from qhw.errors import ArtifactError
from qhw.records import FeatureSetRecord

if TYPE_CHECKING:
    from qhw.store.artifacts import ArtifactStore

ARRAYS_FILE = "arrays.npz"


@dataclass(frozen=True)
class FeatureArrays:
    """The arrays of a feature set, as ``qhw features build`` saved them."""

    angles_train: np.ndarray  # (n_train, components) in the feature map's range
    angles_test: np.ndarray
    latent_train: np.ndarray  # (n_train, latent_dim)
    latent_test: np.ndarray
    y_train: np.ndarray
    y_test: np.ndarray

    def angles(self, split: str) -> np.ndarray:
        return self.angles_train if split == "train" else self.angles_test

    def labels(self, split: str) -> np.ndarray:
        return self.y_train if split == "train" else self.y_test


def load_arrays(artifacts: ArtifactStore, feature_set: FeatureSetRecord) -> FeatureArrays:
    """Load the saved arrays of a feature set (from ``artifacts``, checked).

    Raises:
        ArtifactError: one line: its arrays are missing, altered or unreadable.
    """
    path = artifacts.local_member(feature_set.artifacts, ARRAYS_FILE, f"feature set {feature_set.id}'s files")
    try:
        with load_npz(path) as archive:
            arrays = FeatureArrays(**{field: archive[field] for field in FeatureArrays.__dataclass_fields__})
    except FileNotFoundError as err:
        raise ArtifactError(f"feature set {feature_set.id}: its arrays are missing at {path}; build a new feature set") from err
    except Exception as err:  # a truncated or overwritten file: NotAnArchive, BadZipFile, EOFError, KeyError, OSError
        detail = str(err) if isinstance(err, NotAnArchive) else f"{type(err).__name__}: {err}"
        raise ArtifactError(
            f"feature set {feature_set.id}: its arrays at {path} are unreadable ({detail}); "
            "build a new feature set with `qhw features build`"
        ) from err
    if len(arrays.angles_train) != len(arrays.y_train) or len(arrays.angles_test) != len(arrays.y_test):
        raise ArtifactError(f"feature set {feature_set.id}: its arrays at {path} do not fit together; build a new feature set")
    return arrays
