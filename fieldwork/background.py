"""Background work (the console's jobs, the chat's `/export`) runs in child processes on CPU time
the bots do not want: lowering a process's priority is shared here so both do it alike."""

from __future__ import annotations

import os

#: Niceness of a background process where SCHED_IDLE is not available: the bots come first.
NICENESS = 10


def lower_priority(pid: int = 0) -> None:
    """Run process ``pid`` (0: this one) only on CPU time nobody else wants: SCHED_IDLE where Linux
    offers it (the bots and the console always go first, and under Linux's I/O schedulers an idle
    task's disk reads wait too), else a high niceness. Background work gets slower on a busy
    machine; answering in chat does not."""
    try:
        os.setpriority(os.PRIO_PROCESS, pid, os.getpriority(os.PRIO_PROCESS, pid) + NICENESS)
    except OSError:
        pass
    if hasattr(os, "sched_setscheduler") and hasattr(os, "SCHED_IDLE"):
        try:
            os.sched_setscheduler(pid, os.SCHED_IDLE, os.sched_param(0))
        except OSError:
            pass
