"""A comparison as a folder: PNG plots, comparison.json and an index.html that shows them.

One device run gives the report of one comparison; several give a leaderboard,
one section per device and one accuracy-against-shots plot with a line per
device. Each run is shown with what ran it (an emulation is never called
hardware), its calibration at run time and the calibration's age, and its
estimated and actual cost.
"""

from __future__ import annotations

import html
import json
import shutil
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from qhw import config
from qhw.compare import Comparison, DeviceComparison, RunSummary

INDEX = "index.html"
DATA = "comparison.json"
FIDELITY_PLOT = "fidelity_histogram.png"
SHOTS_PLOT = "accuracy_vs_shots.png"
_STYLE = (
    "body{font-family:sans-serif;margin:2em;max-width:76em}table{border-collapse:collapse;margin:1em 0}"
    "td,th{border:1px solid #ccc;padding:.3em .6em;text-align:left}figure{display:inline-block;margin:.5em}"
    "img{max-width:32em}.small{font-size:.85em;color:#444}"
)


def default_report_dir(simulator_run: int, device_runs: list[int]) -> Path:
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S")
    devices = "-".join(f"run{run}" for run in device_runs)
    return config.data_dir("reports") / f"compare-run{simulator_run}-{devices}-{stamp}"


def check_report_dir(out: Path | None) -> None:
    """Before a comparison's minutes of training: can its report be written?

    Raises:
        ConfigError: ``out`` (or the home's reports folder) is not a writable folder.
    """
    if out is not None:
        config.check_writable(Path(out), "--out")
    else:
        config.check_writable(config.home() / "reports", "the reports folder")


def write_report(comparison: Comparison | DeviceComparison, out: Path | None = None) -> Path:
    """Write the report folder and return the path of its index.html.

    A report that cannot be finished (a full disk) leaves none of its files.
    """
    import matplotlib

    matplotlib.use("Agg")  # files only; no display on servers or in CI
    several = isinstance(comparison, DeviceComparison)
    comparisons = comparison.comparisons if several else [comparison]
    simulator = comparisons[0].simulator
    out = Path(out) if out is not None else default_report_dir(simulator.run, [c.hardware.run for c in comparisons])
    created = not out.exists()
    out.mkdir(parents=True, exist_ok=True)
    before = set(out.iterdir())
    try:
        sections = []
        for item in comparisons:
            prefix = f"run{item.hardware.run}_" if several else ""
            images = [_confusion_plot(out, prefix, case, matrix) for case, matrix in item.confusion.items()]
            images.append(_fidelity_plot(out, prefix, item))
            if not several:
                images.append(_shots_plot(out, comparisons))
            sections.append(_section(item, images, several))
        shots = _shots_plot(out, comparisons) if several else None
        (out / DATA).write_text(json.dumps(comparison.to_dict(), indent=2))
        (out / INDEX).write_text(_page(comparison if several else None, simulator, comparisons, sections, shots))
    except BaseException:
        if created:
            shutil.rmtree(out, ignore_errors=True)
        else:  # a folder of the user's: take back only what this report added
            for path in set(out.iterdir()) - before:
                path.unlink(missing_ok=True)
        raise
    return out / INDEX


# --- plots ---------------------------------------------------------------------------------------


def _confusion_plot(out: Path, prefix: str, case: str, matrix: np.ndarray) -> str:
    import matplotlib.pyplot as plt

    name = f"{prefix}confusion_{case}.png"
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


def _fidelity_plot(out: Path, prefix: str, comparison: Comparison) -> str:
    import matplotlib.pyplot as plt

    name = f"{prefix}{FIDELITY_PLOT}"
    figure, axes = plt.subplots(figsize=(5.5, 3.5))
    axes.hist(comparison.fidelities, bins=40, range=(0, 1), color="#4c72b0")
    axes.set(
        xlabel="Hellinger fidelity per sample",
        ylabel="samples",
        title=f"{comparison.simulator.backend} vs {comparison.hardware.backend}",
    )
    figure.tight_layout()
    figure.savefig(out / name, dpi=110)
    plt.close(figure)
    return name


def _shots_plot(out: Path, comparisons: list[Comparison]) -> str:
    """Transfer accuracy against shots: one line (and band) per device."""
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(6, 3.8))
    for comparison in comparisons:
        points = comparison.shots_curve
        shots = [p.shots for p in points]
        label = f"run {comparison.hardware.run} {comparison.hardware.backend}"
        (line,) = axes.plot(shots, [p.accuracy for p in points], marker="o", label=label)
        axes.fill_between(shots, [p.low for p in points], [p.high for p in points], alpha=0.2, color=line.get_color())
    axes.set_xscale("log", base=2)
    title = "accuracy against shots" + (f" on {comparisons[0].hardware.backend}" if len(comparisons) == 1 else "")
    axes.set(xlabel="shots per circuit", ylabel="test accuracy (transfer case)", title=title)
    axes.legend(loc="lower right", fontsize=8)
    figure.tight_layout()
    figure.savefig(out / SHOTS_PLOT, dpi=110)
    plt.close(figure)
    return SHOTS_PLOT


