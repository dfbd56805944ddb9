"""What checking every circuit against its exact answer costs a run's collect, and what --quality auto repairs.

    python benchmarks/quality.py [--part cost|repairs|both] [--repeats 3] [--bad-error 0.2] [--quick]

mnist-5k with 20 components (the paper's map, 4 circuits a sample): all
5,000 samples, 20,000 circuits, on fake_fez ``--pack auto --reuse auto`` at
1,024 shots, one worker: the run's jobs are computed and collected in the
submit, each job's counts stored with every circuit's fidelity to its exact
distribution (qhw.quality). The same run again with the check switched off
in this process (ExactAnswers.fidelities answering None, so nothing is
computed or stored) gives the cost; runs alternate, ``--repeats`` each, and
the medians are compared (each first in turn: the engine's own compute
varies from run to run by more than the check costs, so the time spent
inside the check during the checked runs is printed too). The check alone (the statevector's exact
distributions and the fidelities of the run's 20,000 circuits) is timed too.

Then what ``--quality auto`` does for accuracy: the same feature set (its
autoencoder trained fully, seed 0), the statevector simulator on every
sample, and fake_fez packed and reused on every sample (5,000 x 4 circuits, one
worker, so jobs run in order as at a provider; accuracy on the 1,000 test
samples), with and
without ``--quality auto`` (its default 10 % reserve), under the calibration
snapshot, ``--noise realistic``, and ``realistic`` with copy 0's middle qubit
gone bad (``bad-qubit=Q:P``, P = ``--bad-error``). For each: ``compare``'s
transfer accuracy (95 % bootstrap interval), the mean fidelity of the counts
the run reads, the copies and positions flagged, the share of circuits
measured again, and the QPU seconds on ibm_fez: qhw's offline estimate of the
same run times the device work (executions sent x shots) the run actually
took against its plan.

``--quick``: a 60/20-image feature set of 5 components, one repeat, 64
shots, and the snapshot and bad-qubit rows only (its figures mean nothing).
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

import quick
import tables
from reuse import qpu_seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=6)
    parser.add_argument("--shots", type=int, default=1024)
    parser.add_argument("--bad-error", type=float, default=0.2, help="the bad qubit's extra depolarizing error")
    parser.add_argument("--part", choices=("cost", "repairs", "both"), default="both", help="the check's cost, --quality auto's repairs, or both")
    quick.add_option(parser)
    tables.add_option(parser)
    args = parser.parse_args()
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    os.environ["QHW_HOME"] = tempfile.mkdtemp(prefix="qhw-bench-quality-")
    if args.quick:
        args.repeats, args.shots = 1, 64
    published = tables.Tables(args)
    if args.part != "repairs":
        cost(args, published)
    if args.part != "cost":
        repairs(args, published)


def cost(args, published: tables.Tables) -> None:
    """The check's cost in a run's collect: with it, switched off, alone."""

    import numpy as np

    from qhw import config, features, quality, runs
    from qhw.store import Store

    store = Store(config.database_url())
    components = {} if args.quick else {"components": 20}
    # The autoencoder trained one epoch: what is timed is the quantum stage, not the features' quality.
    feature_set = features.build_features(store, seed=0, **{"epochs": 1, **components, **quick.features(args.quick)})
    checked_fidelities = quality.ExactAnswers.fidelities
    inside: list[float] = []  # seconds spent in the check, run by run

    def timed_fidelities(self, parameters, counts):
        start = time.perf_counter()
        try:
            return checked_fidelities(self, parameters, counts)
        finally:
            inside[-1] += time.perf_counter() - start

    def timed(check: bool) -> tuple[float, int]:
        inside.append(0.0)
        quality.ExactAnswers.fidelities = timed_fidelities if check else (lambda self, parameters, counts: None)  # type: ignore[method-assign]
        try:
            start = time.perf_counter()
            run = runs.submit(
                store, backend_name="fake_fez", feature_set_id=feature_set.id, shots=args.shots, seed=0, pack="auto", reuse="auto", workers=1,
            ).run
            return time.perf_counter() - start, run.id
        finally:
            quality.ExactAnswers.fidelities = checked_fidelities  # type: ignore[method-assign]

    with_check, without, spent = [], [], []
    run_id = 0
    for repeat in range(args.repeats):
        # In turn first and second: a run's own compute varies by more than the check costs.
        for check in (True, False) if repeat % 2 == 0 else (False, True):
            seconds, ran = timed(check)
            (with_check if check else without).append(seconds)
            if check:
                run_id = ran
                spent.append(inside[-1])
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
    title = (
        f"the exact-answer check in a run's collect: fake_fez --pack auto --reuse auto, {circuits:,} circuits "
        f"({circuits // feature_set.circuits_per_sample:,} samples x {feature_set.circuits_per_sample}), {args.shots} shots, "
        f"one worker; median of {args.repeats}"
    )
    inside_check = statistics.median(spent)
    published.show("cost", title, ("what", "seconds", "vs without"), [
        ("submit and collect, with the check", f"{a:.2f}", f"{a / b:.3f}"),
        ("submit and collect, the check switched off", f"{b:.2f}", f"{1:.3f}"),
        ("the check alone (exact answers + fidelities)", f"{alone:.2f}", f"{alone / b:.3f}"),
        ("time in the check during a checked run", f"{inside_check:.2f}", f"{inside_check / b:.3f}"),
    ])


def repairs(args, published: tables.Tables) -> None:
    """Transfer accuracy, circuits repaired and QPU time, with and without --quality auto."""
    from qhw import config, features, runs
    from qhw.compare import compare
    from qhw.repair import extra_work, planned_work
    from qhw.store import Store

    store = Store(config.database_url())
    components = {} if args.quick else {"components": 20}
    feature_set = features.build_features(store, seed=0, **components, **quick.features(args.quick))
    simulator = runs.submit(store, backend_name="statevector", feature_set_id=feature_set.id, shots=args.shots, seed=0).run
    # Every sample (20,000 circuits, 74 packed executions): a run of the test split alone is 15, and one
    # packed execution more (a job's rounding) is then 7 % of it, most of the reserve.
    options = dict(backend_name="fake_fez", feature_set_id=feature_set.id, shots=args.shots, seed=0, pack="auto", reuse="auto", workers=1)
    layout = runs.submit(store, **options).run  # (also the snapshot's row without --quality auto)
    bad = f"bad-qubit={layout.copy_layout(0)[len(layout.copy_layout(0)) // 2]}:{args.bad_error:g}"
    cases = [("snapshot", None), ("realistic", "realistic"), (f"realistic, {bad}", f"realistic,{bad}")]
    if args.quick:
        cases = [cases[0], cases[2]]
    baseline: dict = {}
    rows = []
    for label, noise in cases:
        for mode in ("off", "auto"):
            run = layout if (noise, mode) == (None, "off") else runs.submit(store, **options, noise=noise, quality=mode).run
            result = compare(store, simulator_run_id=simulator.id, hardware_run_id=run.id, seed=0, **quick.training(args.quick))
            accuracy = {a.case: a for a in result.accuracies}
            baseline.setdefault("simulator", accuracy["simulator"])
            baseline.setdefault("classical", accuracy["classical"])
            run = store.ledger.run(run.id)
            jobs = store.ledger.jobs(run.id)
            fidelity = store.results.fidelities(run.id, current=True)[0]
            quality = result.hardware.quality or {}
            flagged = [f"{k[0]}{g[k]}" for kinds, k in (("copies", "copy"), ("positions", "position")) for g in quality.get(kinds, []) if g["flagged"]]
            planned, added = planned_work(run, jobs), extra_work(run, jobs)
            estimate, _ = qpu_seconds("ibm_fez", run.n_samples, args.shots, pack=None, reuse=None, circuits_per_sample=run.circuits_per_sample)
            rows.append((label, mode, accuracy["transfer"], float(fidelity.mean()), ",".join(flagged) or "-",
                         store.results.repaired(run.id) / store.results.count_rows(run.id), estimate * (planned + added) / planned))
    first = rows[0]
    published.show(
        "repairs",
        f"--quality auto on fake_fez --pack auto --reuse auto, every sample x {feature_set.circuits_per_sample} circuits "
        f"({first[2].test_samples} test samples), {args.shots} shots, one worker: simulator "
        f"{baseline['simulator'].accuracy:.3f}, classical {baseline['classical'].accuracy:.3f}",
        ("noise", "--quality", "transfer accuracy [95 %]", "fidelity", "flagged", "repaired", "ibm_fez QPU s"),
        [(label, mode, f"{transfer.accuracy:.3f} [{transfer.low:.3f}, {transfer.high:.3f}]", f"{fidelity:.4f}", flagged, f"{share:.1%}", f"{seconds:,.1f}")
         for label, mode, transfer, fidelity, flagged, share, seconds in rows],
    )


if __name__ == "__main__":
    main()
