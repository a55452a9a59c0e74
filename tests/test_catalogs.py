"""A clone without compiled catalogs still speaks English: the app compiles them at start, refuses to
start when it cannot, and /healthz says when a catalog is missing."""
from __future__ import annotations

import os
import shutil

import pytest

from kamusm import catalogs
from kamusm.errors import ConfigError
from kamusm.web.factory import create_app


@pytest.fixture
def uncompiled(tmp_path):
    """A copy of the catalogs as a fresh clone has them: the .po files, no .mo."""
    directory = tmp_path / "translations"
    shutil.copytree(catalogs.TRANSLATIONS_DIR, directory, ignore=shutil.ignore_patterns("*.mo"))
    return directory


def test_a_clone_without_compiled_catalogs_serves_english(app_config, uncompiled):
    client = create_app({**app_config, "BABEL_TRANSLATION_DIRECTORIES": str(uncompiled)}).test_client()
    page = client.get("/login?lang=en").get_data(as_text=True)
    assert '<html lang="en"' in page and "Password login" in page and "Şifreli Giriş Ekranı" not in page
    assert (uncompiled / "en" / "LC_MESSAGES" / "messages.mo").is_file()
    assert client.get("/healthz").json["translations"] == "ok"


def test_a_catalog_edited_after_its_compile_is_compiled_again(uncompiled):
    assert catalogs.compile_stale_catalogs(("tr", "en"), uncompiled) == ["tr", "en"]
    assert catalogs.compile_stale_catalogs(("tr", "en"), uncompiled) == []
    po = uncompiled / "en" / "LC_MESSAGES" / "messages.po"
    mo = uncompiled / "en" / "LC_MESSAGES" / "messages.mo"
    stamp = mo.stat().st_mtime
    os.utime(po, (stamp + 10, stamp + 10))
    assert catalogs.stale_catalogs(("tr", "en"), uncompiled) == ["en"]
    assert catalogs.compile_stale_catalogs(("tr", "en"), uncompiled) == ["en"]


def test_the_portal_refuses_to_start_when_it_cannot_compile(app_config, uncompiled):
    (uncompiled / "en" / "LC_MESSAGES" / "messages.mo").mkdir()  # where the file must go, a folder: unwritable
    with pytest.raises(ConfigError, match="cannot compile the en catalog"):
        create_app({**app_config, "BABEL_TRANSLATION_DIRECTORIES": str(uncompiled)})


def test_a_missing_po_stops_the_start(app_config, uncompiled):
    (uncompiled / "en" / "LC_MESSAGES" / "messages.po").unlink()
    with pytest.raises(ConfigError, match="the en catalog is missing"):
        create_app({**app_config, "BABEL_TRANSLATION_DIRECTORIES": str(uncompiled)})


def test_healthz_reports_a_catalog_that_went_missing(app_config, uncompiled):
    client = create_app({**app_config, "BABEL_TRANSLATION_DIRECTORIES": str(uncompiled)}).test_client()
    (uncompiled / "en" / "LC_MESSAGES" / "messages.mo").unlink()
    response = client.get("/healthz")
    assert response.status_code == 503
    assert response.json["status"] == "error" and response.json["translations"] == ["en: not compiled"]
