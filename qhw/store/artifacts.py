"""The artifact store: feature sets' arrays, models and device documents, by content.

A team shares one ledger (``--db``) and one artifact store (``--artifacts`` /
``QHW_ARTIFACTS``): any fsspec URL (``file:///shared/qhw``, ``s3://bucket/prefix``
through s3fs, with the standard AWS credential chain and ``AWS_ENDPOINT_URL``
for S3-compatible stores, and whatever else fsspec reaches) that keeps what
is written (``memory://`` is refused). Without one, the home's own
``artifacts`` folder: nothing changes for a single user.

Every object is stored under its SHA-256 (``sha256/ab/abcdef...``), written
before the row that names it, and checked against its name when read: a
missing or altered object is one line naming it, never a wrong array. An
object already in the store counts only once its content is checked (a
corrupt one is replaced). A write is atomic: on a file system the object is
written under a temporary name and renamed; an object store's PUT is itself
atomic (a reader sees the whole object or none). Reads from a remote store
are kept in a local cache by digest under the home, so nothing is fetched
twice; a read that fails leaves nothing there.

A feature set is several files: each is an object, and a *manifest* (a JSON
object of file names and digests) is one more; the row names the manifest
(``sha256:<hex>``). Every name in a manifest is a plain file name: a team's
store is written by every member, so a manifest cannot write anywhere but
inside the folder it is read into. Rows from before the store name files in
the home, which keep working as they did, and only there: a row cannot make
qhw read (or push) a file outside the home.

Transport: with ``T = QHW_ARTIFACTS_TIMEOUT`` (seconds, default 60), a remote
store's connection is given ``min(5 s, T)``, each read ``min(20 s, T)``
without data, and a write as long and a second a megabyte; a failing call
(timeouts, refused connections, 5xx, throttling) is retried with the backoff
of provider calls (``QHW_RETRY_*``), and no attempt starts ``T`` seconds after
the first: a store that does not answer is one line within about ``2 T``.
"""

from __future__ import annotations

import errno
import hashlib
import json
import logging
import os
import re
import shutil
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import cached_property
from pathlib import Path
from typing import Any, NamedTuple, TypeVar

from qhw import config, settings
from qhw.boundary import quoted
from qhw.errors import ArtifactError, ConfigError, ParameterError, TransientArtifactError
from qhw.retrying import with_retries

log = logging.getLogger("qhw.artifacts")
T = TypeVar("T")

ARTIFACTS_ENV = "QHW_ARTIFACTS"
#: How a row names an object of the store (anything else is a path of the home).
PREFIX = "sha256:"
_CHUNK = 1 << 20
#: Seconds a connection to a remote store may take, and a read wait for data (each at most QHW_ARTIFACTS_TIMEOUT).
CONNECT_TIMEOUT = 5.0
READ_TIMEOUT = 20.0
#: The slowest upload a write to a remote store is given time for, in bytes a second.
WRITE_RATE = 1 << 20
#: A temporary object (a write under way) untouched this long was left by a write that was cut off.
STALE_PARTIAL_SECONDS = 3600.0
#: The longest path a row from before the store can name (Linux's PATH_MAX).
PATH_MAX = 4096
#: fsspec file systems that keep nothing past the process that wrote them.
_VOLATILE = frozenset({"memory"})
#: Errors of a store that may pass: retried as provider calls are (qhw.retrying).
_TRANSIENT_ERRNOS = frozenset({errno.ETIMEDOUT, errno.ECONNRESET, errno.ECONNABORTED, errno.ECONNREFUSED, errno.EAGAIN, errno.EBUSY, errno.EPIPE})
_TRANSIENT_NAMES = frozenset({
    "EndpointConnectionError", "ConnectTimeoutError", "ReadTimeoutError", "ConnectionClosedError",
    "ServerDisconnectedError", "ClientConnectorError", "ClientOSError", "ClientPayloadError", "FSTimeoutError",
})
_HEX = re.compile(r"[0-9a-f]{64}", re.ASCII)

