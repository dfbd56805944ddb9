"""Feature maps: the circuit a sample's components are bound to.

A feature map is a *template*: a circuit of Q qubits (2 to 12) and P
parameters, each qubit measured once at the end, qubit i into bit i of the
register ``meas`` (the canonical order of DESIGN.md), its parameters the
vector ``theta`` in the map's own order. Everything below the feature set
(transpilation, packing, the ledger, the adapters, the classifier) sees only
that template, so every map runs wherever the paper's does.

Built-ins, and the range each one's angles are scaled to (PCA components are
min-max scaled on the train split into it, test components clipped):

- ``paper``: Ry(theta_i), H, a CNOT cascade (arXiv 2408.03351). Qubit i
  reads 1 with probability (1 - sin theta_i)/2 before the cascade: one-to-one
  on [-pi/2, pi/2], which is its range.
- ``zz``: Qiskit's ``zz_feature_map`` (Havlicek et al., Nature 2019), linear
  entanglement: H, P(2 x_i), then CX P(2 (pi - x_i)(pi - x_j)) CX on each
  neighbouring pair, ``reps`` times. Range [0, pi], where the pair phase
  (pi - x_i)(pi - x_j) is one-to-one in each factor. Linear, not Qiskit's
  default full entanglement: for two qubits they are the same circuit, and a
  chain needs no swap on hardware and packs (qhw.packing places chains).
- ``angle``: Ry(theta_i) alone, no entanglement: the classical control
  (a product state; each qubit reads 1 with probability sin^2(theta_i/2),
  one-to-one on [0, pi]).
- ``reupload``: data re-uploading (Perez-Salinas et al., Quantum 2020):
  ``reps`` layers, each Ry(theta_i) Rz(theta_i) on every qubit and CZ on
  each neighbouring pair, the same components uploaded in every layer.
  Range [0, pi] (the first layer's Ry is one-to-one there).

A file: OpenQASM 3 with ``input float`` (or ``input angle``) parameters,
taken in their order of declaration, or QPY with Qiskit parameters, taken as
Qiskit orders them (by name, vector elements by index). Gates of the standard
library (and gates defined from them, which are expanded); every qubit
measured once at the end, or none measured (then all are, in order). Outcome
bit i is qubit i, whatever classical bit the file measured it into. Range
[0, pi] unless ``angle_range`` says otherwise.
"""

from __future__ import annotations

import hashlib
import math
import re
from dataclasses import dataclass
from pathlib import Path

from qhw.errors import ConfigError

BUILT_IN = ("paper", "zz", "angle", "reupload")
DEFAULT = "paper"
MIN_QUBITS = 2
MAX_QUBITS = 12
DEFAULT_QUBITS = 5
DEFAULT_REPS = 2
#: Built-ins whose circuit repeats (``--reps``).
REPEATED = ("zz", "reupload")
ANGLE_RANGES = {
    "paper": (-math.pi / 2, math.pi / 2),
    "zz": (0.0, math.pi),
    "angle": (0.0, math.pi),
    "reupload": (0.0, math.pi),
}
FILE_ANGLE_RANGE = (0.0, math.pi)
#: Instructions a template may hold besides gates (barriers order nothing here).
_IGNORED = ("barrier",)
_REFUSED = {
    "reset": "a reset",
    "delay": "a delay",
    "initialize": "an initialize",
    "if_else": "classical control flow",
    "while_loop": "classical control flow",
    "for_loop": "classical control flow",
    "switch_case": "classical control flow",
    "box": "a box",
}


@dataclass(frozen=True)
class FeatureMap:
    """A feature map ready to store with a feature set."""

    name: str  # a built-in's name, or "file:<file name>"
    template: object  # qiskit QuantumCircuit in the canonical form of the module docstring
    angle_range: tuple[float, float]
    reps: int | None = None
    source_sha256: str | None = None  # of a file's bytes

    @property
    def num_qubits(self) -> int:
        return self.template.num_qubits

    @property
    def num_parameters(self) -> int:
        return self.template.num_parameters

    def circuits_for(self, components: int | None) -> int:
        """K, the circuits a sample, for ``components`` (None: one circuit).

        Raises:
            ConfigError: components is not a positive multiple of the map's parameters.
        """
        if components is None:
            return 1
        p = self.num_parameters
        if components <= 0 or components % p:
            raise ConfigError(
                f"--components must be a positive multiple of the {p} parameters of the {self.name} feature map "
                f"(one circuit for every {p} components), got {components}"
            )
        return components // p


