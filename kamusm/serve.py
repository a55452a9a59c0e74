"""The production server's decisions, as plain functions kamusm/gunicorn_conf.py calls.

Kept out of the config file so they can be tested without starting gunicorn.
Security assumptions:
- The per-IP limits live in flask-limiter's storage. memory:// is a dict inside
  one process, so with N workers an attacker gets N times every limit; the
  server refuses that combination instead of running with limits that silently
  multiply (the per-holder lockout and code single use are in SQLite and hold
  across workers whatever the storage).
- X-Forwarded-* are trusted only when KAMUSM_PROXIES says a proxy is in front.
  The app's ProxyFix then believes X-Forwarded-For from whoever connects, so a
  client that reaches gunicorn directly could name any address and dodge every
  per-IP limit. With KAMUSM_PROXIES the server therefore listens on loopback
  only (the proxy on the same machine), unless KAMUSM_PROXY_NETWORK_TRUSTED
  says that only the proxy can reach the address it binds.
- Access log lines are formatted here and handed to the "gunicorn.access"
  logger as one string, so kamusm.redaction.RedactLinkTokens sees (and redacts) the
  path; the format carries no query string, referrer or user agent.
"""
from __future__ import annotations

import ipaddress
import logging
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Mapping

from gunicorn.glogging import Logger

from kamusm.config import load_settings

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_BIND = "127.0.0.1:5000"
THREADS_PER_WORKER = 4
# No query string (%(q)s, %(r)s), referrer or user agent: the path, status, size, time and worker pid.
ACCESS_LOG_FORMAT = '%(h)s %(t)s "%(m)s %(U)s %(H)s" %(s)s %(B)s %(M)sms %(p)s'
PROXIED_ACCESS_LOG_FORMAT = '%(h)s [%({x-forwarded-for}i)s] %(t)s "%(m)s %(U)s %(H)s" %(s)s %(B)s %(M)sms %(p)s'
ONE_PROCESS_STORAGE = "memory://"


def instance_path(environ: Mapping[str, str] | None = None) -> Path:
    """The instance folder create_app will use: KAMUSM_INSTANCE, else ./instance of the project."""
    environ = os.environ if environ is None else environ
    return Path(environ.get("KAMUSM_INSTANCE") or PROJECT_ROOT / "instance").resolve()


def effective_settings(environ: Mapping[str, str] | None = None) -> dict[str, Any]:
    """The settings the workers will load: environment, then instance/kamusm.toml, then defaults.

    Raises kamusm.errors.ConfigError for a value that does not parse.
    """
    environ = os.environ if environ is None else environ
    return load_settings(instance_path(environ), dict(environ))


