"""Shared runner of the one-core CPU benchmarks (``bench_drg_cpu.py``, ``bench_skin_cpu.py``).

Each case runs in a fresh child process with one checkout of histo-fms on its path and
every numerical library limited to one thread, so checkouts are timed the same way and
their outputs compared.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path


def run_child(code: Path, source: str, case: str) -> dict:
    """Run ``source`` (a Python program) with checkout ``code`` first on the path.

    Parameters
    ----------
    code : Path
        Checkout whose ``histo_fms`` the child imports.
    source : str
        The child's program; its last line of output is a JSON object.
    case : str
        Name of the case, for the error message.

    Returns
    -------
    dict
        The child's JSON result.
    """
    env = dict(os.environ, PYTHONPATH=str(code), OMP_NUM_THREADS="1",
               OPENBLAS_NUM_THREADS="1", MKL_NUM_THREADS="1", NUMEXPR_NUM_THREADS="1")
    with tempfile.TemporaryDirectory() as tmp:
        out = subprocess.run([sys.executable, "-c", source], env=env, cwd=tmp,
                             capture_output=True, text=True, check=False)
    if out.returncode:
        raise SystemExit(f"{case} with {code}: child failed:\n{out.stderr[-2000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def median(v: list[float]) -> float:
    """Median of a list of timings."""
    s = sorted(v)
    return s[len(s) // 2] if len(s) % 2 else 0.5 * (s[len(s) // 2 - 1] + s[len(s) // 2])
