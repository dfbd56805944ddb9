"""The backend registry: built-ins, fake devices, entry points, unknown names."""

from __future__ import annotations

import textwrap

import pytest

from qhw.backend import backend_names, get_backend
from qhw.errors import ConfigError, UnknownBackendError


def test_known_names_include_aer_and_five_qubit_fakes():
    names = backend_names()
    assert "aer_simulator" in names
    assert {"fake_manila", "fake_lima", "fake_belem", "fake_quito", "fake_brisbane"} <= set(names)
    assert "fake_armonk" not in names  # one qubit


def test_an_unknown_backend_is_a_short_line_with_the_closest_names_and_where_the_rest_are():
    """Every name would be hundreds of characters (409 once): the closest
    ones, and `qhw backends` for the list."""
    with pytest.raises(UnknownBackendError) as caught:
        get_backend("quantinuum_h2")
    assert str(caught.value) == "unknown backend 'quantinuum_h2'; `qhw backends` lists them"
    with pytest.raises(UnknownBackendError) as caught:
        get_backend("fake_manla")
    assert str(caught.value).startswith("unknown backend 'fake_manla' (did you mean fake_manila")
    assert len(str(caught.value)) < 120
    with pytest.raises(UnknownBackendError) as caught:
        get_backend("x" * 10_000 + "\nsecond line")
    assert "\n" not in str(caught.value) and len(str(caught.value)) < 160


def test_fake_device_with_too_few_qubits_is_refused():
    with pytest.raises(ConfigError, match="a feature map needs at least 2"):
        get_backend("fake_armonk")


def test_third_party_backend_is_found_through_entry_points(tmp_path, monkeypatch):
    (tmp_path / "thirdparty_qhw.py").write_text(
        textwrap.dedent(
            """
            from qhw.backends.aer import AerBackend

            class Mine(AerBackend):
                name = "mine"
                provider = "thirdparty"

            def backend_names():
                return ["mine"]

            def create(name, *, seed=None, artifacts=None):
                return Mine(seed=seed) if name == "mine" else None
            """
        )
    )
    dist = tmp_path / "thirdparty_qhw-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: thirdparty-qhw\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text("[qhw.backends]\nmine = thirdparty_qhw\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    assert "mine" in backend_names()
    backend = get_backend("mine")
    assert backend.provider == "thirdparty"
