"""Every console route against every role: what a role may not do is a 403 (audited), and what it may do
is not refused. A route added without a row here fails test_every_console_route_is_in_the_table."""
from __future__ import annotations

import pytest

from kamusm import operators, storage
from tests.conftest import SELIN, audit_events, id_of, open_db, post
from tests.test_admin import enrol

# (method, path, permission it needs); {holder} is Selin's id.
ROUTES = [
    ("GET", "/admin", operators.READ),
    ("GET", "/admin/holders", operators.READ),
    ("GET", "/admin/holders/{holder}", operators.READ),
    ("GET", "/admin/audit", operators.READ),
    ("GET", "/admin/audit.csv", operators.READ),
    ("POST", "/admin/audit/verify", operators.READ),
    ("GET", "/admin/mail", operators.READ),
    ("POST", "/admin/mail/retry", operators.MANAGE_HOLDERS),
    ("POST", "/admin/holders/{holder}/lock", operators.MANAGE_HOLDERS),
    ("POST", "/admin/holders/{holder}/unlock", operators.MANAGE_HOLDERS),
    ("POST", "/admin/holders/{holder}/link", operators.MANAGE_HOLDERS),
    ("POST", "/admin/holders/{holder}/suspend", operators.MANAGE_HOLDERS),
    ("GET", "/admin/import", operators.MANAGE_HOLDERS),
    ("POST", "/admin/import", operators.MANAGE_HOLDERS),
    ("GET", "/admin/import/AAAAAAAAAAAAAAAAAAAAAA", operators.MANAGE_HOLDERS),
    ("POST", "/admin/import/AAAAAAAAAAAAAAAAAAAAAA", operators.MANAGE_HOLDERS),
    ("GET", "/admin/operators", operators.MANAGE_OPERATORS),
    ("POST", "/admin/operators", operators.MANAGE_OPERATORS),
    ("POST", "/admin/operators/999", operators.MANAGE_OPERATORS),
    ("GET", "/admin/vault", operators.MANAGE_OPERATORS),
    ("GET", "/admin/vault/AAAAAAAAAAAAAAAAAAAAAA", operators.MANAGE_OPERATORS),
    ("GET", "/admin/renewals", operators.READ),
    ("GET", "/admin/renewals.csv", operators.READ),
    ("POST", "/admin/renewals/998/done", operators.MANAGE_HOLDERS),
]
# Not behind a role: the way in and out.
OPEN_ROUTES = {"/admin/login", "/admin/logout", "/admin/enrol/<token>"}
# Left out of the matrix on purpose: it starts a real rotation (tests/test_admin_jobs.py covers both sides).
ROTATE = "/admin/vault/rotate"


def test_every_console_route_is_in_the_table(app):
    routes = {rule.rule for rule in app.url_map.iter_rules() if rule.rule.startswith("/admin")}
    listed = {path.replace("{holder}", "<rowid:holder_id>").replace("AAAAAAAAAAAAAAAAAAAAAA", "<job>")
              .replace("/999", "/<rowid:operator_id>").replace("/998/", "/<rowid:request_id>/")
              for _, path, _ in ROUTES}
    assert routes - listed - OPEN_ROUTES == {ROTATE}


@pytest.mark.parametrize("role", operators.ROLES)
def test_each_role_gets_403_exactly_where_its_permissions_end(app, client, clock, role):
    operator = enrol(app, client, clock, f"rol.{role}", role)
    assert operator.log_in().status_code == 303
    with open_db(app) as db:
        holder_id = id_of(db)
    for method, path, permission in ROUTES:
        url = path.format(holder=holder_id)
        response = client.get(url) if method == "GET" else post(client, url, token_page="/admin")
        if operators.may(role, permission):
            assert response.status_code != 403, (role, method, url)
        else:
            assert response.status_code == 403, (role, method, url, response.status_code)
    with open_db(app) as db:
        refused = audit_events(db, "operator.forbidden")
        holder = storage.holders.get_holder(db, holder_id)
    assert len(refused) == sum(1 for *_, permission in ROUTES if not operators.may(role, permission))
    assert holder["identity"] == SELIN["identity"]
