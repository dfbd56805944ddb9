"""How long reading one Braket program-set result takes: qhw's reader against
the schemas' own parser and the Braket SDK's result class.

One task of 100 executables of the feature map at 2,000 shots (Braket's
program-set maximum and a typical shot count), simulated by Braket's own
state-vector simulator and serialised as AWS stores it (results.json):

    python benchmarks/braket_results.py [--executables 100] [--shots 2000] [--repeat 3]

Prints a table: seconds per task (best of ``--repeat``) and the ratio to
qhw's reader.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import quick
import tables


def _document(executables: int, shots: int) -> tuple[str, list[int]]:
    from braket.default_simulator import StateVectorSimulator
    from braket.program_sets import CircuitBinding, ParameterSets, ProgramSet
    from qiskit_braket_provider.providers.adapter import rename_parameter, to_braket

    from qhw.circuits import feature_map

    circuit = feature_map()
    braket_circuit = to_braket(circuit, verbatim=False)
    names = [rename_parameter(p) for p in circuit.parameters]
    values = np.random.default_rng(0).uniform(-np.pi / 2, np.pi / 2, (executables, len(names)))
    inputs = ParameterSets({name: values[:, j].tolist() for j, name in enumerate(names)})
    program_set = ProgramSet([CircuitBinding(braket_circuit, input_sets=inputs)], shots_per_executable=shots)
    result = StateVectorSimulator().run(program_set.to_ir(), shots=program_set.total_shots)
    measured = result.programResults[0].executableResults[0].measuredQubits
    return result.json(), list(measured)


def _best(call, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--executables", type=int, default=100)
    parser.add_argument("--shots", type=int, default=2000)
    parser.add_argument("--repeat", type=int, default=3)
    quick.add_option(parser)
    tables.add_option(parser)
    args = parser.parse_args()
    if args.quick:
        args.executables, args.shots, args.repeat = 5, 100, 1

    from braket.schema_common import BraketSchemaBase
    from braket.tasks.program_set_quantum_task_result import ProgramSetQuantumTaskResult

    from qhw.backends._braket_results import read_task_result

    document, measured = _document(args.executables, args.shots)
    rows = [
        ("qhw: json.loads + NumPy, mapped by inputsIndex and measuredQubits",
         lambda: read_task_result(document, executions=args.executables, measured=measured, shots=args.shots)),
        ("BraketSchemaBase.parse_raw_schema (pydantic, every shot validated)", lambda: BraketSchemaBase.parse_raw_schema(document)),
        ("parse_raw_schema + the SDK's ProgramSetQuantumTaskResult",
         lambda: ProgramSetQuantumTaskResult.from_object(BraketSchemaBase.parse_raw_schema(document))),
    ]
    timings = [(name, _best(call, args.repeat)) for name, call in rows]
    floor = timings[0][1]
    tables.Tables(args).show(
        "read", f"one results.json of {args.executables} executables x {args.shots} shots ({len(document) / 1e6:.1f} MB), best of {args.repeat}",
        ("reader", "seconds", "against qhw"), [(name, f"{seconds:.2f}", f"{seconds / floor:.1f}x") for name, seconds in timings],
    )


if __name__ == "__main__":
    main()
