"""Lazily compiled kernels: numba is imported on the first call of a kernel, not on import.

``import numba`` costs about half a second; a process that never runs a kernel (``import
histo_fms``, ``histo-fms --help``, a reader) should not pay it. :func:`njit` wraps a
function as :class:`LazyKernel`; its first call imports numba, compiles (or loads from
numba's on-disk cache) ``numba.njit(**options)(function)`` and forwards every call to
that dispatcher. A kernel that calls other lazy kernels of its module gets their
dispatchers in its globals before it is compiled (numba only calls dispatchers).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

_LOCK = threading.RLock()


class LazyKernel:
    """A function compiled with ``numba.njit(**options)`` on its first call."""

    def __init__(self, func: Callable, options: dict[str, Any]):
        self.py_func = func
        self.options = options
        self._dispatcher = None
        self.__name__ = func.__name__
        self.__qualname__ = func.__qualname__
        self.__doc__ = func.__doc__
        self.__module__ = func.__module__
        self.__wrapped__ = func

    @property
    def dispatcher(self):
        """The numba dispatcher (imports numba and sets it up on first use)."""
        d = self._dispatcher
        if d is None:
            with _LOCK:
                d = self._dispatcher
                if d is None:
                    import numba

                    g = self.py_func.__globals__
                    for name in self.py_func.__code__.co_names:
                        dep = g.get(name)
                        if isinstance(dep, LazyKernel):
                            g[name] = dep.dispatcher  # numba calls dispatchers only
                    d = numba.njit(**self.options)(self.py_func)
                    self._dispatcher = d
        return d

    def __call__(self, *args, **kwargs):
        return self.dispatcher(*args, **kwargs)

    def __reduce__(self):  # pickled by reference, as a function is
        return _by_name, (self.__module__, self.__qualname__)

    def __repr__(self) -> str:
        return f"<lazily compiled kernel {self.__module__}.{self.__qualname__}>"


def _by_name(module: str, qualname: str):
    import importlib

    return getattr(importlib.import_module(module), qualname)


def njit(func: Callable | None = None, **options: Any):
    """``numba.njit`` compiled on first call; use as ``@njit(cache=True, nogil=True)``."""
    if func is not None:
        return LazyKernel(func, options)

    def wrap(f: Callable) -> LazyKernel:
        return LazyKernel(f, options)

    return wrap
