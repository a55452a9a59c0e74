"""Settings: every knob the portal has, with its default and its help text.

Order of precedence (highest first): the test config handed to create_app, the
process environment, instance/kamusm.toml, the defaults below. A setting that
is not listed here does not exist; docs/settings.md is generated from this list
and a test fails when the two disagree. A test-only setting (TESTING) is never
read from the environment or kamusm.toml: only create_app's test config sets it,
so no deployment can reach what it allows.
"""
from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable
from urllib.parse import urlsplit

from kamusm.errors import ConfigError


def _bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in {"1", "true", "yes", "on"}:
        return True
    if text in {"0", "false", "no", "off", ""}:
        return False
    raise ValueError(f"not a boolean: {value!r}")


def _int(value: Any) -> int:
    return int(value)


def _str(value: Any) -> str:
    return str(value)


def _list(value: Any) -> list[str]:
    if isinstance(value, list):
        return [str(item).strip() for item in value if str(item).strip()]
    return [item.strip() for item in str(value).split(",") if item.strip()]


@dataclass(frozen=True)
class Setting:
    name: str
    default: Any
    parse: Callable[[Any], Any]
    help: str
    test_only: bool = False


SETTINGS: tuple[Setting, ...] = (
    Setting("KAMUSM_DEMO", False, _bool,
            "1 = demo mode: demo holders, /demo/phone and /demo/mail, the outbox backends (allowed only here)."),
    Setting("KAMUSM_CAPTCHA", "image", _str,
            "image, or off (refused unless KAMUSM_DEMO=1)."),
    Setting("KAMUSM_SMS_BACKEND", "outbox", _str,
            "outbox (codes stored in clear, shown on /demo/phone; only with KAMUSM_DEMO=1), console "
            "(printed to standard output, for development), or http (a JSON webhook of an SMS gateway). "
            "Outside demo mode name http (or console)."),
    Setting("KAMUSM_SMS_HTTP_URL", "", _str, "http SMS backend: the gateway URL (https in production)."),
    Setting("KAMUSM_SMS_HTTP_TOKEN", "", _str,
            "http SMS backend: sent as 'Authorization: Bearer <token>'; empty sends none."),
    Setting("KAMUSM_SMS_HTTP_BODY", '{"to": "{to}", "text": "{message}"}', _str,
            "http SMS backend: JSON body template; the strings \"{to}\" and \"{message}\" are "
            "replaced by the JSON-encoded phone number and text."),
    Setting("KAMUSM_SMS_HTTP_TIMEOUT", 5, _int, "http SMS backend: seconds to wait for the gateway."),
    Setting("KAMUSM_SMS_HTTP_RETRIES", 2, _int,
            "http SMS backend: further tries after a failed one (network error or 5xx)."),
    Setting("KAMUSM_MAIL_BACKEND", "outbox", _str,
            "outbox (links stored in clear, shown on /demo/mail; only with KAMUSM_DEMO=1) or smtp. "
            "Outside demo mode name smtp."),
    Setting("KAMUSM_SMTP_HOST", "localhost", _str, "smtp mail backend: the server's host name."),
    Setting("KAMUSM_SMTP_PORT", 587, _int, "smtp mail backend: the server's port (587 STARTTLS, 465 TLS)."),
    Setting("KAMUSM_SMTP_SECURITY", "starttls", _str,
            "smtp mail backend: starttls, tls, or none (none only for a server on this machine)."),
    Setting("KAMUSM_SMTP_USER", "", _str, "smtp mail backend: login name; empty sends without logging in."),
    Setting("KAMUSM_SMTP_PASSWORD", "", _str, "smtp mail backend: login password."),
    Setting("KAMUSM_SMTP_TIMEOUT", 10, _int, "smtp mail backend: seconds to wait for the server."),
    Setting("KAMUSM_SMTP_CA_FILE", "", _str,
            "smtp mail backend: a PEM CA bundle that verifies the server's certificate (an institution's own "
            "CA); empty uses the system's CAs. Verification is never turned off."),
    Setting("KAMUSM_MAIL_FROM", "kamusm@localhost", _str, "The From address of the portal's mail."),
    Setting("KAMUSM_EMAIL_DOMAINS", [], _list,
            "Comma list of institutional e-mail domains; empty allows any."),
    Setting("KAMUSM_OTP_TTL", 300, _int, "Seconds an SMS code lives (60 to 600)."),
    Setting("KAMUSM_OTP_RESEND_SECONDS", 60, _int, "Seconds before a new SMS code may be asked for."),
    Setting("KAMUSM_OTP_SENDS_PER_HOUR", 5, _int, "SMS codes one holder may be sent in an hour."),
    Setting("KAMUSM_VAULT_KEY", "", _str,
            "Base64 of a 32-byte key-encryption key; empty uses instance/vault.key."),
    Setting("KAMUSM_VAULT_KEY_NEXT", "", _str,
            "During a rotation with KAMUSM_VAULT_KEY: base64 of the new key; `kamusm rotate-vault-key` "
            "re-wraps every data key under it, then it becomes KAMUSM_VAULT_KEY."),
    Setting("KAMUSM_PUBLIC_URL", "", _str,
            "The portal's public origin, for links in mails and printed by commands "
            "(e.g. https://imza.example.edu.tr); passkeys are bound to its host name. Empty uses "
            "http://127.0.0.1:5000 for links and http://localhost:5000 for passkeys."),
    Setting("KAMUSM_HELPER_URL", "http://127.0.0.1:8765", _str,
            "Where browsers reach the local card helper."),
    Setting("KAMUSM_HELPER_DIST_DIR", "", _str,
            "Folder of the helper wheel that `make helper-dist` builds and /helper/ serves; "
            "empty uses instance/helper."),
    Setting("KAMUSM_CALL_CENTRE", "444 5 576", _str,
            "Telephone number shown to holders whose phone number is wrong."),
    Setting("KAMUSM_DATABASE_URL", "", _str,
            "Where the data lives: empty for instance/kamusm.db, sqlite:///PATH for another SQLite file, or "
            "postgresql://USER@HOST/DB (psycopg; a password in the URL is never printed) for several app servers "
            "sharing one database."),
    Setting("KAMUSM_INSTITUTION_NAME", "Demo Üniversitesi", _str,
            "The institution's name: shown in the page header and title, and the signature of every mail."),
    Setting("KAMUSM_LOGO_FILE", "", _str,
            "The institution's logo in the page header (never in mails): a PNG, JPEG or SVG file, at most "
            "512 KiB, its type told by its content; a path relative to the instance folder, or absolute. "
            "Read and checked at start-up, which a bad file stops. Empty: the header shows the name only."),
    Setting("KAMUSM_PROXIES", 0, _int,
            "How many reverse proxies stand in front of the portal (X-Forwarded-* trusted from that many). "
            "Anyone reaching the portal directly can then forge X-Forwarded-For and dodge the per-IP limits, "
            "so `make serve` refuses a KAMUSM_BIND other than loopback with it (see "
            "KAMUSM_PROXY_NETWORK_TRUSTED)."),
    Setting("KAMUSM_PROXY_NETWORK_TRUSTED", False, _bool,
            "1 = with KAMUSM_PROXIES, `make serve` may listen on a non-loopback KAMUSM_BIND because only the "
            "proxy can reach that address (a firewall or a private network in front says so, not the portal)."),
    Setting("KAMUSM_ARGON2_MEMORY_KIB", 19456, _int, "Argon2id memory cost in KiB (at least 19456)."),
    Setting("KAMUSM_ARGON2_TIME_COST", 2, _int, "Argon2id iterations (at least 2)."),
    Setting("KAMUSM_ARGON2_PARALLELISM", 1, _int, "Argon2id lanes (at least 1)."),
    Setting("KAMUSM_ARGON2_SLOTS", 0, _int,
            "Argon2id checks one process runs at once; the rest wait their turn. 0: one per core, "
            "shared among the workers under gunicorn."),
    Setting("KAMUSM_LOCKOUT_THRESHOLD", 5, _int,
            "Consecutive failed logins before a holder is locked (at most 10)."),
    Setting("KAMUSM_SESSION_IDLE_SECONDS", 600, _int, "Idle session timeout in seconds."),
    Setting("KAMUSM_ADMIN_IDLE_SECONDS", 900, _int, "Idle timeout of an operator's session in /admin, in seconds."),
    Setting("KAMUSM_SESSION_MAX_SECONDS", 12 * 3600, _int, "Absolute session lifetime in seconds."),
    Setting("RATELIMIT_STORAGE_URI", "memory://", _str,
            "flask-limiter storage: memory:// (one process only) or redis://host:port."),
    Setting("RATELIMIT_ENABLED", True, _bool,
            "false turns the per-IP limits off (for tests of other things); the per-holder lockout stays on."),
    Setting("KAMUSM_LOGIN_RATE", "10 per minute;100 per hour", _str, "Per-IP limit on POST /login."),
    Setting("KAMUSM_SMS_RATE", "5 per minute;30 per hour", _str, "Per-IP limit on POST /login/sms."),
    Setting("KAMUSM_FORGOT_RATE", "5 per minute;20 per hour", _str, "Per-IP limit on POST /forgot."),
    Setting("KAMUSM_CODE_RATE", "10 per minute;60 per hour", _str, "Per-IP limit on POST /login/code."),
    Setting("TESTING", False, _bool,
            "Flask's test mode (tests/conftest.py sets it). It lets the test suite keep the outbox backends "
            "with KAMUSM_DEMO=0, to test the non-demo portal and read the codes it sends.", test_only=True),
)

