"""Per-task and per-process timing of a ``histo-fms run`` batch (for bench_drg_batch.py).

:func:`install` replaces :func:`histo_fms.batch.process_file` in the running process by
:func:`timed_process_file`. The dask client pickles it by reference (this module), so the
workers run the wrapper too; each call appends one JSON line to the file named by
``$HISTO_FMS_PROBE``: the process, its start time and the CPU it had used before the task
(its start-up: interpreter, imports, worker set-up), and the task's wall and CPU time
(the task's thread, and the whole process during the task).
"""

from __future__ import annotations

import json
import os
import resource
import threading
import time

import histo_fms.batch as _batch

_ORIGINAL = _batch.process_file
_LOCK = threading.Lock()
_FIRST: dict[int, bool] = {}


def _proc_start_epoch() -> float:
    """Epoch time this process started (from /proc)."""
    with open("/proc/self/stat") as fh:
        fields = fh.read().rsplit(")", 1)[1].split()
    ticks = int(fields[19])  # starttime, field 22 of stat
    with open("/proc/stat") as fh:
        btime = next(int(ln.split()[1]) for ln in fh if ln.startswith("btime"))
    return btime + ticks / os.sysconf("SC_CLK_TCK")


def _cpu_self() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def _threads() -> dict[int, tuple[str, float]]:
    """Thread id -> (name, CPU seconds) of each live thread of this process (/proc)."""
    names = {t.native_id: t.name for t in threading.enumerate()}
    tick = os.sysconf("SC_CLK_TCK")
    out = {}
    for tid in os.listdir("/proc/self/task"):
        try:
            with open(f"/proc/self/task/{tid}/stat") as fh:
                comm, rest = fh.read().rsplit(")", 1)
        except OSError:
            continue
        f = rest.split()
        name = names.get(int(tid)) or comm.split("(", 1)[1]
        out[int(tid)] = (name, (int(f[11]) + int(f[12])) / tick)
    return out


def _by_name(threads: dict[int, tuple[str, float]]) -> dict[str, float]:
    out: dict[str, float] = {}
    for name, cpu in threads.values():
        name = name.rstrip("0123456789-_ ") or name  # pool threads together
        out[name] = round(out.get(name, 0.0) + cpu, 2)
    return out


def thread_cpu() -> dict[str, float]:
    """CPU seconds of the live threads of this process, by thread name."""
    return _by_name(_threads())


class ThreadMonitor:
    """CPU by thread name of every thread this process ran, ended ones included.

    Samples ``/proc/self/task`` every ``interval`` seconds in a daemon thread.
    """

    def __init__(self, interval: float = 1.0):
        self.seen: dict[int, tuple[str, float]] = {}
        self._stop = threading.Event()
        self._t = threading.Thread(target=self._run, args=(interval,), daemon=True,
                                   name="probe-monitor")
        self._t.start()

    def _run(self, interval: float) -> None:
        while not self._stop.wait(interval):
            self.seen.update(_threads())

    def result(self) -> dict[str, float]:
        """Stop sampling; CPU seconds by thread name."""
        self._stop.set()
        self._t.join()
        self.seen.update(_threads())
        return _by_name(self.seen)


def timed_process_file(path, cfg, out, **kw):
    """:func:`histo_fms.batch.process_file`, timed; see the module docstring."""
    pid = os.getpid()
    with _LOCK:
        first = pid not in _FIRST
        _FIRST[pid] = True
    w0, c0, t0 = time.time(), _cpu_self(), time.thread_time()
    res = _ORIGINAL(path, cfg, out, **kw)
    rec = {"pid": pid, "file": os.path.basename(str(path)), "first": first,
           "proc_start": _proc_start_epoch(), "cpu_before": c0,
           "start": w0, "wall": time.time() - w0, "cpu_thread": time.thread_time() - t0,
           "cpu_process": _cpu_self() - c0, "status": res.status,
           "threads": thread_cpu()}
    dest = os.environ.get("HISTO_FMS_PROBE")
    if dest:
        with _LOCK, open(dest, "a") as fh:
            fh.write(json.dumps(rec) + "\n")
    return res


def install() -> None:
    """Make ``histo_fms.batch`` call :func:`timed_process_file` for every file."""
    _batch.process_file = timed_process_file
