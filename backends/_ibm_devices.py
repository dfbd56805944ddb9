"""IBM's devices and their registry: the devices ``qhw backends`` lists, the
fake devices qiskit-ibm-runtime ships (read without importing the SDK where a
table is all that is asked), and the account qhw finds saved."""

from __future__ import annotations

import functools
import json
import os
import warnings
from pathlib import Path
from typing import Any

from qhw.backend import BackendEntry
from qhw.feature_maps import MIN_QUBITS

FAKE_PREFIX = "fake_"
REAL_PREFIX = "ibm_"
DEFAULT_MAX_SHOTS = 100_000


#: Devices listed by `qhw backends` (any ibm_<name> the account can reach works).
LISTED_DEVICES = ("ibm_fez", "ibm_torino", "ibm_kingston", "ibm_marrakesh", "ibm_aachen", "ibm_pittsburgh")


#: Where qiskit-ibm-runtime keeps saved accounts (its accounts.management's
#: _DEFAULT_ACCOUNT_CONFIG_JSON_FILE): read here rather than through
#: ``QiskitRuntimeService.saved_accounts()``, which costs the SDK's import
#: (seconds) for one cell of ``qhw backends``; a test holds the two equal.
SAVED_ACCOUNTS = os.path.join("~", ".qiskit", "qiskit-ibm.json")


def credentials_configured() -> bool:
    """A saved account or QISKIT_IBM_TOKEN in the environment (no network)."""
    if os.environ.get("QISKIT_IBM_TOKEN"):
        return True
    try:
        saved = json.loads(Path(os.path.expanduser(SAVED_ACCOUNTS)).read_text(encoding="utf-8"))
    except (OSError, ValueError):  # none, or an unreadable account file: "not configured"
        return False
    # As the SDK reads it: legacy accounts of the retired "ibm_quantum" channel do not count.
    return isinstance(saved, dict) and any(isinstance(a, dict) and a.get("channel") != "ibm_quantum" for a in saved.values())


def catalogue() -> list[BackendEntry]:
    """The listed devices and every fake device with enough qubits for a map,
    from the configuration files qiskit-ibm-runtime ships with its fakes
    (fake_<folder>, its n_qubits), read without importing the SDK: building
    its fake provider takes seconds, and ``qhw backends`` is a table."""
    fakes = fake_configurations()
    configured = credentials_configured()
    rows = [
        BackendEntry(name, "ibm", "hardware", fakes.get(FAKE_PREFIX + name[len(REAL_PREFIX):]), True, configured)
        for name in LISTED_DEVICES
    ]
    rows += [BackendEntry(name, "ibm", "emulation", qubits, False, None) for name, qubits in sorted(fakes.items()) if qubits >= MIN_QUBITS]
    return rows


@functools.cache
def fake_configurations() -> dict[str, int]:
    """fake_<device> -> its qubits, from ``fake_provider/backends/<device>/conf_<device>.json``."""
    import glob
    import importlib.util
    import json

    spec = importlib.util.find_spec("qiskit_ibm_runtime")
    if spec is None or not spec.submodule_search_locations:
        return {}
    pattern = os.path.join(spec.submodule_search_locations[0], "fake_provider", "backends", "*", "conf_*.json")
    found = {}
    for path in glob.glob(pattern):
        with open(path, encoding="utf-8") as handle:
            found[FAKE_PREFIX + os.path.basename(os.path.dirname(path))] = int(json.load(handle)["n_qubits"])
    return found


def kept_across_runs(device: Any) -> Any:
    """The fake device, made to survive Runtime's local mode whole.

    The local service deep-copies its options, the device among them, on every
    run; the copy has no simulator yet, so every job rebuilt the device's
    noise model from its calibration (seconds a job for fake_fez), and a
    packed job runs one simulation per copy. The device is
    read, never written, by a run (its simulator takes the run's options
    afresh each time), so its copy may be the device itself.
    """
    device.__deepcopy__ = lambda memo: device
    return device


def max_shots(device: Any) -> int:
    conf = getattr(device, "_conf_dict", None) or {}
    if "max_shots" in conf:
        return int(conf["max_shots"])
    if hasattr(device, "configuration"):
        return int(getattr(device.configuration(), "max_shots", DEFAULT_MAX_SHOTS))
    return DEFAULT_MAX_SHOTS


@functools.cache
def _properties_of(device: Any) -> dict:
    return device.properties().to_dict()


def properties_document(device: Any) -> dict:
    """The device's properties as a document, read once a process; the
    caller may replace its top-level entries (a shallow copy each call)."""
    return dict(_properties_of(device))


def fake_device(name: str) -> Any | None:
    """The fake device ``name`` (fake_<folder>), built alone: Runtime's
    FakeProviderForBackendV2 builds all 60-odd of them, reading each one's
    JSON, on every submit)."""
    import importlib

    from qiskit_ibm_runtime.fake_provider.fake_backend import FakeBackendV2

    if name not in fake_configurations():
        return None
    module = importlib.import_module(f"qiskit_ibm_runtime.fake_provider.backends.{name[len(FAKE_PREFIX):]}")
    for value in vars(module).values():
        if isinstance(value, type) and issubclass(value, FakeBackendV2) and getattr(value, "backend_name", None) == name:
            # Some fake devices warn about their own placeholder properties.
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", UserWarning)
                return value()
    return None


def device_qubits(device: Any) -> int:
    """Qubit count from a fake device's configuration, without building its
    full target (which reads every calibration)."""
    conf = getattr(device, "_conf_dict", None) or {}
    return int(conf["n_qubits"]) if "n_qubits" in conf else device.num_qubits


def fake_twin(name: str) -> Any | None:
    """The fake of a real device (ibm_fez -> fake_fez), for its published qubit count."""
    twin = FAKE_PREFIX + name[len(REAL_PREFIX) :]
    return fake_device(twin)
