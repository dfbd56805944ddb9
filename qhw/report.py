"""A comparison as a folder: PNG plots, comparison.json and an index.html that shows them."""

from __future__ import annotations

import html
import json
import shutil
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from qhw import config
from qhw.compare import Comparison

INDEX = "index.html"
DATA = "comparison.json"
FIDELITY_PLOT = "fidelity_histogram.png"
SHOTS_PLOT = "accuracy_vs_shots.png"


def default_report_dir(comparison: Comparison) -> Path:
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S")
    return config.data_dir("reports") / f"compare-run{comparison.simulator.run}-run{comparison.hardware.run}-{stamp}"


def check_report_dir(out: Path | None) -> None:
    """Before a comparison's minutes of training: can its report be written?

    Raises:
        ConfigError: ``out`` (or the home's reports folder) is not a writable folder.
    """
    if out is not None:
        config.writable_dir(Path(out), "--out")
    else:
        config.writable_dir(config.home() / "reports", "the reports folder")


def write_report(comparison: Comparison, out: Path | None = None) -> Path:
    """Write the report folder and return the path of its index.html.

    A report that cannot be finished (a full disk) leaves none of its files.
    """
    import matplotlib

    matplotlib.use("Agg")  # files only; no display on servers or in CI
    out = Path(out) if out is not None else default_report_dir(comparison)
    created = not out.exists()
    out.mkdir(parents=True, exist_ok=True)
    before = set(out.iterdir())
    try:
        images = [_confusion_plot(out, case, matrix) for case, matrix in comparison.confusion.items()]
        images.append(_fidelity_plot(out, comparison))
        images.append(_shots_plot(out, comparison))
        (out / DATA).write_text(json.dumps(comparison.to_dict(), indent=2))
        (out / INDEX).write_text(_html(comparison, images))
    except BaseException:
        if created:
            shutil.rmtree(out, ignore_errors=True)
        else:  # a folder of the user's: take back only what this report added
            for path in set(out.iterdir()) - before:
                path.unlink(missing_ok=True)
        raise
    return out / INDEX


def _confusion_plot(out: Path, case: str, matrix: np.ndarray) -> str:
    import matplotlib.pyplot as plt

    name = f"confusion_{case}.png"
    figure, axes = plt.subplots(figsize=(4.5, 4))
    shown = axes.imshow(matrix, cmap="Blues")
    axes.set(xlabel="predicted", ylabel="true", title=f"confusion: {case}", xticks=range(10), yticks=range(10))
    for (row, column), value in np.ndenumerate(matrix):
        if value:
            # White on dark cells, black on light ones, so every count stays readable.
            colour = "white" if value > matrix.max() / 2 else "black"
            axes.text(column, row, str(value), ha="center", va="center", fontsize=6, color=colour)
    figure.colorbar(shown, ax=axes, fraction=0.046)
    figure.tight_layout()
    figure.savefig(out / name, dpi=110)
    plt.close(figure)
    return name


def _fidelity_plot(out: Path, comparison: Comparison) -> str:
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(5.5, 3.5))
    axes.hist(comparison.fidelities, bins=40, range=(0, 1), color="#4c72b0")
    axes.set(
        xlabel="Hellinger fidelity per sample",
        ylabel="samples",
        title=f"{comparison.simulator.backend} vs {comparison.hardware.backend}",
    )
    figure.tight_layout()
    figure.savefig(out / FIDELITY_PLOT, dpi=110)
    plt.close(figure)
    return FIDELITY_PLOT


def _shots_plot(out: Path, comparison: Comparison) -> str:
    import matplotlib.pyplot as plt

    points = comparison.shots_curve
    shots = [p.shots for p in points]
    figure, axes = plt.subplots(figsize=(5.5, 3.5))
    axes.plot(shots, [p.accuracy for p in points], marker="o", label="accuracy (transfer case)")
    axes.fill_between(shots, [p.low for p in points], [p.high for p in points], alpha=0.25, label="95 % interval")
    axes.set_xscale("log", base=2)
    axes.set(xlabel="shots per circuit", ylabel="test accuracy", title=f"accuracy against shots on {comparison.hardware.backend}")
    axes.legend(loc="lower right")
    figure.tight_layout()
    figure.savefig(out / SHOTS_PLOT, dpi=110)
    plt.close(figure)
    return SHOTS_PLOT


