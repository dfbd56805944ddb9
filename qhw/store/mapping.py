"""Records to rows and back, from the records' own fields.

A record's fields (qhw.records) are declared once; a row's columns are
derived from them: a field is the column of its name, unless a table of
columns says where and how it is kept (another column's name, JSON, a time
zone). A new field is a column of qhw/store/models.py, a migration and the
field itself: nothing here.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

R = TypeVar("R")


@dataclass(frozen=True)
class Column:
    """How a record's field is kept in a row: its column (or columns: a pair
    of bounds, a value read with another column), and the field's value to the
    column's and back (JSON stays in the store). ``read`` takes each column's
    value; ``stored`` gives one value a column."""

    name: str | tuple[str, ...]
    stored: Callable[[Any], Any] = lambda value: value
    read: Callable[..., Any] = lambda value: value

    @property
    def names(self) -> tuple[str, ...]:
        return self.name if isinstance(self.name, tuple) else (self.name,)


def columns_of(spec: Any, columns: Mapping[str, Column]) -> dict[str, Any]:
    """A spec's fields as a row's columns (the keyword arguments of its ORM class)."""
    values: dict[str, Any] = {}
    for field in dataclasses.fields(spec):
        column = columns.get(field.name, Column(field.name))
        stored = column.stored(getattr(spec, field.name))
        values.update(zip(column.names, stored if isinstance(column.name, tuple) else (stored,), strict=True))
    return values


def record_of(row: Any, record: type[R], columns: Mapping[str, Column]) -> R:
    """A row as a record of type ``record``, every field read from its column(s)."""
    values: dict[str, Any] = {}
    for field in dataclasses.fields(record):  # type: ignore[arg-type]
        column = columns.get(field.name, Column(field.name))
        values[field.name] = column.read(*(getattr(row, name) for name in column.names))
    return record(**values)