# --- html -------------------------------------------------------------------------------------------

e = html.escape


def _money(amount: float | None, unknown: str = "unknown") -> str:
    if amount is None:
        return unknown
    return f"${amount:,.2f}" if amount >= 1 or amount == 0 else f"${amount:.4f}"


def _age(hours: float | None) -> str:
    if hours is None:
        return "n/a"
    return f"{hours / 24:.1f} days" if hours >= 48 else f"{hours:.1f} h"


def _runs_table(runs: list[tuple[str, RunSummary]]) -> str:
    rows = "".join(
        f"<tr><td>{e(role)}</td><td>{r.run}</td><td>{e(r.backend)}</td><td>{e(r.device_kind)}</td><td>{e(r.device)}</td>"
        f"<td>{e(r.created)}</td><td>{r.shots}</td><td>{r.feature_set}</td><td>{e(r.split)}</td>"
        f"<td>{e(r.mitigation or 'none')}</td><td>{e(r.calibrated_at or 'none')}</td><td>{e(_age(r.calibration_age_hours))}</td>"
        f"<td>{e(_money(r.estimated_cost_usd, 'free' if r.actual_cost == 'free' else 'unknown'))}</td><td>{e(r.actual_cost)}</td></tr>"
        for role, r in runs
    )
    return (
        "<table><tr><th>role</th><th>run</th><th>backend</th><th>kind</th><th>what ran it</th><th>date</th><th>shots</th>"
        "<th>feature set</th><th>split</th><th>readout calibration</th><th>device calibrated at</th>"
        "<th>calibration age at run time</th><th>estimated cost</th><th>actual cost</th></tr>" + rows + "</table>"
    )


def _calibration_table(summary: RunSummary) -> str:
    if summary.calibration is None:
        return f"<p>{e(summary.backend)}: no device calibration (an ideal simulator).</p>"

    def value(number, scale=1.0, digits=4) -> str:
        return "n/a" if number is None else f"{number * scale:.{digits}g}"

    qubits = "".join(
        f"<tr><td>{e(str(q['qubit']))}</td><td>{value(q['t1_us'])}</td><td>{value(q['t2_us'])}</td>"
        f"<td>{value(q['readout_error'])}</td><td>{value(q['gate_error'])}</td></tr>"
        for q in summary.calibration["qubits"]
    )
    pairs = "".join(
        f"<tr><td>{e('-'.join(map(str, p['qubits'])))}</td><td>{e(p['gate'])}</td><td>{value(p['error'])}</td></tr>"
        for p in summary.calibration["pairs"]
    )
    return (
        f"<p>Calibration of {e(summary.calibration['device'])} taken at {e(summary.calibrated_at or 'an unknown time')}, "
        f"{e(_age(summary.calibration_age_hours))} before run {summary.run} was submitted; kept with the run.</p>"
        "<table><tr><th>physical qubit</th><th>T1 (us)</th><th>T2 (us)</th><th>readout error</th><th>1-qubit gate error</th></tr>"
        f"{qubits}</table><table><tr><th>qubits</th><th>gate</th><th>error</th></tr>{pairs}</table>"
    )


