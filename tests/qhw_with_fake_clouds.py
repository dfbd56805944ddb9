"""The real `qhw` command line, with the fake clouds in place of IBM and AWS.

Crash and concurrency tests run this as a subprocess (and SIGKILL it): the
fakes keep their memory in the files named by QHW_TEST_FAKE_IBM and
QHW_TEST_FAKE_BRAKET, so it survives the process, as a real cloud would.

QHW_TEST_KILL_AT=<point>[:<n>] kills this process (SIGKILL) at the n-th
(default first) pass through a point inside qhw itself:

- ``storing``: inside the transaction that stores a job's counts, after the
  job was marked collected and before the commit;
- ``stored``: right after that commit, before the job's claim is released;
- ``rounding``: inside the transaction that starts an adaptive run's next
  round, its jobs written and not committed (in a process that did not
  create the run, the first jobs it writes are a round's);
- ``rounded``: right after that commit, before the round's jobs are sent;
- ``repaired``: right after the commit that starts a --quality auto repair,
  before its jobs are sent (inside that transaction: ``rounding``, whose
  passes count a repair's jobs as a round's).

QHW_TEST_SLOW_TRACKER_LOOKUP=<seconds> sleeps after every MLflow lookup
that finds nothing (`qhw mlflow log`), so that two processes both pass
through the window between finding nothing and creating a run.

QHW_TEST_IBM_MAX_EXECUTIONS caps IBM's executions per job, and
QHW_TEST_IBM_LOCAL_CIRCUITS_PER_JOB the circuits of a fake device's local
job (on either engine), to make runs of several jobs from few samples.
"""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from fake_clouds import install_from_environment  # noqa: E402


def _kill_at(point: str, original):
    wanted, _, nth = os.environ.get("QHW_TEST_KILL_AT", "").partition(":")
    if wanted != point:
        return original
    passes = {"count": 0}

    def wrapper(*args, **kwargs):
        result = original(*args, **kwargs)
        passes["count"] += 1
        if passes["count"] == int(nth or 1):
            os.kill(os.getpid(), signal.SIGKILL)
        return result

    return wrapper


def main() -> None:
    install_from_environment()
    from qhw.store import ledger
    from qhw.store.results import Results
    from qhw.worker import RunWorker

    Results._end = staticmethod(_kill_at("storing", Results._end))
    RunWorker._store_counts = _kill_at("stored", RunWorker._store_counts)
    ledger._add_jobs = _kill_at("rounding", ledger._add_jobs)
    ledger.Ledger.next_round = _kill_at("rounded", ledger.Ledger.next_round)
    ledger.Ledger.start_repair = _kill_at("repaired", ledger.Ledger.start_repair)
    if os.environ.get("QHW_TEST_IBM_MAX_EXECUTIONS"):
        import qhw.backends.ibm as ibm_adapter

        ibm_adapter.MAX_EXECUTIONS_PER_JOB = int(os.environ["QHW_TEST_IBM_MAX_EXECUTIONS"])
    if os.environ.get("QHW_TEST_IBM_LOCAL_CIRCUITS_PER_JOB"):
        import qhw.backends._engines as engines
        import qhw.backends.ibm as ibm_adapter

        ibm_adapter.LOCAL_CIRCUITS_PER_JOB = engines.DENSITY_CIRCUITS_PER_JOB = int(os.environ["QHW_TEST_IBM_LOCAL_CIRCUITS_PER_JOB"])

    if os.environ.get("QHW_TEST_SLOW_TRACKER_LOOKUP"):
        import time

        from qhw import tracking

        lookup, pause = tracking._find, float(os.environ["QHW_TEST_SLOW_TRACKER_LOOKUP"])

        def slow_lookup(*args, **kwargs):
            found = lookup(*args, **kwargs)
            if found is None:
                time.sleep(pause)
            return found

        tracking._find = slow_lookup

    from qhw.cli import run

    run()


if __name__ == "__main__":
    main()
