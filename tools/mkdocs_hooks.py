"""MkDocs hooks of qhw's documentation site (mkdocs.yml, `hooks:`).

Reference pages that qhw's own code knows better than a hand-written page
are generated here when the site is built: a page holds a marker, and the
hook replaces it with what the installed qhw says (the price table from
each provider's declared prices, the database tables from the ORM models).
"""

from __future__ import annotations

from typing import Any

#: Click 8.3 marks an option without a default with its UNSET sentinel, which
#: mkdocs-click 0.9 prints as that option's default; qhw's reference says none.
UNSET_DEFAULT = "<code>Sentinel.UNSET</code>"
PRICE_TABLE = "<!-- qhw:price-table -->"
DATABASE_TABLES = "<!-- qhw:database-tables -->"


def on_page_markdown(markdown: str, page: Any, **kwargs: Any) -> str:
    if PRICE_TABLE in markdown:
        markdown = markdown.replace(PRICE_TABLE, price_table())
    if DATABASE_TABLES in markdown:
        markdown = markdown.replace(DATABASE_TABLES, database_tables())
    return markdown


def on_page_content(html: str, page: Any, **kwargs: Any) -> str:
    if page.file.src_uri == "reference/cli.md":
        return html.replace(UNSET_DEFAULT, "none")
    return html


def price_table() -> str:
    """qhw's default prices, every key and device, as `load_prices` starts from them."""
    from qhw.pricing import PRICES_TAKEN, default_prices

    rows = ["| price | device | value | unit |", "|---|---|---:|---|"]
    for key, value in sorted(default_prices().items()):
        unit = "USD" if "usd" in key else "s" if "seconds" in key else ""
        if isinstance(value, dict):
            rows += [f"| `{key}` | `{device}` | {price:g} | {unit} |" for device, price in sorted(value.items())]
        else:
            rows.append(f"| `{key}` | (any) | {value:g} | {unit} |")
    return f"qhw's table of {PRICES_TAKEN}:\n\n" + "\n".join(rows)


def database_tables() -> str:
    """Every table of the ledger and its columns, from qhw's ORM models (the migrations' head)."""
    from qhw.store.models import Base

    described = {mapper.class_.__tablename__: mapper.class_.__doc__ for mapper in Base.registry.mappers}
    sections = []
    for table in Base.metadata.sorted_tables:
        rows = ["| column | type | null | key |", "|---|---|---|---|"]
        for column in table.columns:
            keys = ["primary"] if column.primary_key else []
            keys += [f"-> `{foreign.target_fullname}`" for foreign in column.foreign_keys]
            rows.append(f"| `{column.name}` | {column.type} | {'yes' if column.nullable else 'no'} | {', '.join(keys)} |")
        doc = " ".join((described.get(table.name) or "").split())
        sections.append(f"### `{table.name}`\n\n{doc + chr(10) + chr(10) if doc else ''}" + "\n".join(rows))
    return "\n\n".join(sections)
