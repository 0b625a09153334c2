"""Dask cluster set-up: a local cluster sized to the machine, or an existing scheduler."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from typing import Any

SYNCHRONOUS = "synchronous"

#: dask settings of the local cluster: its periodic bookkeeping cost ~25 % of the CPU of a
#: file-parallel batch (measured with ``benchmarks/bench_drg_batch.py``, per-thread CPU):
#: the worker's statistical profiler walks the task thread's stack every 10 ms, the
#: memory monitor asks psutil every 100 ms (in the worker and again in its nanny), the
#: system monitor every 500 ms and the event-loop tick every 20 ms. Each file is one long
#: numerical task, so none of them needs that resolution: no profiler (no dashboard
#: profile page), memory checks every 0.5 s, the rest every 2 s / 0.5 s.
LOCAL_CLUSTER_CONFIG: dict[str, Any] = {
    "distributed.worker.profile.enabled": False,
    "distributed.worker.memory.monitor-interval": "500ms",
    "distributed.admin.system-monitor.interval": "2s",
    "distributed.admin.tick.interval": "500ms",
}


def default_workers() -> int:
    """Return the number of worker processes for a local cluster: one per usable core."""
    try:
        n = len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - macOS / Windows
        n = os.cpu_count() or 1
    return max(1, n)


@contextlib.contextmanager
def open_client(
    *,
    scheduler: str | None = None,
    workers: int | None = None,
    threads_per_worker: int = 1,
    memory_limit: str | None = "auto",
    say: Any = None,
) -> Iterator[Any]:
    """Yield a ``dask.distributed.Client`` (or ``None`` for in-process execution).

    Parameters
    ----------
    scheduler : str, optional
        Address of a running scheduler (``tcp://host:8786``, e.g. one started by
        dask-jobqueue's ``SLURMCluster``), or ``"synchronous"`` to run everything in
        this process without dask.distributed (debugging, tiny batches). Default: start a
        ``LocalCluster``.
    workers : int, optional
        Worker processes of the local cluster (default: one per core).
    threads_per_worker : int
        Threads per worker process.
    memory_limit : str, optional
        Per-worker memory limit of the local cluster (dask syntax, e.g. ``"2GiB"``).
    say : callable, optional
        Where to print the dashboard link (e.g. ``print``).

    Yields
    ------
    distributed.Client or None
        The client; ``None`` in synchronous mode.
    """
    if scheduler == SYNCHRONOUS:
        yield None
        return
    from distributed import Client, LocalCluster

    if scheduler:
        client = Client(scheduler)
        if say is not None:
            say(f"connected to scheduler {scheduler}; dashboard: {client.dashboard_link}")
        try:
            yield client
        finally:
            client.close()
        return
    import dask

    n = workers or default_workers()
    # dask sets MALLOC_TRIM_THRESHOLD_ in its workers, which switches off glibc's
    # dynamic mmap threshold: every large numpy temporary is then a fresh mmap and
    # pays its page faults (~20 % of a tile's time here); keep glibc's default
    environ = dict(dask.config.get("distributed.nanny.pre-spawn-environ", {}) or {})
    environ.pop("MALLOC_TRIM_THRESHOLD_", None)
    # one thread per task in every numerical library: workers x threads already use the
    # cores, and BLAS / OpenMP / numexpr pools of their own would oversubscribe them
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS",
                "NUMEXPR_NUM_THREADS", "VECLIB_MAXIMUM_THREADS", "BLIS_NUM_THREADS"):
        environ.setdefault(var, int(threads_per_worker))
    with dask.config.set({**LOCAL_CLUSTER_CONFIG,
                          "distributed.nanny.pre-spawn-environ": environ}):
        cluster = LocalCluster(n_workers=n, threads_per_worker=threads_per_worker,
                               processes=True, memory_limit=memory_limit,
                               dashboard_address=":0", silence_logs=40)
    client = Client(cluster)
    if say is not None:
        say(f"local dask cluster: {n} worker(s) x {threads_per_worker} thread(s); "
            f"dashboard: {client.dashboard_link}")
    try:
        yield client
    finally:
        client.close()
        cluster.close()
