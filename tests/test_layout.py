"""The package layout: one installable name (`sentimon`), no bare imports of the repository's top-level folders."""

from __future__ import annotations

import ast
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# The repository's top-level folders that install as sentimon.<name> (pyproject.toml, symlinks under sentimon/),
# and bench, a top-level folder before it moved to sentimon/bench: none may be imported by its bare name.
MAPPED = {"alerts", "compression", "inference", "infra", "streams", "bench"}


def _python_files() -> list[Path]:
    listed = subprocess.run(["git", "ls-files", "*.py"], cwd=ROOT, capture_output=True, text=True, check=True)
    # Through a symlinked folder git lists no files, so each file is seen once, at its real path.
    return [ROOT / line for line in listed.stdout.splitlines() if (ROOT / line).is_file()]


def test_no_code_imports_a_top_level_folder_by_its_bare_name() -> None:
    bare = []
    for path in _python_files():
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            bare += [f"{path.relative_to(ROOT)}:{node.lineno} {n}" for n in names if n.split(".")[0] in MAPPED]
    assert not bare, "import these as sentimon.<part>:\n" + "\n".join(bare)


def test_each_mapped_folder_is_the_sentimon_subpackage() -> None:
    for name in MAPPED - {"bench"}:
        link = ROOT / "sentimon" / name
        assert link.is_symlink() and link.resolve() == (ROOT / name).resolve(), f"sentimon/{name} -> ../{name}"


@pytest.mark.slow
def test_the_wheel_installs_only_sentimon_and_imports_in_a_fresh_venv(tmp_path: Path) -> None:
    # Built from a copy: setuptools leaves a build/ folder beside the sources, and a stale one leaks into wheels.
    src = tmp_path / "src"
    skip = shutil.ignore_patterns(".git", ".venv", "build", "dist", "models", "tests", "*.egg-info", "__pycache__")
    shutil.copytree(ROOT, src, symlinks=True, ignore=skip)
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(tmp_path / "dist"), str(src)],
                   check=True, capture_output=True, text=True, timeout=300)  # fmt: skip
    (wheel,) = (tmp_path / "dist").glob("sentimon-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert {n.split("/")[0] for n in names} == {"sentimon", wheel.name.split("-py")[0] + ".dist-info"}
    assert any(n.startswith("sentimon/streams/") for n in names)
    assert "sentimon/alerts/rules/stock.yaml" in names and "sentimon/infra/kafka/pom.xml" in names

    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    python = venv / "bin" / "python"
    purelib = "import sysconfig; print(sysconfig.get_paths()['purelib'])"
    site = Path(subprocess.run([python, "-c", purelib], capture_output=True, text=True, check=True).stdout.strip())
    # The dependencies come from this environment's site-packages (a plain path entry: its editable-install
    # hook is not run), sentimon itself only from the wheel.
    (site / "deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", str(site), str(wheel)],
                   check=True, capture_output=True, text=True, timeout=300)  # fmt: skip
    parts = ["core", "cli", "infra", "inference", "streams", "alerts", "compression", "replay", "bench"]
    code = "import importlib, sentimon; " + "; ".join(f"importlib.import_module('sentimon.{p}')" for p in parts)
    code += "; print(sentimon.__file__)"
    out = subprocess.run([python, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert Path(out.stdout.strip()).is_relative_to(site)
    for bare in sorted(MAPPED):
        probe = subprocess.run([python, "-c", f"import {bare}"], cwd=tmp_path, capture_output=True)
        assert probe.returncode != 0, f"the wheel installed a top-level '{bare}'"
