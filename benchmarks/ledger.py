"""What the job ledger costs per job: its writes, timed on a real database.

A remote job's life through the ledger, without any provider call: created
(with its key, claimed by the submitter), submission started, provider id
recorded, claimed again by a collector, moved to running, its counts stored
(100 executions, 32 outcomes each) and collected, claim given back. A local
simulator's job: created, counts stored, claim given back. Each column is the
median over the jobs, in milliseconds; "commits" is the number of write
transactions per job. Runs on a throwaway SQLite file unless --db is given.

    python benchmarks/ledger.py [--jobs 200] [--executions 100] [--db URL] [--quick]
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--jobs", type=int, default=200)
    parser.add_argument("--executions", type=int, default=100, help="executions (circuits) per job")
    parser.add_argument("--db", help="SQLAlchemy URL of an empty database (default: SQLite in a temporary folder)")
    quick.add_option(parser)
    tables.add_option(parser)
    args = parser.parse_args()
    if args.quick:
        args.jobs, args.executions = 5, 10
    home = Path(tempfile.mkdtemp(prefix="qhw-ledger-bench-"))
    os.environ["QHW_HOME"] = str(home)

    import numpy as np

    from qhw.jobstates import JobState
    from qhw.records import JobPlan, RunSpec
    from qhw.store import RunCircuit, Store
    from qhw.store.ledger import holder_id

    store = Store(args.db or f"sqlite:///{home / 'qhw.db'}")
    feature_set = store.catalogue.add_feature_set(
        dataset="bench", dataset_fingerprint="0" * 64, seed=0, components=5, latent_dim=64, epochs=1,
        n_train=args.jobs * args.executions, n_test=0, reconstruction_mse=0.0, artifacts=str(home),
    )
    holder = holder_id()
    counts = np.full((args.executions, 32), 32, dtype=np.uint32)

    def new_run(n_jobs: int):
        n = n_jobs * args.executions
        order = np.column_stack([np.zeros(n), np.arange(n)]).astype(np.int32)
        spec = RunSpec(
            feature_set_id=feature_set.id, backend="bench", provider="bench", split="train", shots=1024, num_qubits=5,
            circuits_per_sample=1, n_samples=n, seed=0, layout=(0, 1, 2, 3, 4), cost_estimate_usd=None,
        )
        plans = [JobPlan(i * args.executions, (i + 1) * args.executions) for i in range(n_jobs)]
        return store.ledger.create_run(spec, RunCircuit(b"qpy", "OPENQASM 3.0;", order), plans, claimed_by=holder)

    def timed(call, *args, **kwargs):
        start = time.perf_counter()
        value = call(*args, **kwargs)
        return value, (time.perf_counter() - start) * 1000

    remote: dict[str, list[float]] = {name: [] for name in ("create", "start", "record id", "claim", "running", "store counts", "release")}
    _, create_ms = timed(lambda: new_run(args.jobs))
    jobs = store.ledger.jobs(store.ledger.run().id)
    remote["create"] = [create_ms / args.jobs] * args.jobs
    for i, job in enumerate(jobs):
        job, ms = timed(store.ledger.start_submission, job, holder)
        remote["start"].append(ms)
        job, ms = timed(store.ledger.record_submission, job, f"provider-{i}", note="submitted")
        remote["record id"].append(ms)
        _, ms = timed(store.ledger.release, [job.id], holder)
        remote["release"].append(ms)
        job, ms = timed(store.ledger.claim, job, holder)
        remote["claim"].append(ms)
        job, ms = timed(store.ledger.move, job, JobState.RUNNING)
        remote["running"].append(ms)
        _, ms = timed(store.results.store_counts, job, counts, 1024)
        remote["store counts"].append(ms)
        _, ms = timed(store.ledger.release, [job.id], holder)
        remote["release"][-1] += ms

    local: dict[str, list[float]] = {"create": [], "store counts": [], "release": []}
    _, create_ms = timed(lambda: new_run(args.jobs))
    local_jobs = store.ledger.jobs(store.ledger.run().id)
    local["create"] = [create_ms / args.jobs] * args.jobs
    for job in local_jobs:
        _, ms = timed(store.results.store_counts, job, counts, 1024)
        local["store counts"].append(ms)
        _, ms = timed(store.ledger.release, [job.id], holder)
        local["release"].append(ms)
    assert store.results.count_rows(local_jobs[0].run_id) == args.jobs * args.executions

    commits = {"create": "1 per run", "start": "1", "record id": "1", "claim": "1", "running": "1", "store counts": "1", "release": "1"}
    rows = []
    for kind, steps in (("remote", remote), ("local simulator", local)):
        for name, values in steps.items():
            rows.append((kind, name, f"{statistics.median(values):.2f}", commits[name] if name != "release" or kind != "remote" else "2"))
        total = sum(statistics.median(values) for values in steps.values())
        rows.append((kind, "all ledger writes", f"{total:.2f}", ""))
    tables.Tables(args).show(
        "writes", f"qhw ledger cost per job ({args.jobs} jobs of {args.executions} executions; {store.display_url.split(':')[0]})",
        ("job", "step", "median ms", "commits"), rows,
    )
    store.close()


if __name__ == "__main__":
    main()
