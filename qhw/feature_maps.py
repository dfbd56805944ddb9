"""Feature maps: the circuit a sample's components are bound to.

A feature map is a *template*: a circuit of Q qubits (2 to 12) and P
parameters, each qubit measured once at the end, qubit i into bit i of the
register ``meas`` (the canonical order of docs/design.md), its parameters the
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
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from qhw.errors import ConfigError, ParameterError
from qhw.files import read_regular_file

if TYPE_CHECKING:
    from qiskit import QuantumCircuit

    from qhw.records import FeatureSetRecord

DEFAULT = "paper"
MIN_QUBITS = 2
MAX_QUBITS = 12
DEFAULT_QUBITS = 5
DEFAULT_REPS = 2
#: The most repetitions of a repeated built-in (``--reps``): the zz map of 12
#: qubits then has 912 gates, inside :data:`MAX_GATES`.
MAX_REPS = 16
#: The most gates a template may have once its gate definitions are expanded.
#: Deep feature maps gain nothing on today's devices, and Qiskit's OpenQASM 3
#: importer builds each parameterised gate symbolically (a fraction of a
#: millisecond a gate): a bound keeps reading a file to seconds whatever it holds.
MAX_GATES = 4096
#: The largest feature-map file qhw reads. openqasm3's parser takes seconds
#: for 64 KiB of gates (and tens of seconds for 1 MiB), so OpenQASM 3 files are
#: refused above 64 KiB before parsing; QPY is read by Qiskit's Rust reader.
MAX_QASM_BYTES = 64 * 2**10
MAX_QPY_BYTES = 2**20
#: Statements of a file besides its gates (declarations, measurements, includes).
MAX_DECLARATIONS = 512
_COMMENT = re.compile(rb"//[^\n]*|/\*.*?\*/", re.DOTALL)
#: Classical bits a file may declare (a template measures each qubit once;
#: Qiskit's importer makes an object for every declared bit).
MAX_CLBITS = 1024
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
    template: QuantumCircuit  # in the canonical form of the module docstring
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
            raise ParameterError("components", f"must be a positive multiple of the {p} parameters of the {self.name} feature map "
                f"(one circuit for every {p} components), got {components}"
            )
        return components // p


@dataclass(frozen=True)
class BuiltIn:
    """A built-in feature map: one entry of :data:`REGISTRY` is all a new one needs."""

    name: str
    #: Adds the map's gates to an empty template of ``width`` qubits and its
    #: parameter vector ``theta`` (``reps``: the repetitions, for a repeated map).
    build: Callable[..., None]
    angle_range: tuple[float, float]  # what the components are scaled to
    chain: bool  # every two-qubit gate between neighbours i, i+1: copies pack on a device's chains
    help: str  # one line for `qhw features build --help` and the docs
    repeated: bool = False  # takes --reps
    parameters: Callable[[int], int] = lambda width: width  # parameters a template of ``width`` qubits has
    circuit_name: str | None = None  # the template's name (default qhw_<name>)


#: The built-in maps by name, in the order the help lists them.
REGISTRY: dict[str, BuiltIn] = {}


def register(entry: BuiltIn) -> BuiltIn:
    """Add a built-in map (a name already taken is refused)."""
    if entry.name in REGISTRY:
        raise ConfigError(f"a feature map named {entry.name!r} is already registered")
    REGISTRY[entry.name] = entry
    return entry


def reps_help() -> str:
    """``--reps``' help: the maps that repeat."""
    repeated = " and ".join(name for name, entry in REGISTRY.items() if entry.repeated)
    return f"Repetitions of the {repeated} maps (1 to {MAX_REPS}; default {DEFAULT_REPS})."


def help_text() -> str:
    """``--feature-map``'s help: every built-in's line, then files."""
    maps = "; ".join(f"{entry.name}: {entry.help}" for entry in REGISTRY.values())
    return f"{maps}; or an OpenQASM 3 (.qasm) or QPY (.qpy) file of your own."


