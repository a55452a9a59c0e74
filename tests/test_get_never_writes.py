"""GET never changes the portal's state (docs/security.md): a prefetch, a crawler or a link in a mail
cannot issue, revoke, send or count anything. Only the session row (the login itself) may be written."""
from __future__ import annotations

import pytest

from kamusm import storage
from tests.conftest import AuthActions

PAGES = ["/", "/login", "/menu", "/pin-puk", "/certificate", "/profile", "/unlock", "/unlock/state?helper=down",
         "/forgot", "/healthz", "/crl.der", "/demo/phone", "/demo/mail", "/no-such-page"]


def table_snapshot(db) -> dict[str, list]:
    """Every row of every table but the sessions, where a GET keeps the login (and its CSRF token) going."""
    tables = [row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'").fetchall()]
    return {table: db.execute(f'SELECT * FROM "{table}"').fetchall()  # noqa: S608 - names from sqlite_master
            for table in tables if table != "sessions" and not table.startswith("sqlite_")}


@pytest.mark.parametrize("path", PAGES)
def test_a_logged_in_get_writes_nothing(app, client, db, path):
    AuthActions(client, app).login()
    before = table_snapshot(db)
    assert client.get(path).status_code < 500
    assert table_snapshot(db) == before


def test_the_certificate_page_of_a_card_without_a_certificate_issues_none(app, client, db):
    """Certificates are issued where cards are made (import, demo, init), not when a page shows them."""
    AuthActions(client, app).login()
    holder_id = storage.holders.find_holder(db, "10000000146")["id"]
    assert storage.certificates.cards_without_certificate(db, holder_id)
    assert client.get("/certificate").status_code == 200
    assert storage.certificates.holder_certificates(db, holder_id) == []
    assert storage.certificates.cards_without_certificate(db, holder_id)