def resolve(
    name_or_file: str = DEFAULT,
    *,
    qubits: int | None = None,
    reps: int | None = None,
    angle_range: tuple[float, float] | None = None,
) -> FeatureMap:
    """The feature map ``--feature-map`` names: a built-in, or a file's path.

    Raises:
        ConfigError: an unknown name, a missing or unreadable file, a circuit
            qhw cannot run as a feature map, or options that do not fit the map.
    """
    if qubits is not None and not MIN_QUBITS <= qubits <= MAX_QUBITS:
        raise ConfigError(f"--qubits must be between {MIN_QUBITS} and {MAX_QUBITS}, got {qubits}")
    if reps is not None and reps < 1:
        raise ConfigError(f"--reps must be 1 or more, got {reps}")
    if angle_range is not None:
        low, high = angle_range
        if not (math.isfinite(low) and math.isfinite(high) and low < high):
            raise ConfigError(f"--angle-range must be two finite numbers LOW:HIGH with LOW < HIGH, got {low}:{high}")
    if name_or_file in BUILT_IN:
        if reps is not None and name_or_file not in REPEATED:
            raise ConfigError(f"--reps applies to the {' and '.join(REPEATED)} feature maps, not {name_or_file}")
        width = qubits or DEFAULT_QUBITS
        repeats = (reps or DEFAULT_REPS) if name_or_file in REPEATED else None
        template = _built_in(name_or_file, width, repeats)
        return FeatureMap(name_or_file, template, angle_range or ANGLE_RANGES[name_or_file], repeats)
    path = Path(name_or_file)
    if not path.suffix and "/" not in name_or_file:
        raise ConfigError(f"--feature-map must be one of {', '.join(BUILT_IN)} or a .qasm or .qpy file, got {name_or_file!r}")
    if reps is not None:
        raise ConfigError(f"--reps applies to the {' and '.join(REPEATED)} feature maps, not to a file")
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise ConfigError(f"--feature-map: no file {path}") from None
    except OSError as err:
        raise ConfigError(f"--feature-map: cannot read {path}: {err.strerror or err}") from None
    circuit, ordered = _load_file(path, data)
    template = canonical(circuit, ordered, label=path.name)
    if qubits is not None and qubits != template.num_qubits:
        raise ConfigError(f"--qubits {qubits}: {path.name} has {template.num_qubits} qubits")
    return FeatureMap(f"file:{path.name}", template, angle_range or FILE_ANGLE_RANGE, None, hashlib.sha256(data).hexdigest())


def _built_in(name: str, width: int, reps: int | None):
    from qhw import circuits

    if name == "paper":
        return circuits.feature_map(width)
    template, theta = circuits.parameterised_circuit(width, f"qhw_{name}")
    if name == "angle":
        for i in range(width):
            template.ry(theta[i], i)
    elif name == "reupload":
        for _ in range(reps):
            for i in range(width):
                template.ry(theta[i], i)
                template.rz(theta[i], i)
            for i in range(width - 1):
                template.cz(i, i + 1)
    else:  # zz
        from qiskit.circuit.library import zz_feature_map

        zz = zz_feature_map(width, reps=reps, entanglement="linear")
        ordered = sorted(zz.parameters, key=lambda p: p.index)
        template.compose(zz.assign_parameters(dict(zip(ordered, theta))), qubits=range(width), inplace=True)
    template.measure(range(width), range(width))
    return template


def _load_file(path: Path, data: bytes):
    """The file's circuit and its parameters in the order they are bound."""
    if data.startswith(b"QISKIT"):  # QPY's magic
        from qiskit import qpy

        try:
            circuits = qpy.load(__import__("io").BytesIO(data))
        except Exception as err:  # QpyError, struct errors on truncation, a newer QPY version
            raise ConfigError(f"{path.name}: not a QPY file qhw can read ({type(err).__name__}: {_first_line(err)})") from None
        if len(circuits) != 1:
            raise ConfigError(f"{path.name}: holds {len(circuits)} circuits; a feature map is one")
        circuit = circuits[0]
        return circuit, list(circuit.parameters)
    if path.suffix.lower() == ".qpy":
        raise ConfigError(f"{path.name}: not a QPY file (it does not start with QPY's header)")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise ConfigError(f"{path.name}: neither QPY nor OpenQASM 3 text (not UTF-8)") from None
    return _load_qasm3(path.name, text)


