"""The artifact store: feature sets' arrays, models and device documents, by content.

A team shares one ledger (``--db``) and one artifact store (``--artifacts`` /
``QHW_ARTIFACTS``): any fsspec URL (``file:///shared/qhw``, ``s3://bucket/prefix``
through s3fs, with the standard AWS credential chain and ``AWS_ENDPOINT_URL``
for S3-compatible stores, and whatever else fsspec reaches). Without one, the
home's own ``artifacts`` folder: nothing changes for a single user.

Every object is stored under its SHA-256 (``sha256/ab/abcdef...``), written
before the row that names it, and checked against its name when read: a
missing or altered object is one line naming it, never a wrong array. A
write is atomic: on a file system the object is written under a temporary
name and renamed; an object store's PUT is itself atomic (a reader sees the
whole object or none). Reads from a remote store are kept in a local cache
by digest under the home, so nothing is fetched twice.

A feature set is several files: each is an object, and a *manifest* (a JSON
object of file names and digests) is one more; the row names the manifest
(``sha256:<hex>``). Rows from before the store name files in the home, which
keep working as they did.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import shutil
import uuid
from pathlib import Path

from qhw import config
from qhw.errors import ArtifactError, ConfigError, TransientArtifactError
from qhw.retrying import with_retries

ARTIFACTS_ENV = "QHW_ARTIFACTS"
#: How a row names an object of the store (anything else is a path of the home).
PREFIX = "sha256:"
_CHUNK = 1 << 20
#: Errors of a store that may pass: retried as provider calls are (qhw.retrying).
_TRANSIENT_ERRNOS = {errno.ETIMEDOUT, errno.ECONNRESET, errno.ECONNABORTED, errno.EAGAIN, errno.EBUSY, errno.EPIPE}
_TRANSIENT_NAMES = {
    "EndpointConnectionError", "ConnectTimeoutError", "ReadTimeoutError", "ConnectionClosedError",
    "ServerDisconnectedError", "ClientConnectorError", "ClientOSError", "ClientPayloadError",
}

_explicit: str | None = None  # --artifacts, for this process


def use(url: str | None) -> None:
    """The store this process uses (the CLI's ``--artifacts``), ahead of ``QHW_ARTIFACTS``."""
    global _explicit
    _explicit = url


def artifacts_url() -> str:
    """``--artifacts``, then ``QHW_ARTIFACTS``, then the home's ``artifacts`` folder."""
    return _explicit or os.environ.get(ARTIFACTS_ENV) or str(config.home() / "artifacts")


_current: "ArtifactStore | None" = None


def current() -> "ArtifactStore":
    """The store of this process, made once (and again when its URL changes)."""
    global _current
    url = artifacts_url()
    if _current is None or _current.url != url:
        _current = ArtifactStore(url)
    return _current


def is_reference(stored: str) -> bool:
    return stored.startswith(PREFIX)


def file_digest(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(_CHUNK):
            digest.update(block)
    return digest.hexdigest()


class ArtifactStore:
    """Objects named by their SHA-256 under one fsspec URL."""

    def __init__(self, url: str) -> None:
        import fsspec

        self.url = url
        try:
            # A file system of its own, not fsspec's shared instance: it reads the
            # environment (credentials, AWS_ENDPOINT_URL_S3) as it is now.
            self.fs, root = fsspec.core.url_to_fs(url, skip_instance_cache=True)
        except (ImportError, ValueError) as err:  # an unknown protocol, its package missing (s3fs for s3://)
            raise ConfigError(f"--artifacts {url}: {err}") from err
        self.root = root.rstrip("/")
        self.local = "file" in _protocols(self.fs)

    # --- names ----------------------------------------------------------------------------------

    def _key(self, digest: str) -> str:
        return f"{self.root}/sha256/{digest[:2]}/{digest}"

    @staticmethod
    def _cached(digest: str) -> Path:
        return config.home() / "cache" / "sha256" / digest[:2] / digest

    # --- checks ---------------------------------------------------------------------------------

    def check_reachable(self) -> None:
        """The store can be written, before a command's first ledger write.

        Raises:
            ConfigError: one line naming the store and why.
        """
        if self.local:
            config.check_writable(Path(self.root), "the artifact store")
            return
        probe = f"{self.root}/.qhw-reachable"
        try:
            self._call(lambda: self.fs.pipe_file(probe, b"qhw"), "reaching the artifact store")
        except ArtifactError as err:
            root = err
            while root.__cause__ is not None:
                root = root.__cause__
            raise ConfigError(f"the artifact store {self.url} cannot be reached: {_reason(root)}") from err

    # --- writing --------------------------------------------------------------------------------

    def put_file(self, path: Path, what: str) -> str:
        """Store a file (once: an object already there is kept) and return its
        reference, ``sha256:<hex>``.

        Raises:
            ArtifactError: the store refused it, or kept failing (after retries).
        """
        digest = file_digest(path)
        key = self._key(digest)

        def upload() -> None:
            if self.fs.exists(key):
                return
            if self.local:
                # Under a temporary name, then renamed: no reader sees half an object.
                partial = f"{key}.partial-{uuid.uuid4().hex}"
                self.fs.makedirs(key.rsplit("/", 1)[0], exist_ok=True)
                try:
                    self.fs.put_file(str(path), partial)
                    self.fs.mv(partial, key)
                finally:
                    if self.fs.exists(partial):
                        self.fs.rm(partial)
            else:
                self.fs.put_file(str(path), key)  # one PUT: atomic on an object store

        self._call(upload, f"storing {what}")
        if not self.local:  # this process need not fetch back what it wrote
            self._keep(path, digest)
        return PREFIX + digest

    def put_bytes(self, data: bytes, what: str) -> str:
        scratch = config.home() / "cache" / f".put-{uuid.uuid4().hex}"
        scratch.parent.mkdir(parents=True, exist_ok=True)
        try:
            scratch.write_bytes(data)
            return self.put_file(scratch, what)
        finally:
            scratch.unlink(missing_ok=True)

    def put_tree(self, files: dict[str, Path], what: str) -> str:
        """Several files as one reference: each stored, then their manifest."""
        manifest = {name: self.put_file(path, f"{what}: {name}")[len(PREFIX):] for name, path in sorted(files.items())}
        return self.put_bytes(json.dumps({"files": manifest}, sort_keys=True).encode(), f"{what}: its manifest")

    # --- reading --------------------------------------------------------------------------------

    def has(self, reference: str) -> bool:
        key = self._key(_digest(reference, "an object"))
        return bool(self._call(lambda: self.fs.exists(key), "looking up an object"))

    def digests(self) -> set[str]:
        """Every object's digest in the store (a write cut short leaves none: see put_file)."""
        base = f"{self.root}/sha256"
        found = self._call(lambda: self.fs.find(base) if self.fs.exists(base) else [], "listing the artifact store")
        names = (str(path).rsplit("/", 1)[-1] for path in found)
        return {name for name in names if len(name) == 64 and ".partial-" not in name}

    def path(self, reference: str, what: str) -> Path:
        """A local file holding the object, its digest checked.

        Raises:
            ArtifactError: one line: the object is missing, or is not what its name says.
        """
        digest = _digest(reference, what)
        if self.local:
            stored = Path(self._key(digest))
            if not stored.is_file():
                raise ArtifactError(self._missing(digest, what))
            self._verify(stored, digest, what)
            return stored
        cached = self._cached(digest)
        if cached.is_file():
            if file_digest(cached) == digest:
                return cached
            cached.unlink(missing_ok=True)  # a damaged copy of the cache: fetched again
        cached.parent.mkdir(parents=True, exist_ok=True)
        partial = cached.with_name(f"{digest}.partial-{uuid.uuid4().hex}")
        try:
            self._call(lambda: self.fs.get_file(self._key(digest), str(partial)), f"reading {what}", missing=self._missing(digest, what))
            self._verify(partial, digest, what)
            os.replace(partial, cached)
        finally:
            partial.unlink(missing_ok=True)
        return cached

    def read_bytes(self, reference: str, what: str) -> bytes:
        return self.path(reference, what).read_bytes()

    def tree(self, reference: str, what: str) -> Path:
        """A local folder holding a manifest's files, each checked."""
        try:
            manifest = json.loads(self.read_bytes(reference, f"{what} (its manifest)"))["files"]
        except (ValueError, KeyError, TypeError) as err:
            raise ArtifactError(f"{what}: its manifest {reference[:19]}... is not a manifest") from err
        # Every object read and checked before the folder is made: a failed read leaves nothing behind.
        sources = {name: self.path(PREFIX + digest, f"{what}: {name}") for name, digest in manifest.items()}
        folder = config.home() / "cache" / "trees" / _digest(reference, what)
        folder.mkdir(parents=True, exist_ok=True)
        for name, source in sources.items():
            _link(source, folder / name)  # linked afresh: the folder holds what was just checked
        return folder

    def _verify(self, path: Path, digest: str, what: str) -> None:
        found = file_digest(path)
        if found != digest:
            raise ArtifactError(
                f"{what}: its object {PREFIX}{digest[:12]}... in the artifact store {self.url} is corrupt (its content's SHA-256 is {found[:12]}...)"
            )

    def _keep(self, path: Path, digest: str) -> None:
        cached = self._cached(digest)
        if not cached.is_file():
            cached.parent.mkdir(parents=True, exist_ok=True)
            _link(Path(path), cached)

    # --- the store's errors ---------------------------------------------------------------------------

    def _missing(self, digest: str, what: str) -> str:
        return f"{what}: its object {PREFIX}{digest[:12]}... is missing from the artifact store {self.url}"

    def _call(self, call, what: str, missing: str | None = None):
        """``call`` with the store's transient errors retried; the others, and
        the last transient one, as one ArtifactError (``missing``: what a
        missing object is said as)."""

        def attempt():
            try:
                return call()
            except FileNotFoundError:
                raise
            except Exception as err:
                if _transient(err):
                    raise TransientArtifactError(f"{what}: {_reason(err)}") from err
                raise

        try:
            return with_retries(attempt, what, retry_on=TransientArtifactError)
        except FileNotFoundError as err:
            raise ArtifactError(missing or f"{what}: not found in the artifact store {self.url}") from err
        except TransientArtifactError as err:
            raise ArtifactError(f"{what}: the artifact store {self.url} kept failing ({_reason(err.__cause__)})") from err
        except ArtifactError:
            raise
        except Exception as err:
            raise ArtifactError(f"{what}: the artifact store {self.url} refused it ({_reason(err)})") from err


def _digest(reference: str, what: str) -> str:
    digest = reference[len(PREFIX):] if reference.startswith(PREFIX) else ""
    if len(digest) != 64 or any(c not in "0123456789abcdef" for c in digest):
        raise ArtifactError(f"{what}: {reference!r} names no object of the artifact store")
    return digest


def _protocols(fs) -> tuple[str, ...]:
    protocol = fs.protocol
    return (protocol,) if isinstance(protocol, str) else tuple(protocol)


def _transient(err: BaseException) -> bool:
    if isinstance(err, (TimeoutError, ConnectionError)):
        return True
    if type(err).__name__ in _TRANSIENT_NAMES:
        return True
    if isinstance(err, OSError) and err.errno in _TRANSIENT_ERRNOS:
        return True
    # botocore's ClientError: throttling and the 5xx
    response = getattr(err, "response", None)
    if isinstance(response, dict):
        code = str(response.get("Error", {}).get("Code", ""))
        status = response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0
        return code in ("SlowDown", "Throttling", "ThrottlingException", "RequestTimeout", "InternalError", "ServiceUnavailable") or status >= 500
    cause = err.__cause__ or err.__context__
    return cause is not None and cause is not err and _transient(cause)


def _reason(err: BaseException | None) -> str:
    if err is None:
        return "no reason given"
    text = str(err).strip().splitlines()[0] if str(err).strip() else ""
    return f"{type(err).__name__}: {text}" if text else type(err).__name__


def _link(source: Path, target: Path) -> None:
    """``target`` as a hard link to ``source`` where they share a file system, else a copy (atomically)."""
    partial = target.with_name(f"{target.name}.partial-{uuid.uuid4().hex}")
    try:
        try:
            os.link(source, partial)
        except OSError:
            shutil.copyfile(source, partial)
        os.replace(partial, target)
    finally:
        partial.unlink(missing_ok=True)


def local_folder(stored: str, what: str) -> Path:
    """A folder of this machine holding what a row names: a manifest's files
    fetched (and checked) from the store, or an older row's folder in the home."""
    return current().tree(stored, what) if is_reference(stored) else Path(stored)


def local_member(stored: str, name: str, what: str) -> Path:
    """File ``name`` of what a row names, on this machine: the object itself
    (checked; from a folder store, read in place, so a read writes nothing in
    the home), or for an older row, the file in its folder."""
    if not is_reference(stored):
        return Path(stored) / name
    store = current()
    try:
        manifest = json.loads(store.read_bytes(stored, f"{what} (its manifest)"))["files"]
    except (ValueError, KeyError, TypeError) as err:
        raise ArtifactError(f"{what}: its manifest {stored[:19]}... is not a manifest") from err
    if name not in manifest:
        raise ArtifactError(f"{what}: its manifest names no {name}")
    return store.path(PREFIX + manifest[name], f"{what}: {name}")


def local_file(stored: str, what: str, suffix: str = "") -> Path:
    """A file of this machine holding what a row names (see local_folder),
    its name ending in ``suffix`` (Keras reads a model by its extension)."""
    if not is_reference(stored):
        return Path(stored)
    path = current().path(stored, what)
    if not suffix or path.name.endswith(suffix):
        return path
    named = config.home() / "cache" / "named" / f"{path.name}{suffix}"
    named.parent.mkdir(parents=True, exist_ok=True)
    _link(path, named)
    return named


def home_store() -> ArtifactStore:
    """The home's own folder store (the default), where a single user's objects are."""
    return ArtifactStore(str(config.home() / "artifacts"))


def copy_object(reference: str, source: ArtifactStore, target: ArtifactStore, what: str) -> bool:
    """The object into ``target`` from ``source`` (checked on the way) unless
    ``target`` has it; True when it was copied."""
    if target.has(reference):
        return False
    target.put_file(source.path(reference, what), what)
    return True


def copy_tree(reference: str, source: ArtifactStore, target: ArtifactStore, what: str) -> int:
    """A manifest and its files into ``target`` (see copy_object): the objects copied."""
    manifest = json.loads(source.read_bytes(reference, f"{what} (its manifest)"))["files"]
    copied = sum(copy_object(PREFIX + digest, source, target, f"{what}: {name}") for name, digest in sorted(manifest.items()))
    return copied + copy_object(reference, source, target, f"{what} (its manifest)")


