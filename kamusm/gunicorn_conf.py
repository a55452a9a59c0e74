"""gunicorn settings for serving kamusm: `gunicorn -c kamusm/gunicorn_conf.py app:app` (`make serve`).

Environment: KAMUSM_BIND (127.0.0.1:5000), KAMUSM_WORKERS (one per two cores,
at least 1; 1 while RATELIMIT_STORAGE_URI is memory://), KAMUSM_THREADS (4 per
worker); the portal's own settings as usual (environment, then
instance/kamusm.toml). Decisions and their reasons are in kamusm/serve.py, the
figures behind them in bench/README.md.

- gthread, not sync: a request can wait seconds on the SMS gateway or SMTP
  (KAMUSM_SMS_HTTP_TIMEOUT x retries); a sync worker would be stuck for all of
  it. Threads also hand a slow client back to the poller instead of holding a
  worker, and keep-alive works. Argon2id releases the GIL, so hashes of one
  worker's threads run on both cores.
- Refuses to start (SystemExit naming the fix) with more than one worker and
  RATELIMIT_STORAGE_URI=memory://, when a redis:// storage does not answer, and
  when KAMUSM_PROXIES is set but it would listen beyond loopback (a forged
  X-Forwarded-For would dodge the per-IP limits) without
  KAMUSM_PROXY_NETWORK_TRUSTED=1.
- KAMUSM_ARGON2_SLOTS=0 (the default) becomes the cores shared among the
  workers, so the whole server runs about one Argon2id hash per core.
"""
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from kamusm import serve  # noqa: E402

_settings = serve.effective_settings()

bind = os.environ.get("KAMUSM_BIND", serve.DEFAULT_BIND)
workers = serve.workers_from(os.environ, _settings)
worker_class = "gthread"
threads = serve.threads_from(os.environ)

# A worker whose main loop is silent this long is killed and replaced. With gthread the loop keeps
# beating while a thread waits (the SMS gateway's worst case is 5 s x 3 tries), so this catches a
# hung process, not a slow request.
timeout = 30
graceful_timeout = 30
# Keep-alive between the reverse proxy (or a browser) and the worker.
keepalive = 5
# No max_requests: a recycled worker builds the app again (an Argon2id dummy hash, the migration
# check); under load that is a restart every few seconds (bench/README.md), and no leak calls for it.

# Requests: a short line and few headers are enough for every screen (the app caps bodies at 64 KiB).
limit_request_line = 4094
limit_request_fields = 100
limit_request_field_size = 8190

forwarded_allow_ips = serve.forwarded_allow_ips(_settings, os.environ)
if not forwarded_allow_ips:
    secure_scheme_headers = {}  # nobody may claim HTTPS for the client

accesslog = "-"
errorlog = "-"
access_log_format = serve.access_log_format(_settings)
logger_class = "kamusm.serve.AccessLogger"
proc_name = "kamusm"
# gunicorn 25+ opens a control socket at ~/.gunicorn/gunicorn.ctl by default: one path for every
# server of the user (the bench and the tests run several), and a way around the worker check.
control_socket_disable = True


def on_starting(server):
    """Refuse a configuration whose per-IP limits would not hold (gunicorn -w and -b count here)."""
    settings = serve.effective_settings()
    problem = serve.start_problem(settings, server.cfg.workers, server.cfg.bind)
    if problem:
        server.log.error(problem)
        raise SystemExit(problem)
    slots = serve.argon2_slots(settings, server.cfg.workers)
    if slots is not None:
        os.environ["KAMUSM_ARGON2_SLOTS"] = str(slots)  # the workers forked next read it


def nworkers_changed(server, new_value, old_value):
    """SIGTTIN must not grow a memory:// server past one worker either."""
    if old_value is None or new_value <= old_value:
        return
    problem = serve.storage_problem(serve.effective_settings(), new_value)
    if problem:
        server.log.error(problem)
        server.num_workers = old_value


def post_worker_init(worker):
    hasher = getattr(worker.wsgi, "extensions", {}).get("kamusm.hasher")  # absent in bench/load.py's bare app
    if hasher is not None:
        worker.log.info("kamusm: worker %s runs at most %s Argon2id checks at once", worker.pid, hasher.slots)