def _load_qasm3(label: str, text: str):
    import openqasm3
    from openqasm3 import ast
    from qiskit import qasm3

    try:
        program = openqasm3.parse(text)
    except Exception as err:  # QASM3ParsingError: antlr's message is on the cause
        raise ConfigError(f"{label}: OpenQASM 3 syntax error{_where(err)}") from None
    if program.version is not None and not str(program.version).startswith("3"):
        raise ConfigError(f"{label}: OpenQASM {program.version}; qhw reads OpenQASM 3")
    declared = [
        statement.identifier.name
        for statement in program.statements
        if isinstance(statement, ast.IODeclaration) and statement.io_identifier == ast.IOKeyword.input
    ]
    try:
        circuit = qasm3.loads(text)
    except Exception as err:  # QASM3ImporterError and the like: an undefined gate, an unsupported construct
        raise ConfigError(f"{label}: {_first_line(err)}") from None
    by_name = {parameter.name: parameter for parameter in circuit.parameters}
    unused = [name for name in declared if name not in by_name]
    if unused:
        raise ConfigError(f"{label}: input {', '.join(unused)} is declared but no gate uses it")
    return circuit, [by_name[name] for name in declared]


def canonical(circuit, ordered: list, *, label: str):
    """The template qhw runs from a user's circuit: gates expanded to the
    standard library, parameters renamed ``theta[i]`` in ``ordered``'s order,
    every qubit measured at the end into ``meas`` (qubit i into bit i).

    Raises:
        ConfigError: the circuit cannot be a feature map (the reason, one line).
    """
    from qiskit.circuit.library import get_standard_gate_name_mapping

    from qhw import circuits

    width = circuit.num_qubits
    if not MIN_QUBITS <= width <= MAX_QUBITS:
        raise ConfigError(f"{label}: {width} qubits; a feature map has {MIN_QUBITS} to {MAX_QUBITS}")
    if not ordered:
        raise ConfigError(f"{label}: no parameters; a feature map binds each sample's components to its parameters")
    if len(ordered) != circuit.num_parameters or set(ordered) != set(circuit.parameters):
        raise ConfigError(f"{label}: its parameters could not be put in order")
    standard = set(get_standard_gate_name_mapping()) - {"reset", "delay", "measure"}
    template, theta = circuits.parameterised_circuit(width, "qhw_" + _identifier(label), parameters=len(ordered))
    measured: dict[int, int] = {}
    for instruction in _expanded(circuit, standard, label):
        name = instruction.operation.name
        qubits = [circuit.find_bit(q).index for q in instruction.qubits]
        if name in _IGNORED:
            continue
        if name == "measure":
            if qubits[0] in measured:
                raise ConfigError(f"{label}: qubit {qubits[0]} is measured twice; a feature map measures each qubit once, at the end")
            measured[qubits[0]] = circuit.find_bit(instruction.clbits[0]).index
            continue
        after = [q for q in qubits if q in measured]
        if after:
            raise ConfigError(f"{label}: {name} on qubit {after[0]} after its measurement; only final measurements are allowed")
        template.append(instruction.operation, [template.qubits[q] for q in qubits])
    unused = [p.name for p in ordered if p not in set(template.parameters)]
    if unused:
        raise ConfigError(f"{label}: input {', '.join(unused)} is declared but no gate uses it")
    if measured and len(measured) != width:
        missing = sorted(set(range(width)) - set(measured))
        raise ConfigError(f"{label}: qubit(s) {', '.join(map(str, missing))} never measured; measure every qubit, or none")
    template.assign_parameters(dict(zip(ordered, theta)), inplace=True)
    template.measure(range(width), range(width))
    return template


def _expanded(circuit, standard: set[str], label: str):
    """The circuit's instructions, gates outside the standard library replaced
    by their definitions (recursively)."""
    for instruction in circuit.data:
        operation = instruction.operation
        name = operation.name
        if name in standard or name in _IGNORED or name == "measure":
            yield instruction
            continue
        if name in _REFUSED:
            raise ConfigError(f"{label}: {_REFUSED[name]} ({name}); a feature map is gates, then a measurement of every qubit")
        definition = getattr(operation, "definition", None)
        if definition is None or getattr(operation, "condition", None) is not None:
            raise ConfigError(f"{label}: gate {name!r} is not in the standard library and has no definition qhw can expand")
        inner = definition
        bound = {inner.qubits[i]: q for i, q in enumerate(instruction.qubits)}
        clbits = {inner.clbits[i]: c for i, c in enumerate(instruction.clbits)}
        from qiskit.circuit import CircuitInstruction

        for nested in _expanded(inner, standard, label):
            yield CircuitInstruction(nested.operation, [bound[q] for q in nested.qubits], [clbits[c] for c in nested.clbits])


def is_chain(template) -> bool:
    """Whether every multi-qubit gate of the template acts on neighbours i, i+1
    (a chain of the template's order): then each copy fits a chain of the
    device's qubits with no swap, which is how qhw.packing places copies."""
    for instruction in template.data:
        qubits = sorted(template.find_bit(q).index for q in instruction.qubits)
        if instruction.operation.name in ("barrier", "measure") or len(qubits) < 2:
            continue
        if len(qubits) > 2 or qubits[1] - qubits[0] != 1:
            return False
    return True