def _section(comparison: Comparison, images: list[str], several: bool) -> str:
    sim, hw = comparison.simulator, comparison.hardware
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
    by_copy = ""
    if len(g.fidelity_by_copy) > 1:  # a packed run: one row a copy, so a bad chain of qubits shows
        rows = "".join(
            f"<tr><td>{copy}</td><td>{g.fidelity_by_copy[copy].mean:.4f}</td>"
            f"<td>{g.total_variation_by_copy[copy].mean:.4f}</td><td>{g.fidelity_by_copy[copy].n}</td></tr>"
            for copy in sorted(g.fidelity_by_copy)
        )
        by_copy = f"<table><tr><th>copy</th><th>mean fidelity</th><th>mean total variation</th><th>circuits</th></tr>{rows}</table>"
    shots = "".join(
        f"<tr><td>{p.shots}</td><td>{p.accuracy:.3f}</td><td>[{p.low:.3f}, {p.high:.3f}]</td>"
        f"<td>{'' if p.cost_usd is None else _money(p.cost_usd)}</td></tr>"
        for p in comparison.shots_curve
    )
    adaptive = ""
    if comparison.adaptive is not None:
        a = comparison.adaptive
        histogram = "".join(f"<tr><td>{shots}</td><td>{n}</td></tr>" for shots, n in sorted(a.samples_by_shots.items()))
        adaptive = (
            f"<p>Adaptive run ({e(a.rule)}): {a.shots_used:,} shots against {a.uniform_shots:,} for every sample at "
            f"{hw.shots} ({a.share:.0%}); transfer accuracy {a.transfer_accuracy:.3f} [{a.low:.3f}, {a.high:.3f}].</p>"
            f"<table><tr><th>shots a sample</th><th>test samples</th></tr>{histogram}</table>"
        )
    notes = "".join(f"<p><strong>Note:</strong> {e(note)}</p>\n" for note in comparison.notes)
    pictures = "".join(f'<figure><img src="{e(name)}" alt="{e(name)}"><figcaption>{e(name)}</figcaption></figure>' for name in images)
    level = "h3" if several else "h2"
    heading = f"<h2>Run {hw.run} ({e(hw.backend)}): {e(hw.device)}</h2>" if several else ""
    runs = "" if several else f"<h2>Runs</h2>{_runs_table([('simulator', sim), ('compared', hw)])}"
    return f"""{heading}{runs}
<p>{comparison.shared_samples} samples are in both runs; accuracies are on their test samples.</p>
{notes}<{level}>Calibration at run time</{level}>
{_calibration_table(hw)}
<{level}>Accuracy</{level}>
<table><tr><th>case</th><th>what</th><th>accuracy</th><th>95 % bootstrap interval</th><th>test samples</th></tr>{accuracies}</table>
<{level}>Agreement per sample</{level}>
<table><tr><th>measure</th><th>mean</th><th>median</th><th>5th percentile</th><th>95th percentile</th></tr>{agreement}</table>
<table><tr><th>class</th><th>mean fidelity</th><th>mean total variation</th><th>samples</th></tr>{by_class}</table>
{by_copy}
<{level}>Accuracy against shots</{level}>
<table><tr><th>shots</th><th>accuracy</th><th>95 % interval</th><th>estimated cost on {e(hw.backend)}</th></tr>{shots}</table>
{adaptive}
<{level}>Plots</{level}>
{pictures}
"""


def _leaderboard(comparison: DeviceComparison) -> str:
    rows = "".join(
        f"<tr><td>{r.run}</td><td>{e(r.backend)}</td><td>{e(r.device_kind)}</td><td>{r.transfer_accuracy:.3f} "
        f"<span class=small>[{r.low:.3f}, {r.high:.3f}]</span></td>"
        f"<td>{'n/a' if r.mitigated_accuracy is None else f'{r.mitigated_accuracy:.3f}'}</td><td>{r.mean_fidelity:.4f}</td>"
        f"<td>{e(_money(r.estimated_cost_per_1000_usd, 'free' if r.device_kind in ('simulator', 'emulation') else 'unknown'))}</td>"
        f"<td>{e(_money(r.actual_cost_per_1000_usd))}</td><td>{e(_age(r.calibration_age_hours))}</td></tr>"
        for r in comparison.leaderboard
    )
    return (
        "<h2>Leaderboard</h2><table><tr><th>run</th><th>backend</th><th>kind</th><th>transfer accuracy [95 %]</th>"
        "<th>mitigated</th><th>mean Hellinger fidelity</th><th>estimated cost / 1,000 samples</th>"
        "<th>actual cost / 1,000 samples</th><th>calibration age</th></tr>" + rows + "</table>"
    )


def _page(several: DeviceComparison | None, simulator: RunSummary, comparisons: list[Comparison], sections: list[str], shots: str | None) -> str:
    devices = ", ".join(f"run {c.hardware.run} ({e(c.hardware.backend)})" for c in comparisons)
    title = f"Run {simulator.run} ({e(simulator.backend)}) against {devices}"
    top = ""
    if several is not None:
        runs = _runs_table([("simulator", simulator), *(("device", c.hardware) for c in comparisons)])
        top = (
            f"<h2>Runs</h2>{runs}{_leaderboard(several)}"
            f'<h2>Accuracy against shots</h2><figure><img src="{shots}" alt="{shots}"><figcaption>{shots}</figcaption></figure>'
        )
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>qhw: {title}</title>
<style>{_STYLE}</style>
</head><body>
<h1>{title}</h1>
{top}
{''.join(sections)}
</body></html>
"""
