"""A run's stored results as one .npz file, for analysis elsewhere (``qhw results``)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from qhw import config
from qhw.errors import ParameterError
from qhw.jobstates import UNFINISHED_STATES
from qhw.records import SPLIT_CODES
from qhw.store import Store
from qhw.store.arrays import load_arrays
from qhw.worker import parameter_rows


@dataclass(frozen=True)
class Export:
    path: Path
    run_id: int
    samples: int  # complete samples written
    run_samples: int  # samples the run has in all
    unfinished_jobs: int


def export_results(store: Store, run_id: int | None, out: Path) -> Export:
    """Write a run's stored counts to an .npz for analysis elsewhere.

    Keys: counts (samples x circuits x 2**qubits, canonical order), shots
    (samples: the shots each sample's circuits got; an adaptive run's differ
    from sample to sample), circuit_shots (samples x circuits), parameters
    (samples x circuits x the map's parameters: the exact float64 values bound
    to each execution, in the order of the template's inputs), template
    (the feature map as OpenQASM 3, its ``input float`` parameters declared in
    that order, qubit i measured into bit i), feature_map (its name), labels,
    split ('train'/'test'), sample_index (within its split), backend.
    Only complete samples are written; the result says how many of the run's.

    Raises:
        ConfigError: ``out`` is not an .npz path in a writable folder.
    """
    out = Path(out)
    if out.suffix != ".npz":
        raise ParameterError("out", f"must name an .npz file, got {out}")
    if not out.parent.is_dir():
        raise ParameterError("out", f": folder {out.parent} does not exist")
    config.writable_dir(out.parent, "--out's folder")
    run = store.ledger.run(run_id)
    stored = store.results.run_counts(run.id)
    feature_set = store.catalogue.feature_set(run.feature_set_id)
    arrays = load_arrays(store.artifacts, feature_set)
    labels = np.array(
        [arrays.labels(split)[index] for split, index in zip(stored.splits, stored.sample_index, strict=True)], dtype=np.int64
    )
    # The rows the worker bound (qhw.worker.parameter_rows), sample by sample.
    order = np.array([[SPLIT_CODES[str(split)], int(index)] for split, index in zip(stored.splits, stored.sample_index, strict=True)], dtype=np.int64)
    bound = parameter_rows(arrays, order.reshape(-1, 2), run.circuits_per_sample)
    parameters = bound.reshape(len(order), run.circuits_per_sample, feature_set.num_parameters)
    try:
        with config.writing(out):
            np.savez_compressed(
                out,
                counts=stored.counts,
                # A sample's circuits get the same shots (its rounds carry all of them);
                # one that has not had all of a round yet reads its fewest.
                shots=stored.shots_each.min(axis=1),
                circuit_shots=stored.shots_each,
                parameters=parameters,
                template=np.str_(feature_set.template_qasm3),
                feature_map=np.str_(feature_set.feature_map),
                labels=labels,
                split=stored.splits,
                sample_index=stored.sample_index,
                backend=np.str_(run.backend),
            )
    except BaseException:
        out.unlink(missing_ok=True)  # no half-written file
        raise
    unfinished = len(store.ledger.jobs(run.id, states=UNFINISHED_STATES))
    return Export(path=out, run_id=run.id, samples=len(stored.counts), run_samples=run.n_samples, unfinished_jobs=unfinished)
