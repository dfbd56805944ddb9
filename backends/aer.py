"""Ideal simulation with Qiskit Aer: ``aer_simulator``."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from qhw.backend import LOCAL_SHOTS_PER_JOB, Backend, BackendEntry, BackendLimits, DeviceProfile, Executable, JobResult, LocalBackend, OneEngine
from qhw.backends._qiskit_jobs import local_job_counts

if TYPE_CHECKING:
    from qhw.store.artifacts import ArtifactStore

NAME = "aer_simulator"
#: Aer has no per-job limit of its own: 1,000 circuits and 2**20 shots a job
#: keep memory flat (see LOCAL_SHOTS_PER_JOB) and let progress move.
LIMITS = BackendLimits(max_shots=1_000_000, max_circuits_per_job=1000).capped(LOCAL_SHOTS_PER_JOB)


def backend_names() -> list[str]:
    return [NAME]


def catalogue() -> list[BackendEntry]:
    """aer_simulator's row of ``qhw backends``. Its qubits are Aer's own limit
    for a statevector, computed as qiskit_aer.backends.backend_utils does
    (log2 of the memory over 16 bytes an amplitude) rather than by importing
    Aer, which takes about a second, for one cell; a test holds the two equal."""
    import math

    import psutil

    return [BackendEntry(NAME, "aer", "simulator", int(math.log2(psutil.virtual_memory().total / 16)), False, None)]


def create(name: str, *, seed: int | None = None, artifacts: ArtifactStore | None = None) -> Backend | None:
    return AerBackend(seed=seed) if name == NAME else None


class AerBackend(OneEngine, LocalBackend):
    """Noise-free shot sampling on Aer's SamplerV2 (a LocalBackend)."""

    name = NAME
    provider = "aer"
    kind = "simulator"
    description = "Qiskit Aer, ideal (no noise)"
    is_paid = False
    is_local = True
    credentials_configured = None
    runs_copies_in_one_job = False

    def __init__(self, seed: int | None = None) -> None:
        from qiskit_aer import AerSimulator

        self._simulator = AerSimulator()
        self.num_qubits = self._simulator.num_qubits
        self._seed = seed
        self._threads: int | None = None

    def check_credentials(self) -> None:
        pass  # none needed

    def profile(self, *, offline: bool = False, document: str | None = None) -> DeviceProfile:
        # A simulator: any qubit with any other, no calibration, nothing to read.
        return DeviceProfile(NAME, self.num_qubits, LIMITS, live=True, mid_circuit_reset=True)

    def transpile(self, template, *, seed: int | None = None, initial_layout: Sequence[int] | None = None) -> Executable:
        from qiskit.transpiler import generate_preset_pass_manager

        manager = generate_preset_pass_manager(optimization_level=1, backend=self._simulator, seed_transpiler=seed, initial_layout=initial_layout)
        circuit = manager.run(template)
        return Executable(circuit=circuit, layout=tuple(range(template.num_qubits)))

    def calibration(self, layout: Sequence[int]) -> None:
        return None  # ideal: nothing to calibrate

    def shot_timing(self, profile: DeviceProfile, template, reuse: int = 1, rep_delay: float | None = None) -> None:
        return None  # a simulator: no device time

    def use_threads(self, threads: int | None) -> None:
        self._threads = threads

    def run(self, executable: Executable, parameter_values: np.ndarray, shots: int, *, seed: int | None = None) -> JobResult:
        from qiskit_aer.primitives import SamplerV2

        options = {"backend_options": {"max_parallel_threads": self._threads}} if self._threads else None
        sampler = SamplerV2(seed=seed if seed is not None else self._seed, options=options)
        job = sampler.run([(executable.circuit, parameter_values)], shots=shots)
        return local_job_counts(job, executable, len(parameter_values))
