"""How much noise the hybrid classifier takes: fake_fez made harsher with ``--noise``.

    python benchmarks/noise.py [--shots 1024] [--seed 0] [--bad-error 0.2] [--plot docs/images/noise.png] [--quick]

mnist-5k with 20 components (the paper's 5-qubit map, 4 circuits a sample:
the configuration within a point of the classical baseline), seed 0. The
statevector simulator runs every sample; fake_fez runs the test split
(1,000 samples) under each noise, and ``compare`` trains the hybrid
classifier on the simulator and tests it on the device (transfer accuracy,
its 95 % bootstrap interval), beside the simulator's and the classical
figures. Prints two tables and writes one plot.

1. Packed and reused (``--pack auto --reuse auto``, the configuration that
   fits all of MNIST into IBM's free plan), and packed only, under: the
   calibration snapshot alone; ``--noise realistic``; each of its effects
   alone at its realistic value; and (packed and reused) one copy on a qubit
   gone bad (``bad-qubit=Q:P`` on the middle qubit of the first copy). For
   each: transfer accuracy, the mean fidelity to the simulator (Hellinger,
   per circuit), the worst and best copy's and position's mean fidelity, and
   the QPU seconds the same run would take on ibm_fez (qhw's offline
   estimate: the noise changes the answer, not the time).
2. Transfer accuracy against ``--noise scale=F`` (F = 1 to 64: every gate
   error times F), unpacked, packed, and packed and reused; the plot (PNG)
   draws it, with the simulator's and the classical accuracy as lines.

``--quick``: a 60/20-image feature set of 5 components, 64 shots, the
snapshot and realistic runs and scales 1 and 2 (its figures mean nothing).
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import quick
import tables
from reuse import qpu_seconds

EFFECTS = ("reset", "measure-crosstalk", "crosstalk", "prep", "drift")
SCALES = (1, 2, 4, 8, 16, 32, 64)
MODES = {"unpacked": dict(pack=1, reuse=1), "packed": dict(pack="auto", reuse=1), "packed and reused": dict(pack="auto", reuse="auto")}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--shots", type=int, default=1024)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--bad-error", type=float, default=0.2, help="the bad qubit's extra depolarizing error")
    # Into the documentation site's images: the --noise how-to shows it.
    parser.add_argument("--plot", type=Path, default=Path(__file__).resolve().parent.parent / "docs" / "images" / "noise.png")
    quick.add_option(parser)
    tables.add_option(parser)
    args = parser.parse_args()
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    os.environ["QHW_HOME"] = tempfile.mkdtemp(prefix="qhw-bench-noise-")
    if args.quick:
        args.shots = 64
        args.plot = Path(os.environ["QHW_HOME"]) / "noise.png"

    from qhw import config, features, runs
    from qhw.compare import compare
    from qhw.noise import PRESETS
    from qhw.store import Store

    store = Store(config.database_url())
    components = {} if args.quick else {"components": 20}
    feature_set = features.build_features(store, seed=args.seed, **components, **quick.features(args.quick))
    simulator = runs.submit(store, backend_name="statevector", feature_set_id=feature_set.id, shots=args.shots, seed=args.seed).run
    circuits = feature_set.circuits_per_sample
    baseline: dict = {}

    def measure(mode: str, noise: str | None) -> dict:
        started = time.perf_counter()
        run = runs.submit(
            store, backend_name="fake_fez", feature_set_id=feature_set.id, split="test", shots=args.shots, seed=args.seed, noise=noise,
            **MODES[mode],
        ).run
        seconds = time.perf_counter() - started
        result = compare(store, simulator_run_id=simulator.id, hardware_run_id=run.id, seed=args.seed, **quick.training(args.quick))
        accuracy = {a.case: a for a in result.accuracies}
        baseline.setdefault("simulator", accuracy["simulator"])
        baseline.setdefault("classical", accuracy["classical"])
        agreement = result.agreement
        by_copy = {c: s.mean for c, s in agreement.fidelity_by_copy.items()}
        by_position = {p: s.mean for p, s in agreement.fidelity_by_position.items()}
        qpu, _ = qpu_seconds("ibm_fez", run.n_samples, args.shots, pack=MODES[mode]["pack"] if MODES[mode]["pack"] != "auto" else None,
                             reuse=None if MODES[mode]["reuse"] == "auto" else MODES[mode]["reuse"], circuits_per_sample=circuits)
        return {
            "run": run, "transfer": accuracy["transfer"], "fidelity": agreement.fidelity.mean, "by_copy": by_copy,
            "by_position": by_position, "qpu": qpu, "seconds": seconds,
        }

    def interval(figure) -> str:
        return f"{figure.accuracy:.3f} [{figure.low:.3f}, {figure.high:.3f}]"

    def spread(values: dict) -> str:
        if not values:
            return "-"
        worst = min(values, key=values.get)
        return f"{values[worst]:.4f} (#{worst}) .. {max(values.values()):.4f}"

    realistic = PRESETS["realistic"]
    alone = {
        "reset": f"reset={realistic.reset:g}", "measure-crosstalk": f"measure-crosstalk={realistic.measure_crosstalk:g}",
        "crosstalk": f"crosstalk={realistic.crosstalk:g}", "prep": f"prep={realistic.prep:g}", "drift": f"drift={realistic.drift:g}",
    }
    first = measure("packed and reused", None)
    bad_qubit = first["run"].layout[len(first["run"].layout) // first["run"].copies // 2]  # the middle qubit of copy 0
    cases: list[tuple[str, str | None]] = [("snapshot", None), ("realistic", "realistic")]
    if not args.quick:
        cases += [(f"{key} alone", alone[key]) for key in EFFECTS]
    rows = []
    for mode in ("packed and reused",) if args.quick else ("packed and reused", "packed"):
        for label, noise in cases:
            figures = first if (mode, noise) == ("packed and reused", None) else measure(mode, noise)
            rows.append((mode, label, noise, figures))
    bad = f"bad-qubit={bad_qubit}:{args.bad_error:g}"
    rows.append(("packed and reused", f"copy 0 on a bad qubit ({bad})", bad, measure("packed and reused", bad)))

    published = tables.Tables(args)
    context = f"simulator {interval(baseline['simulator'])}, classical {interval(baseline['classical'])}"
    published.show(
        "effects",
        f"fake_fez, mnist-5k test split ({first['run'].n_samples} samples x {circuits} circuits, {args.shots} shots): {context}",
        ("configuration", "noise", "transfer accuracy [95 %]", "fidelity", "copies: worst (#) .. best", "positions: worst (#) .. best",
         "ibm_fez QPU s", "submit s"),
        [
            (mode, label, interval(f["transfer"]), f"{f['fidelity']:.4f}", spread(f["by_copy"]), spread(f["by_position"]), f"{f['qpu']:,.1f}",
             f"{f['seconds']:.1f}")
            for mode, label, _, f in rows
        ],
    )

    scales = (1, 2) if args.quick else SCALES
    curve: dict[str, list] = {mode: [] for mode in MODES}
    scaled = []
    for scale in scales:
        cells = [str(scale)]
        for mode in MODES:
            f = first if (scale, mode) == (1, "packed and reused") else measure(mode, None if scale == 1 else f"scale={scale}")
            curve[mode].append(f["transfer"])
            cells.append(f"{interval(f['transfer'])} ({f['fidelity']:.4f})")
        scaled.append(cells)
    published.show(
        "scale",
        f"transfer accuracy against --noise scale=F [95 % interval] (mean fidelity): {context}",
        ("--noise scale=F", *(f"{mode}" for mode in MODES)),
        scaled,
    )
    _plot(args.plot, scales, curve, baseline)
    print(f"plot: {args.plot}")


def _plot(path: Path, scales, curve: dict, baseline: dict) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(6.4, 4.2))
    for mode, figures in curve.items():
        accuracy = [f.accuracy for f in figures]
        axes.plot(scales, accuracy, marker="o", label=mode)
        axes.fill_between(scales, [f.low for f in figures], [f.high for f in figures], alpha=0.15)
    axes.axhline(baseline["simulator"].accuracy, color="black", linestyle="--", linewidth=1, label="simulator")
    axes.axhline(baseline["simulator"].accuracy - 0.02, color="grey", linestyle=":", linewidth=1, label="simulator - 2 points")
    axes.axhline(baseline["classical"].accuracy, color="tab:red", linestyle="-.", linewidth=1, label="classical")
    axes.set_xscale("log", base=2)
    axes.set_xticks(list(scales), [str(s) for s in scales])
    axes.set_xlabel("--noise scale (every gate error times)")
    axes.set_ylabel("transfer accuracy (95 % interval)")
    axes.set_title("fake_fez, mnist-5k test split, 4 circuits a sample")
    axes.legend(fontsize=8)
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=120)
    plt.close(figure)


if __name__ == "__main__":
    main()
