"""Single-instance locks: two bots trading one account would fight over its orders and stops.

Two exclusive `flock`s, held for the life of the process; the kernel releases them when the
process dies, however it dies, so a crash never leaves a stale lock:

* the state folder: `<data dir>/crot.lock` (two bots must not share one state database);
* the account (live trading only): `account-<id>.lock` in a private per-user folder, where
  `<id>` is a salted SHA-256 of the HTX API key, truncated (the key itself is never written).
  Two bots with different DATA_DIRs on the same keys are refused here.

The account folder is the same whichever way the bot is started (a login shell, tmux, a
systemd service), because a lock only works if every instance looks in one place: it is
`~/.local/state/crot/locks` (mode 0700), or, when the home folder is not usable,
`$XDG_RUNTIME_DIR/crot` or `<tmp>/crot-<uid>`. `CROT_LOCK_DIR` overrides it. A folder that is a
symlink, or not owned by the user, is never used. Two machines, or two Unix users, on one
account are not caught by a lock: the check of foreign orders at start covers those.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import stat
import tempfile
from pathlib import Path


class AlreadyRunning(RuntimeError):
    pass


class LockUnavailable(RuntimeError):
    """No private folder could hold the account lock."""


def account_id(api_key: str) -> str:
    """A stable, non-reversible name for the account of an API key (16 hex digits)."""
    return hashlib.sha256(b"crot-account-lock\0" + api_key.strip().encode()).hexdigest()[:16]


def _private_dir(path: Path) -> bool:
    """Create `path` (mode 0700) or accept it if it is a real folder of ours, not a symlink."""
    try:
        path.mkdir(parents=True, exist_ok=True, mode=0o700)
        st = os.lstat(path)
    except OSError:
        return False
    if not stat.S_ISDIR(st.st_mode) or st.st_uid != os.getuid():
        return False
    if stat.S_IMODE(st.st_mode) & 0o077:
        try:
            os.chmod(path, 0o700)
        except OSError:
            return False
    return os.access(path, os.W_OK | os.X_OK)


def account_lock_dir() -> Path:
    override = os.environ.get("CROT_LOCK_DIR")
    candidates: list[Path] = [Path(override)] if override else []
    if not override:
        try:
            candidates.append(Path.home() / ".local" / "state" / "crot" / "locks")
        except (KeyError, RuntimeError):  # no home for this uid
            pass
        runtime = os.environ.get("XDG_RUNTIME_DIR")
        if runtime:
            candidates.append(Path(runtime) / "crot")
        candidates.append(Path(tempfile.gettempdir()) / f"crot-{os.getuid()}")
    for path in candidates:
        if _private_dir(path):
            return path
    raise LockUnavailable("no private folder for the account lock (tried "
                          + ", ".join(str(p) for p in candidates) + "); set CROT_LOCK_DIR to one")


def _holder(path: Path) -> tuple[str, str]:
    try:
        pid, _, folder = path.read_text().partition("\n")
    except OSError:
        return "?", "?"
    return pid.strip() or "?", folder.strip() or "?"


def _try_flock(path: Path) -> int | None:
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    return fd


def _write_holder(fd: int, text: str) -> None:
    os.ftruncate(fd, 0)
    os.pwrite(fd, text.encode(), 0)


class InstanceLock:
    """The state-folder lock, plus the account lock when `account` (the HTX API key) is given.

    Paper, demo and replay runs pass no key: they send no orders, so they only lock the folder
    (a paper bot may run beside a live one on the same keys)."""

    def __init__(self, directory: str | Path, *, account: str | None = None,
                 lock_dir: str | Path | None = None):
        self.path = Path(directory) / "crot.lock"
        self.account = account_id(account) if account and account.strip() else None
        self._lock_dir = Path(lock_dir) if lock_dir else None
        self.account_path: Path | None = None
        self._fd: int | None = None
        self._account_fd: int | None = None

    def acquire(self) -> "InstanceLock":
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = _try_flock(self.path)
        if fd is None:
            pid, _ = _holder(self.path)
            raise AlreadyRunning(f"another CROT instance (pid {pid}) is using {self.path.parent}; stop it first")
        folder = str(self.path.parent.resolve())
        _write_holder(fd, f"{os.getpid()}\n{folder}\n")
        self._fd = fd
        if self.account is None:
            return self
        try:
            directory = self._lock_dir or account_lock_dir()
            if self._lock_dir is not None and not _private_dir(directory):
                raise LockUnavailable(f"{directory} is not a private folder of this user; cannot hold the account lock")
            self.account_path = directory / f"account-{self.account}.lock"
            afd = _try_flock(self.account_path)
            if afd is None:
                pid, other = _holder(self.account_path)
                raise AlreadyRunning(f"another CROT instance (pid {pid}, state folder {other}) is trading this HTX "
                                     f"account (key id {self.account}); two bots on one account fight over its "
                                     "orders: stop it first")
        except BaseException:
            self.release()
            raise
        _write_holder(afd, f"{os.getpid()}\n{folder}\n")
        self._account_fd = afd
        return self

    def release(self) -> None:
        for name in ("_account_fd", "_fd"):
            fd = getattr(self, name)
            if fd is not None:
                fcntl.flock(fd, fcntl.LOCK_UN)
                os.close(fd)
                setattr(self, name, None)

    def __enter__(self) -> "InstanceLock":
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()