OTP_TTL_MAX_SECONDS = 600
OTP_TTL_MIN_SECONDS = 60
LOCKOUT_THRESHOLD_MAX = 10
ARGON2_MIN_MEMORY_KIB = 19456
ARGON2_MIN_TIME_COST = 2
# Old names a deployment may still set: refused, since a value silently ignored would show the default.
RENAMED_SETTINGS = {"KAMUSM_INSTITUTION": "KAMUSM_INSTITUTION_NAME"}


def load_settings(instance_path: Path, environ: dict[str, str] | None = None) -> dict[str, Any]:
    """Return every setting's value: environment, then instance/kamusm.toml, then default.

    Raises ConfigError naming the setting when a value does not parse or breaks a
    security floor, so a bad deployment stops at start-up instead of running weak.
    """
    environ = os.environ if environ is None else environ
    toml_path = instance_path / "kamusm.toml"
    from_file: dict[str, Any] = {}
    if toml_path.exists():
        with toml_path.open("rb") as handle:
            from_file = tomllib.load(handle)
    for old, new in RENAMED_SETTINGS.items():
        if old in environ or old in from_file:
            raise ConfigError(f"{old} is now called {new}: rename it")
    values: dict[str, Any] = {}
    for setting in SETTINGS:
        if setting.test_only:
            values[setting.name] = setting.default
            continue
        raw = environ.get(setting.name, from_file.get(setting.name, setting.default))
        try:
            values[setting.name] = setting.parse(raw)
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"{setting.name}: {exc}") from None
    return values


