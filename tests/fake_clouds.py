"""What the stateful fakes of IBM Quantum (fake_ibm.py) and Amazon Braket
(fake_braket.py) share: a provider's memory in a file, and faults.

Each fake cloud keeps its memory in a file (pickled, locked for every
operation), so that it outlives any adapter and any process, as a real cloud
does: a new adapter, or a new `qhw` process, finds every job again. Jobs step
one state per status request: queued -> running -> done, or -> failed with a
reason; a cancel makes an unfinished job cancelled. Their shots are real: Aer
for IBM, Braket's state-vector simulator for Braket.

Faults are injected where they happen, at the client boundary, and answer as
the real services do: a timeout, a 429 / throttling, a 5xx, a job the
provider "forgets" once, or the calling process killed (SIGKILL) just before
or just after the provider acted. See :meth:`FakeCloud.inject`.
"""

from __future__ import annotations

import fcntl
import os
import pickle
import signal
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

STEPS = ["QUEUED", "RUNNING", "DONE"]


class FakeCloud:
    """A provider's memory in a file, and the faults waiting to happen."""

    def __init__(self, path: Path | str, **settings) -> None:
        self.path = Path(path)
        if not self.path.exists():
            self._save({"jobs": {}, "faults": [], "tokens": {}, "log": [], **self.defaults(), **settings})
        elif settings:
            with self.state() as state:
                state.update(settings)

    def defaults(self) -> dict:
        return {}

    # --- the file ------------------------------------------------------------------------

    @contextmanager
    def state(self) -> Iterator[dict]:
        """The cloud's memory, locked against other processes while in use."""
        with open(self.path.with_suffix(".lock"), "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            state = pickle.loads(self.path.read_bytes())
            try:
                yield state
            finally:  # what the cloud did stays done, even when it answers with an error
                self._save(state)

    def _save(self, state: dict) -> None:
        temporary = self.path.with_suffix(f".{os.getpid()}.tmp")
        temporary.write_bytes(pickle.dumps(state))
        os.replace(temporary, self.path)

    def _result_file(self, job_id: str) -> Path:
        import hashlib

        folder = self.path.with_suffix(".results")
        folder.mkdir(exist_ok=True)
        return folder / hashlib.sha1(job_id.encode()).hexdigest()

    def keep_result(self, job_id: str, result: Any) -> None:
        """A job's shots live beside the state, so that every state change stays small."""
        self._result_file(job_id).write_bytes(pickle.dumps(result))

    def load_result(self, job_id: str) -> Any:
        return pickle.loads(self._result_file(job_id).read_bytes())

    def read(self) -> dict:
        with self.state() as state:
            return state

    def __getattr__(self, name: str) -> Any:  # settings read as attributes: cloud.operational
        if name.startswith("_") or name in ("path",):
            raise AttributeError(name)
        return self.read()[name]

    def set(self, **settings) -> None:
        with self.state() as state:
            state.update(settings)

    # --- faults -----------------------------------------------------------------------------

    def inject(
        self, op: str, kind: str, *, times: int = 1, when: str = "before", job: str | None = None, after_calls: int = 0
    ) -> None:
        """Make the next ``times`` calls of ``op`` fail with ``kind``.

        Args:
            op: submit, status (a job's state), result, cancel, lookup (a search
                by tag), usage (IBM's metrics), device (Braket's GetDevice).
            kind: timeout, throttle, server (a 5xx), forget (the job is unknown),
                kill (SIGKILL the calling process), finish (a cancel that comes
                too late: the job finishes instead).
            when: "before" the cloud acts, or "after" (it acted, the answer is lost).
            after_calls: let this many matching calls through first.
        """
        with self.state() as state:
            state["faults"].append({"op": op, "kind": kind, "left": times, "when": when, "job": job, "skip": after_calls})

    def _take_fault(self, state: dict, op: str, when: str, job: str | None = None) -> str | None:
        for fault in state["faults"]:
            if fault["op"] == op and fault["when"] == when and fault["left"] > 0 and fault["job"] in (None, job):
                if fault["skip"] > 0:
                    fault["skip"] -= 1
                    return None
                fault["left"] -= 1
                state["log"].append((op, fault["kind"], when))
                return fault["kind"]
        return None

    def _fault(self, op: str, when: str = "before", job: str | None = None) -> None:
        with self.state() as state:
            kind = self._take_fault(state, op, when, job)
        if kind == "kill":
            os.kill(os.getpid(), signal.SIGKILL)
        if kind is not None and kind != "finish":
            raise self.error(op, kind)

    def error(self, op: str, kind: str) -> Exception:
        raise NotImplementedError

    def faults_left(self) -> int:
        return sum(fault["left"] for fault in self.read()["faults"])

    # --- bookkeeping shared by both clouds ---------------------------------------------------

    def _step(self, record: dict) -> str:
        if record["cancelled"]:
            return "CANCELLED"
        steps = record["steps"]
        state = steps[min(record["polls"], len(steps) - 1)]
        record["polls"] += 1
        return state


# --- a real `qhw` process against the fakes -------------------------------------------------------

FAKE_IBM_ENV = "QHW_TEST_FAKE_IBM"
FAKE_BRAKET_ENV = "QHW_TEST_FAKE_BRAKET"


class _Patch:
    """monkeypatch's setattr, for a process that is not a test."""

    @staticmethod
    def setattr(target, name, value) -> None:
        setattr(target, name, value)


def install_from_environment() -> None:
    """Answer the provider clients from the fake clouds named in the environment."""
    if os.environ.get(FAKE_IBM_ENV):
        from fake_ibm import FakeIBMCloud

        FakeIBMCloud(os.environ[FAKE_IBM_ENV]).install(_Patch)
    if os.environ.get(FAKE_BRAKET_ENV):
        from fake_braket import FakeBraketCloud

        FakeBraketCloud(os.environ[FAKE_BRAKET_ENV]).install(_Patch)