def _paper(template, theta, width: int, reps: int | None) -> None:
    from qhw.circuits import paper_gates

    paper_gates(template, theta, width)


def _angle(template, theta, width: int, reps: int | None) -> None:
    for i in range(width):
        template.ry(theta[i], i)


def _reupload(template, theta, width: int, reps: int | None) -> None:
    if reps is None:
        raise TypeError("the reupload map is built with its repetitions")
    for _ in range(reps):
        for i in range(width):
            template.ry(theta[i], i)
            template.rz(theta[i], i)
        for i in range(width - 1):
            template.cz(i, i + 1)


def _zz(template, theta, width: int, reps: int | None) -> None:
    from qiskit.circuit.library import zz_feature_map

    zz = zz_feature_map(width, reps=reps, entanglement="linear")
    ordered = sorted(zz.parameters, key=lambda p: p.index)
    template.compose(zz.assign_parameters(dict(zip(ordered, theta, strict=True))), qubits=range(width), inplace=True)


register(BuiltIn("paper", _paper, (-math.pi / 2, math.pi / 2), chain=True, circuit_name="qhw_feature_map",
                 help="Ry, H, a CNOT cascade (arXiv 2408.03351; the default)"))
register(BuiltIn("zz", _zz, (0.0, math.pi), chain=True, repeated=True,
                 help="Qiskit's zz_feature_map, linear entanglement (Havlicek et al. 2019)"))
register(BuiltIn("angle", _angle, (0.0, math.pi), chain=True, help="Ry alone, no entanglement (the classical control)"))
register(BuiltIn("reupload", _reupload, (0.0, math.pi), chain=True, repeated=True,
                 help="data re-uploading, --reps layers of Ry Rz and CZ (Perez-Salinas et al. 2020)"))


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
        raise ParameterError("qubits", f"must be between {MIN_QUBITS} and {MAX_QUBITS}, got {qubits}")
    if reps is not None and not 1 <= reps <= MAX_REPS:
        raise ParameterError("reps", f"must be between 1 and {MAX_REPS}, got {reps}")
    if angle_range is not None:
        low, high = angle_range
        if not (math.isfinite(low) and math.isfinite(high) and low < high):
            raise ParameterError("angle_range", f"must be two finite numbers LOW:HIGH with LOW < HIGH, got {low}:{high}")
    repeated = " and ".join(entry.name for entry in REGISTRY.values() if entry.repeated)
    entry = REGISTRY.get(name_or_file)
    if entry is not None:
        if reps is not None and not entry.repeated:
            raise ParameterError("reps", f"applies to the {repeated} feature maps, not {entry.name}")
        width = qubits or DEFAULT_QUBITS
        repeats = (reps or DEFAULT_REPS) if entry.repeated else None
        return FeatureMap(entry.name, built_in_template(entry, width, repeats), angle_range or entry.angle_range, repeats)
    path = Path(name_or_file)
    if not path.suffix and "/" not in name_or_file:
        raise ParameterError("feature_map", f"must be one of {', '.join(REGISTRY)} or a .qasm or .qpy file, got {name_or_file!r}")
    if reps is not None:
        raise ParameterError("reps", f"applies to the {repeated} feature maps, not to a file")
    data = read_regular_file(path, limit=MAX_QPY_BYTES, what="--feature-map")
    circuit, ordered = _load_file(path, data)
    template = canonical(circuit, ordered, label=path.name)
    if qubits is not None and qubits != template.num_qubits:
        raise ParameterError("qubits", f"{qubits}: {path.name} has {template.num_qubits} qubits")
    return FeatureMap(f"file:{path.name}", template, angle_range or FILE_ANGLE_RANGE, None, hashlib.sha256(data).hexdigest())


def template_of(feature_set: FeatureSetRecord) -> QuantumCircuit:
    """A feature set's template (a Qiskit circuit), as every run of the set binds it."""
    from qhw import circuits

    return circuits.from_qpy(feature_set.template_qpy)


