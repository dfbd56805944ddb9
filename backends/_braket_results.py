"""Braket task results as qhw reads them: each executable mapped to its
execution by the provider's own indices, never by its place in a list.

A task's ``results.json`` is a ``GateModelTaskResult`` (one circuit) or a
``ProgramSetTaskResult`` (a program set). Everything in them that qhw relies
on is checked here against what amazon-braket-schemas allows:

- a program set's ``executableResults`` hold results *and*
  ``ProgramSetExecutableFailure`` entries, in any order: ``inputsIndex`` says
  which parameter set each belongs to;
- ``measuredQubits`` says which qubit each measurement column is, in whatever
  order the device chose: column ``c`` is read as qubit ``measuredQubits[c]``,
  and classical bit ``j`` is the column of the qubit the program measured
  into ``b[j]``;
- a result may carry ``measurementProbabilities`` instead of shots (keys are
  bitstrings over ``measuredQubits``, qubit ``measuredQubits[0]`` first);
- program results, executable results and the task metadata may be inlined or
  given as paths relative to the result's ``s3Location``.

An executable with no result and no failure is reported failed ("no result");
anything that cannot be mapped without guessing (an index out of range or
repeated, a qubit the program measured missing from ``measuredQubits``, a
malformed measurement) makes the whole task a :class:`ResultMappingError`:
nothing of it is stored.

Why not ``BraketSchemaBase.parse_raw_schema``: it validates every shot of
every executable as a pydantic field, several times slower than ``json.loads``
and NumPy on a task of 100 executables at 2,000 shots (``python
benchmarks/braket_results.py`` measures both); and the SDK's result class
built on it drops ``inputsIndex``. qhw checks what it uses, with the schemas'
own names and rules.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, cast

import numpy as np

from qhw.errors import ResultMappingError

GATE_MODEL = "braket.task_result.gate_model_task_result"
PROGRAM_SET = "braket.task_result.program_set_task_result"
PROGRAM_RESULT = "braket.task_result.program_result"
EXECUTABLE_RESULT = "braket.task_result.program_set_executable_result"
EXECUTABLE_FAILURE = "braket.task_result.program_set_executable_failure"
TASK_METADATA = "braket.task_result.program_set_task_metadata"

#: Reads a document stored beside a result in S3: (bucket, key) -> its text.
Fetch = Callable[[str, str], str]


@dataclass(frozen=True)
class TaskOutcome:
    """What one task measured, in the order of the executions qhw submitted."""

    counts: np.ndarray  # (executions, 2**bits) canonical counts; rows of failed executions are zero
    failed: dict[int, str] = field(default_factory=dict)  # execution -> the provider's reason
    successful_shots: int | None = None  # shots that ran, as the task metadata counts them
    duration_seconds: float | None = None  # a simulator's reported execution time, summed over programs


def read_task_result(
    document: str | bytes | dict,
    *,
    executions: int,
    measured: Sequence[int] | Sequence[Sequence[int]],
    shots: int,
    fetch: Fetch | None = None,
) -> TaskOutcome:
    """Canonical counts and failures of a task's result document.

    Args:
        document: the task's results.json (or the document, already a dict).
        executions: how many executions (parameter sets) the task was given.
        measured: the device qubit (its own label) the program measured into
            classical bit j, for each j: bit j of a canonical index; for a
            packed program, one such list a copy, and each execution's row
            holds the copies' counts one after the other.
        shots: shots per execution, as submitted (for probability-only results).
        fetch: reads the documents a result points at in S3.

    Raises:
        ResultMappingError: the document cannot be mapped to the executions.
    """
    data = document if isinstance(document, dict) else _json(document, "the task result")
    name = _header(data)
    if name == GATE_MODEL:
        if executions != 1:
            raise ResultMappingError(f"a single-circuit result came back for a task of {executions} executions")
        row = counts_of(data, measured, shots, "the result")
        metadata = data.get("taskMetadata") or {}
        return TaskOutcome(
            counts=row[None, :],
            successful_shots=_int_or_none(metadata.get("shots")),
            duration_seconds=_duration(data.get("additionalMetadata")),
        )
    if name != PROGRAM_SET:
        raise ResultMappingError(f"a result of another kind ({name or 'no schema header'}) came back")
    return _program_set(data, executions, measured, shots, fetch)


def reported_usage(document: str | bytes | dict, *, fetch: Fetch | None = None) -> tuple[int | None, float | None]:
    """The shots that ran and a simulator's execution time, from a result
    document, without reading its measurements."""
    data = document if isinstance(document, dict) else _json(document, "the task result")
    name = _header(data)
    if name == GATE_MODEL:
        return _int_or_none((data.get("taskMetadata") or {}).get("shots")), _duration(data.get("additionalMetadata"))
    if name != PROGRAM_SET:
        raise ResultMappingError(f"a result of another kind ({name or 'no schema header'}) came back")
    resolve, prefix = _resolver(data, fetch)
    metadata = resolve(data.get("taskMetadata"), "the task metadata", prefix)
    program = resolve(_one_program(data), "the program result", prefix)
    return _int_or_none(metadata.get("successfulShots")), _duration(program.get("additionalMetadata"))


def _resolver(data: dict, fetch: Fetch | None):
    """How a program set's parts are read: inline, or from S3 beside the result."""
    location = data.get("s3Location")
    bucket, prefix = location if isinstance(location, (list, tuple)) and len(location) == 2 else (None, None)

    def resolve(item: Any, what: str, base: str | None) -> dict:
        if isinstance(item, dict):
            return item
        if not isinstance(item, str):
            raise ResultMappingError(f"{what} is neither a document nor a path")
        if fetch is None or bucket is None or base is None:
            raise ResultMappingError(f"{what} is a path ({item}) but the result names no s3Location")
        return _json(fetch(bucket, f"{base}/{item}"), f"{what} ({item})")

    return resolve, prefix


