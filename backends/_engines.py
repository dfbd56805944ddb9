"""How an emulated device chooses between qhw's noisy engine and its provider's own path.

IBM's fakes and ``braket_emulator:`` both compute a job by default on the
noisy engine (backends/_density.py: exact noisy probabilities, then seeded
shots), and keep their provider's own path as the other engine: Runtime's
local testing mode on Aer, Braket's LocalEmulator. What differs is how each
reads its device's noise into the engine (``_compile``); the choice, the
compiled program's cache and the shots are the same, here.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from qhw import circuits
from qhw.backend import BackendLimits, EngineChoice, Executable, JobResult
from qhw.backends import _density
from qhw.errors import JobFailedError
from qhw.noise import NoiseSpec

DENSITY = "density"
#: Circuits in one of the engine's jobs: its rows cost no per-shot memory (a
#: job holds probabilities and counts, and density matrices a chunk at a
#: time, CHUNK_ENTRIES), so its jobs are larger than Aer's or LocalEmulator's
#: and the ledger's cost a job (a claim, a commit of its results: milliseconds)
#: is spread over more samples. At 1,024 shots, LOCAL_SHOTS_PER_JOB allows as many.
DENSITY_CIRCUITS_PER_JOB = 1024


class DensityEmulation:
    """A LocalBackend mixin: ``engines`` is (DENSITY, ``fallback``); a
    subclass gives ``_compile`` and runs ``_engine_counts`` for the density
    engine's jobs."""

    name: str
    num_qubits: int
    #: The provider's own path, its name for --engine and the words a note says it in.
    fallback: str
    fallback_label: str
    #: The widest part of a circuit run on the engine unless it is asked for (None: any).
    default_max_width: int | None = None
    #: Why past ``default_max_width`` the fallback is the better default.
    wide_reason: str = ""
    #: Whether the fallback computes a job in native code holding the interpreter lock (Aer does).
    fallback_holds_the_interpreter: bool = False
    #: Whether --noise is taken (the subclass writes its channels in ``_compile``).
    takes_noise: bool = False

    @property
    def engines(self) -> tuple[str, ...]:
        return (DENSITY, self.fallback)

    def check_noise(self, noise: NoiseSpec) -> None:
        noise.check_qubits(range(self.num_qubits), self.name)

    def needs_own_process(self, executable: Executable) -> bool:
        return self.fallback_holds_the_interpreter and executable.engine != DENSITY

    def limits_for(self, limits: BackendLimits, engine: str | None) -> BackendLimits:
        if engine != DENSITY:
            return limits
        return dataclasses.replace(limits, max_circuits_per_job=max(limits.max_circuits_per_job or 0, DENSITY_CIRCUITS_PER_JOB))

    def _compile(self, executable: Executable) -> _density.Program:
        """The executable's circuit with its device's noise, as the engine runs it.

        Raises:
            Unsupported: the engine cannot compute it exactly.
        """
        raise NotImplementedError

    def engine_for(self, executable: Executable, asked: str | None) -> EngineChoice:
        if asked == self.fallback:
            return EngineChoice(self.fallback)
        try:
            program = self._engine_program(executable)
        except _density.Unsupported as err:
            return EngineChoice(
                self.fallback, f"the density engine cannot compute this circuit exactly ({err}): it runs on {self.fallback_label}"
            )
        widest = max((component.width for component in program.components), default=0)
        if asked is None and self.default_max_width is not None and widest > self.default_max_width:
            return EngineChoice(
                self.fallback,
                f"its widest part has {widest} qubits: past {self.default_max_width}, {self.wide_reason}, so it runs on "
                f"{self.fallback_label} (--engine density computes them anyway)",
            )
        return EngineChoice(DENSITY)

    def _engine_program(self, executable: Executable) -> Any:
        """The compiled program, once per process and circuit (a run's jobs share it)."""
        programs = self.__dict__.setdefault("_programs", circuits.PerCircuit())
        return programs.get(executable.circuit, lambda: self._compile(executable), executable.noise)

    def _engine_counts(self, executable: Executable, values: np.ndarray, shots: int, seed: int | None) -> JobResult:
        try:
            program = self._engine_program(executable)
        except _density.Unsupported as err:  # engine_for said it could: not the circuit the run chose it for
            raise JobFailedError(f"the density engine cannot compute this circuit: {err}") from err
        names = [circuits.copy_register(slot) for slot in range(executable.slots)]
        return JobResult(_density.sample(program, values, names, shots, seed))