def built_in_template(entry: BuiltIn, width: int, reps: int | None):
    """A built-in's template: its gates on ``width`` qubits, then every qubit measured (qubit i into bit i)."""
    from qhw import circuits

    name = entry.circuit_name or f"qhw_{entry.name}"
    template, theta = circuits.parameterised_circuit(width, name, parameters=entry.parameters(width))
    entry.build(template, theta, width, reps)
    template.measure(range(width), range(width))
    return template


def _load_file(path: Path, data: bytes):
    """The file's circuit and its parameters in the order they are bound."""
    if data.startswith(b"QISKIT"):  # QPY's magic
        from qiskit import qpy

        _check_qpy_header(path.name, data)
        try:
            circuits = qpy.load(__import__("io").BytesIO(data))
        except Exception as err:  # QpyError, struct errors on truncation, a newer QPY version
            raise ConfigError(f"{path.name}: not a QPY file qhw can read ({type(err).__name__}: {one_line(err)})") from None
        if len(circuits) != 1:
            raise ConfigError(f"{path.name}: holds {len(circuits)} circuits; a feature map is one")
        circuit = circuits[0]
        return circuit, list(circuit.parameters)
    if path.suffix.lower() == ".qpy":
        raise ConfigError(f"{path.name}: not a QPY file (it does not start with QPY's header)")
    if len(data) > MAX_QASM_BYTES:
        raise ConfigError(
            f"{path.name}: {len(data) / 2**10:,.0f} KiB of OpenQASM 3; qhw reads feature-map files of up to "
            f"{MAX_QASM_BYTES // 2**10} KiB (QPY up to {MAX_QPY_BYTES // 2**20} MiB)"
        )
    statements = _COMMENT.sub(b"", data).count(b";")
    if statements > MAX_GATES + MAX_DECLARATIONS:
        # Counted before parsing: openqasm3's parser alone takes seconds on such a file.
        raise ConfigError(f"{path.name}: {statements:,} statements; a feature map has at most {MAX_GATES:,} gates")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise ConfigError(f"{path.name}: neither QPY nor OpenQASM 3 text (not UTF-8)") from None
    return _load_qasm3(path.name, text)


def _check_qpy_header(label: str, data: bytes) -> None:
    """Refuse, from the QPY header alone, what Qiskit's reader would spend
    minutes or all memory on: more programs than one, more qubits than a
    feature map has, a flood of classical bits or instructions. The header's
    layout is Qiskit's own (``qiskit.qpy.formats``, as ``qpy.load`` reads it).

    Raises:
        ConfigError: the header is cut short, or declares more than a feature map holds.
    """
    import struct

    from qiskit.qpy import formats

    try:
        version = data[6]
        if version < 10:
            file_header = formats.FILE_HEADER._make(struct.unpack_from(formats.FILE_HEADER_PACK, data))
            offset = formats.FILE_HEADER_SIZE
        else:
            file_header = formats.FILE_HEADER_V10._make(struct.unpack_from(formats.FILE_HEADER_V10_PACK, data))
            offset = formats.FILE_HEADER_V10_SIZE
        if file_header.num_programs != 1:
            raise ConfigError(f"{label}: holds {file_header.num_programs} circuits; a feature map is one")
        offset += 1 if version >= 5 else 0  # the program's type key
        if version >= 16:  # a table of the programs' offsets
            offset = struct.unpack_from("!Q", data, offset)[0]
        if version < 2:
            header = formats.CIRCUIT_HEADER._make(struct.unpack_from(formats.CIRCUIT_HEADER_PACK, data, offset))
        elif version < 12:
            header = formats.CIRCUIT_HEADER_V2._make(struct.unpack_from(formats.CIRCUIT_HEADER_V2_PACK, data, offset))
        else:
            header = formats.CIRCUIT_HEADER_V12._make(struct.unpack_from(formats.CIRCUIT_HEADER_V12_PACK, data, offset))
    except (struct.error, IndexError):
        raise ConfigError(f"{label}: not a QPY file qhw can read (its header is cut short: truncated or damaged)") from None
    if header.num_qubits > MAX_QUBITS:
        raise ConfigError(f"{label}: {header.num_qubits} qubits; a feature map has {MIN_QUBITS} to {MAX_QUBITS}")
    if header.num_clbits > MAX_CLBITS:
        raise ConfigError(f"{label}: {header.num_clbits} classical bits; a feature map measures each of its qubits once")
    if header.num_instructions > MAX_GATES:
        raise ConfigError(f"{label}: {header.num_instructions} instructions; a feature map has at most {MAX_GATES} gates")


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
    _check_qasm3_size(label, program)
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


