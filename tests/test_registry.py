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


def test_unknown_backend_lists_what_exists():
    with pytest.raises(UnknownBackendError) as caught:
        get_backend("quantinuum_h2")
    message = str(caught.value)
    assert "quantinuum_h2" in message and "aer_simulator" in message and "fake_<device>" in message


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

            def create(name, *, seed=None):
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
