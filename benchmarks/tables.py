"""The tables a benchmark prints, also written as Markdown for the documentation.

The pages under docs/ include these files (``--8<--``, pymdownx.snippets), so
a figure in the documentation is the one its script last measured, beside the
command and the machine that measured it; nobody copies a number by hand.
Run a script without ``--quick`` and commit what it wrote to docs/benchmarks/.

Each file is one table: ``<script>-<key>[-<tag>].md``. ``--tag`` names a second
configuration of the same script (``accuracy.py --train-seeds 0 1 2 --tag
seeds``), so one run does not overwrite the other's table.
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import re
import shlex
import sys
from collections.abc import Sequence
from pathlib import Path

DOCS = Path(__file__).resolve().parent.parent / "docs" / "benchmarks"
#: A cell that reads as a number (1,024  0.924  33 %  6.0x  [0.9, 1.0] is not): its column is right-aligned.
_NUMBER = re.compile(r"^[-+]?[\d,]*\.?\d+\s*(%|x|s|us|ms)?$")


def add_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--tables", type=Path, metavar="DIR", help="where to write the tables as Markdown (default: docs/benchmarks; with --quick: nowhere)")
    parser.add_argument("--tag", help="appended to the tables' file names: a second configuration that keeps the first one's tables")


class Tables:
    """Prints each table (rich) and writes it as ``DIR/<script>-<key>[-<tag>].md``."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.script = Path(sys.argv[0]).stem
        self.directory: Path | None = args.tables or (None if getattr(args, "quick", False) else DOCS)
        self.tag: str | None = args.tag
        self.command = " ".join(["python", f"benchmarks/{Path(sys.argv[0]).name}", *map(shlex.quote, sys.argv[1:])])

    def show(self, key: str, title: str, header: Sequence[str], rows: Sequence[Sequence[object]], notes: Sequence[str] = ()) -> Path | None:
        """Print the table, then write it; returns the file written, if any."""
        from rich.console import Console
        from rich.markup import escape
        from rich.table import Table

        cells = [[str(cell) for cell in row] for row in rows]
        columns = list(zip(*cells, strict=False)) or [() for _ in header]
        right = [any(column) and all(_NUMBER.match(cell) for cell in column if cell not in ("", "-")) for column in columns]
        table = Table()
        for name, aligned in zip(header, right, strict=True):
            table.add_column(escape(name), justify="right" if aligned else "left")
        for row in cells:
            table.add_row(*map(escape, row))
        print(title)  # a line of its own: rich would wrap a long title
        Console(width=220).print(table)
        for note in notes:
            print(note)
        if self.directory is None:
            return None
        self.directory.mkdir(parents=True, exist_ok=True)
        name = "-".join(part for part in (self.script, key, self.tag) if part) + ".md"
        path = self.directory / name
        path.write_text(self._markdown(title, header, right, cells, notes), encoding="utf-8")
        print(f"written: {path}")
        return path

    def _markdown(self, title: str, header: Sequence[str], right: Sequence[bool], rows: Sequence[Sequence[str]], notes: Sequence[str]) -> str:
        def line(values: Sequence[str]) -> str:
            return "| " + " | ".join(value.replace("|", "\\|") for value in values) + " |"

        today = datetime.date.today().isoformat()
        lines = [
            f"<!-- Written by `{self.command}`; run it again rather than edit this file. -->",
            "",
            f"*{title}*",
            "",
            line(header),
            "|" + "|".join("---:" if aligned else "---" for aligned in right) + "|",
            *(line(row) for row in rows),
            "",
            *(f"{note}\n" for note in notes),
            f"<small>Measured by `{self.command}` on {today}; {machine()}.</small>",
            "",
        ]
        return "\n".join(lines)


def machine() -> str:
    """This machine in a few words: cores, architecture, processor, memory."""
    model = ""
    try:
        for text in Path("/proc/cpuinfo").read_text().splitlines():
            if text.startswith("model name"):
                model = " " + text.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        memory = f", {os.sysconf('SC_PAGE_SIZE') * os.sysconf('SC_PHYS_PAGES') / 2**30:.0f} GiB"
    except (ValueError, OSError, AttributeError):
        memory = ""
    return f"{os.cpu_count()} cores {platform.machine()}{model}{memory}"
