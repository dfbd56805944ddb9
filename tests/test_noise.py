"""--noise SPEC: read once, checked item by item, written back as it was read."""

from __future__ import annotations

import math

import pytest

from qhw.errors import ParameterError
from qhw.noise import AUTO, NoiseSpec, parse_noise


def test_every_key_is_read_into_its_field_and_written_back_the_same():
    spec = parse_noise(
        "scale=2, readout=1.5,reset=0.02,measure-crosstalk=0.01,crosstalk=-0.05,prep=auto,"
        "bad-qubit=7:0.1,bad-qubit=3:0.25,drift=0.2,seed=4294967295"
    )
    assert spec == NoiseSpec(
        scale=2.0, readout=1.5, reset=0.02, measure_crosstalk=0.01, crosstalk=-0.05, prep=AUTO,
        bad_qubits=((3, 0.25), (7, 0.1)), drift=0.2, seed=2**32 - 1,
    )
    assert parse_noise(spec.text()) == spec
    assert parse_noise("prep=0.125").prep == 0.125 and parse_noise("prep=AUTO").prep == AUTO
    assert parse_noise("scale=1").is_default and not spec.is_default and parse_noise("scale=1").text() == ""


@pytest.mark.parametrize(
    "spec, said",
    [
        ("", "must be key=value items"),
        ("scale", "item 'scale' is not key=value"),
        ("=2", "item '=2' is not key=value"),
        ("temperature=3", "has no key 'temperature': its keys are scale, readout, reset"),
        ("scale=2,scale=3", "scale is given twice"),
        ("scale=two", "scale=two is not a number"),
        ("scale=1_0", "scale=1_0 is not a number"),  # one number reading: no underscores
        ("scale=٢", "scale=٢ is not a number"),  # nor other scripts' digits
        ("readout=nan", "readout=nan is not finite"),
        ("scale=-1", "scale=-1 must be from 0 to 100"),
        ("scale=101", "scale=101 must be from 0 to 100"),
        ("reset=1.5", "reset=1.5 must be a probability from 0 to 1"),
        ("measure-crosstalk=-0.1", "measure-crosstalk=-0.1 must be a probability from 0 to 1"),
        ("crosstalk=4", f"crosstalk=4 must be from {-math.pi:g} to {math.pi:g}"),
        ("prep=often", "prep=often is not a number"),
        ("prep=2", "prep=2 must be a probability from 0 to 1 (or auto)"),
        ("drift=3", "drift=3 must be from 0 to 1"),
        ("seed=-1", "seed=-1 must be a whole number from 0 to 4294967295"),
        ("seed=1.5", "seed=1.5 must be a whole number"),
        ("bad-qubit=7", "bad-qubit=7 must be Q:P"),
        ("bad-qubit=x:0.1", "bad-qubit=x:0.1 must be Q:P"),
        ("bad-qubit=-1:0.1", "bad-qubit=-1:0.1 must be Q:P"),
        ("bad-qubit=7:2", "bad-qubit=7:2: its error must be a probability from 0 to 1"),
        ("bad-qubit=7:0.1,bad-qubit=7:0.2", "bad-qubit=7 is given twice"),
    ],
)
def test_a_bad_item_is_one_line_naming_it(spec, said):
    with pytest.raises(ParameterError) as raised:
        parse_noise(spec)
    assert raised.value.parameter == "noise"
    message = str(raised.value)
    assert message.startswith("noise ") and said in message and "\n" not in message, message


def test_a_bad_qubit_must_be_a_qubit_of_the_device():
    spec = parse_noise("bad-qubit=4:0.1")
    spec.check_qubits(5, "fake_manila")
    with pytest.raises(ParameterError, match="bad-qubit=4: fake_lagos has qubits 0 to 3"):
        spec.check_qubits(4, "fake_lagos")
