"""MkDocs hooks of qhw's documentation site (mkdocs.yml, `hooks:`)."""

from __future__ import annotations

from typing import Any

#: Click 8.3 marks an option without a default with its UNSET sentinel, which
#: mkdocs-click 0.9 prints as that option's default; qhw's reference says none.
UNSET_DEFAULT = "<code>Sentinel.UNSET</code>"


def on_page_content(html: str, page: Any, **kwargs: Any) -> str:
    if page.file.src_uri == "reference/cli.md":
        return html.replace(UNSET_DEFAULT, "none")
    return html
