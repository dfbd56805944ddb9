"""The tracking database, split by what it keeps.

- :mod:`qhw.store.database`: engine, the transaction helper, schema upgrades;
- :mod:`qhw.store.ledger`: runs, jobs, the job state machine and claims;
- :mod:`qhw.store.results`: counts, readout calibrations, mitigated results;
- :mod:`qhw.store.catalogue`: feature sets, models and evaluations.

ORM rows stay inside this package; callers get the frozen records of
:mod:`qhw.records`.
"""

from __future__ import annotations

from contextlib import AbstractContextManager

from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from qhw.store.catalogue import Catalogue
from qhw.store.database import Database, masked_url
from qhw.store.ledger import Ledger, RunCircuit
from qhw.store.results import COUNTS_DTYPE, Results, RunCounts

__all__ = ["COUNTS_DTYPE", "Catalogue", "Database", "Ledger", "Results", "RunCircuit", "RunCounts", "Store", "masked_url"]


class Store:
    """One tracking database and its three parts.

    Opening a Store creates a fresh database at the schema head and refuses an
    outdated one (see :func:`qhw.schema.ensure_current`).
    """

    def __init__(self, url: str, *, check_schema: bool = True) -> None:
        self.database = Database(url, check_schema=check_schema)
        self.ledger = Ledger(self.database)
        self.results = Results(self.database)
        self.catalogue = Catalogue(self.database)

    @property
    def display_url(self) -> str:
        return self.database.display_url

    @property
    def engine(self) -> Engine:
        return self.database.engine

    def transaction(self, *, write: bool = True) -> AbstractContextManager[Session]:
        return self.database.transaction(write=write)

    def upgrade(self) -> tuple[str | None, str]:
        return self.database.upgrade()

    def close(self) -> None:
        self.database.close()
