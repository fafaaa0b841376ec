"""One run per pipeline root at a time.

The lock is an advisory `flock` on `PIPELINE_ROOT/.lock`. The kernel drops it when the holding
process dies, however it dies (SIGKILL, OOM, power loss of the process), so a lock left by a
killed run never blocks the next one: the file stays, with the dead holder's pid in it, and is
reported as stale and taken over. The pipeline root therefore has to be on a local (or
flock-capable) filesystem; the data and serving directories may be anywhere.
"""

import contextlib
import datetime
import fcntl
import json
import os
import socket
import sys
import time

from components.common.errors import LockedError


def _holder(path: str) -> dict:
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return {}


@contextlib.contextmanager
def hold(path: str, run_id: str, wait: bool = False, poll_s: float = 2.0, log=print):
    """Hold the lock for the duration of the block; raise `LockedError` (exit 5) if it is taken.

    With `wait`, block until the other run finishes instead, printing who holds it once.
    """
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        previous = _holder(path)
        told = False
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                holder = _holder(path)
                who = (
                    f"run {holder.get('run_id', '?')} (pid {holder.get('pid', '?')} on "
                    f"{holder.get('host', '?')}, since {holder.get('since', '?')})"
                )
                if not wait:
                    raise LockedError(
                        f"pipeline root {os.path.dirname(os.path.abspath(path))} is in use by {who}; "
                        "nothing was done. Run again when it finishes, add --wait to queue behind it, "
                        "or use another --pipeline-root."
                    ) from None
                if not told:
                    log(f"[pipeline] waiting for the lock held by {who}")
                    told = True
                time.sleep(poll_s)
        if previous.get("state") == "held":  # its holder died without releasing: the kernel did
            log(
                f"[pipeline] stale lock from run {previous.get('run_id')} (pid {previous.get('pid')}, "
                "no longer running) released"
            )
        record = {
            "run_id": run_id,
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "since": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "command": " ".join(sys.argv),
            "state": "held",
        }
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(record).encode(), 0)
        try:
            yield record
        finally:
            os.ftruncate(fd, 0)
            os.pwrite(fd, json.dumps({**record, "state": "released"}).encode(), 0)
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)
