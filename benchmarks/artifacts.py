"""Loading a feature set from the artifact store against reading its file, in one run.

A feature set of 70,000 samples (MNIST's size: angles, 64-dimensional latents
and labels, saved as `qhw features build` saves them), loaded by
`qhw.store.arrays.load_arrays` from:

- its .npz read directly with NumPy (the floor: no store);
- the home's own folder store (the default): the object read in place, its
  SHA-256 checked;
- an S3 API (moto's server, over HTTP on this machine), first with an empty
  cache (download, check, load), then again (the cache: nothing fetched).

    python benchmarks/artifacts.py [--samples 70000] [--quick]

The S3 rows time this machine's loopback, not a network: the transfer of a
real bucket adds its size over the link's bandwidth.
"""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import tempfile
import time
from pathlib import Path

import quick
import tables


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--samples", type=int, default=70_000)
    quick.add_option(parser)
    tables.add_option(parser)
    args = parser.parse_args()
    if args.quick:
        args.samples = 2_000
    home = Path(tempfile.mkdtemp(prefix="qhw-artifacts-"))
    os.environ["QHW_HOME"] = str(home)

    import boto3
    import numpy as np
    from moto.server import ThreadedMotoServer

    from qhw.records import FeatureSetRecord
    from qhw.store import ArtifactStore
    from qhw.store.arrays import ARRAYS_FILE, load_arrays

    rng = np.random.default_rng(0)
    n_train = args.samples * 6 // 7
    n_test = args.samples - n_train
    folder = home / "source"
    folder.mkdir()
    source = folder / ARRAYS_FILE
    np.savez_compressed(
        source,
        angles_train=rng.uniform(-1.57, 1.57, (n_train, 5)), angles_test=rng.uniform(-1.57, 1.57, (n_test, 5)),
        latent_train=rng.normal(size=(n_train, 64)).astype(np.float32), latent_test=rng.normal(size=(n_test, 64)).astype(np.float32),
        y_train=rng.integers(0, 10, n_train), y_test=rng.integers(0, 10, n_test),
    )
    size_mb = source.stat().st_size / 1e6

    def record(reference: str) -> FeatureSetRecord:
        return FeatureSetRecord(
            id=1, created_at=None, dataset="bench", dataset_fingerprint="0" * 64, seed=0, components=5, latent_dim=64, epochs=1,
            n_train=n_train, n_test=n_test, reconstruction_mse=0.0, artifacts=reference, feature_map="paper", num_qubits=5,
            num_parameters=5, reps=None, angle_range=(-1.57, 1.57), template_qpy=b"", template_qasm3="",
        )

    def timed(call) -> float:
        start = time.perf_counter()
        call()
        return time.perf_counter() - start

    rows: list[tuple[str, float]] = []
    rows.append(("NumPy reads the .npz (no store)", timed(lambda: dict(np.load(source)))))
    local = ArtifactStore(str(home / "artifacts"))  # the home's folder store
    reference = local.put_tree({ARRAYS_FILE: source}, "the feature set")
    rows.append(("load_arrays from the home's folder store (read in place, SHA-256 checked)", timed(lambda: load_arrays(local, record(reference)))))

    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # the server's request lines
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        endpoint = f"http://{host}:{port}"
        os.environ.update({"AWS_ENDPOINT_URL_S3": endpoint, "AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench", "AWS_DEFAULT_REGION": "us-east-1"})
        boto3.client("s3", endpoint_url=endpoint).create_bucket(Bucket="bench")
        remote = ArtifactStore("s3://bench/qhw")
        remote.put_tree({ARRAYS_FILE: source}, "the feature set")
        shutil.rmtree(home / "cache", ignore_errors=True)  # another machine: nothing cached
        rows.append(("load_arrays from S3 (moto, loopback), empty cache: fetched, checked, loaded", timed(lambda: load_arrays(remote, record(reference)))))
        rows.append(("load_arrays from S3 again: the cache (nothing fetched)", timed(lambda: load_arrays(remote, record(reference)))))
    finally:
        server.stop()
        shutil.rmtree(home, ignore_errors=True)

    floor = rows[0][1]
    tables.Tables(args).show(
        "load", f"loading a feature set of {args.samples:,} samples ({size_mb:.1f} MB)", ("how", "seconds", "against NumPy's read"),
        [(how, f"{seconds:.3f}", f"{seconds / floor:.2f}x") for how, seconds in rows],
    )


if __name__ == "__main__":
    main()
