"""The npe2 manifest validates and lists every contribution."""

import shutil
import subprocess
import sys
from pathlib import Path


def test_npe2_validate():
    exe = shutil.which("npe2", path=str(Path(sys.executable).parent)) or "npe2"
    res = subprocess.run([exe, "validate", "napari-histo-fms"], capture_output=True, text=True)
    assert res.returncode == 0, res.stdout + res.stderr
    assert "valid" in res.stdout


def test_manifest_contributions():
    from npe2 import PluginManifest

    pm = PluginManifest.from_distribution("napari-histo-fms")
    assert pm.name == "napari-histo-fms"
    c = pm.contributions
    assert {w.display_name for w in c.widgets} == {"Run pipeline", "Review results",
                                                   "Blinded review queue", "Pixel classifier"}
    assert {s.key for s in c.sample_data} == {"drg", "skin"}
    assert len(c.readers) == 2
    for cmd in c.commands:  # every python_name resolves
        mod, _, attr = cmd.python_name.partition(":")
        __import__(mod)
        assert hasattr(sys.modules[mod], attr)
