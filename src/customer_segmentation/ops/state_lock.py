"""One local run at a time per state folder.

Two local runs on the same `.local/` (a cron overlap, an impatient user) would share one Derby
metastore, one MLflow store and the same tables. Every command that opens the local lakehouse
holds an exclusive lock on `<state_root>/lock` while it works; a second one stops at once with a
clear message, before it touches anything. The lock belongs to the process's open file, so a run
that is killed releases it: no stale lock to clean up. On Databricks the job itself allows one
run at a time (`max_concurrent_runs: 1`).
"""

from __future__ import annotations

import datetime as dt
import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from ..core.errors import UserError


class StateInUse(UserError):
    """Another local run holds the state folder."""


@contextmanager
def holding(state_root: str | Path, command: str) -> Iterator[None]:
    folder = Path(state_root).resolve()
    created = not folder.exists()
    folder.mkdir(parents=True, exist_ok=True)
    lock = folder / "lock"
    handle = os.open(lock, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = lock.read_text(encoding="utf-8", errors="replace").strip() or "another process"
            raise StateInUse(f"the local state {folder} is in use by another run ({holder}); wait for it to "
                             f"finish, or give this one its own --state-root") from None
        os.ftruncate(handle, 0)
        started = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")
        os.write(handle, f"pid {os.getpid()}, {command}, since {started}\n".encode())
        yield
    finally:
        os.close(handle)
        # A command refused before it wrote anything leaves no state folder behind.
        if created and [p.name for p in folder.iterdir()] == ["lock"]:
            lock.unlink()
            folder.rmdir()
