"""The tracking database, split by what it keeps, and its artifact store.

- :mod:`qhw.store.database`: engine, the transaction helper, schema upgrades;
- :mod:`qhw.store.ledger`: runs, jobs, the job state machine and claims;
- :mod:`qhw.store.results`: counts, readout calibrations, mitigated results;
- :mod:`qhw.store.catalogue`: feature sets, models and evaluations;
- :mod:`qhw.store.artifacts`: the objects those rows name (arrays, weights,
  device documents, reports), by content.

ORM rows stay inside this package; callers get the frozen records of
:mod:`qhw.records`.
"""

from __future__ import annotations

from contextlib import AbstractContextManager

from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from qhw.store.artifacts import ArtifactStore, default_url
from qhw.store.catalogue import Catalogue
from qhw.store.database import Database, masked_url
from qhw.store.ledger import Ledger, RunCircuit
from qhw.store.results import COUNTS_DTYPE, Results, RunCounts

__all__ = ("COUNTS_DTYPE", "ArtifactStore", "Catalogue", "Database", "Ledger", "Results", "RunCircuit", "RunCounts", "Store", "masked_url")


class Store:
    """One tracking database, its three parts, and the artifact store its rows
    name (``artifacts``: a URL or a store; by default ``QHW_ARTIFACTS``, else
    the home's folder), in the shape of MLflow's ``SqlAlchemyStore(db_uri,
    default_artifact_root)``: what a command uses is passed in, never read
    from module state.

    Opening a Store creates a fresh database at the schema head and refuses an
    outdated one (see :func:`qhw.schema.ensure_current`). The artifact store is
    made on first use: a remote one may connect as it is made, and most
    commands never read an object.
    """

    def __init__(self, url: str, *, artifacts: str | ArtifactStore | None = None, check_schema: bool = True) -> None:
        self.database = Database(url, check_schema=check_schema)
        self.ledger = Ledger(self.database)
        self.results = Results(self.database)
        self.catalogue = Catalogue(self.database)
        self._artifacts = artifacts if isinstance(artifacts, ArtifactStore) else None
        self.artifacts_url = artifacts.url if isinstance(artifacts, ArtifactStore) else artifacts or default_url()

    @property
    def artifacts(self) -> ArtifactStore:
        """The artifact store (made now if it was named by its URL)."""
        if self._artifacts is None:
            self._artifacts = ArtifactStore(self.artifacts_url)
        return self._artifacts

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
