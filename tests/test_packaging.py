"""The wheel ships every catalog file (hatchling force-include into tpplan/_catalog)."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.skipif(not (ROOT / "pyproject.toml").exists(), reason="needs the source tree")
def test_wheel_contains_every_catalog_file(tmp_path):
    pytest.importorskip("hatchling")
    src = tmp_path / "src"
    shutil.copytree(ROOT, src, ignore=shutil.ignore_patterns(".venv", ".git", "*.egg-info", "__pycache__",
                                                             ".pytest_cache", ".hypothesis", "dist", "build"))
    r = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-w",
                        str(tmp_path / "dist"), str(src)], capture_output=True, text=True, check=False)
    assert r.returncode == 0, r.stderr[-2000:]
    wheel = next((tmp_path / "dist").glob("tpplan-*.whl"))
    names = set(zipfile.ZipFile(wheel).namelist())
    for folder in ("hardware", "models"):
        for f in (ROOT / folder).rglob("*"):
            if f.is_file():
                rel = f.relative_to(ROOT).as_posix()
                assert f"tpplan/_catalog/{rel}" in names, rel
    assert "tpplan/_bundled_catalog.json" in names
    # the installed layout (tpplan/_catalog/...) loads the compiled catalog, not the YAML
    site = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(site)
    r = subprocess.run([sys.executable, "-c", "import sys; sys.path.insert(0, sys.argv[1]); "
                        "from tpplan.catalog import load as catalog; "
                        "assert catalog.bundled_root().name == '_catalog', catalog.bundled_root(); "
                        "assert catalog.compiled_bundle_current()", str(site)],
                       capture_output=True, text=True, check=False, cwd=tmp_path)
    assert r.returncode == 0, r.stderr[-2000:]
