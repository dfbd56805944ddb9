"""What checking every circuit against its exact answer costs a run's collect.

    python benchmarks/quality.py [--repeats 3] [--quick]

mnist-5k with 20 components (the paper's map, 4 circuits a sample): all
5,000 samples, 20,000 circuits, on fake_fez ``--pack auto --reuse auto`` at
1,024 shots, one worker: the run's jobs are computed and collected in the
submit, each job's counts stored with every circuit's fidelity to its exact
distribution (qhw.quality). The same run again with the check switched off
in this process (ExactAnswers.fidelities answering None, so nothing is
computed or stored) gives the cost; runs alternate, ``--repeats`` each, and
the medians are compared. The check alone (the statevector's exact
distributions and the fidelities of the run's 20,000 circuits) is timed too.

``--quick``: a 60/20-image feature set of 5 components, one repeat.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import tempfile
import time
from pathlib import Path

import quick


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--shots", type=int, default=1024)
    quick.add_option(parser)
    args = parser.parse_args()
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    os.environ["QHW_HOME"] = tempfile.mkdtemp(prefix="qhw-bench-quality-")
    if args.quick:
        args.repeats, args.shots = 1, 64

    import numpy as np

    from qhw import config, features, quality, runs
    from qhw.store import Store

    store = Store(config.database_url())
    components = {} if args.quick else {"components": 20}
    # The autoencoder trained one epoch: what is timed is the quantum stage, not the features' quality.
    feature_set = features.build_features(store, seed=0, **{"epochs": 1, **components, **quick.features(args.quick)})
    checked_fidelities = quality.ExactAnswers.fidelities

    def timed(check: bool) -> tuple[float, int]:
        quality.ExactAnswers.fidelities = checked_fidelities if check else (lambda self, parameters, counts: None)  # type: ignore[method-assign]
        try:
            start = time.perf_counter()
            run = runs.submit(
                store, backend_name="fake_fez", feature_set_id=feature_set.id, shots=args.shots, seed=0, pack="auto", reuse="auto", workers=1,
            ).run
            return time.perf_counter() - start, run.id
        finally:
            quality.ExactAnswers.fidelities = checked_fidelities  # type: ignore[method-assign]

    with_check, without = [], []
    run_id = 0
    for _ in range(args.repeats):
        seconds, run_id = timed(True)
        with_check.append(seconds)
        without.append(timed(False)[0])
    circuits = store.results.count_rows(run_id)
    assert store.results.fidelities(run_id)[0].size == circuits, "the checked run keeps a fidelity for every circuit"

    # The check alone, on the run's own parameters and counts (as `qhw results` writes them, aligned).
    from qhw.export import export_results
    from qhw.feature_maps import template_of

    path = os.path.join(os.environ["QHW_HOME"], "results.npz")
    export_results(store, run_id, Path(path))
    exported = np.load(path)
    parameters = exported["parameters"].reshape(-1, exported["parameters"].shape[-1])
    counts = exported["counts"].reshape(-1, exported["counts"].shape[-1])
    start = time.perf_counter()
    answers = quality.ExactAnswers(template_of(feature_set))
    answers.fidelities(parameters, counts)
    alone = time.perf_counter() - start

    a, b = statistics.median(with_check), statistics.median(without)
    print()
    title = (
        f"the exact-answer check in a run's collect: fake_fez --pack auto --reuse auto, {circuits:,} circuits "
        f"({circuits // feature_set.circuits_per_sample:,} samples x {feature_set.circuits_per_sample}), {args.shots} shots, "
        f"one worker; {platform.machine()}, {os.cpu_count()} cores; median of {args.repeats}"
    )
    print(title)
    print(f"{'':44} {'seconds':>8} {'vs without':>10}")
    print(f"{'submit and collect, with the check':44} {a:>8.2f} {a / b:>10.3f}")
    print(f"{'submit and collect, the check switched off':44} {b:>8.2f} {1:>10.3f}")
    print(f"{'the check alone (exact answers + fidelities)':44} {alone:>8.2f} {alone / b:>10.3f}")


if __name__ == "__main__":
    main()
