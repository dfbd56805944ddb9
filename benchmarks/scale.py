"""The pipeline at scale: wall time, peak memory and accuracy of each stage.

Each stage runs as a process of its own (the real `qhw` command, or a short
Python program for the training rows), so its peak memory is its own. The
training rows put qhw's classifier training (early stopping on a validation
split carved from the train samples, best weights kept, a batch size that
grows with the data) beside the fixed 60 epochs of 64-sample batches it
replaced, on the same features, with 95 % bootstrap intervals.

    python benchmarks/scale.py                      # the embedded 5,000-image MNIST subset
    python benchmarks/scale.py --dataset DIR        # a full dataset: a folder of the four IDX files
    python benchmarks/scale.py --quick              # every stage, on 80 images (a check that it runs)

Full Fashion-MNIST (60,000 train / 10,000 test) as IDX files comes with
Debian's package ``dataset-fashion-mnist``:

    apt-get install dataset-fashion-mnist
    python benchmarks/scale.py --dataset /usr/share/datasets/fashion-mnist

This script never downloads anything.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import quick
import tables

TRAIN = r"""
import json, sys, time
import numpy as np
from qhw import config, training
from qhw.compare import bootstrap_interval
from qhw.store.arrays import load_arrays
from qhw.store import Store
kind, how, run_id, epochs = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
store = Store(config.database_url())
arrays = load_arrays(store.artifacts, store.catalogue.feature_set(1))
if kind == "classical":
    x_train, y_train, x_test, y_test = arrays.latent_train, arrays.y_train, arrays.latent_test, arrays.y_test
    options = dict(normalize=True)
else:
    data = training.outcome_features(store, store.ledger.run(run_id))
    train, test = data.splits == "train", data.splits == "test"
    x_train, y_train, x_test, y_test = data.x[train], data.y[train], data.x[test], data.y[test]
    options = dict(input_scale=32.0)
start = time.perf_counter()
if how == "qhw":
    classifier = training.fit_classifier(kind, x_train, y_train, epochs=epochs, seed=0, **options)
    model, epochs = classifier.model, classifier.epochs_run
else:  # before: every one of 60 epochs, 64 samples a step, all train samples fitted
    keras = training.import_keras(0)
    model = training.build_classifier(
        keras, x_train.shape[1], normalizer_data=x_train if options.get("normalize") else None, input_scale=options.get("input_scale")
    )
    model.fit(x_train, y_train, epochs=epochs, batch_size=64, verbose=0)
seconds = time.perf_counter() - start
correct = training.predict(model, x_test) == y_test
low, high = bootstrap_interval(correct)
print(json.dumps({"seconds": seconds, "accuracy": float(correct.mean()), "low": low, "high": high, "epochs": epochs}))
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", default="mnist-5k", help="mnist-5k (default) or a folder of the four MNIST-format IDX files")
    parser.add_argument("--shots", type=int, default=1024)
    parser.add_argument("--simulator", default="aer_simulator", help="the backend of the run the hybrid classifier trains on")
    quick.add_option(parser)
    tables.add_option(parser)
    args = parser.parse_args()
    epochs = str(quick.EPOCHS if args.quick else 60)
    small = ["--limit-train", "60", "--limit-test", "20", "--epochs", "1"] if args.quick else []
    if args.quick:
        args.shots = 64
    if args.dataset != "mnist-5k" and not Path(args.dataset).is_dir():
        sys.exit(
            f"{args.dataset} is not a folder. For full Fashion-MNIST: apt-get install dataset-fashion-mnist, "
            "then --dataset /usr/share/datasets/fashion-mnist (this script downloads nothing)"
        )
    home = Path(tempfile.mkdtemp(prefix="qhw-scale-"))
    env = {**os.environ, "QHW_HOME": str(home), "TF_CPP_MIN_LOG_LEVEL": "3"}
    qhw = [sys.executable, "-c", "from qhw.cli import main; main()"]
    rows = []

    def stage(name: str, command: list[str]) -> dict:
        # The peak is read in a process of its own, so that it is this stage's alone.
        measure = (
            "import resource, subprocess, sys, time\n"
            "start = time.perf_counter()\n"
            "done = subprocess.run(sys.argv[1:], capture_output=True, text=True)\n"
            "print(done.stdout)\n"
            "print('@@', done.returncode, time.perf_counter() - start, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, repr(done.stderr[-400:]))\n"
        )
        output = subprocess.run([sys.executable, "-c", measure, *command], env=env, capture_output=True, text=True).stdout
        body, _, tail = output.rpartition("@@")
        code, seconds, peak_kb, stderr = tail.strip().split(" ", 3)
        if code.strip() != "0":
            sys.exit(f"{name} failed: {stderr}")
        result = {"stage": name, "seconds": float(seconds), "peak_mb": int(peak_kb) / 1024}
        try:
            result.update(json.loads(body.strip().splitlines()[-1]))
        except (json.JSONDecodeError, IndexError):
            pass
        rows.append(result)
        return result

    stage("features build", [*qhw, "features", "build", "--dataset", args.dataset, *small, "--json"])
    for kind in ("classical",):
        stage(f"{kind} train, qhw (early stopping)", [sys.executable, "-c", TRAIN, kind, "qhw", "0", epochs])
        stage(f"{kind} train, before (fixed {epochs} epochs)", [sys.executable, "-c", TRAIN, kind, "before", "0", epochs])
    stage("submit statevector", [*qhw, "submit", "--backend", "statevector", "--split", "all", "--shots", str(args.shots), "--json"])
    stage(f"submit {args.simulator}", [*qhw, "submit", "--backend", args.simulator, "--split", "all", "--shots", str(args.shots), "--json"])
    stage("collect", [*qhw, "collect", "--json"])
    stage("results export", [*qhw, "results", "--run", "2", "--out", str(home / "run2.npz")])
    stage("hybrid train, qhw (early stopping)", [sys.executable, "-c", TRAIN, "hybrid", "qhw", "2", epochs])
    stage(f"hybrid train, before (fixed {epochs} epochs)", [sys.executable, "-c", TRAIN, "hybrid", "before", "2", epochs])

    tables.Tables(args).show(
        "stages", f"qhw at scale: {args.dataset}, {args.shots} shots; each stage a process of its own, imports included",
        ("stage", "wall s", "peak MB", "test accuracy [95 %]", "epochs"),
        [
            (row["stage"], f"{row['seconds']:.1f}", f"{row['peak_mb']:,.0f}",
             f"{row['accuracy']:.3f} [{row['low']:.3f}, {row['high']:.3f}]" if "low" in row else "", str(row.get("epochs", "")))
            for row in rows
        ],
    )

if __name__ == "__main__":
    main()
