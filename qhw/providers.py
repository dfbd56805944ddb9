"""Where backend adapters come from: qhw's own provider modules and the
``qhw.backends`` entry point group (see qhw.backend for what a provider
module exposes).

A module of its own, importing neither the backend contract nor the price
tables, so that both can ask for the provider modules without importing
each other.
"""

from __future__ import annotations

import importlib
from typing import Any

ENTRY_POINT_GROUP = "qhw.backends"
BUILTIN_PROVIDER_MODULES = ("qhw.backends.aer", "qhw.backends.statevector", "qhw.backends.ibm", "qhw.backends.braket")


def provider_modules() -> list[Any]:
    """The built-in provider modules and those of the ``qhw.backends`` entry point."""
    from importlib.metadata import entry_points

    modules = [importlib.import_module(name) for name in BUILTIN_PROVIDER_MODULES]
    for entry_point in entry_points(group=ENTRY_POINT_GROUP):
        modules.append(entry_point.load())
    return modules
