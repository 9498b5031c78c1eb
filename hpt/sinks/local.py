"""A results location in a local folder; every write is a rename, so readers never see half a file."""

from __future__ import annotations

import fcntl
import os
import secrets
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from hpt.errors import InputError

__all__ = ["LocalSink"]

_CHUNK = 1 << 16  # bytes a read asks for: a row object in one


class LocalSink:
    """A folder; conditional writes are serialised by an advisory lock on the object's folder."""

    remote = False

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root).expanduser()
        self.uri = str(self.root)
        self._folders: set[Path] = set()  # made already: a write need not ask again

    def check_writable(self) -> None:
        blocker = next((p for p in (self.root, *self.root.parents) if p.exists()), None)
        if blocker is not None and not blocker.is_dir():
            what = "it is" if blocker == self.root else f"{blocker} is"
            raise InputError(f"cannot write results to {self.root}: {what} a file, not a folder")
        if blocker != self.root:  # made at the first write, so that a run whose start fails leaves no folder behind
            if blocker is not None and not os.access(blocker, os.W_OK | os.X_OK):
                raise InputError(f"cannot write results to {self.root}: {blocker} is not writable")
            self._try_making(blocker)
            return
        try:
            with tempfile.NamedTemporaryFile(dir=self.root, prefix=".hpt-check-"):
                pass
        except OSError as e:
            raise InputError(f"cannot write results to {self.root}: {e.strerror or e}") from None

    def _try_making(self, blocker: Path | None) -> None:
        """Make the missing folders down to the root and remove them again: what os.access cannot tell (root may
        write anywhere, but not under /proc; a read-only mount). Only the folders made here are removed."""
        missing = [p for p in (self.root, *self.root.parents) if blocker is None or p not in (blocker, *blocker.parents)]
        made: list[Path] = []
        try:
            for folder in reversed(missing):
                try:
                    folder.mkdir()
                except FileExistsError:
                    continue  # another run made it meanwhile: not this check's to remove
                made.append(folder)
        except OSError as e:
            raise InputError(f"cannot write results to {self.root}: {e.strerror or e}") from None
        finally:
            for folder in reversed(made):
                try:
                    folder.rmdir()
                except OSError:
                    break  # something was put in it meanwhile (a run beside this one): it stays

    def _path(self, key: str) -> Path:
        return self.root / key

    def write(self, key: str, data: bytes) -> None:
        path = self._path(key)
        if path.parent not in self._folders:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._folders.add(path.parent)
        try:
            fd, tmp = _create_temp(path)
        except FileNotFoundError:  # the folder went away since it was made
            self._folders.discard(path.parent)
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = _create_temp(path)
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def read(self, key: str) -> bytes | None:
        # os.open and os.read, not open() nor pathlib: a run reads every row object, and a file object costs
        # twice the system calls (100,000 rows: about a second)
        try:
            fd = os.open(os.path.join(self.uri, key), os.O_RDONLY | os.O_CLOEXEC)
        except (FileNotFoundError, NotADirectoryError):
            return None
        try:
            chunks = [os.read(fd, _CHUNK)]
            while chunks[-1]:
                chunks.append(os.read(fd, _CHUNK))
        finally:
            os.close(fd)
        return chunks[0] if len(chunks) == 2 else b"".join(chunks)

    def folders(self, prefix: str = "") -> list[str]:
        try:
            with os.scandir(self._path(prefix)) as entries:
                return sorted(e.name for e in entries if not e.name.startswith(".") and e.is_dir())
        except (FileNotFoundError, NotADirectoryError):
            return []

    def list(self, prefix: str) -> list[str]:
        folder = self._path(prefix) if prefix.endswith("/") else self._path(prefix).parent
        if not folder.is_dir():
            return []
        base = str(folder.relative_to(self.root)).replace(os.sep, "/")
        base = "" if base == "." else base + "/"
        with os.scandir(folder) as entries:  # one system call per directory block: 100,000 rows/ list in a blink
            keys = [base + e.name for e in entries if not e.name.startswith(".") and e.is_file()]
        return sorted(k for k in keys if k.startswith(prefix))

    def url(self, key: str) -> str:
        """The key's absolute path: what is stored (a final's model_uri) names it from any folder."""
        return os.path.abspath(self._path(key))

    def delete(self, key: str) -> None:
        path = self._path(key)
        try:
            with _locked(path.parent):  # not in the middle of a write_if
                path.unlink(missing_ok=True)
        except (FileNotFoundError, NotADirectoryError):
            pass

    def read_versioned(self, key: str) -> tuple[bytes, str] | None:
        try:
            with open(self._path(key), "rb") as f:
                return f.read(), _version(os.fstat(f.fileno()))
        except (FileNotFoundError, NotADirectoryError):
            return None

    def write_if(self, key: str, data: bytes, version: str | None) -> str | None:
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        with _locked(path.parent):
            try:
                current: str | None = _version(path.stat())
            except FileNotFoundError:
                current = None
            if current != version:
                return None
            self.write(key, data)
            return _version(path.stat())


def _create_temp(path: Path) -> tuple[int, str]:
    """A new file next to `path`, open for writing, with the mode a plain open() gives.

    Not tempfile.mkstemp: its files are 0600, which hides a shared results folder from its other readers.
    """
    for _ in range(100):
        tmp = path.parent / f".{path.name}.{secrets.token_hex(6)}"
        try:
            return os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o666), str(tmp)
        except FileExistsError:
            continue
    raise FileExistsError(f"no free temporary name next to {path}")


def _version(st: os.stat_result) -> str:
    # Every write is a rename to a new inode, so inode and mtime together name one version.
    return f"{st.st_ino}-{st.st_mtime_ns}-{st.st_size}"


@contextmanager
def _locked(folder: Path) -> Iterator[None]:
    # The folder itself is the lock, so no lock file is left among the results.
    fd = os.open(folder, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)