#: Random points of the map's range over which sensitive_observables averages,
#: and the finite-difference step (exact statevectors, so 1e-4 is far above
#: the rounding and far below any curvature that matters).
SENSITIVITY_POINTS = 32
SENSITIVITY_STEP = 1e-4


def sensitive_observables(template, angle_range: tuple[float, float], *, seed: int = 0) -> list[int]:
    """For each parameter, the Pauli-Z string whose expectation moves most with it.

    A Z string is a bit mask S over the outcome bits; <Z_S> = sum_x (-1)^|S & x| p(x)
    is a fixed linear function of the outcome probabilities. The sensitivity of S to
    parameter j is the mean |d<Z_S>/d theta_j| over SENSITIVITY_POINTS random points
    of the map's range, from exact statevectors of the template: the template alone
    decides, no data. Each parameter gets the best mask not already taken, in the
    parameters' order. For the paper's map these are Z_i Z_(i-1) (each reads one
    sin theta_i through the CNOT cascade); for ``angle`` Z_i.
    """
    import numpy as np
    from qiskit.quantum_info import Statevector

    bare = template.remove_final_measurements(inplace=False)
    parameters = bare.num_parameters
    low, high = angle_range
    rng = np.random.default_rng(seed)
    sensitivity = np.zeros((parameters, 2**bare.num_qubits))
    for _ in range(SENSITIVITY_POINTS):
        point = rng.uniform(low, high, parameters)
        for j in range(parameters):
            up, down = point.copy(), point.copy()
            up[j] += SENSITIVITY_STEP
            down[j] -= SENSITIVITY_STEP
            change = Statevector(bare.assign_parameters(up)).probabilities() - Statevector(bare.assign_parameters(down)).probabilities()
            sensitivity[j] += np.abs(z_expectations(change)) / (2 * SENSITIVITY_STEP)
    chosen: list[int] = []
    for j in range(parameters):
        # Mask 0 (the identity) is constant; a stable sort gives ties to the lower mask.
        ranked = [int(mask) for mask in np.argsort(-sensitivity[j], kind="stable") if mask != 0]
        chosen.append(next(mask for mask in ranked if mask not in chosen))
    return chosen


def z_expectations(probabilities):
    """<Z_S> for every mask S, along the last axis (a Walsh-Hadamard transform).

    Hand-written rather than scipy.linalg.hadamard: that builds the dense
    2**Q x 2**Q matrix (128 MB at 12 qubits); the butterfly is Q passes in place.
    """
    import numpy as np

    values = np.array(probabilities, dtype=np.float64, copy=True)
    width = values.shape[-1]
    span = 1
    while span < width:
        pairs = values.reshape(*values.shape[:-1], width // (2 * span), 2, span)
        first, second = pairs[..., 0, :].copy(), pairs[..., 1, :].copy()
        pairs[..., 0, :], pairs[..., 1, :] = first + second, first - second
        values = pairs.reshape(*values.shape[:-1], width)
        span *= 2
    return values


def observable_matrix(masks: list[int], num_qubits: int):
    """(2**Q, len(masks)) of +-1: probabilities @ it gives <Z_S> for each mask."""
    import numpy as np

    outcomes = np.arange(2**num_qubits)
    parity = np.array([[bin(int(x) & mask).count("1") % 2 for mask in masks] for x in outcomes])
    return (1 - 2 * parity).astype(np.float32)


def _identifier(label: str) -> str:
    return "".join(ch if ch.isalnum() else "_" for ch in Path(label).stem) or "file"


def _first_line(err: Exception) -> str:
    """An error's first line; the QASM 3 importer's "4,24: ..." position as "line 4, column 25: ..."."""
    text = str(err).strip().strip('"').strip()
    if not text:
        return type(err).__name__
    line = text.splitlines()[0]
    position = re.match(r"^(\d+),(\d+): ", line)
    if position:
        line = f"line {position[1]}, column {int(position[2]) + 1}: {line[position.end():]}"
    return line


def _where(err: Exception) -> str:
    """Line and column of a syntax error, from antlr's exception under openqasm3's."""
    message = str(err).strip()
    if message:
        return f" ({message})"
    # antlr's bail-out strategy wraps the RecognitionException, which holds the token, in its args.
    cause = err.__cause__
    while cause is not None:
        for candidate in (cause, *cause.args):
            token = getattr(candidate, "offendingToken", None)
            if token is not None:
                return f" at line {token.line}, column {token.column + 1} (near {token.text!r})"
        cause = cause.__cause__ or cause.__context__
    return ""