def _one_program(data: dict) -> Any:
    programs = data.get("programResults")
    if not isinstance(programs, list) or len(programs) != 1:
        count = len(programs) if isinstance(programs, list) else "no"
        raise ResultMappingError(f"{count} program results came back for a program set of one program")
    return programs[0]


def _program_set(
    data: dict, executions: int, measured: Sequence[int] | Sequence[Sequence[int]], shots: int, fetch: Fetch | None
) -> TaskOutcome:
    resolve, prefix = _resolver(data, fetch)
    program_item = _one_program(data)
    program = resolve(program_item, "the program result", prefix)
    if _header(program) != PROGRAM_RESULT:
        raise ResultMappingError(f"the program result has the schema {_header(program)!r}")
    # An executable's path is relative to its program result's own folder (the
    # program's path less its results.json), as the Braket SDK reads it.
    executable_base = prefix
    if isinstance(program_item, str) and prefix is not None:
        executable_base = f"{prefix}/{program_item}".removesuffix("/results.json")
    entries = program.get("executableResults")
    if not isinstance(entries, list):
        raise ResultMappingError("the program result has no executableResults list")

    counts = np.zeros((executions, sum(2 ** len(bits) for bits in _by_copy(measured))), dtype=np.int64)
    seen: set[int] = set()
    failed: dict[int, str] = {}
    for position, item in enumerate(entries):
        entry = resolve(item, f"executable result {position}", executable_base)
        index = entry.get("inputsIndex")
        if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index < executions:
            raise ResultMappingError(f"executable result {position} has inputsIndex {index!r}, outside 0..{executions - 1}")
        if index in seen:
            raise ResultMappingError(f"two executable results have inputsIndex {index}")
        seen.add(index)
        kind = _header(entry)
        if kind == EXECUTABLE_FAILURE:
            failed[index] = _failure_reason(entry.get("failureMetadata"))
        elif kind == EXECUTABLE_RESULT:
            counts[index] = counts_of(entry, measured, shots, f"the result of inputsIndex {index}")
        else:
            raise ResultMappingError(f"executable result {position} has the schema {kind!r}")
    for index in range(executions):
        if index not in seen:
            failed[index] = "Braket returned no result for this executable"

    metadata = resolve(data.get("taskMetadata"), "the task metadata", prefix)
    return TaskOutcome(
        counts=counts,
        failed=failed,
        successful_shots=_int_or_none(metadata.get("successfulShots")),
        duration_seconds=_duration(program.get("additionalMetadata")),
    )


def _by_copy(measured: Sequence[int] | Sequence[Sequence[int]]) -> list[Sequence[int]]:
    """The measured qubits of each copy (a plain list is one copy's)."""
    if not measured or isinstance(measured[0], (int, np.integer)):
        return [cast(Sequence[int], measured)]
    return list(cast(Sequence[Sequence[int]], measured))