def check_settings(values: dict[str, Any]) -> None:
    """Refuse combinations that would weaken the portal. Raises ConfigError."""
    if values["KAMUSM_DATABASE_URL"] and not values["KAMUSM_DATABASE_URL"].startswith(
            ("sqlite:///", "postgresql://", "postgres://")):
        raise ConfigError("KAMUSM_DATABASE_URL must be sqlite:///PATH or postgresql://…")
    if values["KAMUSM_CAPTCHA"] not in {"image", "off"}:
        raise ConfigError("KAMUSM_CAPTCHA must be image or off")
    if values["KAMUSM_CAPTCHA"] == "off" and not values["KAMUSM_DEMO"]:
        raise ConfigError("KAMUSM_CAPTCHA=off is only allowed with KAMUSM_DEMO=1")
    if not OTP_TTL_MIN_SECONDS <= values["KAMUSM_OTP_TTL"] <= OTP_TTL_MAX_SECONDS:
        raise ConfigError(f"KAMUSM_OTP_TTL must be {OTP_TTL_MIN_SECONDS} to {OTP_TTL_MAX_SECONDS} seconds")
    if not 1 <= values["KAMUSM_LOCKOUT_THRESHOLD"] <= LOCKOUT_THRESHOLD_MAX:
        raise ConfigError(f"KAMUSM_LOCKOUT_THRESHOLD must be 1 to {LOCKOUT_THRESHOLD_MAX}")
    if values["KAMUSM_SMS_BACKEND"] not in {"outbox", "console", "http"}:
        raise ConfigError("KAMUSM_SMS_BACKEND must be outbox, console or http")
    if values["KAMUSM_SMS_BACKEND"] == "http" and not values["KAMUSM_SMS_HTTP_URL"].startswith(("https://", "http://")):
        raise ConfigError("KAMUSM_SMS_BACKEND=http needs KAMUSM_SMS_HTTP_URL, an http(s):// URL")
    if values["KAMUSM_MAIL_BACKEND"] not in {"outbox", "smtp"}:
        raise ConfigError("KAMUSM_MAIL_BACKEND must be outbox or smtp")
    if not values["KAMUSM_DEMO"] and not values["TESTING"]:
        # The outbox keeps every SMS code and every reset link in clear in the database.
        if values["KAMUSM_SMS_BACKEND"] == "outbox":
            raise ConfigError("KAMUSM_SMS_BACKEND=outbox is only allowed with KAMUSM_DEMO=1 (it keeps SMS codes "
                              "in clear); set KAMUSM_SMS_BACKEND=http (or console)")
        if values["KAMUSM_MAIL_BACKEND"] == "outbox":
            raise ConfigError("KAMUSM_MAIL_BACKEND=outbox is only allowed with KAMUSM_DEMO=1 (it keeps reset "
                              "links in clear); set KAMUSM_MAIL_BACKEND=smtp")
    if values["KAMUSM_SMTP_SECURITY"] not in {"starttls", "tls", "none"}:
        raise ConfigError("KAMUSM_SMTP_SECURITY must be starttls, tls or none")
    if values["KAMUSM_SESSION_IDLE_SECONDS"] > values["KAMUSM_SESSION_MAX_SECONDS"]:
        raise ConfigError("KAMUSM_SESSION_IDLE_SECONDS cannot exceed KAMUSM_SESSION_MAX_SECONDS")
    if not 60 <= values["KAMUSM_ADMIN_IDLE_SECONDS"] <= 900:
        raise ConfigError("KAMUSM_ADMIN_IDLE_SECONDS must be 60 to 900 (15 minutes at most)")
    if values["KAMUSM_ARGON2_MEMORY_KIB"] < ARGON2_MIN_MEMORY_KIB:
        raise ConfigError(f"KAMUSM_ARGON2_MEMORY_KIB must be at least {ARGON2_MIN_MEMORY_KIB}")
    if values["KAMUSM_ARGON2_TIME_COST"] < ARGON2_MIN_TIME_COST:
        raise ConfigError(f"KAMUSM_ARGON2_TIME_COST must be at least {ARGON2_MIN_TIME_COST}")
    if values["KAMUSM_ARGON2_PARALLELISM"] < 1:
        raise ConfigError("KAMUSM_ARGON2_PARALLELISM must be at least 1")
    if values["KAMUSM_ARGON2_SLOTS"] < 0:
        raise ConfigError("KAMUSM_ARGON2_SLOTS must be 0 (one per core) or more")
    if values["KAMUSM_SESSION_MAX_SECONDS"] > 12 * 3600:
        raise ConfigError("KAMUSM_SESSION_MAX_SECONDS cannot exceed 12 hours")
    public_url = urlsplit(values["KAMUSM_PUBLIC_URL"])
    if values["KAMUSM_PUBLIC_URL"] and (public_url.scheme not in {"http", "https"} or not public_url.hostname
                                        or public_url.username or public_url.path not in {"", "/"}
                                        or public_url.query or public_url.fragment):
        # Links in mails are built on it and passkeys are bound to its origin: it must be exactly one.
        raise ConfigError("KAMUSM_PUBLIC_URL must be http(s)://host[:port] with no user, path or query")
    name = values["KAMUSM_INSTITUTION_NAME"]
    if not name.strip() or not name.isprintable():
        # It signs every mail and names the sender in its From header, where a line break would start a header.
        raise ConfigError("KAMUSM_INSTITUTION_NAME must be a name on one line")


def settings_markdown() -> str:
    """The settings table of docs/settings.md; a test keeps the file equal to this."""
    lines = ["# Settings", "",
             "Environment first, then instance/kamusm.toml (same names), then the default.",
             "Generated from kamusm/config.py by `flask --app app kamusm settings`.", "",
             "| variable | default | meaning |", "|---|---|---|"]
    for setting in (setting for setting in SETTINGS if not setting.test_only):
        default = setting.default
        if isinstance(default, bool):
            default = "1" if default else "0"
        elif isinstance(default, list):
            default = ",".join(default) or "(any)"
        lines.append(f"| {setting.name} | `{default}` | {setting.help.replace('|', '/')} |")
    lines += ["| KAMUSM_INSTANCE | `./instance` | The instance folder: kamusm.db, secret_key, vault.key, "
              "kamusm.toml. |"]
    lines += ["", "Not settable from the environment or kamusm.toml, only by create_app's test config:", ""]
    lines += [f"- {setting.name}: {setting.help}" for setting in SETTINGS if setting.test_only]
    return "\n".join(lines) + "\n"