def default_workers(settings: Mapping[str, Any], cores: int | None = None) -> int:
    """One worker process per two cores (at least one), and one when the limits count in memory://.

    One worker keeps two cores busy: Argon2id, most of a login's CPU, runs on
    the worker's hashing threads outside the GIL, beside its request threads.
    On 2 cores a second worker gave 9 % more flows a second, but a page that
    reached a worker whose threads were all waiting for its hashes waited for
    them too: the flow's p99 went up to 6.5 x its p50, against at most 3.7 x
    with one worker in one queue (bench/README.md). More processes also add
    BEGIN IMMEDIATE contention and 19 MiB per concurrent hash. A worker that
    dies is replaced by gunicorn's master while connections wait in the listen
    backlog. memory:// is correct only in one process; asking for more with it
    is refused, not quietly reduced.
    """
    if storage_problem(settings, 2):
        return 1
    return max(1, (cores or os.cpu_count() or 1) // 2)


def workers_from(environ: Mapping[str, str], settings: Mapping[str, Any]) -> int:
    """KAMUSM_WORKERS, else default_workers(); raises SystemExit for a value that is not a positive integer."""
    raw = environ.get("KAMUSM_WORKERS", "").strip()
    if not raw:
        return default_workers(settings)
    if not raw.isdigit() or int(raw) < 1:
        raise SystemExit(f"kamusm: KAMUSM_WORKERS must be a positive integer, not {raw!r}")
    return int(raw)


def threads_from(environ: Mapping[str, str]) -> int:
    """KAMUSM_THREADS, else THREADS_PER_WORKER; raises SystemExit for a bad value."""
    raw = environ.get("KAMUSM_THREADS", "").strip()
    if not raw:
        return THREADS_PER_WORKER
    if not raw.isdigit() or int(raw) < 1:
        raise SystemExit(f"kamusm: KAMUSM_THREADS must be a positive integer, not {raw!r}")
    return int(raw)


def argon2_slots(settings: Mapping[str, Any], workers: int, cores: int | None = None) -> int | None:
    """Argon2id slots per worker when the setting is 0 (automatic): the cores shared among the
    workers, at least one; None when the setting names a number itself."""
    if settings["KAMUSM_ARGON2_SLOTS"]:
        return None
    return max(1, (cores or os.cpu_count() or 1) // workers)


def storage_problem(settings: Mapping[str, Any], workers: int) -> str | None:
    """Why these settings must not be served by `workers` processes, or None when they may.

    memory:// with the limits on counts per process: refused above one worker.
    """
    uri = str(settings["RATELIMIT_STORAGE_URI"]).strip()
    if workers > 1 and settings["RATELIMIT_ENABLED"] and uri.lower().startswith(ONE_PROCESS_STORAGE):
        return (f"kamusm: refusing to run {workers} workers with RATELIMIT_STORAGE_URI={uri}: "
                f"memory:// counts per process, so every per-IP limit would silently become {workers} times "
                "larger. Set RATELIMIT_STORAGE_URI=redis://HOST:PORT (shared by all workers), or run "
                "KAMUSM_WORKERS=1.")
    return None


def storage_unreachable(settings: Mapping[str, Any]) -> str | None:
    """Check a shared limiter storage answers; a message when it does not, else None.

    Without it every limited POST would fail with a 500 at the first request.
    """
    uri = str(settings["RATELIMIT_STORAGE_URI"]).strip()
    if not settings["RATELIMIT_ENABLED"] or uri.lower().startswith(ONE_PROCESS_STORAGE):
        return None
    from limits.errors import ConfigurationError
    from limits.storage import storage_from_string
    try:
        reachable = storage_from_string(uri).check()
    except (ConfigurationError, ValueError) as exc:
        return f"kamusm: RATELIMIT_STORAGE_URI is not usable: {exc}"
    if not reachable:
        return f"kamusm: the rate-limit storage {_without_password(uri)} does not answer; refusing to start."
    return None


def _without_password(uri: str) -> str:
    scheme, sep, rest = uri.partition("://")
    if "@" in rest:
        rest = "***@" + rest.rsplit("@", 1)[1]
    return f"{scheme}{sep}{rest}"


def is_loopback_bind(bind: str) -> bool:
    """Whether a gunicorn bind (host:port, [v6]:port, unix:PATH, fd://N) is reachable from this machine only."""
    from gunicorn.util import parse_address

    try:
        address = parse_address(bind)
    except (RuntimeError, ValueError):
        return False
    if isinstance(address, str):
        return True  # a unix socket
    if isinstance(address, int):
        return False  # an inherited descriptor: nothing says where it listens
    host = address[0]
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # "" (every address) or a host name that may resolve anywhere


def proxy_bind_problem(settings: Mapping[str, Any], binds: Iterable[str]) -> str | None:
    """Why the server must not listen on `binds` with these settings, or None when it may.

    With KAMUSM_PROXIES the app believes X-Forwarded-For: a client reaching a non-loopback
    address directly could forge it. Allowed there only with KAMUSM_PROXY_NETWORK_TRUSTED.
    """
    if not settings["KAMUSM_PROXIES"] or settings["KAMUSM_PROXY_NETWORK_TRUSTED"]:
        return None
    exposed = [bind for bind in binds if not is_loopback_bind(bind)]
    if not exposed:
        return None
    return (f"kamusm: refusing to listen on {', '.join(exposed)} with KAMUSM_PROXIES="
            f"{settings['KAMUSM_PROXIES']}: the portal believes X-Forwarded-For, so a client reaching it there "
            "directly could forge its address and dodge every per-IP limit. Listen on loopback "
            f"(KAMUSM_BIND={DEFAULT_BIND}, the default) behind a proxy on this machine, or, when only the proxy "
            "can reach this address (a firewall or a private network), set KAMUSM_PROXY_NETWORK_TRUSTED=1.")


def start_problem(settings: Mapping[str, Any], workers: int, binds: Iterable[str]) -> str | None:
    """Why the server must not start (the first reason), or None: gunicorn_conf.on_starting's check.

    The storage is asked last: it is the only check that talks to the network.
    """
    return (storage_problem(settings, workers) or proxy_bind_problem(settings, binds)
            or storage_unreachable(settings))


def forwarded_allow_ips(settings: Mapping[str, Any], environ: Mapping[str, str]) -> str:
    """Whose X-Forwarded-Proto gunicorn believes, as gunicorn's comma list: nobody without a
    proxy (KAMUSM_PROXIES=0); with one, gunicorn's FORWARDED_ALLOW_IPS, else the proxy on
    this machine (loopback). The app's ProxyFix counts the hops of X-Forwarded-For itself."""
    if not settings["KAMUSM_PROXIES"]:
        return ""
    return environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1,::1")


def access_log_format(settings: Mapping[str, Any]) -> str:
    return PROXIED_ACCESS_LOG_FORMAT if settings["KAMUSM_PROXIES"] else ACCESS_LOG_FORMAT


class AccessLogger(Logger):
    """gunicorn's logger, but each access line reaches "gunicorn.access" as one finished string.

    gunicorn passes its atoms as a mapping argument; a filter that rewrites
    record.args then breaks the line (and the logging error prints the raw path,
    token included). A finished string is what RedactLinkTokens rewrites best.
    The filter is installed here as well, so a worker whose app did not install
    it (the bare baseline of bench/load.py) is covered too.
    """

    def setup(self, cfg) -> None:
        super().setup(cfg)
        from kamusm.redaction import RedactLinkTokens
        for log in (self.access_log, self.error_log):  # gunicorn's error log names the URI of a failed request
            if not any(isinstance(existing, RedactLinkTokens) for existing in log.filters):
                log.addFilter(RedactLinkTokens())

    def access(self, resp, req, environ, request_time) -> None:
        if not self.access_log_enabled:
            return
        atoms = self.atoms_wrapper_class(self.atoms(resp, req, environ, request_time))
        try:
            line = self.cfg.access_log_format % atoms
        except (KeyError, TypeError, ValueError):
            self.error_log.exception("kamusm: bad access_log_format")
            return
        self.access_log.log(logging.INFO, line)
