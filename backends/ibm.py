"""IBM Quantum through qiskit-ibm-runtime.

``fake_<device>`` runs Runtime's local testing mode: SamplerV2 with a fake
backend, so the device's calibrated noise applies and the code path (preset
pass manager at level 3 against the device target, SamplerV2 with parameter
broadcasting) is the one real devices use.
"""

from __future__ import annotations

import warnings
from typing import Any, Sequence

import numpy as np

from qhw.backend import Backend, BackendLimits, Executable, JobStatus
from qhw.backends._qiskit_jobs import InProcessJobs, job_counts, job_status
from qhw.circuits import QUBITS
from qhw.errors import ConfigError

FAKE_PREFIX = "fake_"
#: IBM Quantum accepts at most this many executions (circuits x shots) per job.
MAX_EXECUTIONS_PER_JOB = 10_000_000
DEFAULT_MAX_SHOTS = 100_000
NAMES_SUMMARY = "fake_<device> for any fake IBM device with 5+ qubits (fake_manila, fake_lima, fake_brisbane, ...)"


def backend_names() -> list[str]:
    return [device.name for device in _fake_devices() if device.num_qubits >= QUBITS]


def create(name: str, *, seed: int | None = None) -> Backend | None:
    if not name.startswith(FAKE_PREFIX):
        return None
    device = next((d for d in _fake_devices() if d.name == name), None)
    if device is None:
        return None
    if device.num_qubits < QUBITS:
        raise ConfigError(f"{name} has {device.num_qubits} qubit(s); the feature map needs {QUBITS}")
    return IBMBackend(device, seed=seed)


def _fake_devices() -> list[Any]:
    from qiskit_ibm_runtime.fake_provider import FakeProviderForBackendV2

    # Building the catalogue instantiates every fake device, and some warn
    # about their own placeholder properties although the user chose another.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return FakeProviderForBackendV2().backends()


class IBMBackend:
    """A Runtime device (here: a fake one in local testing mode)."""

    provider = "ibm"
    is_paid = False
    is_local = True
    kind = "local simulator"

    def __init__(self, device: Any, *, seed: int | None = None) -> None:
        self._device = device
        self._seed = seed
        self.name = device.name
        self.num_qubits = device.num_qubits
        self.limits = BackendLimits(
            max_shots=int(getattr(device, "_conf_dict", {}).get("max_shots", DEFAULT_MAX_SHOTS)),
            max_executions_per_job=MAX_EXECUTIONS_PER_JOB,
        )
        self._jobs = InProcessJobs(self.name)

    def transpile(self, template, *, seed: int | None = None) -> Executable:
        from qiskit.transpiler import generate_preset_pass_manager

        manager = generate_preset_pass_manager(optimization_level=3, backend=self._device, seed_transpiler=seed)
        circuit = manager.run(template)
        # Measurements keep their classical bits, so counts come back per logical
        # qubit; the layout is kept to say which physical qubits ran them.
        layout = circuit.layout.final_index_layout()[: template.num_qubits] if circuit.layout else range(template.num_qubits)
        return Executable(circuit=circuit, layout=tuple(int(q) for q in layout))

    def submit(
        self,
        executable: Executable,
        parameter_values: np.ndarray,
        shots: int,
        tags: Sequence[str],
        *,
        seed: int | None = None,
    ) -> str:
        sampler = _sampler(self._device)
        seed = seed if seed is not None else self._seed
        if seed is not None:
            sampler.options.simulator.seed_simulator = seed
        sampler.options.environment.job_tags = list(tags)
        job = sampler.run([(executable.circuit, parameter_values)], shots=shots)
        return self._jobs.add(job)

    def status(self, job_id: str) -> JobStatus:
        return job_status(self._jobs.get(job_id))

    def result(self, job_id: str) -> np.ndarray:
        return job_counts(self._jobs.get(job_id))

    def cancel(self, job_id: str) -> None:
        self._jobs.get(job_id).cancel()

    def estimate_cost(self, n_circuits: int, shots: int) -> float | None:
        return None


def _sampler(mode: Any):
    from qiskit_ibm_runtime import SamplerV2

    # SamplerV2 is deprecated from runtime 0.50 in favour of the client-side
    # executor Sampler; SamplerV2 is still the documented path for Batch mode
    # and local testing, so qhw keeps it until that changes.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        return SamplerV2(mode=mode)
