"""GET never changes the portal's state (docs/security.md): a prefetch, a crawler or a link in a mail
cannot issue, revoke, send or count anything. Only the session row (the login itself) may be written."""
from __future__ import annotations

import pytest

from kamusm import storage
from tests.conftest import AuthActions, database_snapshot

PAGES = ["/", "/login", "/menu", "/pin-puk", "/certificate", "/profile", "/unlock", "/unlock/state?helper=down",
         "/forgot", "/healthz", "/crl.der", "/demo/phone", "/demo/mail", "/no-such-page"]


@pytest.mark.parametrize("path", PAGES)
def test_a_logged_in_get_writes_nothing(app, client, db, path):
    AuthActions(client, app).login()
    before = database_snapshot(db)  # all but the sessions, where a GET keeps the login going
    assert client.get(path).status_code < 500
    assert database_snapshot(db) == before


def test_the_certificate_page_of_a_card_without_a_certificate_issues_none(app, client, db):
    """Certificates are issued where cards are made (import, demo, init), not when a page shows them."""
    AuthActions(client, app).login()
    holder_id = storage.holders.find_holder(db, "10000000146")["id"]
    assert storage.certificates.cards_without_certificate(db, holder_id)
    assert client.get("/certificate").status_code == 200
    assert storage.certificates.holder_certificates(db, holder_id) == []
    assert storage.certificates.cards_without_certificate(db, holder_id)
