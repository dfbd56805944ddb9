"""The artifact store (qhw/store/artifacts.py): objects by content, checked when read.

A ``file://`` folder stands for a shared file system; a bucket on moto's S3
server for a remote store (not local: reads go through the cache).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from qhw.errors import ArtifactError
from qhw.store import Store, artifacts
from qhw.store.artifacts import ArtifactStore


@pytest.fixture
def remote(home, s3_bucket):
    """A store that is not a local folder: a fresh bucket on an S3 API (moto's server)."""
    return ArtifactStore(s3_bucket)


def test_a_file_is_stored_once_under_its_digest_and_read_back_checked(tmp_path, home):
    store = ArtifactStore((tmp_path / "shared").as_uri())
    source = tmp_path / "weights.bin"
    source.write_bytes(b"qhw" * 1000)
    first, second = store.put_file(source, "a file"), store.put_file(source, "a file")
    assert first == second and first.startswith("sha256:")
    objects = [p for p in (tmp_path / "shared").rglob("*") if p.is_file()]
    assert [p.name for p in objects] == [first[len("sha256:"):]]  # one object, named by its digest; nothing partial
    assert store.path(first, "a file").read_bytes() == b"qhw" * 1000


def test_a_remote_store_is_read_through_the_cache_once(remote, tmp_path, monkeypatch):
    source = tmp_path / "arrays.npz"
    np.savez(source, x=np.arange(10))
    tree = remote.put_tree({"arrays.npz": source}, "a feature set")
    # Another machine: nothing cached yet.
    shutil.rmtree(tmp_path / "home" / "cache", ignore_errors=True)
    fetched = []
    real_get = remote.fs.get_file
    monkeypatch.setattr(remote.fs, "get_file", lambda key, path, **kw: fetched.append(key) or real_get(key, path, **kw))
    for _ in range(3):
        with np.load(remote.tree(tree, "a feature set") / "arrays.npz") as saved:
            assert saved["x"].tolist() == list(range(10))
    assert len(fetched) == 2  # the manifest and the arrays, each once


def test_a_corrupted_or_missing_object_is_one_line_naming_it(remote, tmp_path):
    source = tmp_path / "model.keras"
    source.write_bytes(bytes(range(256)) * 40)
    reference = remote.put_file(source, "a model")
    shutil.rmtree(tmp_path / "home" / "cache", ignore_errors=True)
    key = remote._key(reference[len("sha256:"):])
    data = bytearray(remote.fs.cat_file(key))
    data[100] ^= 1
    remote.fs.pipe_file(key, bytes(data))
    with pytest.raises(ArtifactError, match=r"^model 7: its object sha256:\w{12}\.\.\. in the artifact store s3://\S+ is corrupt") as caught:
        remote.path(reference, "model 7")
    assert "\n" not in str(caught.value)
    remote.fs.rm(key)
    with pytest.raises(ArtifactError, match=r"model 7: its object sha256:\w{12}\.\.\. is missing from the artifact store s3://"):
        remote.path(reference, "model 7")


def test_transient_store_errors_are_retried_then_reported_in_one_line(remote, tmp_path, monkeypatch):
    monkeypatch.setenv("QHW_RETRY_INITIAL_WAIT", "0")
    monkeypatch.setenv("QHW_RETRY_MAX_WAIT", "0")
    source = tmp_path / "f.bin"
    source.write_bytes(b"x" * 100)
    reference = remote.put_file(source, "a file")
    shutil.rmtree(tmp_path / "home" / "cache", ignore_errors=True)
    real_get, calls = remote.fs.get_file, []

    def flaky(key, path, **kw):
        calls.append(key)
        if len(calls) <= 2:
            raise TimeoutError("read timed out")
        return real_get(key, path, **kw)

    monkeypatch.setattr(remote.fs, "get_file", flaky)
    assert remote.path(reference, "a file").read_bytes() == b"x" * 100
    assert len(calls) == 3
    shutil.rmtree(tmp_path / "home" / "cache", ignore_errors=True)
    monkeypatch.setattr(remote.fs, "get_file", lambda *a, **kw: (_ for _ in ()).throw(OSError(16, "SlowDown")))
    with pytest.raises(ArtifactError, match=r"reading a file: the artifact store s3://\S+ kept failing \(OSError"):
        remote.path(reference, "a file")


def test_a_write_cut_short_leaves_no_object_and_nothing_partial(tmp_path, home, monkeypatch):
    store = ArtifactStore(str(tmp_path / "shared"))
    source = tmp_path / "f.bin"
    source.write_bytes(b"y" * 1000)

    def cut(*args, **kwargs):
        raise PermissionError("the rename was refused")

    monkeypatch.setattr(store.fs, "mv", cut)
    with pytest.raises(ArtifactError, match="storing a file: the artifact store .* refused it"):
        store.put_file(source, "a file")
    assert [p for p in (tmp_path / "shared").rglob("*") if p.is_file()] == []


def test_an_unusable_store_fails_the_command_before_anything_is_written(featured_store, tmp_path):
    from qhw.cli import main

    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    before = featured_store.catalogue.feature_sets()
    build = ["features", "build", "--limit-train", "60", "--limit-test", "20", "--epochs", "1"]
    result = CliRunner().invoke(main, ["--artifacts", str(blocker / "store"), *build])
    assert result.exit_code != 0 and "Traceback" not in result.output
    assert "the artifact store" in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert featured_store.catalogue.feature_sets() == before
    unknown = CliRunner().invoke(main, ["--artifacts", "nosuchprotocol://bucket/x", "train", "--classical", "--epochs", "1"])
    assert unknown.exit_code != 0 and "--artifacts nosuchprotocol://bucket/x" in unknown.stderr and "Traceback" not in unknown.output


def test_a_corrupted_feature_set_is_one_line_and_nothing_is_written(featured_store, home):
    """One byte of the arrays' object changed in the home's store: submit and
    train each say which object, in one line, and write nothing."""
    from qhw.cli import main

    record = featured_store.catalogue.feature_set(1)
    manifest = json.loads(featured_store.artifacts.read_bytes(record.artifacts, "its manifest"))["files"]
    stored = home / "artifacts" / "sha256" / manifest["arrays.npz"][:2] / manifest["arrays.npz"]
    shutil.rmtree(home / "cache", ignore_errors=True)
    data = bytearray(stored.read_bytes())
    data[len(data) // 2] ^= 0xFF
    stored.write_bytes(bytes(data))
    runs_before = featured_store.ledger.runs()
    for command in (["submit", "--backend", "statevector", "--limit", "5"], ["train", "--classical", "--epochs", "1"]):
        result = CliRunner().invoke(main, command)
        assert result.exit_code != 0 and "Traceback" not in result.output, result.output
        line = result.stderr.strip()
        assert "\n" not in line and "feature set 1's files: arrays.npz: its object sha256:" in line and "is corrupt" in line
    assert featured_store.ledger.runs() == runs_before and featured_store.catalogue.evaluations() == []


def test_two_homes_share_one_ledger_and_one_store(built_home, tmp_path, monkeypatch):
    """Home A holds the feature set; B, on another "machine" (its own home,
    nothing copied by hand) with the same database and store, submits,
    trains, compares and exports; A then sees B's run and model."""
    from qhw.cli import main

    shared = tmp_path / "shared-store"
    shutil.copytree(built_home / "artifacts", shared)  # A's objects, moved into the team's store
    home_a, home_b = tmp_path / "a", tmp_path / "b"
    home_a.mkdir()
    shutil.copy(built_home / "qhw.db", home_a / "qhw.db")
    db = ["--db", f"sqlite:///{home_a}/qhw.db", "--artifacts", shared.as_uri()]

    def as_user(home, *args):
        monkeypatch.setenv("QHW_HOME", str(home))
        result = CliRunner().invoke(main, [*db, *args])
        assert result.exit_code == 0, result.output
        return result

    as_user(home_b, "submit", "--backend", "statevector", "--split", "all", "--limit", "30", "--shots", "256")
    as_user(home_b, "submit", "--backend", "aer_simulator", "--split", "all", "--limit", "30", "--shots", "256")
    trained = json.loads(as_user(home_b, "train", "--run", "1", "--epochs", "2", "--json").stdout)
    compared = json.loads(as_user(home_b, "compare", "--sim", "1", "--hw", "2", "--epochs", "2", "--json").stdout)
    as_user(home_b, "results", "--run", "2", "--out", str(tmp_path / "b.npz"))
    assert not (home_b / "features").exists() or not any((home_b / "features").iterdir())
    shown = json.loads(as_user(home_a, "runs", "list", "--json").stdout)  # A sees B's runs
    assert len(shown) == 2
    # ... and opens B's report, fetched from the store and checked.
    index = Path(as_user(home_a, "reports", "get", str(compared["report_id"]), "--out", str(tmp_path / "a-report")).stdout.strip())
    assert index == tmp_path / "a-report" / "index.html"
    assert index.read_bytes() == Path(compared["report"]).read_bytes()
    from qhw import training

    monkeypatch.setenv("QHW_HOME", str(home_a))
    store = Store(f"sqlite:///{home_a}/qhw.db", artifacts=shared.as_uri())
    model = store.catalogue.model(trained["model"])
    assert training.load_model(store.artifacts, model) is not None  # A reads B's model from the store
    store.close()


def _feature_set_from_before_the_store(store, home):
    """Feature set 1 again, as a row from before the store names it: a folder
    of the home (relative to it) holding its files. The record and the folder."""
    record = store.catalogue.feature_set(1)
    legacy = home / "features" / "from-before"
    shutil.copytree(store.artifacts.local_folder(record.artifacts, "set 1"), legacy)
    fields = {name: getattr(record, name) for name in (
        "dataset", "dataset_fingerprint", "seed", "components", "latent_dim", "epochs", "n_train", "n_test", "reconstruction_mse")}
    return store.catalogue.add_feature_set(**fields, artifacts="features/from-before"), legacy


def test_push_moves_a_homes_files_into_the_store_and_a_second_push_changes_nothing(featured_store, home, tmp_path):
    """A home from before the store (rows naming its files) and one whose
    objects are in its own folder store: after a push, every row names an
    object of the team's store, which holds them all; pushing again moves and
    copies nothing."""
    from qhw.cli import main
    from qhw.records import ModelSpec
    from qhw.store.arrays import load_arrays

    record = featured_store.catalogue.feature_set(1)
    old_set, legacy = _feature_set_from_before_the_store(featured_store, home)
    (home / "models").mkdir(exist_ok=True)
    (home / "models" / "old.keras").write_bytes(b"weights of a model from before the store")
    spec = ModelSpec(kind="classical", feature_set_id=1, run_id=None, train_samples=1, epochs=1, seed=0, weights="models/old.keras")
    old_model, _ = featured_store.catalogue.add_model(spec, accuracy=0.5, test_samples=1)
    # A report kept in the home's own store (as `qhw compare` keeps one).
    from qhw import runs

    run = runs.submit(featured_store, backend_name="statevector", split="test", limit=2, shots=16).run
    page = tmp_path / "index.html"
    page.write_text("<html>a report</html>")
    report = featured_store.catalogue.add_report(
        simulator_run=run.id, hardware_runs=[run.id], artifacts=featured_store.artifacts.put_tree({"index.html": page}, "a report"),
    )
    team = tmp_path / "team-store"

    def push():
        result = CliRunner().invoke(main, ["--artifacts", team.as_uri(), "artifacts", "push", "--json"])
        assert result.exit_code == 0, result.output
        return json.loads(result.stdout)

    def state():
        objects = sorted(str(p.relative_to(team)) for p in team.rglob("*") if p.is_file())
        rows = [s.artifacts for s in featured_store.catalogue.feature_sets()] + [featured_store.catalogue.report(report.id).artifacts]
        rows += [featured_store.catalogue.model(old_model.id).weights]
        return objects, rows

    first = push()
    assert (first["feature_sets"], first["models"], first["objects_copied"], first["skipped"]) == (1, 1, 4 + 2, [])
    objects, rows = state()
    assert all(row.startswith("sha256:") for row in rows)
    assert len(objects) == 4 + 2 + 1  # set 1's three files and manifest (set 2 has the same), the report's page and manifest, the old model
    on_team = ArtifactStore(team.as_uri())
    assert np.array_equal(load_arrays(on_team, featured_store.catalogue.feature_set(old_set.id)).angles_test, load_arrays(on_team, record).angles_test)
    assert on_team.local_file(rows[-1], "the old model").read_bytes() == b"weights of a model from before the store"
    assert (on_team.tree(rows[-2], "the report") / "index.html").read_text() == "<html>a report</html>"
    second = push()
    assert (second["feature_sets"], second["models"], second["objects_copied"]) == (0, 0, 0)
    assert state() == (objects, rows)


# --- on an S3 API (moto's server: .ci/run starts one) ---------------------------------------------------------


def test_an_s3_store_keeps_reads_and_checks_objects(s3_bucket, home, tmp_path):
    import boto3

    store = ArtifactStore(s3_bucket)
    store.check_reachable()
    source = tmp_path / "arrays.npz"
    np.savez(source, x=np.arange(1000))
    tree = store.put_tree({"arrays.npz": source}, "a feature set")
    shutil.rmtree(home / "cache", ignore_errors=True)  # another machine
    with np.load(store.tree(tree, "a feature set") / "arrays.npz") as saved:
        assert saved["x"].sum() == 499500
    # One byte changed behind qhw's back, then the object deleted: one line each.
    bucket, _, prefix = s3_bucket[len("s3://"):].partition("/")
    digest = artifacts.file_digest(source)
    key = f"{prefix}/sha256/{digest[:2]}/{digest}"
    client = boto3.client("s3")
    data = bytearray(client.get_object(Bucket=bucket, Key=key)["Body"].read())
    data[10] ^= 1
    client.put_object(Bucket=bucket, Key=key, Body=bytes(data))
    shutil.rmtree(home / "cache", ignore_errors=True)
    with pytest.raises(ArtifactError, match=rf"a feature set: arrays.npz: its object sha256:{digest[:12]}\.\.\. in the artifact store s3://\S+ is corrupt"):
        store.tree(tree, "a feature set")
    client.delete_object(Bucket=bucket, Key=key)
    with pytest.raises(ArtifactError, match=r"a feature set: arrays.npz.*missing from the artifact store s3://"):
        store.tree(tree, "a feature set")


def test_s3_throttling_and_5xx_are_retried_then_reported_in_one_line(s3_bucket, home, tmp_path, monkeypatch):
    """Faults at s3fs's boundary with botocore (S3FileSystem._call_s3, every
    S3 call s3fs makes): SlowDown twice, then the object; a store that keeps
    answering 503 is one line after the retries."""
    import s3fs
    from botocore.exceptions import ClientError

    store = ArtifactStore(s3_bucket)
    source = tmp_path / "w.keras"
    source.write_bytes(b"w" * 5000)
    reference = store.put_file(source, "a model")
    shutil.rmtree(home / "cache", ignore_errors=True)
    real_call, failures = s3fs.S3FileSystem._call_s3, {"left": 2, "seen": 0}

    async def faulty(self, method, *args, **kwargs):
        if method == "get_object" and failures["left"] != 0:
            failures["left"] -= 1
            failures["seen"] += 1
            code, status = ("SlowDown", 503) if failures["seen"] % 2 else ("InternalError", 500)
            raise ClientError({"Error": {"Code": code, "Message": "injected"}, "ResponseMetadata": {"HTTPStatusCode": status}}, "GetObject")
        return await real_call(self, method, *args, **kwargs)

    monkeypatch.setattr(s3fs.S3FileSystem, "_call_s3", faulty)
    assert store.path(reference, "a model").read_bytes() == b"w" * 5000
    assert failures["seen"] == 2
    shutil.rmtree(home / "cache", ignore_errors=True)
    failures["left"] = -1  # for ever
    with pytest.raises(ArtifactError, match=r"^reading a model: the artifact store s3://\S+ kept failing") as caught:
        store.path(reference, "a model")
    assert "\n" not in str(caught.value)


def test_an_unreachable_s3_store_fails_the_command_before_its_first_ledger_write(featured_store, monkeypatch):
    from qhw.cli import main

    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", "http://127.0.0.1:9")  # nothing listens there
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("QHW_RETRY_ATTEMPTS", "2")
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")  # botocore's own retries left out: qhw's are what is tested
    monkeypatch.setenv("QHW_RETRY_INITIAL_WAIT", "0")
    monkeypatch.setenv("QHW_RETRY_MAX_WAIT", "0")
    before = (featured_store.catalogue.feature_sets(), featured_store.catalogue.evaluations())
    # A command that writes checks the store first; one that reads fails on its first read: one line each.
    build = ["features", "build", "--limit-train", "60", "--limit-test", "20", "--epochs", "1"]
    for command, said in ((build, "the artifact store s3://nowhere/qhw cannot be reached"),
                          (["train", "--classical", "--epochs", "1"], "the artifact store s3://nowhere/qhw kept failing")):
        result = CliRunner().invoke(main, ["--artifacts", "s3://nowhere/qhw", *command])
        assert result.exit_code != 0 and "Traceback" not in result.output
        assert said in result.stderr and len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert (featured_store.catalogue.feature_sets(), featured_store.catalogue.evaluations()) == before


def test_a_command_cut_off_between_object_and_row_leaves_only_an_object_no_row_names(featured_store, home, monkeypatch):
    """`train` stopped after its model is in the store but before its row:
    no row names a missing object; `qhw artifacts check` lists the object.
    A deleted object is listed with the row that names it."""
    from qhw.cli import main
    from qhw.store.catalogue import Catalogue

    def cut_off(self, *args, **kwargs):
        raise KeyboardInterrupt

    with monkeypatch.context() as patch:
        patch.setattr(Catalogue, "add_model", cut_off)
        interrupted = CliRunner().invoke(main, ["train", "--classical", "--epochs", "1"])
    assert interrupted.exit_code != 0
    checked = json.loads(CliRunner().invoke(main, ["artifacts", "check", "--json"]).stdout)
    assert len(checked["unreferenced"]) == 1 and checked["missing"] == []
    stored = home / "artifacts" / "sha256" / checked["unreferenced"][0][:2] / checked["unreferenced"][0]
    assert stored.is_file() and featured_store.ledger.runs() == []
    record = featured_store.catalogue.feature_set(1)
    manifest = json.loads(featured_store.artifacts.read_bytes(record.artifacts, "its manifest"))["files"]
    (home / "artifacts" / "sha256" / manifest["encoder.keras"][:2] / manifest["encoder.keras"]).unlink()
    checked = json.loads(CliRunner().invoke(main, ["artifacts", "check", "--json"]).stdout)
    assert checked["missing"] == [f"feature set 1: encoder.keras sha256:{manifest['encoder.keras']}"]


def test_a_train_sigkilled_as_its_model_reaches_the_store_leaves_no_row_without_its_object(featured_store, home):
    """The real `qhw train` killed (SIGKILL) the moment its model's object
    appears in the store: whether its row made it or not, no row names a
    missing object, and an object without its row is what `artifacts check` lists."""
    import signal
    import time

    from qhw.cli import main

    from conftest import qhw_env, start_qhw

    objects = home / "artifacts" / "sha256"
    before = {p.name for p in objects.rglob("*") if p.is_file()}
    featured_store.close()
    process = start_qhw(qhw_env(home), "train", "--classical", "--epochs", "1")
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and process.poll() is None:
        if {p.name for p in objects.rglob("*") if p.is_file() and ".partial-" not in p.name} - before:
            process.send_signal(signal.SIGKILL)
            break
        time.sleep(0.005)
    process.wait(timeout=60)
    new = {p.name for p in objects.rglob("*") if p.is_file()} - before
    assert len(new) == 1 and not any(".partial-" in name for name in new), new  # the whole object, nothing half-written
    checked = json.loads(CliRunner().invoke(main, ["artifacts", "check", "--json"]).stdout)
    print("row written before the kill" if checked["unreferenced"] == [] else "killed between the object and its row")
    assert checked["missing"] == []
    store = Store(f"sqlite:///{home}/qhw.db")
    try:
        models = [e.model_id for e in store.catalogue.evaluations()]
        if models:  # the row made it before the kill: it names the object
            assert store.catalogue.model(models[0]).weights == f"sha256:{new.pop()}" and checked["unreferenced"] == []
        else:
            assert checked["unreferenced"] == sorted(new)
    finally:
        store.close()


@pytest.mark.parametrize(
    "content, said",
    [(b"x,y\n1,2\n", "not an .npz archive"), (b"PK\x03\x04", "unreadable"), (None, "its arrays are missing at")],
    ids=["a text file", "truncated", "missing"],
)
def test_a_feature_set_from_before_the_store_still_reads_its_file_and_says_what_is_wrong(featured_store, home, content, said):
    """A row from before the store names a folder of the home: read as
    before, and a damaged or missing file there is one line, as before."""
    from qhw.cli import main

    old, legacy = _feature_set_from_before_the_store(featured_store, home)
    ok = CliRunner().invoke(main, ["submit", "--backend", "statevector", "--features", str(old.id), "--limit", "3", "--json"])
    assert ok.exit_code == 0, ok.output
    if content is None:
        (legacy / "arrays.npz").unlink()
    else:
        (legacy / "arrays.npz").write_bytes(content)
    runs_before = featured_store.ledger.runs()
    result = CliRunner().invoke(main, ["submit", "--backend", "statevector", "--features", str(old.id), "--limit", "3"])
    assert result.exit_code == 1 and "Traceback" not in result.output
    (line,) = result.stderr.strip().splitlines()
    assert f"feature set {old.id}" in line and said in line, line
    assert featured_store.ledger.runs() == runs_before
