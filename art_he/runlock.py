"""One writer per run folder: a live run holds an exclusive ``flock`` on ``DIR/.art-he.lock``.

The lock file holds the holder's PID, host and start time, which a refused second writer names. The kernel drops
the lock when its process ends, however it ends (SIGKILL, a crash, a node reboot on NFS after the lease), so a
lock left by a killed run is simply taken: the file still names the dead holder, which is reported once. A run
that ends normally removes the file. ``flock`` works on local file systems, NFS (Linux emulates it with fcntl
locks) and Lustre or GPFS mounted with lock support; where the file system has no locks the run goes on with a
warning that the folder is not guarded.
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import socket
import time
import warnings
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from art_he.errors import UserError

LOCK_FILE = ".art-he.lock"
#: errors of ``flock`` on a file system without locks
NO_LOCKS = (errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOSYS, errno.EINVAL)


class RunLock:
    """An exclusive lock on a run folder, held from :meth:`acquire` (or ``with``) to :meth:`release`."""

    def __init__(self, folder: str | os.PathLike[str]) -> None:
        self.folder = Path(folder)
        self.path = self.folder / LOCK_FILE
        self._fd: int | None = None
        self._created = False

    def __enter__(self) -> RunLock:
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()

    def acquire(self) -> RunLock:
        """Take the lock, or raise :class:`~art_he.errors.UserError` naming the live holder (PID and host)."""
        if self.folder.exists() and not self.folder.is_dir():
            raise UserError(f"{self.folder} is a file, not a run folder")
        self._created = not self.folder.exists()
        self.folder.mkdir(parents=True, exist_ok=True)
        while True:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                raise UserError(f"{self.folder} is in use by another art-he run ({describe(holder(self.path))}); "
                                "a run folder has one writer at a time: wait for that run to end or stop it, or "
                                "write to another folder") from None
            except OSError as error:
                os.close(fd)
                if error.errno not in NO_LOCKS:
                    raise
                warnings.warn(f"the file system of {self.folder} has no file locks ({error.strerror}): nothing stops "
                              "a second art-he run from writing to this folder at the same time", stacklevel=2)
                return self
            try:  # a holder that ended between our open and flock removed the file: lock the new one instead
                same = os.path.samestat(os.fstat(fd), os.stat(self.path))
            except FileNotFoundError:
                same = False
            if same:
                break
            os.close(fd)
        previous = _parse(os.read(fd, 4096))
        if previous:
            warnings.warn(f"took over the lock of {self.folder} from {describe(previous)}, which ended without "
                          "releasing it (killed?)", stacklevel=2)
        record = {"pid": os.getpid(), "host": socket.gethostname(),
                  "started": datetime.now(timezone.utc).isoformat(timespec="seconds")}
        os.ftruncate(fd, 0)
        os.pwrite(fd, (json.dumps(record, allow_nan=False) + "\n").encode(), 0)
        os.fsync(fd)
        self._fd = fd
        return self

    def release(self) -> None:
        """Remove the lock file and drop the lock (a no-op when not held); a folder the lock created is removed
        again if nothing was written to it."""
        if self._fd is None:
            return
        try:
            if os.path.samestat(os.fstat(self._fd), os.stat(self.path)):
                os.unlink(self.path)
        except FileNotFoundError:
            pass
        finally:
            os.close(self._fd)
            self._fd = None
        if self._created and not any(self.folder.iterdir()):
            self.folder.rmdir()


def holder(path: Path, attempts: int = 5) -> dict[str, Any]:
    """The record a lock file holds (empty while its holder has not written it yet, or if unreadable)."""
    for _ in range(attempts):
        try:
            record = _parse(path.read_bytes())
        except OSError:
            record = {}
        if record:
            return record
        time.sleep(0.05)
    return {}


def describe(record: dict[str, Any]) -> str:
    if not record:
        return "a process that has not written its PID yet"
    return f"PID {record.get('pid')} on host {record.get('host')}, since {record.get('started')}"


def _parse(data: bytes) -> dict[str, Any]:
    try:
        record = json.loads(data.decode() or "{}")
    except (UnicodeDecodeError, json.JSONDecodeError):
        return {}
    return record if isinstance(record, dict) else {}