def _check_qasm3_size(label: str, program) -> None:
    """Refuse, from the parsed program alone, what Qiskit's importer would
    spend minutes or all memory building: more qubits than a feature map has
    (``qubit[100000000]``, or a physical qubit ``$N`` as far out), a flood of
    classical bits, or gate definitions that expand to more than
    :data:`MAX_GATES` gates (each level calling the one below twice doubles
    the count: 22 levels are 4 million gates).

    Raises:
        ConfigError: naming what the file declares and the bound.
    """
    from openqasm3 import ast

    qubits = clbits = 0
    definitions: dict[str, Any] = {}
    for statement in program.statements:
        if isinstance(statement, ast.QubitDeclaration):
            qubits += _declared_size(label, statement.size, f"qubit register {statement.qubit.name}")
        elif isinstance(statement, ast.ClassicalDeclaration) and isinstance(statement.type, ast.BitType):
            clbits += _declared_size(label, statement.type.size, f"bit register {statement.identifier.name}")
        elif isinstance(statement, ast.QuantumGateDefinition):
            definitions[statement.name.name] = statement
    physical = [int(name[1:]) + 1 for name in _identifiers(program) if name[:1] == "$" and name[1:].isdigit()]
    qubits = max(qubits, *physical) if physical else qubits
    if qubits > MAX_QUBITS:
        raise ConfigError(f"{label}: {qubits:,} qubits; a feature map has {MIN_QUBITS} to {MAX_QUBITS}")
    if clbits > MAX_CLBITS:
        raise ConfigError(f"{label}: {clbits:,} classical bits; a feature map measures each of its qubits once")
    sizes: dict[str, int] = {}

    def size_of(name: str, calling: tuple[str, ...]) -> int:
        """Gates one call of ``name`` expands to (a standard gate: one)."""
        if name not in definitions:
            return 1
        if name in calling:
            raise ConfigError(f"{label}: gate {name} calls itself; a gate's definition cannot be recursive")
        if name not in sizes:
            body = definitions[name].body
            sizes[name] = min(sum(calls(statement, (*calling, name)) for statement in body), MAX_GATES + 1)
        return sizes[name]

    def calls(node, calling: tuple[str, ...]) -> int:
        total = 0
        for gate in _nodes(node, ast.QuantumGate):
            repeat = 1
            for modifier in gate.modifiers:  # pow(k) @ g is k calls of g
                if modifier.modifier == ast.GateModifierName.pow and isinstance(modifier.argument, ast.IntegerLiteral):
                    repeat *= max(1, abs(modifier.argument.value))
            total += repeat * size_of(gate.name.name, calling)
            if total > MAX_GATES:
                break
        return total

    gates = 0
    for statement in program.statements:
        if not isinstance(statement, ast.QuantumGateDefinition):
            gates += calls(statement, ())
        if gates > MAX_GATES:
            raise ConfigError(
                f"{label}: its gates expand to more than {MAX_GATES:,}; a feature map has at most {MAX_GATES:,} gates"
            )


