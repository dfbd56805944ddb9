"""The commands the README's walk-through and the tutorial show, run as
written, in order, on small data: only options that shrink the work are
added (fewer images, fewer epochs). IBM's device is the fake IBM cloud behind
the real Runtime client, with the credentials a user would have."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest
from click.testing import CliRunner

from qhw.cli import main

ROOT = Path(__file__).resolve().parent.parent
#: What each command gets added to run on small data; nothing else changes.
SMALL = {
    ("features", "build"): ["--limit-train", "200", "--limit-test", "40", "--epochs", "2"],
    ("train",): ["--epochs", "2"],
    ("compare",): ["--epochs", "2"],
    ("demo",): ["--limit-train", "200", "--limit-test", "40", "--autoencoder-epochs", "2", "--epochs", "2"],
    ("collect",): ["--interval", "0.01", "--timeout", "120"],
    # The fake IBM cloud measures a packed, reused ibm_fez execution (85 qubits,
    # a reset between positions) on Aer shot by shot: a few shots, not 1,024.
    ("submit",): ["--shots", "64"],
}


def commands(markdown: str) -> list[list[str]]:
    """Every `qhw ...` command of the text's code blocks, in order: trailing
    comments dropped, `a && b` as two, install and test commands left out."""
    found = []
    for block in re.findall(r"^```[^\n]*\n(.*?)^```", markdown, flags=re.S | re.M):
        for line in block.splitlines():
            for part in re.sub(r"\s+#\s.*$", "", line).split("&&"):
                if part.strip().startswith("qhw "):
                    found.append(shlex.split(part)[1:])
    return found


def small(args: list[str]) -> list[str]:
    for prefix, extra in SMALL.items():
        if tuple(args[: len(prefix)]) == prefix:
            return [*args, *extra]
    return args


def run_all(args_list: list[list[str]], tmp_path: Path, monkeypatch, *, failing: dict[int, str] | None = None, answers: str = "") -> None:
    monkeypatch.chdir(tmp_path)  # `qhw results --out run2.npz` writes where the user stands
    failing = failing or {}
    for index, args in enumerate(args_list):
        result = CliRunner().invoke(main, small(args), input=answers)
        if index in failing:
            assert result.exit_code == 1 and failing[index] in result.stderr, (args, result.output)
        else:
            assert result.exit_code == 0, (args, result.output)


def test_the_readme_walk_through_runs_as_written(home, ibm_cloud, tmp_path, monkeypatch):
    import click.testing

    # Run from a terminal, where a paid submission asks (and the user answers y).
    monkeypatch.setattr(click.testing._NamedTextIOWrapper, "isatty", lambda self: True, raising=False)
    readme = (ROOT / "README.md").read_text()
    walk_through = readme[readme.index("## Walk-through") : readme.index("## Documentation")]
    shown = commands(walk_through)
    assert shown[0] == ["features", "build", "--dataset", "mnist-5k"] and ["compare", "--sim", "1", "--hw", "3"] in shown
    assert len(shown) == 11
    run_all(shown, tmp_path, monkeypatch, answers="y\n")


def test_the_tutorial_runs_as_written(home, ibm_cloud, tmp_path, monkeypatch):
    shown = commands((ROOT / "docs" / "tutorial.md").read_text())
    refused = next(i for i, args in enumerate(shown) if "--max-cost" in args and args[args.index("--max-cost") + 1] == "0")
    assert shown[0] == ["demo"] and len(shown) == 19
    run_all(shown[:1], tmp_path, monkeypatch)  # the quick start, on a fresh machine
    monkeypatch.setenv("QHW_HOME", str(tmp_path / "walk-through"))  # the walk-through starts afresh: its ids are 1, 2, ...
    run_all(shown[1:], tmp_path, monkeypatch, failing={refused - 1: "exceeds --max-cost $0.00; nothing was submitted"})
    assert (tmp_path / "run2.npz").is_file()


@pytest.mark.parametrize("page", sorted(str(p.relative_to(ROOT)) for p in (ROOT / "docs").rglob("*.md") if p.parent.name != "benchmarks"))
def test_every_command_a_page_shows_is_one_qhw_has(page):
    """A renamed option or command breaks the page that shows it: each shown
    command parses (its --help answers) with the options it is shown with."""
    for args in commands((ROOT / page).read_text()):
        words = [word for word in args if not word.startswith("-")]
        group = main
        for word in words:
            sub = getattr(group, "commands", {}).get(word)
            if sub is None:
                break
            group = sub
        known = {name for param in group.params for name in (*param.opts, *param.secondary_opts)} | {"--help"}
        for word in args:
            if word.startswith("--"):
                assert word.split("=")[0] in known, f"{page}: `qhw {' '.join(args)}`: {word} is not an option of it"


def test_the_generated_reference_pages_hold_every_price_and_every_column():
    import importlib.util

    from qhw.pricing import default_prices
    from qhw.store.models import Base

    spec = importlib.util.spec_from_file_location("mkdocs_hooks", ROOT / "tools" / "mkdocs_hooks.py")
    hooks = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(hooks)
    prices = hooks.price_table()
    for key, value in default_prices().items():
        for device, price in (value.items() if isinstance(value, dict) else [("(any)", value)]):
            assert f"| `{key}` | {device if device == '(any)' else f'`{device}`'} | {price:g} |" in prices
    tables = hooks.database_tables()
    for table in Base.metadata.sorted_tables:
        assert f"### `{table.name}`" in tables
        for column in table.columns:
            assert f"| `{column.name}` | {column.type} |" in tables
    page = {"file": type("File", (), {"src_uri": "reference/prices.md"})()}
    assert hooks.on_page_markdown(f"before\n\n{hooks.PRICE_TABLE}\n", type("Page", (), page)()).startswith("before\n\nqhw's table of")


BENCHMARK_TABLES = ROOT / "docs" / "benchmarks"
#: `--8<-- "docs/benchmarks/x.md"`: a page including a table a benchmark wrote.
INCLUDE = re.compile(r'^--8<-- "(docs/benchmarks/[^"]+)"$', re.M)


def test_every_benchmark_table_is_one_its_script_wrote_and_a_page_includes():
    """A figure on a page comes from its script's file, and every file a
    script wrote is on some page (else a measurement is lost from the docs)."""
    pages = [path for path in (ROOT / "docs").rglob("*.md") if BENCHMARK_TABLES not in path.parents]
    included = {name for page in pages for name in INCLUDE.findall(page.read_text())}
    written = {str(path.relative_to(ROOT)) for path in BENCHMARK_TABLES.glob("*.md")}
    assert written and included == written
    scripts = {path.stem for path in (ROOT / "benchmarks").glob("*.py")}
    for name in written:
        first = (ROOT / name).read_text().splitlines()[0]
        script = re.match(r"<!-- Written by `python benchmarks/(\w+)\.py[^`]*`", first)
        assert script and script.group(1) in scripts and Path(name).stem.startswith(script.group(1) + "-"), (name, first)
        assert "--quick" not in first, f"{name}: a quick run's figures mean nothing"


def test_the_readme_figure_is_the_moonshot_table_the_benchmark_wrote():
    """The README cannot include a file (GitHub shows it as it is), so its one
    figure is checked against the table benchmarks/reuse.py wrote."""
    readme = (ROOT / "README.md").read_text()
    measured = (BENCHMARK_TABLES / "reuse-moonshot.md").read_text()
    shown = [line for line in readme.splitlines() if line.startswith("| ") and "configuration" not in line]
    rows = {tuple(cell.strip() for cell in line.strip("|").split("|")) for line in measured.splitlines() if line.startswith("| ")}
    assert len(shown) == 4
    for line in shown:
        label, circuits, seconds, months = (cell.strip() for cell in line.strip("|").split("|"))
        # The README may say more in its label's brackets ("..., the share measured on fake_fez"), never another share.
        assert any(row[1:] == (circuits, seconds, months) and label.startswith(row[0].rstrip(")")) for row in rows), line
