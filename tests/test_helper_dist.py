"""The kamusm-helper wheel: the helper imports nothing of the portal, the wheel built by
``make helper-dist`` holds only the helper and needs only cryptography and pyscard, it installs and
runs in a fresh venv without Flask, and the portal serves it at /helper/ with the SHA-256 it reports.

The fresh venv installs from .venv/wheelhouse (``make wheelhouse``, a prerequisite of ``make test``)
with --no-index; without it these tests skip on a developer machine and fail under CI=true.
"""
from __future__ import annotations

import configparser
import hashlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import zipfile
from email.parser import Parser
from pathlib import Path

import pytest
from packaging.requirements import Requirement

from kamusm import helper_dist
from kamusm.card.sim import DEMO_CARD
from kamusm.demo import DEMO_HOLDERS
from kamusm.helper import HELPER_VERSION
from kamusm.helper.dist import build_wheel, shipped_files, wheel_filename
from kamusm.web.db import connections
from kamusm.web.factory import create_app
from tests.test_helper_api import HelperClient

REPO_ROOT = Path(__file__).resolve().parents[1]
WHEELHOUSE = REPO_ROOT / ".venv" / "wheelhouse"
PORTAL_ORIGIN = "http://127.0.0.1:5000"
RUNTIME_DEPENDENCIES = {"cryptography", "pyscard"}
# What pip brings in for them; anything else in the fresh venv came from somewhere it should not.
INSTALLED_DISTRIBUTIONS = {"kamusm-helper", "cryptography", "cffi", "pycparser", "pyscard"}
VENV_OWN_DISTRIBUTIONS = {"pip", "setuptools"}
PORTAL_ONLY_MODULES = {"flask", "werkzeug", "jinja2", "click", "wtforms", "flask_wtf", "argon2", "sqlite_utils",
                       "flask_babel", "flask_limiter", "babel", "itsdangerous", "markupsafe", "gunicorn"}
HELPER_START_SECONDS = 30
INSTALL_TIMEOUT_SECONDS = 300
POLL_SECONDS = 0.1

SHIPPED_MODULES = {name.removesuffix(".py").removesuffix("/__init__").replace("/", ".") for name in shipped_files()}
IMPORTED_ALONE = sorted({"kamusm.helper", "kamusm.helper.server", "kamusm.helper.service", "kamusm.sealing",
                         "kamusm.keys", "kamusm.card",
                         *(f"kamusm.card.{path.stem}" for path in (REPO_ROOT / "kamusm" / "card").glob("*.py")
                           if path.stem != "__init__")})


def require_wheelhouse() -> None:
    """Skip (developer machine) or fail (CI=true) when make wheelhouse has not run."""
    if (WHEELHOUSE / ".built").exists():
        return
    message = f"{WHEELHOUSE} is missing: run `make wheelhouse`"
    if os.environ.get("CI") == "true":
        pytest.fail(message, pytrace=False)
    pytest.skip(message)


def clean_environment() -> dict[str, str]:
    """This process's environment without our sources on the path or pip's settings of this machine."""
    env = {name: value for name, value in os.environ.items() if not name.startswith("PIP_") and name != "PYTHONPATH"}
    return {**env, "PIP_CONFIG_FILE": os.devnull, "PIP_DISABLE_PIP_VERSION_CHECK": "1"}


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    return build_wheel(tmp_path_factory.mktemp("dist"))


@pytest.fixture(scope="module")
def wheel_zip(wheel) -> zipfile.ZipFile:
    with zipfile.ZipFile(wheel) as archive:
        yield archive


def dist_info_file(archive: zipfile.ZipFile, name: str) -> str:
    return archive.read(f"kamusm_helper-{HELPER_VERSION}.dist-info/{name}").decode("utf-8")


@pytest.fixture(scope="module")
def venv(wheel, tmp_path_factory) -> Path:
    """A fresh venv (no system site packages) with the wheel installed from the wheelhouse only."""
    require_wheelhouse()
    folder = tmp_path_factory.mktemp("venv") / "helper-venv"
    subprocess.run([sys.executable, "-m", "venv", str(folder)], check=True, env=clean_environment(),
                   timeout=INSTALL_TIMEOUT_SECONDS)
    subprocess.run([str(folder / "bin" / "python"), "-m", "pip", "install", "--quiet", "--no-index", "--find-links",
                    str(WHEELHOUSE), str(wheel)], check=True, env=clean_environment(), cwd=folder,
                   timeout=INSTALL_TIMEOUT_SECONDS)
    return folder


def run_in(venv: Path, code: str) -> subprocess.CompletedProcess:
    # cwd outside the repository, so our sources cannot be imported from it.
    return subprocess.run([str(venv / "bin" / "python"), "-c", code], capture_output=True, text=True, check=False,
                          env=clean_environment(), cwd=venv)


