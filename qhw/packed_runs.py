"""How a run packs copies of the feature map into each execution (``--pack``).

qhw.packing places copies on a device's graph; this module turns the user's
``--pack auto|N`` and ``--pack-spacing`` into the copies a run uses and the
executable that carries them:

- a device (an IBM device or fake, a Braket QPU or its emulation): the
  partition of its graph, and the packed template compiled onto exactly the
  partition's qubits;
- an ideal simulator, which has no qubits to share: ``--pack N`` puts N
  copies side by side on N * Q virtual qubits (they are simulated apart, see
  qhw.parallel.run_local_job), ``auto`` one;
- before the network is touched (the estimate and ``--max-cost``), the
  device as known offline: an IBM device by the snapshot qiskit-ibm-runtime
  ships of it; a device with no snapshot is estimated at one copy an
  execution, and the note says so.
"""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass

from qhw import circuits, feature_maps, packing
from qhw.backend import Backend, Executable
from qhw.errors import BackendError, ConfigError
from qhw.records import JobPlan

AUTO = "auto"


def check_pack(pack: int | str, spacing: int) -> int | None:
    """``--pack`` as a number of copies (None for auto), and ``--pack-spacing``, checked.

    Raises:
        ConfigError: neither auto nor a whole number from 1 to 1024, or a spacing other than 0 or 1.
    """
    if spacing not in (0, 1) or isinstance(spacing, bool):
        raise ConfigError(f"--pack-spacing must be 0 (neighbouring copies) or 1 (an idle qubit between copies), got {spacing}")
    return packing.parse_copies(pack)


@dataclass(frozen=True)
class PackingPlan:
    """The copies an execution carries, and where they are."""

    copies: int
    partition: packing.Partition | None  # None: one copy where the transpiler puts it, or a simulator's copies
    notes: tuple[str, ...] = ()

    def to_json(self) -> str | None:
        """What is stored with the run (None for a run of one copy placed by the transpiler)."""
        if self.partition is None:
            return None if self.copies == 1 else json.dumps({"spacing": None, "estimated_errors": None})
        return json.dumps(
            {"spacing": self.partition.spacing, "estimated_errors": [copy.estimated_error for copy in self.partition.copies]}
        )


def plan_packing(
    backend: Backend, wanted: int | None, spacing: int, *, offline: bool, document: str | None = None, template=None,
    circuits_to_run: int | None = None,
) -> PackingPlan:
    """The copies for ``--pack`` (``wanted``: None for auto) on ``backend``;
    offline, ``document`` is the device's own document kept with an earlier
    run. ``template``: the feature map (the paper's 5-qubit map when None).
    ``circuits_to_run``: the circuits the run has to run; an execution carries no
    more copies than that (an empty copy is simulated, or paid for, for nothing).

    Raises:
        ConfigError: more copies than fit, a device with no chain of the
            template's width, a template that is not a chain.
    """
    if wanted is not None and circuits_to_run is not None and wanted > circuits_to_run:
        note = f"--pack {wanted}: the run has {circuits_to_run} circuit(s) to run, so {circuits_to_run} copies an execution at most"
        plan = plan_packing(backend, circuits_to_run, spacing, offline=offline, document=document, template=template)
        return dataclasses.replace(plan, notes=(note, *plan.notes))
    if wanted == 1:
        return PackingPlan(1, None)
    template = template if template is not None else circuits.feature_map()
    width = template.num_qubits
    graph = backend.device_graph(offline=offline, document=document)
    if graph is None:
        if backend.kind == "simulator":
            if wanted is None:
                note = f"--pack auto: {backend.name} is a simulator, with no qubits to share; one copy an execution"
                return PackingPlan(1, None, (note,))
            return PackingPlan(wanted, None)
        if backend.kind == "managed simulator":
            # Billed by the time it runs, which grows with the qubits simulated at once.
            if wanted is not None:
                raise ConfigError(f"--pack {wanted}: {backend.name} is a managed simulator, billed by its run time; packing saves nothing there")
            return PackingPlan(1, None, (f"--pack auto: {backend.name} is a managed simulator; one copy an execution",))
        if not feature_maps.is_chain(template):
            return _not_a_chain(wanted, backend)
        note = (
            f"no topology of {backend.name} is known before it is read (no earlier run kept its document): "
            "the estimate assumes one copy an execution; the copies are placed once the device is read"
        )
        return PackingPlan(1, None, (note,))
    if not feature_maps.is_chain(template):
        return _not_a_chain(wanted, backend)
    try:
        partition = packing.partition(graph, width=width, copies=wanted, spacing=spacing)
    except packing.NoChainError as err:
        if wanted is not None:
            raise
        return PackingPlan(1, None, (f"--pack auto: {err}; one copy an execution, where the compiler places it",))
    notes = ()
    if wanted is None and circuits_to_run is not None and len(partition.copies) > circuits_to_run:
        if circuits_to_run == 1:
            return PackingPlan(1, None, ("--pack auto: the run has one circuit to run; one copy an execution",))
        partition = packing.Partition(copies=partition.copies[:circuits_to_run], spacing=partition.spacing)
        notes = (
            f"--pack auto: the run has {circuits_to_run} circuits to run, so {circuits_to_run} copies an execution "
            "(the device's best chains)",
        )
    elif wanted is None:
        count = len(partition.copies)
        room = "room for one copy" if count == 1 else f"room for {count} copies"
        notes = (f"--pack auto: {backend.name} has {room} of the {width}-qubit feature map (spacing {spacing})",)
    return PackingPlan(len(partition.copies), partition, notes)


def _not_a_chain(wanted: int | None, backend: Backend) -> PackingPlan:
    """A template with a gate between qubits that are not neighbours in its
    order would need swaps to fit a chain of the device, and swaps could reach
    another copy's qubits: such a map runs one copy an execution."""
    reason = "the feature map has a gate between qubits that are not neighbours in its order, so its copies cannot be placed on chains"
    if wanted is not None:
        raise ConfigError(f"--pack {wanted}: {reason}; use --pack 1")
    return PackingPlan(1, None, (f"--pack auto: {reason}; one copy an execution on {backend.name}",))


def packed_executable(
    backend: Backend, plan: PackingPlan, seed: int | None, *, template=None, initial_layout: tuple[int, ...] | None = None
) -> Executable:
    """The run's executable: the template (the feature map by default) alone,
    or ``plan.copies`` copies of it compiled onto the partition's qubits
    (checked: the compiler must keep them). ``initial_layout`` places a
    template of one copy (the readout calibration on the feature map's qubits).

    Raises:
        BackendError: the compiler placed the copies elsewhere than the partition.
    """
    template = template if template is not None else circuits.feature_map()
    if plan.copies == 1 and plan.partition is None:
        return _compiled(backend, template, seed, initial_layout)
    packed = circuits.packed(template, plan.copies)
    if plan.partition is None:  # an ideal simulator: copies side by side, simulated apart
        return Executable(circuit=packed, layout=tuple(range(template.num_qubits * plan.copies)), copies=plan.copies)
    compiled = _compiled(backend, packed, seed, plan.partition.qubits)
    if tuple(compiled.layout) != plan.partition.qubits:
        raise BackendError(f"{backend.name} placed the copies on qubits {compiled.layout}, not {plan.partition.qubits}")
    return Executable(circuit=compiled.circuit, layout=tuple(compiled.layout), copies=plan.copies)


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


def packed_sizes(plans: list[JobPlan], copies: int) -> list[int]:
    """The executions each job sends: its logical executions, ``copies`` to one."""
    return [math.ceil(plan.executions / copies) for plan in plans]
