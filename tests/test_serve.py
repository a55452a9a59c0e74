"""`make serve`'s start check for proxies: with KAMUSM_PROXIES the server listens on loopback only.

The app believes X-Forwarded-For once KAMUSM_PROXIES is set, so a client reaching gunicorn
directly could name any address and dodge the per-IP limits. The rule is a plain function
(kamusm.serve.proxy_bind_problem); gunicorn_conf.on_starting refuses through serve.start_problem,
tried here with a real gunicorn that must exit before it binds anything.
"""
from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from kamusm import serve

ROOT = Path(__file__).resolve().parent.parent
GUNICORN = Path(sys.executable).parent / "gunicorn"
CONF = ROOT / "kamusm" / "gunicorn_conf.py"
START_SECONDS = 30
PROXIED = {"KAMUSM_PROXIES": 1, "KAMUSM_PROXY_NETWORK_TRUSTED": False,
           "RATELIMIT_ENABLED": True, "RATELIMIT_STORAGE_URI": "memory://"}


@pytest.mark.parametrize("bind", ["127.0.0.1:5000", "127.0.0.2:80", "[::1]:5000", "localhost:5000",
                                  "tcp://127.0.0.1:5000", "unix:/run/kamusm.sock"])
def test_loopback_binds_may_sit_behind_a_proxy(bind):
    assert serve.is_loopback_bind(bind)
    assert serve.proxy_bind_problem(PROXIED, [bind]) is None


@pytest.mark.parametrize("bind", ["0.0.0.0:5000", "0.0.0.0", "[::]:5000", ":5000", "192.0.2.10:5000",
                                  "portal.example.edu.tr:5000", "fd://3", "127.0.0.1:notaport"])
def test_other_binds_are_refused_behind_a_proxy(bind):
    assert not serve.is_loopback_bind(bind)
    problem = serve.proxy_bind_problem(PROXIED, [bind])
    assert problem and bind in problem
    assert "X-Forwarded-For" in problem and "KAMUSM_PROXY_NETWORK_TRUSTED=1" in problem


def test_one_exposed_bind_among_several_is_refused():
    problem = serve.proxy_bind_problem(PROXIED, ["127.0.0.1:5000", "0.0.0.0:8080"])
    assert problem and "listen on 0.0.0.0:8080 with" in problem


def test_without_a_proxy_or_with_a_trusted_network_any_bind_may_serve():
    assert serve.proxy_bind_problem({**PROXIED, "KAMUSM_PROXIES": 0}, ["0.0.0.0:5000"]) is None
    assert serve.proxy_bind_problem({**PROXIED, "KAMUSM_PROXY_NETWORK_TRUSTED": True}, ["0.0.0.0:5000"]) is None


def test_the_start_check_names_each_problem():
    assert serve.start_problem(PROXIED, 1, [serve.DEFAULT_BIND]) is None
    assert "KAMUSM_PROXIES=1" in serve.start_problem(PROXIED, 1, ["0.0.0.0:5000"])
    assert "memory://" in serve.start_problem(PROXIED, 2, [serve.DEFAULT_BIND])


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def gunicorn_env(instance: Path, **extra: str) -> dict[str, str]:
    env = {name: value for name, value in os.environ.items() if not name.startswith(("KAMUSM_", "RATELIMIT_"))}
    env.update({"KAMUSM_INSTANCE": str(instance), "KAMUSM_DEMO": "1", "KAMUSM_WORKERS": "1", **extra})
    return env


def run_gunicorn(env: dict[str, str], log: Path, *args: str) -> tuple[int, str]:
    with log.open("w") as handle:
        process = subprocess.Popen([str(GUNICORN), "-c", str(CONF), *args, "app:app"], cwd=ROOT, env=env,
                                   stdout=handle, stderr=subprocess.STDOUT)
    try:
        returncode = process.wait(START_SECONDS)
    except subprocess.TimeoutExpired:
        process.terminate()
        process.wait(10)
        pytest.fail(f"gunicorn started:\n{log.read_text()}")
    return returncode, log.read_text()


def test_make_serve_refuses_kamusm_bind_beyond_loopback_behind_a_proxy(tmp_path):
    port = free_port()
    env = gunicorn_env(tmp_path / "instance", KAMUSM_PROXIES="1", KAMUSM_BIND=f"0.0.0.0:{port}")
    returncode, text = run_gunicorn(env, tmp_path / "refused.log")
    assert returncode != 0
    assert f"refusing to listen on 0.0.0.0:{port} with KAMUSM_PROXIES=1" in text
    assert "Listening at" not in text and "Booting worker" not in text


def test_a_bind_given_on_gunicorns_command_line_is_checked_too(tmp_path):
    env = gunicorn_env(tmp_path / "instance", KAMUSM_PROXIES="1")
    returncode, text = run_gunicorn(env, tmp_path / "refused.log", "--bind", f"[::]:{free_port()}")
    assert returncode != 0 and "refusing to listen on [::]:" in text and "Booting worker" not in text