def test_the_sim_card_is_the_first_demo_holders():
    holder = DEMO_HOLDERS[0]
    assert DEMO_CARD == {name: holder[name] for name in ("card_serial", "pin", "puk")}


def modules_loaded_by(module: str) -> set[str]:
    """Every module in sys.modules after importing ``module`` alone, in a fresh interpreter."""
    code = f"import importlib, json, sys; importlib.import_module({module!r}); print(json.dumps(sorted(sys.modules)))"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=REPO_ROOT,
                            env={**os.environ, "PYTHONPATH": str(REPO_ROOT)})
    return set(json.loads(result.stdout))


def test_the_package_root_imports_nothing():
    loaded = modules_loaded_by("kamusm")
    assert {name for name in loaded if name.startswith("kamusm")} == {"kamusm"}
    assert not {name.partition(".")[0] for name in loaded} & PORTAL_ONLY_MODULES


@pytest.mark.parametrize("module", IMPORTED_ALONE)
def test_the_helper_imports_nothing_of_the_portal(module):
    loaded = modules_loaded_by(module)
    assert not {name.partition(".")[0] for name in loaded} & PORTAL_ONLY_MODULES
    assert {name for name in loaded if name.partition(".")[0] == "kamusm"} <= SHIPPED_MODULES | {module}


def test_the_wheel_is_named_after_the_helper_version(wheel):
    assert wheel.name == wheel_filename() == f"kamusm_helper-{HELPER_VERSION}-py3-none-any.whl"


def test_the_same_files_build_the_same_wheel(wheel, tmp_path):
    # Through `python -m kamusm.helper.dist`, the command `make helper-dist` runs.
    subprocess.run([sys.executable, "-m", "kamusm.helper.dist", "--out", str(tmp_path)], check=True,
                   capture_output=True, cwd=REPO_ROOT)
    assert (tmp_path / wheel.name).read_bytes() == wheel.read_bytes()


def test_metadata_requires_only_cryptography_and_pyscard_at_the_pinned_versions(wheel_zip):
    metadata = Parser().parsestr(dist_info_file(wheel_zip, "METADATA"))
    assert (metadata["Name"], metadata["Version"]) == ("kamusm-helper", HELPER_VERSION)
    requirements = [Requirement(text) for text in metadata.get_all("Requires-Dist")]
    assert sorted(requirement.name for requirement in requirements) == sorted(RUNTIME_DEPENDENCIES)
    pinned = dict(line.lower().split("==") for line in (REPO_ROOT / "requirements.txt").read_text().split()
                  if "==" in line)
    for requirement in requirements:
        assert requirement.marker is None and not requirement.extras
        assert requirement.specifier.contains(pinned[requirement.name]), requirement


def test_the_console_command_runs_the_helper_main(wheel_zip):
    entry_points = configparser.ConfigParser()
    entry_points.read_string(dist_info_file(wheel_zip, "entry_points.txt"))
    assert dict(entry_points["console_scripts"]) == {"kamusm-helper": "kamusm.helper:main"}


def test_the_wheel_ships_exactly_the_helper_files(wheel_zip):
    names = {name for name in wheel_zip.namelist() if ".dist-info/" not in name}
    assert names == set(shipped_files())
    assert {"kamusm/helper/__init__.py", "kamusm/helper/__main__.py", "kamusm/card/pcsc.py", "kamusm/sealing.py",
            "kamusm/keys.py", "kamusm/__init__.py"} <= names
    assert not any(name.startswith(("templates/", "static/", "kamusm/helper/dist/", "kamusm/translations/"))
                   for name in names)
    assert not any(name.startswith(("kamusm/web/", "kamusm/storage/", "kamusm/cli/")) for name in names)
    assert not names & {"kamusm/helper_dist.py", "kamusm/demo.py", "kamusm/card/virtual.py"}
    for name in names:
        assert wheel_zip.read(name) == (REPO_ROOT / name).read_bytes(), name


def test_the_installed_helper_has_no_flask(venv):
    result = run_in(venv, "import flask")
    assert result.returncode == 1 and "ModuleNotFoundError" in result.stderr
    installed = run_in(venv, "import importlib.metadata as m, json; "
                             "print(json.dumps([d.metadata['Name'].lower() for d in m.distributions()]))")
    names = set(json.loads(installed.stdout))
    assert names - VENV_OWN_DISTRIBUTIONS == INSTALLED_DISTRIBUTIONS
    location = run_in(venv, "import kamusm.helper; print(kamusm.helper.__file__)")
    assert Path(location.stdout.strip()).is_relative_to(venv)
    version = subprocess.run([str(venv / "bin" / "python"), "-m", "kamusm.helper", "--version"], capture_output=True,
                             text=True, check=True, env=clean_environment(), cwd=venv)
    assert version.stdout.strip() == f"python -m kamusm.helper {HELPER_VERSION}"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_for_status(client: HelperClient, process: subprocess.Popen) -> dict:
    deadline = time.monotonic() + HELPER_START_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"kamusm-helper exited with {process.returncode}: {process.stderr.read()}")
        try:
            answer = client.get("/v1/status", origin=PORTAL_ORIGIN)
        except OSError:
            time.sleep(POLL_SECONDS)
            continue
        assert answer.status == 200
        return answer.json
    pytest.fail(f"kamusm-helper did not answer within {HELPER_START_SECONDS} s")