def counts_of(entry: dict, measured: Sequence[int] | Sequence[Sequence[int]], shots: int, what: str) -> np.ndarray:
    """One executable's canonical counts from its measurements or
    probabilities: of each copy in turn, for a packed program."""
    return np.concatenate([_copy_counts(entry, bits, shots, what) for bits in _by_copy(measured)])


def _copy_counts(entry: dict, measured: Sequence[int], shots: int, what: str) -> np.ndarray:
    qubits = entry.get("measuredQubits")
    if not isinstance(qubits, list) or not qubits:
        raise ResultMappingError(f"{what} does not say which qubits it measured (measuredQubits)")
    columns = []
    for bit, qubit in enumerate(measured):
        places = [c for c, q in enumerate(qubits) if q == qubit]
        if len(places) != 1:
            found = "is missing from" if not places else "appears twice in"
            raise ResultMappingError(f"qubit {qubit} (classical bit {bit}) {found} the measuredQubits {qubits} of {what}")
        columns.append(places[0])
    weights = 1 << np.arange(len(measured), dtype=np.int64)
    width = 2 ** len(measured)

    measurements = entry.get("measurements")
    if measurements is not None and len(measurements):
        shots_array = np.asarray(measurements)
        if shots_array.ndim != 2 or shots_array.shape[1] != len(qubits) or not np.isin(shots_array, (0, 1)).all():
            raise ResultMappingError(f"the measurements of {what} are not shots of {len(qubits)} bits each")
        index = shots_array[:, columns].astype(np.int64) @ weights
        return np.bincount(index, minlength=width)
    probabilities = entry.get("measurementProbabilities")
    if probabilities:
        return _counts_from_probabilities(probabilities, columns, weights, width, shots, len(qubits), what)
    raise ResultMappingError(f"{what} has neither measurements nor measurementProbabilities")


def _counts_from_probabilities(
    probabilities: dict, columns: list[int], weights: np.ndarray, width: int, shots: int, bits: int, what: str
) -> np.ndarray:
    """Counts of ``shots`` shots from a device's probabilities, rounded so that
    they add up to ``shots`` (largest remainders first)."""
    keys = list(probabilities)
    if any(not isinstance(k, str) or len(k) != bits or set(k) - {"0", "1"} for k in keys):
        raise ResultMappingError(f"the measurementProbabilities of {what} are not keyed by {bits}-bit strings")
    values = np.array([probabilities[k] for k in keys], dtype=float)
    if not np.isfinite(values).all() or (values < 0).any() or not abs(values.sum() - 1) < 1e-6:
        raise ResultMappingError(f"the measurementProbabilities of {what} do not add up to 1")
    outcome = np.array([[int(k[c]) for c in columns] for k in keys], dtype=np.int64) @ weights
    exact = values * shots
    rounded = np.floor(exact).astype(np.int64)
    short = shots - int(rounded.sum())
    if short > 0:
        rounded[np.argsort(-(exact - rounded), kind="stable")[:short]] += 1
    return np.bincount(outcome, weights=rounded, minlength=width).astype(np.int64)


def _failure_reason(metadata: Any) -> str:
    if not isinstance(metadata, dict):
        return "the executable failed without a reason"
    reason = str(metadata.get("failureReason") or "the executable failed without a reason")
    category = getattr(metadata.get("category"), "value", metadata.get("category"))
    retryable = " (retryable)" if metadata.get("retryable") else ""
    return f"{category}: {reason}{retryable}" if category else f"{reason}{retryable}"


def _duration(additional: Any) -> float | None:
    """A simulator's execution time (milliseconds in the document), in seconds."""
    simulator = additional.get("simulatorMetadata") if isinstance(additional, dict) else None
    value = simulator.get("executionDuration") if isinstance(simulator, dict) else None
    return None if value is None or isinstance(value, bool) or not isinstance(value, (int, float)) else value / 1000


def _json(document: str | bytes, what: str) -> dict:
    try:
        data = json.loads(document)
    except (TypeError, ValueError) as err:
        raise ResultMappingError(f"{what} is not JSON ({err})") from err
    if not isinstance(data, dict):
        raise ResultMappingError(f"{what} is not a JSON document")
    return data


def _header(data: dict) -> str | None:
    header = data.get("braketSchemaHeader")
    return header.get("name") if isinstance(header, dict) else None


def _int_or_none(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None
