"""The project as an installed package: its environment imports the three packages from any
directory, the ``privmark`` command is the runner's entry point, and the wheel's file list holds
the packages, the config tree and the shipped data."""

from __future__ import annotations

import importlib.metadata as metadata
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def test_privmark_command_is_the_runners_entry_point():
    (entry,) = [e for e in metadata.entry_points(group="console_scripts") if e.name == "privmark"]
    from benchmarks.run import cli

    assert entry.load() is cli


def test_a_script_outside_the_clone_imports_the_packages(tmp_path):
    script = tmp_path / "deep" / "dir" / "use.py"
    script.parent.mkdir(parents=True)
    script.write_text("import datasets, methods.he\n"
                      "from methods._util import CONF\n"
                      "print(methods.he.HEKMeans.__name__, CONF.is_dir())\n")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    out = subprocess.run([sys.executable, str(script)], cwd=script.parent, env=env, capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["HEKMeans", "True"]


@pytest.mark.skipif(shutil.which("uv") is None, reason="builds the wheel with uv")
def test_the_wheel_holds_packages_config_data_and_command(tmp_path):
    out = subprocess.run(["uv", "build", "--wheel", "-q", "-o", str(tmp_path), str(REPO)], capture_output=True,
                         text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    (wheel,) = tmp_path.glob("privmark-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    for path in ("benchmarks/run.py", "methods/he/kmeans.py", "datasets/_source.py",
                 "benchmarks/conf/config.yaml", "benchmarks/conf/method/he.yaml", "benchmarks/conf/network/wan.yaml",
                 "datasets/data/bank-full.csv.xz", "datasets/data/bank-additional-full.csv.xz"):
        assert path in names, path
    assert not any(n.startswith(("tests/", "results/", "docs/")) for n in names)
    (entry_points,) = [n for n in names if n.endswith(".dist-info/entry_points.txt")]
    assert "privmark = benchmarks.run:cli" in zipfile.ZipFile(wheel).read(entry_points).decode()