def test_the_installed_command_serves_the_helper_api(venv, tmp_path):
    port = free_port()
    process = subprocess.Popen([str(venv / "bin" / "kamusm-helper"), "--backend", "sim", "--port", str(port),
                                "--origin", PORTAL_ORIGIN, "--home", str(tmp_path / "home")],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=clean_environment(),
                               cwd=tmp_path)
    try:
        client = HelperClient(port)
        status = wait_for_status(client, process)
        assert status["version"] == HELPER_VERSION and status["public_key"]
        card = client.get("/v1/card", origin=PORTAL_ORIGIN)
        assert card.status == 200 and card.json["serial"] == DEMO_CARD["card_serial"]
        assert client.get("/v1/status", origin="https://evil.example").status == 403
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=HELPER_START_SECONDS) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        process.stdout.close()
        process.stderr.close()


@pytest.fixture
def portal(app_config, wheel):
    app = create_app({**app_config, "KAMUSM_HELPER_DIST_DIR": str(wheel.parent)})
    yield app
    connections(app).close_all()


def test_the_portal_serves_the_wheel_it_reports(portal, wheel):
    info = helper_dist.wheel_info(portal.config)
    assert info == {"filename": wheel.name, "url": f"/helper/{wheel.name}",
                    "sha256": hashlib.sha256(wheel.read_bytes()).hexdigest(), "size": wheel.stat().st_size}
    with portal.test_client().get(info["url"]) as response:
        assert response.status_code == 200
        assert hashlib.sha256(response.data).hexdigest() == info["sha256"]
        assert response.headers["Content-Type"] == "application/octet-stream"
        assert response.headers["Content-Disposition"] == f"attachment; filename={wheel.name}"
        assert "Set-Cookie" not in response.headers


@pytest.mark.parametrize("name", ["kamusm_helper-0.9-py3-none-any.whl", "kamusm_helper.whl", "kamusm.db",
                                  "..%2Fkamusm.db", ".kamusm_helper-1.0-py3-none-any.whl.partial"])
def test_the_portal_serves_no_other_file(portal, name):
    assert portal.test_client().get(f"/helper/{name}").status_code == 404


def test_without_a_built_wheel_there_is_nothing_to_show(app, client):
    assert app.config["KAMUSM_HELPER_DIST_DIR"] == str(Path(app.instance_path) / "helper")
    assert helper_dist.wheel_info(app.config) is None
    assert client.get(f"/helper/{wheel_filename()}").status_code == 404


def test_the_digest_is_computed_once_per_file_version(wheel, tmp_path):
    served = tmp_path / wheel.name
    served.write_bytes(wheel.read_bytes())
    config = {"KAMUSM_HELPER_DIST_DIR": str(tmp_path)}
    first = helper_dist.wheel_info(config)
    misses = helper_dist._sha256.cache_info().misses
    assert helper_dist.wheel_info(config) == first
    assert helper_dist._sha256.cache_info().misses == misses
    # As make helper-dist does: a new file moved into place.
    replacement = tmp_path / "rebuilt"
    replacement.write_bytes(b"a rebuilt wheel")
    os.replace(replacement, served)
    assert helper_dist.wheel_info(config)["sha256"] == hashlib.sha256(b"a rebuilt wheel").hexdigest()


def test_the_build_writes_where_the_portal_reads(monkeypatch, tmp_path):
    monkeypatch.delenv("KAMUSM_HELPER_DIST_DIR", raising=False)
    monkeypatch.setenv("KAMUSM_INSTANCE", str(tmp_path / "instance"))
    assert helper_dist.configured_dist_dir() == tmp_path / "instance" / "helper"
    monkeypatch.setenv("KAMUSM_HELPER_DIST_DIR", str(tmp_path / "elsewhere"))
    assert helper_dist.configured_dist_dir() == tmp_path / "elsewhere"
    app = create_app({"KAMUSM_INSTANCE": str(tmp_path / "instance"), "KAMUSM_DEMO": True})
    assert app.config["KAMUSM_HELPER_DIST_DIR"] == str(tmp_path / "elsewhere")
    connections(app).close_all()
