"""The install a newcomer runs prints what they need to read, not setuptools' deprecation notices."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_pyproject_builds_without_deprecation_warnings() -> None:
    # setuptools reads pyproject.toml the way `pip install -e .` does; any warning is an error here
    code = (
        "from setuptools.dist import Distribution\n"
        "from setuptools.config.pyprojecttoml import apply_configuration\n"
        "dist = apply_configuration(Distribution(), 'pyproject.toml')\n"
        "print(dist.metadata.license_expression or dist.metadata.license)\n"
    )
    done = subprocess.run([sys.executable, "-W", "error", "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.strip() == "Apache-2.0"
