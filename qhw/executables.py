"""A run's executables: its template compiled for the device, alone or as packed copies.

qhw.planning decides the copies and where they go; this compiles them, and
refuses, in one line and before anything is written, a template the device
cannot express (a gate outside its basis with no translation, too few coupled
qubits) or copies the compiler would not keep on their qubits.
"""

from __future__ import annotations

from qhw import circuits
from qhw.backend import Backend, Executable
from qhw.errors import BackendError, ConfigError
from qhw.planning import PackingPlan


def packed_executable(
    backend: Backend, plan: PackingPlan, seed: int | None, *, template, reuse: int = 1, initial_layout: tuple[int, ...] | None = None
) -> Executable:
    """The run's executable: the template alone, or ``plan.copies`` copies of
    it, each run ``reuse`` times in a shot (measured, then reset), compiled
    onto the partition's qubits (checked: the compiler must keep them).
    ``initial_layout`` places a template of one copy (the readout calibration
    on the feature map's qubits).

    Raises:
        ConfigError: the device cannot express the template.
        BackendError: the compiler placed the copies elsewhere than the partition.
    """
    if plan.copies == 1 and plan.partition is None and reuse == 1:
        return _compiled(backend, template, seed, initial_layout)
    packed = circuits.packed(template, plan.copies, reuse)
    if backend.kind == "simulator":  # ideal: each slot simulated alone (qhw.parallel.run_local_job)
        return Executable(circuit=packed, layout=tuple(range(template.num_qubits * plan.copies)), copies=plan.copies, reuse=reuse)
    placed = plan.partition.qubits if plan.partition is not None else initial_layout
    compiled = _compiled(backend, packed, seed, placed)
    if placed is not None and tuple(compiled.layout) != tuple(placed):
        raise BackendError(f"{backend.name} placed the copies on qubits {compiled.layout}, not {placed}")
    return Executable(circuit=compiled.circuit, layout=tuple(compiled.layout), copies=plan.copies, reuse=reuse)


def _compiled(backend: Backend, circuit, seed: int | None, initial_layout) -> Executable:
    """The backend's compilation of ``circuit``; a circuit it cannot express
    (a gate outside its basis with no translation, too few coupled qubits)
    is refused in one line, before anything is written."""
    from qiskit.transpiler import TranspilerError

    try:
        return backend.transpile(circuit, seed=seed, initial_layout=initial_layout)
    except TranspilerError as err:
        raise ConfigError(f"{backend.name} cannot run the feature map: {_transpiler_reason(err)}") from err


def _transpiler_reason(err) -> str:
    """A TranspilerError's message without Qiskit's advice and link, which follow its first sentence."""
    return err.message.split(". This likely means")[0]


def calibration_executable(backend: Backend, plan: PackingPlan, seed: int | None, executable: Executable) -> Executable:
    """The readout calibration on exactly the physical qubits the feature map's
    executable uses (each copy's), at each of its positions: a mid-circuit
    measurement errs as it does, not as the final one.

    Raises:
        BackendError: the compiler placed it elsewhere.
    """
    calibration = packed_executable(
        backend, plan, seed, template=circuits.readout_calibration(executable.width), reuse=executable.reuse,
        initial_layout=executable.layout,
    )
    if tuple(calibration.layout) != tuple(executable.layout):
        raise BackendError(f"{backend.name} placed the calibration on qubits {calibration.layout}, not {executable.layout}")
    return calibration
