"""The import-linter contracts of pyproject.toml hold (pure compute, no Qt, review not batch)."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _lint_imports():
    exe = Path(sys.executable).parent / "lint-imports"
    return str(exe) if exe.exists() else shutil.which("lint-imports")


@pytest.mark.skipif(_lint_imports() is None, reason="import-linter not installed")
def test_import_contracts_kept():
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        [str(ROOT), os.environ.get("PYTHONPATH", "")])}
    r = subprocess.run([_lint_imports(), "--no-cache"], cwd=ROOT, env=env,
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-2000:]
    assert "broken" in r.stdout and " 0 broken" in r.stdout
    for name in ("pure compute", "never imports napari or Qt", "does not import the batch",
                 "no import circle"):
        assert name in r.stdout


def test_contracts_declared():
    import tomllib

    cfg = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]
    by_name = {c["name"]: c for c in cfg["contracts"]}
    pure = next(c for n, c in by_name.items() if "pure compute" in n)
    assert set(pure["source_modules"]) == {"histo_fms.drg", "histo_fms.skin", "histo_fms.segment"}
    assert {"dask", "histo_fms.io", "histo_fms.parallel", "qtpy", "PyQt5"} <= set(
        pure["forbidden_modules"])
    assert ".venv/bin/lint-imports" in (ROOT / ".ci" / "run").read_text()