def default_url() -> str:
    """The store when none is named (the CLI's ``--artifacts`` comes first):
    ``QHW_ARTIFACTS``, else the home's ``artifacts`` folder."""
    return os.environ.get(ARTIFACTS_ENV) or str(config.home() / "artifacts")


def is_reference(stored: str) -> bool:
    return stored.startswith(PREFIX)


def file_digest(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(_CHUNK):
            digest.update(block)
    return digest.hexdigest()


def shown_url(url: str) -> str:
    """A store's URL as messages show it: any password in it hidden (as the database's URL is)."""
    from qhw.store.database import masked_url

    return masked_url(url)


class _Opened(NamedTuple):
    fs: Any  # an fsspec file system
    root: str
    local: bool
    asynchronous: bool


class ArtifactStore:
    """Objects named by their SHA-256 under one fsspec URL.

    Made without touching the store: its file system is opened on first use
    (a remote one may connect as it is made, and a command that reads no
    object, such as collecting an IBM run, never needs it).
    """

    def __init__(self, url: str) -> None:
        self.url = url
        self.shown = shown_url(url)
        self.protocol = url.split("://", 1)[0].lower() if "://" in url else "file"
        if self.protocol in _VOLATILE:
            raise ParameterError("artifacts", f"{self.shown}: a {self.protocol}:// store keeps nothing past the process; name a folder or an object store")
        self._created = threading.local()

    @cached_property
    def timeout(self) -> float:
        return settings.artifacts_timeout()

    @cached_property
    def _opened(self) -> _Opened:
        import fsspec
        from fsspec.asyn import AsyncFileSystem

        try:
            # A file system of its own, not fsspec's shared instance: it reads the
            # environment (credentials, AWS_ENDPOINT_URL_S3) as it is now.
            fs, root = fsspec.core.url_to_fs(self.url, skip_instance_cache=True, **self._transport(self.protocol))
        except (ImportError, ValueError) as err:  # an unknown protocol, its package missing (s3fs for s3://)
            raise ParameterError("artifacts", f"{self.shown}: {_reason(err)}") from err
        except Exception as err:  # a file system that connects as it is made (ftp://, sftp://)
            raise ConfigError(f"the artifact store {self.shown} cannot be reached: {_reason(_root_cause(err))}") from err
        if set(_protocols(fs)) & _VOLATILE:
            raise ParameterError("artifacts", f"{self.shown}: it keeps nothing past the process; name a folder or an object store")
        if self.protocol == "s3":
            fs.retries = 1  # s3fs's own retries (5, each with botocore's) would multiply qhw's: one layer, bounded
        return _Opened(fs, root.rstrip("/"), "file" in _protocols(fs), isinstance(fs, AsyncFileSystem))

    @property
    def fs(self) -> Any:
        return self._opened.fs

    @property
    def root(self) -> str:
        return self._opened.root

    @property
    def local(self) -> bool:
        """A folder of a file system this machine mounts (read in place, written by rename)."""
        return self._opened.local

    def _write_bound(self, nbytes: int) -> dict[str, float]:
        """The wall-clock bound of one write to a remote store, as fsspec's
        ``timeout`` keyword: a read's timeout, and a second for every
        WRITE_RATE bytes. A write's read timeout alone does not bound it: an S3
        PUT waits for the server's "100 Continue" for a minute or more on a
        server that accepts connections and never answers, whatever the read
        timeout (tests/test_hostile_store.py meets one)."""
        return {"timeout": min(READ_TIMEOUT, self.timeout) + nbytes / WRITE_RATE} if self._opened.asynchronous else {}

    def _transport(self, protocol: str) -> dict[str, Any]:
        """A remote store's bounds on one attempt (qhw retries, within QHW_ARTIFACTS_TIMEOUT)."""
        if protocol not in ("s3", "s3a"):
            return {}
        connect, read = min(CONNECT_TIMEOUT, self.timeout), min(READ_TIMEOUT, self.timeout)
        # botocore's own retries off (total_max_attempts 1): qhw's are the only ones.
        return {"config_kwargs": {"connect_timeout": connect, "read_timeout": read, "retries": {"total_max_attempts": 1}}}

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
            self._call(lambda: self.fs.pipe_file(probe, b"qhw", **self._write_bound(3)), "reaching the artifact store")
        except ArtifactError as err:
            raise ConfigError(f"the artifact store {self.shown} cannot be reached: {_reason(_root_cause(err))}") from err

    # --- writing --------------------------------------------------------------------------------

    def put_file(self, path: Path, what: str) -> str:
        """Store a file and return its reference, ``sha256:<hex>``: once (an
        object already there is kept when its content is right, replaced when
        it is not).

        Raises:
            ArtifactError: the store refused it, or kept failing (after retries).
        """
        digest = file_digest(path)
        key = self._key(digest)

        def upload() -> None:
            if self.fs.exists(key):
                if self._content_digest(key) == digest:
                    return
                log.warning("the artifact store's object %s%s... was corrupt: replaced with %s", PREFIX, digest[:12], what)
            if self.local:
                # Under a temporary name, then renamed (over a corrupt object too): no reader sees half an object.
                partial = f"{key}.partial-{uuid.uuid4().hex}"
                folder = key.rsplit("/", 1)[0]
                made = not self.fs.exists(folder)
                self.fs.makedirs(folder, exist_ok=True)
                stored = False
                try:
                    self.fs.put_file(str(path), partial)
                    self.fs.mv(partial, key)
                    stored = True
                finally:
                    if self.fs.exists(partial):
                        self.fs.rm(partial)
                    if made and not stored:  # a write that failed leaves no folder either (unless another filled it meanwhile)
                        _remove_if_empty(Path(folder))
            else:
                self.fs.put_file(str(path), key, **self._write_bound(path.stat().st_size))  # one PUT: atomic on an object store

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
        for name in files:
            _check_member_name(name, what)
        manifest = {name: self.put_file(path, f"{what}: {name}")[len(PREFIX):] for name, path in sorted(files.items())}
        return self.put_bytes(json.dumps({"files": manifest}, sort_keys=True).encode(), f"{what}: its manifest")

    # --- reading --------------------------------------------------------------------------------

    def has(self, reference: str) -> bool:
        """Whether the store holds the object, its content checked (a corrupt one counts as missing)."""
        digest = _digest(reference, "an object")
        key = self._key(digest)
        return bool(self._call(lambda: self.fs.exists(key) and self._content_digest(key) == digest, "looking up an object"))

    def digests(self) -> set[str]:
        """Every object's digest in the store (a write cut short leaves none: see put_file)."""
        names = (str(path).rsplit("/", 1)[-1] for path in self._listing())
        return {name for name in names if _HEX.fullmatch(name)}

    def partial_writes(self) -> list[tuple[str, float | None]]:
        """Temporary objects of writes (``.partial-``) in a folder store, each
        with the seconds since it last changed: a write under way, or one that
        was cut off (a killed push) and is garbage."""
        found = []
        for path in self._listing():
            if ".partial-" in str(path).rsplit("/", 1)[-1]:
                try:
                    age = time.time() - os.stat(path).st_mtime if self.local else None
                except FileNotFoundError:  # its write just ended
                    continue
                found.append((str(path), age))
        return found

    def remove_stale_partial_writes(self) -> list[str]:
        """Remove the temporary objects no write has touched for STALE_PARTIAL_SECONDS: the removed."""
        stale = [path for path, age in self.partial_writes() if age is not None and age >= STALE_PARTIAL_SECONDS]
        for path in stale:
            Path(path).unlink(missing_ok=True)
        return stale

    def _listing(self) -> list[str]:
        base = f"{self.root}/sha256"
        return list(self._call(lambda: self.fs.find(base) if self.fs.exists(base) else [], "listing the artifact store"))

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
        with self._cache_writes():
            self._make_folders(cached.parent)
            partial = cached.with_name(f"{digest}.partial-{uuid.uuid4().hex}")
            try:
                self._call(lambda: self.fs.get_file(self._key(digest), str(partial)), f"reading {what}", missing=self._missing(digest, what))
                self._verify(partial, digest, what)
                os.replace(partial, cached)
                self._created.paths.append(cached)
            finally:
                partial.unlink(missing_ok=True)
        return cached

    def read_bytes(self, reference: str, what: str) -> bytes:
        return self.path(reference, what).read_bytes()

    def manifest(self, reference: str, what: str) -> dict[str, str]:
        """A manifest's files (name: digest), each name checked to be a plain
        file name and each digest a SHA-256.

        Raises:
            ArtifactError: one line: the manifest is missing, altered, or not a manifest.
        """
        data = self.read_bytes(reference, f"{what} (its manifest)")
        try:
            files = json.loads(data.decode("utf-8"))["files"]
        except (ValueError, KeyError, TypeError) as err:  # UnicodeDecodeError is a ValueError
            raise ArtifactError(f"{what}: its manifest {reference[:19]}... is not a manifest") from err
        if not isinstance(files, dict):
            raise ArtifactError(f"{what}: its manifest {reference[:19]}... is not a manifest")
        for name, digest in files.items():
            _check_member_name(name, f"{what}: its manifest {reference[:19]}...")
            if not isinstance(digest, str) or not _HEX.fullmatch(digest):
                raise ArtifactError(f"{what}: its manifest {reference[:19]}... gives {quoted(name)} no SHA-256 digest")
        return files

    def tree(self, reference: str, what: str) -> Path:
        """A local folder holding a manifest's files, each checked."""
        with self._cache_writes():
            manifest = self.manifest(reference, what)
            # Every object read and checked before the folder is made: a failed read leaves nothing behind.
            sources = {name: self.path(PREFIX + digest, f"{what}: {name}") for name, digest in manifest.items()}
            folder = config.home() / "cache" / "trees" / _digest(reference, what)
            self._make_folders(folder)
            for name, source in sources.items():
                _link(source, folder / name)  # linked afresh: the folder holds what was just checked
        return folder

    def member(self, reference: str, name: str, what: str) -> Path:
        """File ``name`` of a manifest, on this machine (see path)."""
        with self._cache_writes():
            manifest = self.manifest(reference, what)
            if name not in manifest:
                raise ArtifactError(f"{what}: its manifest names no {name}")
            return self.path(PREFIX + manifest[name], f"{what}: {name}")

    # --- what a row names, on this machine --------------------------------------------------------

    def local_folder(self, stored: str, what: str) -> Path:
        """A folder of this machine holding what a row names: a manifest's files
        fetched (and checked) from the store, or an older row's folder in the home."""
        return self.tree(stored, what) if is_reference(stored) else home_path(stored, what)

    def local_member(self, stored: str, name: str, what: str) -> Path:
        """File ``name`` of what a row names, on this machine: the object itself
        (checked; from a folder store, read in place, so a read writes nothing in
        the home), or for an older row, the file in its folder (in the home)."""
        if not is_reference(stored):
            return home_path(str(home_path(stored, what) / name), f"{what}: {name}")
        return self.member(stored, name, what)

    def local_file(self, stored: str, what: str, suffix: str = "") -> Path:
        """A file of this machine holding what a row names (see local_folder),
        its name ending in ``suffix`` (Keras reads a model by its extension)."""
        if not is_reference(stored):
            return home_path(stored, what)
        path = self.path(stored, what)
        if not suffix or path.name.endswith(suffix):
            return path
        named = config.home() / "cache" / "named" / f"{path.name}{suffix}"
        named.parent.mkdir(parents=True, exist_ok=True)
        _link(path, named)
        return named

    def _verify(self, path: Path, digest: str, what: str) -> None:
        found = file_digest(path)
        if found != digest:
            raise ArtifactError(
                f"{what}: its object {PREFIX}{digest[:12]}... in the artifact store {self.shown} is corrupt (its content's SHA-256 is {found[:12]}...)"
            )

    def _content_digest(self, key: str) -> str:
        """The SHA-256 of an object in the store, read through (and kept nowhere)."""
        if self.local:
            return file_digest(Path(key))
        digest = hashlib.sha256()
        with self.fs.open(key, "rb", block_size=_CHUNK) as handle:
            while block := handle.read(_CHUNK):
                digest.update(block)
        return digest.hexdigest()

    def _keep(self, path: Path, digest: str) -> None:
        cached = self._cached(digest)
        if not cached.is_file():
            cached.parent.mkdir(parents=True, exist_ok=True)
            _link(Path(path), cached)

    # --- the cache: a read that fails leaves nothing there -------------------------------------------

    @contextmanager
    def _cache_writes(self) -> Iterator[None]:
        """What reads inside add to the cache (files and folders) is taken back
        if any of them fails; the outermost of nested ones decides."""
        outer = getattr(self._created, "paths", None) is None
        if outer:
            self._created.paths = []
        try:
            yield
        except BaseException:
            if outer:
                for path in reversed(self._created.paths):
                    if path.is_dir() and not path.is_symlink():
                        shutil.rmtree(path, ignore_errors=True)
                    else:
                        path.unlink(missing_ok=True)
            raise
        finally:
            if outer:
                self._created.paths = None

    def _make_folders(self, folder: Path) -> None:
        missing = []
        while not folder.exists():
            missing.append(folder)
            folder = folder.parent
        for path in reversed(missing):
            path.mkdir(exist_ok=True)
            self._created.paths.append(path)

    # --- the store's errors ---------------------------------------------------------------------------

    def _missing(self, digest: str, what: str) -> str:
        return f"{what}: its object {PREFIX}{digest[:12]}... is missing from the artifact store {self.shown}"

    def _call(self, call: Callable[[], T], what: str, missing: str | None = None) -> T:
        """``call`` with the store's transient errors retried (for at most
        QHW_ARTIFACTS_TIMEOUT seconds); the others, and the last transient
        one, as one ArtifactError (``missing``: what a missing object is said as)."""

        tries = []
        started = time.monotonic()

        def attempt() -> T:
            tries.append(1)
            try:
                return call()
            except FileNotFoundError:
                raise
            except Exception as err:
                if _transient(err):
                    raise TransientArtifactError(f"{what}: {_reason(err)}") from err
                raise

        try:
            return with_retries(attempt, what, retry_on=TransientArtifactError, deadline=None if self.local else self.timeout)
        except FileNotFoundError as err:
            raise ArtifactError(missing or f"{what}: not found in the artifact store {self.shown}") from err
        except TransientArtifactError as err:
            spent = f"{len(tries)} attempt(s) in {time.monotonic() - started:.0f} s"
            raise ArtifactError(f"{what}: the artifact store {self.shown} kept failing ({_reason(err.__cause__)}; {spent})") from err
        except ArtifactError:
            raise
        except Exception as err:
            raise ArtifactError(f"{what}: the artifact store {self.shown} refused it ({_reason(err)})") from err


def _digest(reference: str, what: str) -> str:
    digest = reference[len(PREFIX):] if reference.startswith(PREFIX) else ""
    if not _HEX.fullmatch(digest):
        raise ArtifactError(f"{what}: {quoted(reference)} names no object of the artifact store")
    return digest


def _check_member_name(name: object, what: str) -> None:
    """A manifest's file name: one plain file name, written inside the folder
    a manifest is read into and nowhere else (no folder part, no ``.`` or
    ``..``, no absolute path, nothing a file system would read otherwise)."""
    plain = (
        isinstance(name, str) and name not in ("", ".", "..") and "/" not in name and "\\" not in name
        and name.isprintable() and len(name.encode("utf-8", "surrogatepass")) <= 255
    )
    if not plain:
        raise ArtifactError(f"{what} names {quoted(name)}, which is not a plain file name; nothing was written")


def _protocols(fs: Any) -> tuple[str, ...]:
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


def _root_cause(err: BaseException) -> BaseException:
    while err.__cause__ is not None and type(err).__name__ not in _TIMEOUTS:
        err = err.__cause__
    return err


#: What a call cut off by its time bound raises (fsspec's FSTimeoutError wraps asyncio's cancellation).
_TIMEOUTS = frozenset({"FSTimeoutError", "TimeoutError", "CancelledError"})


def _reason(err: BaseException | None) -> str:
    if err is None:
        return "no reason given"
    text = str(err).strip().splitlines()[0] if str(err).strip() else ""
    if not text and type(err).__name__ in _TIMEOUTS:
        return "no answer in the time allowed (QHW_ARTIFACTS_TIMEOUT)"
    return f"{type(err).__name__}: {text}" if text else type(err).__name__


def _remove_if_empty(folder: Path) -> None:
    try:
        folder.rmdir()
    except OSError:  # not empty (another write), or gone
        pass


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


def home_path(stored: str, what: str) -> Path:
    """Where a row from before the store (a path of the home, relative to it)
    names a file or folder: inside the home, links followed, or refused. A
    shared ledger is written by every member: a row naming
    ``/home/v/.aws/credentials``, ``../../x`` or a link out of the home
    cannot make qhw read, or push, anything else.

    Raises:
        ArtifactError: one line: the path leads outside the home.
    """
    home = config.home().resolve()
    if not stored.isprintable() or len(stored) > PATH_MAX:  # qhw wrote ``features/<hex>`` and ``models/<name>``
        raise ArtifactError(f"{what}: its row names {quoted(stored)}, which is no path of the home")
    try:
        path = (home / stored).resolve()  # an absolute ``stored`` stays itself
    except (OSError, RuntimeError, ValueError) as err:  # a name too long, a loop of links, a NUL
        raise ArtifactError(f"{what}: its row names {quoted(stored)}, which is no path of the home ({_reason(err)})") from err
    if not path.is_relative_to(home):
        raise ArtifactError(f"{what}: its row names {quoted(stored)}, which is outside the home {home}; qhw reads only the home's files")
    return path


def home_store() -> ArtifactStore:
    """The home's own folder store (the default), where a single user's objects are."""
    return ArtifactStore(str(config.home() / "artifacts"))


def copy_object(reference: str, source: ArtifactStore, target: ArtifactStore, what: str) -> bool:
    """The object into ``target`` from ``source`` (checked on the way) unless
    ``target`` holds it already (checked too); True when it was copied."""
    if target.has(reference):
        return False
    target.put_file(source.path(reference, what), what)
    return True


def copy_tree(reference: str, source: ArtifactStore, target: ArtifactStore, what: str) -> int:
    """A manifest and its files into ``target`` (see copy_object): the objects
    copied. The manifest is read from ``target`` when it has it (the row may
    have been pushed there from another home, or meanwhile by another push),
    and only what ``target`` lacks is asked of ``source``."""
    in_target = target.has(reference)
    manifest = (target if in_target else source).manifest(reference, what)
    copied = sum(copy_object(PREFIX + digest, source, target, f"{what}: {name}") for name, digest in sorted(manifest.items()))
    return copied + (0 if in_target else copy_object(reference, source, target, f"{what} (its manifest)"))
