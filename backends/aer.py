"""Ideal simulation with Qiskit Aer: ``aer_simulator``."""

from __future__ import annotations

from contextlib import AbstractContextManager, nullcontext
from datetime import datetime
from typing import Sequence

import numpy as np

from qhw.backend import LOCAL_SHOTS_PER_JOB, Backend, BackendLimits, Executable, JobResult, JobStatus
from qhw.pricing import PriceTable
from qhw.records import JobUsage, ProviderUsage
from qhw.backends._qiskit_jobs import InProcessJobs, job_status, local_job_counts

NAME = "aer_simulator"


def backend_names() -> list[str]:
    return [NAME]


def create(name: str, *, seed: int | None = None) -> Backend | None:
    return AerBackend(seed=seed) if name == NAME else None


class AerBackend:
    """Noise-free shot sampling on Aer's SamplerV2."""

    name = NAME
    provider = "aer"
    kind = "simulator"
    description = "Qiskit Aer, ideal (no noise)"
    is_paid = False
    is_local = True
    listing_grace_seconds = 0.0  # nothing to look up: jobs live in this process
    # Aer has no per-job limit of its own: 1,000 circuits and 2**20 shots a job
    # keep memory flat (see LOCAL_SHOTS_PER_JOB) and let progress move.
    limits = BackendLimits(max_shots=1_000_000, max_circuits_per_job=1000).capped(LOCAL_SHOTS_PER_JOB)

    def __init__(self, seed: int | None = None) -> None:
        from qiskit_aer import AerSimulator

        self._simulator = AerSimulator()
        self.num_qubits = self._simulator.num_qubits
        self._seed = seed
        self._threads: int | None = None
        self._jobs = InProcessJobs(NAME)

    def transpile(self, template, *, seed: int | None = None, initial_layout: Sequence[int] | None = None) -> Executable:
        from qiskit.transpiler import generate_preset_pass_manager

        manager = generate_preset_pass_manager(optimization_level=1, backend=self._simulator, seed_transpiler=seed, initial_layout=initial_layout)
        circuit = manager.run(template)
        return Executable(circuit=circuit, layout=tuple(range(template.num_qubits)))

    def batch(self, n_jobs: int) -> AbstractContextManager[None]:
        return nullcontext()  # no provider sessions here

    def submit(
        self,
        executable: Executable,
        parameter_values: np.ndarray,
        shots: int,
        tags: Sequence[str],
        *,
        seed: int | None = None,
        idempotency_key: str | None = None,
    ) -> str:
        from qiskit_aer.primitives import SamplerV2

        options = {"backend_options": {"max_parallel_threads": self._threads}} if self._threads else None
        sampler = SamplerV2(seed=seed if seed is not None else self._seed, options=options)
        return self._jobs.add(sampler.run([(executable.circuit, parameter_values)], shots=shots))

    def use_threads(self, threads: int | None) -> None:
        self._threads = threads

    def find_job(self, idempotency_key: str, since: datetime) -> str | None:
        return None  # jobs live only in the process that ran them

    def status(self, job_id: str) -> JobStatus:
        return job_status(self._jobs.get(job_id))

    def result(self, job_id: str, *, executable: Executable, executions: int, shots: int) -> JobResult:
        return local_job_counts(self._jobs.get(job_id), executable, executions)

    def cancel(self, job_id: str) -> None:
        self._jobs.get(job_id).cancel()

    credentials_configured = None

    def check_credentials(self) -> None:
        pass  # none needed

    def check(self, n_circuits: int, shots: int) -> None:
        pass  # nothing beyond the static limits

    def usage(self, job_id: str) -> ProviderUsage:
        return ProviderUsage()

    def calibration(self, layout: Sequence[int]) -> None:
        return None  # ideal: nothing to calibrate

    def estimate_cost(self, job_sizes: Sequence[int], shots: int, prices: PriceTable) -> None:
        return None

    def device_graph(self, *, offline: bool = False, document: str | None = None) -> None:
        return None  # a simulator: any qubit with any other, no calibration

    def price_table(self, prices: PriceTable) -> PriceTable:
        return prices

    def job_cost(self, job: JobUsage, prices: PriceTable) -> float:
        return 0.0
