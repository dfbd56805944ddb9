"""A comparison as a folder: PNG plots, comparison.json and an index.html that shows them.

One device run gives the report of one comparison; several give a leaderboard,
one section per device and one accuracy-against-shots plot with a line per
device. Each run is shown with what ran it (an emulation is never called
hardware), its calibration at run time and the calibration's age, and its
estimated and actual cost.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from qhw import config
from qhw.compare import Comparison, DeviceComparison, RunSummary
from qhw.pricing import usd

INDEX = "index.html"
DATA = "comparison.json"
FIDELITY_PLOT = "fidelity_histogram.png"
SHOTS_PLOT = "accuracy_vs_shots.png"
#: The page's template, in qhw/templates (package data).
TEMPLATE = "report.html.j2"


def default_report_dir(simulator_run: int, device_runs: list[int]) -> Path:
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
    devices = "-".join(f"run{run}" for run in device_runs)
    return config.home() / "reports" / f"compare-run{simulator_run}-{devices}-{stamp}"  # made as it is written


def check_report_dir(out: Path | None) -> None:
    """Before a comparison's minutes of training: can its report be written?

    Raises:
        ConfigError: ``out`` (or the home's reports folder) is not a writable folder.
    """
    if out is not None:
        config.check_writable(Path(out), "--out")
    else:
        config.check_writable(config.home() / "reports", "the reports folder")


def keep_report(store, comparison: Comparison | DeviceComparison, out: Path | None = None, *, hardware_runs: list[int]):
    """Write the report folder, then keep its files in the artifact store and
    its row in the ledger: (the path of its index.html, the record; ``qhw
    reports get`` fetches it on any machine of the team). A report that cannot
    be kept (a full store, an unreachable one) leaves none of its files in
    ``out``, as one that cannot be written.
    """
    simulator = _each(comparison)[0].simulator
    out = Path(out) if out is not None else default_report_dir(simulator.run, hardware_runs)
    with _new_files(out):
        index, names = _write(comparison, out)
        # Only the report's own files: a folder of the user's may hold others, which stay theirs.
        files = {name: out / name for name in names}
        reference = store.artifacts.put_tree(files, f"the report {out}")
        record = store.catalogue.add_report(simulator_run=simulator.run, hardware_runs=hardware_runs, artifacts=reference)
    return index, record


def fetch_report(store, record, out: Path | None = None) -> Path:
    """A stored report's files, checked, copied into ``out`` (default: the
    home's reports folder): the path of its index.html.

    Raises:
        ArtifactError: an object of it is missing or altered, or its manifest
            names anything but plain file names (nothing written).
        ConfigError: ``out`` cannot be written.
    """
    out = Path(out) if out is not None else config.home() / "reports" / f"report-{record.id}"
    config.check_writable(out, "--out")
    source = store.artifacts.tree(record.artifacts, f"report {record.id}'s files")
    with _new_files(out):
        out.mkdir(parents=True, exist_ok=True)
        for path in sorted(source.iterdir()):
            with config.writing(out / path.name):
                shutil.copyfile(path, out / path.name)
    return out / "index.html"


def write_report(comparison: Comparison | DeviceComparison, out: Path | None = None) -> Path:
    """Write the report folder and return the path of its index.html.

    A report that cannot be finished (a full disk) leaves none of its files.
    """
    comparisons = _each(comparison)
    out = Path(out) if out is not None else default_report_dir(comparisons[0].simulator.run, [c.hardware.run for c in comparisons])
    with _new_files(out):
        return _write(comparison, out)[0]


def _each(comparison: Comparison | DeviceComparison) -> list[Comparison]:
    """The comparisons of a report: one, or each device's of a leaderboard."""
    return comparison.comparisons if isinstance(comparison, DeviceComparison) else [comparison]


@contextmanager
def _new_files(out: Path) -> Iterator[None]:
    """What the block adds to the folder ``out`` is taken back if it fails:
    the folder itself when the block made it, else only the files it added
    (a folder of the user's keeps what it held)."""
    created = not out.exists()
    top = out  # the outermost folder the block may make (the home's reports/ too)
    while created and not top.parent.exists():
        top = top.parent
    before = set() if created else set(out.iterdir())
    try:
        yield
    except BaseException:
        if created:
            shutil.rmtree(top, ignore_errors=True)
        elif out.is_dir():
            for path in set(out.iterdir()) - before:
                path.unlink(missing_ok=True)
        raise


def _write(comparison: Comparison | DeviceComparison, out: Path) -> tuple[Path, list[str]]:
    """The report's files into ``out``: its index.html and the names of every file written."""
    import matplotlib

    matplotlib.use("Agg")  # files only; no display on servers or in CI
    leaderboard = comparison if isinstance(comparison, DeviceComparison) else None
    several = leaderboard is not None
    comparisons = _each(comparison)
    simulator = comparisons[0].simulator
    out.mkdir(parents=True, exist_ok=True)
    sections: list[list[str]] = []  # the plots of each comparison
    for item in comparisons:
        prefix = f"run{item.hardware.run}_" if several else ""
        images = [_confusion_plot(out, prefix, case, matrix) for case, matrix in item.confusion.items()]
        images.append(_fidelity_plot(out, prefix, item))
        images += [_quality_plot(out, prefix, item, kind) for kind in ("copies", "positions") if len(_groups(item, kind)) > 1]
        if not several:
            images.append(_shots_plot(out, comparisons))
        sections.append(images)
    shots = _shots_plot(out, comparisons) if several else None
    (out / DATA).write_text(json.dumps(comparison.to_dict(), indent=2))
    (out / INDEX).write_text(_page(leaderboard, simulator, comparisons, sections, shots))
    names = {INDEX, DATA, *(name for images in sections for name in images), *([shots] if shots else [])}
    return out / INDEX, sorted(names)


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


def _groups(comparison: Comparison, kind: str) -> list[dict]:
    quality = comparison.hardware.quality
    return [] if not quality else list(quality[kind])


def _quality_plot(out: Path, prefix: str, comparison: Comparison, kind: str) -> str:
    """The device run's mean fidelity to the exact answers by copy (or by position), flagged ones in red."""
    import matplotlib.pyplot as plt

    key = {"copies": "copy", "positions": "position"}[kind]
    groups = _groups(comparison, kind)
    name = f"{prefix}quality_by_{key}.png"
    figure, axes = plt.subplots(figsize=(max(4.0, 0.35 * len(groups) + 2), 3.2))
    colours = ["#c44e52" if g["flagged"] else "#4c72b0" for g in groups]
    axes.bar([str(g[key]) for g in groups], [g["mean_fidelity"] for g in groups], color=colours)
    values = [g["mean_fidelity"] for g in groups]
    axes.set_ylim(max(0.0, min(values) - 0.02), min(1.0, max(values) + 0.01))
    axes.set(xlabel=key + (" in a shot" if key == "position" else ""), ylabel="mean fidelity to the exact answer",
             title=f"run {comparison.hardware.run}: quality by {key} (red: flagged)")
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


# --- html ----------------------------------------------------------------------------------------


def _figure(number: float | None) -> str:
    return "n/a" if number is None else f"{number:.4g}"


def _age(hours: float | None) -> str:
    if hours is None:
        return "n/a"
    return f"{hours / 24:.1f} days" if hours >= 48 else f"{hours:.1f} h"


def headline(comparison: Comparison) -> list[str]:
    """What a report says first about one device run, line by line: its
    transfer accuracy against the simulator's and the classical one, its
    fidelity to the exact answers, what it took and cost, what was repaired."""
    hw = comparison.hardware
    figures = {a.case: a for a in comparison.accuracies}
    transfer = figures["transfer"]
    against = []
    if "simulator" in figures:
        against.append(f"{figures['simulator'].accuracy:.3f} on the simulator (run {comparison.simulator.run})")
    if "classical" in figures:
        against.append(f"{figures['classical'].accuracy:.3f} for the classical baseline")
    mitigated = figures.get("transfer-mitigated")
    lines = [
        f"Transfer accuracy on run {hw.run} ({hw.backend}): {transfer.accuracy:.3f} [{transfer.low:.3f}, {transfer.high:.3f}], "
        f"against {' and '.join(against) or 'nothing else'}"
        + ("" if mitigated is None else f"; {mitigated.accuracy:.3f} with readout mitigation")
        + f" ({transfer.test_samples} test samples)."
    ]
    quality = hw.quality
    if quality and quality["circuits"]:
        flagged = [
            f"{name} {g[name]}" for kind, name in (("copies", "copy"), ("positions", "position"), ("jobs", "job")) for g in quality[kind] if g["flagged"]
        ]
        again = f" ({quality['repaired']:,} of them measured again: the device's first measurements count here)" if quality.get("repaired") else ""
        lines.append(
            f"Mean fidelity to the exact answers {quality['mean_fidelity']:.4f} over {quality['circuits']:,} measurements{again}; "
            f"flagged: {', '.join(flagged) or 'none'}."
        )
    used = "none reported" if hw.usage is None else f"{hw.usage:,.4g} {hw.usage_unit}"
    estimate = usd(hw.estimated_cost_usd, "free" if hw.actual_cost == "free" else "unknown")
    lines.append(f"Device time: {used}; cost: estimated {estimate}, actual {hw.actual_cost}.")
    if quality and quality.get("repaired"):
        repairs = "; ".join(line for line in quality["log"] if line.startswith("repair"))
        lines.append(f"Repaired: {quality['repaired']:,} circuit(s) measured again by --quality auto ({repairs}).")
    elif quality and quality.get("mode") == "auto":
        lines.append("Repaired: nothing (--quality auto found nothing to repair" + (f"; {quality['log'][-1]}" if quality["log"] else "") + ").")
    return lines


def _page(
    several: DeviceComparison | None, simulator: RunSummary, comparisons: list[Comparison], sections: list[list[str]], shots: str | None
) -> str:
    """index.html, from the package's Jinja2 template (autoescaped: run names and notes are text)."""
    from jinja2 import Environment, PackageLoader, StrictUndefined

    environment = Environment(loader=PackageLoader("qhw", "templates"), autoescape=True, undefined=StrictUndefined)
    environment.filters.update(money=usd, age=_age, figure=_figure)
    environment.globals.update(headline=headline)
    devices = ", ".join(f"run {c.hardware.run} ({c.hardware.backend})" for c in comparisons)
    return environment.get_template(TEMPLATE).render(
        title=f"Run {simulator.run} ({simulator.backend}) against {devices}",
        simulator=simulator,
        devices=[("device", c.hardware) for c in comparisons],
        leaderboard=None if several is None else several.leaderboard,
        shots_plot=shots,
        sections=list(zip(comparisons, sections, strict=True)),
    )
