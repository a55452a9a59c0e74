"""Settings: documented, parsed, and refused when they would weaken security."""
from pathlib import Path

import pytest

from kamusm.config import SETTINGS, load_settings, settings_markdown
from kamusm.errors import ConfigError
from kamusm.web.factory import create_app

ROOT = Path(__file__).resolve().parent.parent


def test_docs_list_every_setting():
    assert (ROOT / "docs" / "settings.md").read_text() == settings_markdown(), \
        "docs/settings.md is stale: regenerate it with `flask --app app kamusm settings > docs/settings.md`"


def test_every_setting_has_help():
    assert all(len(setting.help) > 10 for setting in SETTINGS)


def test_environment_beats_the_file_which_beats_the_default(tmp_path):
    (tmp_path / "kamusm.toml").write_text('KAMUSM_OTP_TTL = 200\nKAMUSM_CALL_CENTRE = "0312 000 00 00"\n')
    values = load_settings(tmp_path, {"KAMUSM_OTP_TTL": "120"})
    assert values["KAMUSM_OTP_TTL"] == 120
    assert values["KAMUSM_CALL_CENTRE"] == "0312 000 00 00"
    assert values["KAMUSM_SMS_BACKEND"] == "outbox"


@pytest.mark.parametrize(("overrides", "message"), [
    ({"KAMUSM_CAPTCHA": "off", "KAMUSM_DEMO": False}, "only allowed with KAMUSM_DEMO=1"),
    ({"KAMUSM_OTP_TTL": 601}, "KAMUSM_OTP_TTL"),
    ({"KAMUSM_LOCKOUT_THRESHOLD": 11}, "KAMUSM_LOCKOUT_THRESHOLD"),
    ({"KAMUSM_ARGON2_MEMORY_KIB": 4096}, "KAMUSM_ARGON2_MEMORY_KIB"),
    ({"KAMUSM_SMS_BACKEND": "http"}, "KAMUSM_SMS_HTTP_URL"),
    ({"KAMUSM_SESSION_MAX_SECONDS": 13 * 3600}, "12 hours"),
    ({"KAMUSM_DEMO": False, "TESTING": False}, "KAMUSM_SMS_BACKEND=outbox is only allowed with KAMUSM_DEMO=1"),
    ({"KAMUSM_DEMO": False, "TESTING": False, "KAMUSM_SMS_BACKEND": "console"},
     "KAMUSM_MAIL_BACKEND=outbox is only allowed with KAMUSM_DEMO=1"),
    ({"KAMUSM_DEMO": False, "TESTING": False, "KAMUSM_SMS_BACKEND": "http", "KAMUSM_SMS_HTTP_URL": "https://sms.example",
      "KAMUSM_MAIL_BACKEND": "outbox"}, "set KAMUSM_MAIL_BACKEND=smtp"),
])
def test_weak_settings_are_refused(app_config, overrides, message):
    with pytest.raises(ConfigError, match=message):
        create_app({**app_config, **overrides})


def test_a_real_deployment_names_its_backends(app_config):
    app = create_app({**app_config, "KAMUSM_DEMO": False, "TESTING": False, "KAMUSM_SMS_BACKEND": "console",
                      "KAMUSM_MAIL_BACKEND": "smtp"})
    assert app.config["KAMUSM_SMS_BACKEND"] == "console" and not app.testing


def test_the_test_suite_keeps_the_outbox_outside_demo_mode(app_config):
    """tests/conftest.py's TESTING: the non-demo portal's tests read the codes it sends from the outbox."""
    app = create_app({**app_config, "KAMUSM_DEMO": False})
    assert app.testing and app.config["KAMUSM_SMS_BACKEND"] == app.config["KAMUSM_MAIL_BACKEND"] == "outbox"


def test_neither_the_environment_nor_the_file_can_turn_testing_on(tmp_path, monkeypatch):
    instance = tmp_path / "instance"
    instance.mkdir()
    (instance / "kamusm.toml").write_text("TESTING = true\n")
    assert load_settings(instance, {"TESTING": "1"})["TESTING"] is False
    for name in ("TESTING", "FLASK_TESTING"):
        monkeypatch.setenv(name, "1")
    monkeypatch.setenv("KAMUSM_DEMO", "0")
    with pytest.raises(ConfigError, match="KAMUSM_SMS_BACKEND=outbox"):
        create_app({"KAMUSM_INSTANCE": str(instance)})


def test_malformed_value_names_the_setting(tmp_path):
    with pytest.raises(ConfigError, match="KAMUSM_OTP_TTL"):
        load_settings(tmp_path, {"KAMUSM_OTP_TTL": "five minutes"})


def test_captcha_off_works_in_demo(app_config):
    app = create_app({**app_config, "KAMUSM_CAPTCHA": "off"})
    page = app.test_client().get("/login").get_data(as_text=True)
    assert 'name="captcha"' not in page


def test_instance_keys_are_private(app):
    key_file = Path(app.instance_path) / "secret_key"
    assert key_file.stat().st_mode & 0o777 == 0o600


@pytest.mark.sqlite_only  # the SQLite file's mode
def test_database_file_is_private(app):
    assert (Path(app.instance_path) / "kamusm.db").stat().st_mode & 0o777 == 0o600


@pytest.mark.parametrize("public_url", ["imza.example.edu.tr", "ftp://imza.example.edu.tr",
                                        "https://user@imza.example.edu.tr", "https://imza.example.edu.tr/portal",
                                        "https://imza.example.edu.tr/?next=x", "https://"])
def test_a_public_url_that_is_not_one_origin_is_refused(app_config, public_url):
    """Mail links are built on it and passkeys bound to its origin."""
    with pytest.raises(ConfigError, match="KAMUSM_PUBLIC_URL"):
        create_app({**app_config, "KAMUSM_PUBLIC_URL": public_url})


def test_a_public_url_with_a_trailing_slash_is_one_origin(app_config):
    assert create_app({**app_config, "KAMUSM_PUBLIC_URL": "https://imza.example.edu.tr/"})
