"""``--mitigate``: qhw's readout calibration, and IBM's own mitigation for sampler runs.

``--mitigate`` takes comma-separated items (or the option again):

- ``readout``: qhw runs the readout-calibration circuits with the run and
  ``compare`` inverts their confusion matrices (qhw.mitigation);
- ``twirling``: IBM twirls the measurements (SamplerV2
  ``twirling.enable_measure``): each shot's readout bias is averaged into a
  symmetric one, which the calibration then describes better;
- ``twirling-gates``: IBM twirls the two-qubit gates too (``enable_gates``):
  their coherent errors become stochastic Pauli errors;
- ``dd`` or ``dd=XX|XpXm|XY4``: IBM fills idle stretches with a dynamical
  decoupling sequence (``dynamical_decoupling``; XX, IBM's default, when
  none is named): idle qubits dephase less while a copy waits on another.

The last three are options IBM's sampler applies on its devices; Runtime's
local mode with a fake device ignores them and Braket has none, so qhw
refuses them there rather than record what did not happen.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from qhw.boundary import quoted
from qhw.errors import ParameterError

#: IBM's dynamical decoupling sequences (DynamicalDecouplingOptions.sequence_type).
DD_SEQUENCES = ("XX", "XpXm", "XY4")
#: Every item --mitigate takes.
ITEMS = ("readout", "twirling", "twirling-gates", "dd", *(f"dd={s}" for s in DD_SEQUENCES))


@dataclass(frozen=True)
class DeviceMitigation:
    """The mitigation a device's sampler applies as it runs a job (IBM's SamplerV2 options)."""

    twirling: str | None = None  # "measure" (twirling), "gates" (twirling-gates: measurements and gates), None
    dd: str | None = None  # a DD_SEQUENCES sequence, None

    def text(self) -> str:
        """As --mitigate writes it (and the ledger keeps it): ``twirling-gates,dd=XY4``."""
        items = {"measure": ["twirling"], "gates": ["twirling-gates"], None: []}[self.twirling]
        return ",".join([*items, *([f"dd={self.dd}"] if self.dd else [])])

    def sampler_options(self) -> dict[str, dict[str, object]]:
        """The SamplerV2 options that apply it, by group (``twirling``, ``dynamical_decoupling``)."""
        options: dict[str, dict[str, object]] = {}
        if self.twirling is not None:
            options["twirling"] = {"enable_measure": True, "enable_gates": self.twirling == "gates"}
        if self.dd is not None:
            options["dynamical_decoupling"] = {"enable": True, "sequence_type": self.dd}
        return options


def parse_mitigate(values: str | Iterable[str] | None) -> tuple[bool, DeviceMitigation | None]:
    """``--mitigate`` (one string, or the option given several times) as
    (readout calibration or not, the device's own mitigation or None).

    Raises:
        ParameterError: an unknown item, or one given twice (twirling and twirling-gates, two dd).
    """
    if values is None:
        return False, None
    if isinstance(values, str):
        values = [values]
    items = [item.strip() for value in values for item in str(value).split(",") if item.strip()]
    readout, twirling, dd = False, None, None
    seen: set[str] = set()
    for item in items:
        kind = item.split("=", 1)[0] if item.startswith("dd") else item.removesuffix("-gates")
        if item not in ITEMS:
            known = ", ".join(ITEMS)
            raise ParameterError("mitigate", f"has no item {quoted(item)}: it takes {known} (comma-separated)")
        if kind in seen:
            raise ParameterError("mitigate", f"names {kind} twice ({', '.join(items)})")
        seen.add(kind)
        if item == "readout":
            readout = True
        elif kind == "twirling":
            twirling = "gates" if item == "twirling-gates" else "measure"
        else:
            dd = item.partition("=")[2] or "XX"
    device = DeviceMitigation(twirling, dd) if twirling or dd else None
    return readout, device


def device_mitigation_of_text(text: str | None) -> DeviceMitigation | None:
    """A stored run's device mitigation read back (its --mitigate items but readout).

    Raises:
        ParameterError: the text is not --mitigate's.
    """
    if text is None:
        return None
    readout, device = parse_mitigate(text)
    if readout or device is None:
        raise ParameterError("mitigate", f"{quoted(text)} is not a device's mitigation")
    return device
