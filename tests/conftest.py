"""Shared fixtures: a clean private Redis per test, the factories, and the wheel of the apps
installed in a fresh virtualenv (for the host-project tests)."""

import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest
from django_redis import get_redis_connection

from tests.factories import CategoryFactory, ProductFactory, StockFactory  # noqa: F401


@pytest.fixture(autouse=True)
def clean_redis():
    """Each test starts with an empty (private) Redis."""
    connection = get_redis_connection("default")
    connection.flushdb()
    yield connection


BASE_DIR = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def installed_wheel(tmp_path_factory) -> tuple[Path, Path]:
    """The wheel built from this checkout, and a fresh virtualenv it is installed into with pip.
    The venv takes the third-party dependencies from this test environment (a .pth file naming
    its site-packages: no download); `pip check` then proves the wheel declares them rightly."""
    work = tmp_path_factory.mktemp("wheel")
    build = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", str(BASE_DIR), "--no-deps",
         "--no-build-isolation", "-w", str(work / "dist")],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert build.returncode == 0, build.stdout[-2000:] + build.stderr[-2000:]
    (wheel,) = (work / "dist").glob("aisle-*.whl")
    venv = work / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300)
    python = venv / "bin" / "python"
    (venv_site,) = (venv / "lib").glob("python3*/site-packages")
    (venv_site / "test_environment.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    for args in (["install", "--no-deps", str(wheel)], ["check"]):
        result = subprocess.run(
            [str(python), "-m", "pip", *args], capture_output=True, text=True, timeout=300
        )
        assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    return wheel, python