def _html(comparison: Comparison, images: list[str]) -> str:
    e = html.escape
    runs = "".join(
        f"<tr><td>{e(role)}</td><td>{r.run}</td><td>{e(r.backend)}</td><td>{e(r.device)}</td>"
        f"<td>{e(r.created)}</td><td>{r.shots}</td><td>{r.feature_set}</td><td>{e(r.split)}</td>"
        f"<td>{e(r.mitigation or 'none')}</td></tr>"
        for role, r in (("simulator", comparison.simulator), ("compared", comparison.hardware))
    )
    accuracies = "".join(
        f"<tr><td>{e(a.case)}</td><td>{e(a.description)}</td><td>{a.accuracy:.3f}</td>"
        f"<td>[{a.low:.3f}, {a.high:.3f}]</td><td>{a.test_samples}</td></tr>"
        for a in comparison.accuracies
    )
    g = comparison.agreement
    agreement = "".join(
        f"<tr><td>{e(name)}</td><td>{s.mean:.4f}</td><td>{s.median:.4f}</td><td>{s.p5:.4f}</td><td>{s.p95:.4f}</td></tr>"
        for name, s in (("Hellinger fidelity", g.fidelity), ("total variation distance", g.total_variation))
    )
    by_class = "".join(
        f"<tr><td>{label}</td><td>{g.fidelity_by_class[label].mean:.4f}</td>"
        f"<td>{g.total_variation_by_class[label].mean:.4f}</td><td>{g.fidelity_by_class[label].n}</td></tr>"
        for label in sorted(g.fidelity_by_class)
    )
    shots = "".join(
        f"<tr><td>{p.shots}</td><td>{p.accuracy:.3f}</td><td>[{p.low:.3f}, {p.high:.3f}]</td>"
        f"<td>{'' if p.cost_usd is None else f'${p.cost_usd:,.2f}'}</td></tr>"
        for p in comparison.shots_curve
    )
    notes = "".join(f"<p><strong>Note:</strong> {e(note)}</p>\n" for note in comparison.notes)
    pictures = "".join(f'<figure><img src="{e(name)}" alt="{e(name)}"><figcaption>{e(name)}</figcaption></figure>' for name in images)
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>qhw: run {comparison.simulator.run} vs run {comparison.hardware.run}</title>
<style>body{{font-family:sans-serif;margin:2em;max-width:70em}}table{{border-collapse:collapse;margin:1em 0}}
td,th{{border:1px solid #ccc;padding:.3em .6em;text-align:left}}figure{{display:inline-block;margin:.5em}}img{{max-width:32em}}</style>
</head><body>
<h1>Run {comparison.simulator.run} ({e(comparison.simulator.backend)}) against run {comparison.hardware.run} ({e(comparison.hardware.backend)})</h1>
<h2>Runs</h2>
<table><tr><th>role</th><th>run</th><th>backend</th><th>device</th><th>date</th><th>shots</th><th>feature set</th><th>split</th><th>calibration</th></tr>{runs}</table>
<p>{comparison.shared_samples} samples are in both runs; accuracies are on their test samples.</p>
{notes}<h2>Accuracy</h2>
<table><tr><th>case</th><th>what</th><th>accuracy</th><th>95 % bootstrap interval</th><th>test samples</th></tr>{accuracies}</table>
<h2>Agreement per sample</h2>
<table><tr><th>measure</th><th>mean</th><th>median</th><th>5th percentile</th><th>95th percentile</th></tr>{agreement}</table>
<table><tr><th>class</th><th>mean fidelity</th><th>mean total variation</th><th>samples</th></tr>{by_class}</table>
<h2>Accuracy against shots</h2>
<table><tr><th>shots</th><th>accuracy</th><th>95 % interval</th><th>estimated cost on {e(comparison.hardware.backend)}</th></tr>{shots}</table>
<h2>Plots</h2>
{pictures}
</body></html>
"""
