"""--noise SPEC: read once, checked item by item, written back as it was read."""

from __future__ import annotations

import math

import numpy as np
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
    spec.check_qubits(range(5), "fake_manila")
    with pytest.raises(ParameterError, match="bad-qubit=4: fake_lagos has qubits 0 to 3"):
        spec.check_qubits(range(4), "fake_lagos")
    with pytest.raises(ParameterError, match="bad-qubit=4: iqm has qubits 1, 2, 3, 5"):  # a device's own labels
        spec.check_qubits([1, 2, 3, 5], "iqm")


def test_the_realistic_preset_is_its_values_and_any_key_overrides_it():
    from qhw.noise import PRESETS

    realistic = parse_noise("realistic")
    assert realistic == PRESETS["realistic"] and realistic.reset > 0 and realistic.drift > 0
    # A key overrides the preset whichever side of it it is written on; a bad qubit adds to it.
    for spec in ("realistic,reset=0.02", "reset=0.02,realistic"):
        assert parse_noise(spec) == NoiseSpec(**{**vars(realistic), "reset": 0.02})
    assert parse_noise("realistic,bad-qubit=3:0.1").bad_qubits == ((3, 0.1),)
    # Stored written out, key by key: what a run ran does not change if the preset does.
    assert "realistic" not in realistic.text() and parse_noise(realistic.text()) == realistic
    with pytest.raises(ParameterError, match="names two presets"):
        parse_noise("realistic,realistic")
    with pytest.raises(ParameterError, match="its presets realistic"):
        parse_noise("harsh=1")


def test_drift_draws_one_factor_a_job_from_the_seed_and_scales_every_rate():
    spec = parse_noise("reset=0.1,measure-crosstalk=0.2,crosstalk=0.3,prep=0.4,bad-qubit=2:0.5,drift=0.3,seed=7,scale=2,readout=3")
    factors = [spec.drift_factor(0, 0, start) for start in range(0, 2000, 10)]
    assert factors == [spec.drift_factor(0, 0, start) for start in range(0, 2000, 10)]  # the same in any process
    assert len(set(factors)) == len(factors)
    logs = np.log(factors)
    assert abs(logs.mean()) < 0.1 and 0.25 < logs.std() < 0.35  # log-normal, median 1, sigma 0.3
    assert parse_noise("drift=0.3,seed=8").drift_factor(0, 0, 0) != spec.drift_factor(0, 0, 0)
    assert parse_noise("reset=0.1").drift_factor(0, 0, 0) == 1.0  # no drift, no draw
    drifted = spec.drifted(1.5)
    assert (drifted.scale, drifted.readout, drifted.reset, drifted.measure_crosstalk) == pytest.approx((3, 4.5, 0.15, 0.3))
    assert (drifted.crosstalk, drifted.prep, drifted.bad_qubits[0][1]) == pytest.approx((0.45, 0.6, 0.75))
    assert spec.drifted(10).prep == 1.0  # probabilities capped
    auto = parse_noise("prep=auto").drifted(2.0)
    assert auto.prep_probability(100e-6, 250e-6) == pytest.approx(2 * 0.5 * math.exp(-2.5))


def test_prep_auto_is_what_is_left_of_an_excited_qubit_after_the_rep_delay():
    spec = parse_noise("prep=auto")
    assert spec.prep_probability(100e-6, 250e-6) == pytest.approx(0.5 * math.exp(-2.5))
    assert spec.prep_probability(100e-6, 1e-3) < spec.prep_probability(100e-6, 100e-6)  # a longer wait, a cleaner start
    assert spec.prep_probability(None, 250e-6) == 0.0  # no T1 known: nothing assumed
    assert parse_noise("prep=0.05").prep_probability(100e-6, 1.0) == 0.05
