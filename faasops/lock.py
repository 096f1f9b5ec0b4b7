"""The state lock's rules, shared by every state backend: when a held lock is stale, and what
the user is told when it is not."""

from __future__ import annotations

import os
import socket
from datetime import datetime, timedelta, timezone

from faasops.errors import LockError
from faasops.providers import LockInfo

DEFAULT_LEASE_S = 60.0
# What a task says that was still running when its run ended: written by the executor on an
# abort, and by every state backend over the open tasks of a run whose lock it takes over.
INTERRUPTED_MESSAGE = "interrupted: the run ended before this step finished"


def utc_now() -> datetime:
    return datetime.now(timezone.utc)


def iso(moment: datetime) -> str:
    """The timestamp format of lock and task records (sortable as text)."""
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def lease_until(lease_s: float) -> str:
    return iso(utc_now() + timedelta(seconds=lease_s))


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def is_stale(held: LockInfo) -> bool:
    """A lock is free to take when its lease expired, or when its holder ran on this host and
    its process is gone (a killed local apply frees the lock at once)."""
    if held.expires_at < iso(utc_now()):
        return True
    return held.host == socket.gethostname() and not pid_alive(held.pid)


def locked_error(held: LockInfo) -> LockError:
    return LockError(
        f"the state is locked by {held.holder} on {held.host} (pid {held.pid}, "
        f"`{held.command}`, since {held.created_at}, lease until {held.expires_at}"
        + (f", {held.ci_url}" if held.ci_url else "")
        + f"); wait, retry with --lock-timeout, or run `faasops force-unlock {held.id}` "
        "if that run is gone"
    )