def _declared_size(label: str, size, what: str) -> int:
    """A register's declared size: 1 when none, else an integer literal."""
    from openqasm3 import ast

    if size is None:
        return 1
    if not isinstance(size, ast.IntegerLiteral):
        raise ConfigError(f"{label}: the size of {what} is not a whole number written out; write it as one (qubit[5] q;)")
    return size.value


def _nodes(node, kind):
    """Every node of ``kind`` in an openqasm3 AST (its nodes are dataclasses), depth first."""
    import dataclasses

    stack = [node]
    while stack:
        current = stack.pop()
        if isinstance(current, kind):
            yield current
        if isinstance(current, list):
            stack.extend(reversed(current))
        elif dataclasses.is_dataclass(current) and not isinstance(current, type):
            stack.extend(getattr(current, field.name) for field in dataclasses.fields(current) if field.name != "span")


def _identifiers(program) -> list[str]:
    from openqasm3 import ast

    return [identifier.name for identifier in _nodes(program, ast.Identifier)]


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
    for count, instruction in enumerate(_expanded(circuit, standard, label), start=1):
        if count > MAX_GATES + 2 * MAX_QUBITS:  # gates, then a measurement (and a barrier) a qubit
            raise ConfigError(f"{label}: its gates expand to more than {MAX_GATES:,}; a feature map has at most {MAX_GATES:,} gates")
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
    template.assign_parameters(dict(zip(ordered, theta, strict=True)), inplace=True)
    template.measure(range(width), range(width))
    return template


#: Gate definitions nested deeper than this are refused (Python's own recursion
#: would end the expansion far deeper, as an unexplained RecursionError).
MAX_NESTING = 64


def _expanded(circuit, standard: set[str], label: str, depth: int = 0):
    """The circuit's instructions, gates outside the standard library replaced
    by their definitions (recursively)."""
    if depth > MAX_NESTING:
        raise ConfigError(f"{label}: gate definitions nested more than {MAX_NESTING} deep")
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

        for nested in _expanded(inner, standard, label, depth + 1):
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

    Raises:
        ConfigError: the map has more parameters than Z strings (2**Q - 1), so
            some parameter would have none of its own; checked before any simulation.
    """
    import numpy as np
    from qiskit.quantum_info import Statevector

    strings = 2**template.num_qubits - 1
    if template.num_parameters > strings:
        raise ParameterError("readout", f"observables reads one Pauli-Z string a parameter, but this feature map has {template.num_parameters} "
            f"parameters and its {template.num_qubits} qubits only {strings} Z strings; use --readout probabilities"
        )
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


#: ANSI colour codes, raw or as the text ``\x1b[1m`` a repr leaves.
_ANSI_CODE = re.compile(r"(\x1b|\\x1b)\[[0-9;]*[A-Za-z]")


def one_line(err: BaseException) -> str:
    """An error's message as one clean line for the terminal: without ANSI
    colour codes, literal ``\\n``, or the backtrace that Qiskit's Rust code
    appends ("binary parsing error: \\n ╺━ Backtrace ━╸ ... 0: Error: failed
    to fill whole buffer" reads "binary parsing error: failed to fill whole buffer")."""
    text = _ANSI_CODE.sub("", str(err)).replace("\\n", "\n")
    lines: list[str] = []
    for raw in text.splitlines():
        line = raw.strip().strip('"').strip()
        if not any(ch.isalnum() for ch in line) or "Backtrace" in line or (lines and line.startswith("at ")):
            continue
        lines.append(re.sub(r"^\d+:\s+", "", line).removeprefix("Error: "))
    if not lines:
        return type(err).__name__
    first = f"{lines[0]} {lines[1]}" if lines[0].endswith(":") and len(lines) > 1 else lines[0]
    return first if len(first) <= 300 else first[:297] + "..."


def _first_line(err: Exception) -> str:
    """An error's first line; the QASM 3 importer's "4,24: ..." position as "line 4, column 25: ..."."""
    line = one_line(err)
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
