"""Hostile input against the local card helper's HTTP API (sim backend, the right Origin and Host).

Hypothesis generates the requests: JSON bodies with wrong types (numbers, lists, nested objects, null,
booleans where strings belong), non-ASCII digits as PINs, NUL bytes, huge strings, extra and missing
fields; raw bodies that are invalid UTF-8 or invalid JSON; wrong Content-Types; hostile paths and
Origins. The properties, for every request:
- the answer is JSON {error, message[, tries_left]} with `error` from DESIGN.md's list and a 4xx
  status; a malformed body is `bad_request`. Never a 5xx, never a dropped connection (http.client
  raises if the helper closes without answering);
- the sim card's PIN and PUK counters, read through GET /v1/card before and after, are never spent
  by a malformed request. Every generated body is malformed somewhere (a well-formed but wrong PIN
  may sit in one field, so a helper that touched the card anyway would show in the counters).
"""
from __future__ import annotations

import json
import re
import socket
from base64 import urlsafe_b64encode
from urllib.parse import quote

import pytest
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from hypothesis import example, given
from hypothesis import strategies as st

from kamusm.card.reader import SimBackend
from kamusm.card.sim import SimCard
from kamusm.helper.service import MAX_BODY_BYTES, MAX_DRAIN_BYTES
from kamusm.sealing import public_key_bytes
from tests.hostile_settings import hostile
from tests.test_helper_api import ORIGIN, PIN, PUK, REQUEST_TIMEOUT_SECONDS, SERIAL, HelperClient, running_helper

DESIGN_ERRORS = {"no_reader", "no_card", "card_removed", "wrong_pin", "wrong_puk", "pin_blocked", "puk_blocked",
                 "bad_request", "forbidden_origin", "busy", "pcsc_unavailable"}
PIN_MIN, PIN_MAX, PUK_DIGITS = 4, 8, 8  # kamusm.card.profile.DEFAULT_PROFILE
WRONG_PINS = ["246802", "0000", "13579135", "999999"]
WRONG_PUKS = ["11111111", "00000000"]
ENDPOINTS = {  # path -> the string fields it requires
    "/v1/pin/verify": ("pin",),
    "/v1/pin/change": ("old_pin", "new_pin"),
    "/v1/pin/unblock": ("puk", "new_pin"),
    "/v1/pin/unblock#sealed": ("sealed_puk", "new_pin"),
}

HOSTILE = hostile(60)
FEW = hostile(15)


@pytest.fixture
def card() -> SimCard:
    return SimCard(SERIAL, PIN, PUK)


@pytest.fixture
def helper(card, tmp_path) -> HelperClient:
    with running_helper(SimBackend(card), tmp_path / "helper-home") as (_, client):
        yield client


def _wellformed(kind: str, value: str) -> bool:
    digits = value.isascii() and value.isdigit()
    if kind == "puk":
        return digits and len(value) == PUK_DIGITS
    return digits and PIN_MIN <= len(value) <= PIN_MAX


json_scalars = st.one_of(st.none(), st.booleans(), st.integers(), st.integers(-2**70, 2**70),
                         st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=12))
json_values = st.recursive(json_scalars, lambda children: st.one_of(
    st.lists(children, max_size=3), st.dictionaries(st.text(max_size=6), children, max_size=3)), max_leaves=8)
wrong_type = json_values.filter(lambda value: not isinstance(value, str))

hostile_strings = st.one_of(
    st.sampled_from(["", " ", "\x00", "482916\x00", "\x00482916", "48291\x006", "٤٨٢٩١٦", "４８２９１６", "𝟒𝟖𝟐𝟗𝟏𝟔",
                     "४८२९१६", "۴۸۲۹۱۶", "¹²³⁴⁵⁶", "482 916", " 482916", "482916\n", "+482916", "-48291", "4829.16",
                     "1e5", "NaN", "0x1234", "48a916", "123", "123456789", "7391028", "739102840", "٧٣٩١٠٢٨٤",
                     "{{7*7}}", "<script>alert(1)</script>", "'; DROP TABLE x; --", "null", "[]", "{}",
                     "\\u0000", "%00", "\ufeff482916", "482916\u200b", "\u202e482916"]),
    st.text(max_size=24),
    st.text(st.characters(categories=["Nd"]), min_size=PIN_MIN, max_size=PUK_DIGITS),
    st.text(st.characters(categories=["Cc"]), min_size=1, max_size=12),
    st.integers(100, 3_000).map(lambda n: "1" * n),  # a body still under the 4 KiB limit
    st.integers(MAX_BODY_BYTES, 30_000).map(lambda n: "4" * n),  # over it; two of them stay under the 64 KiB drain
)


def malformed(kind: str) -> st.SearchStrategy[str]:
    if kind == "seal":
        return st.one_of(hostile_strings, fake_seals)
    return hostile_strings.filter(lambda value: not _wellformed(kind, value))


def wellformed_wrong(kind: str) -> st.SearchStrategy[str]:
    if kind == "seal":
        return fake_seals  # no generated seal opens: every one is malformed for the helper
    return st.sampled_from(WRONG_PUKS if kind == "puk" else WRONG_PINS)


def _b64(raw: bytes) -> str:
    return urlsafe_b64encode(raw).rstrip(b"=").decode()


# Real X25519 public keys (never a low-order point: that case has its own test below).
_public_keys = st.binary(min_size=32, max_size=32).map(
    lambda raw: _b64(public_key_bytes(X25519PrivateKey.from_private_bytes(raw))))
fake_seals = st.builds(
    lambda version, epk, nonce, ct, extra: json.dumps({"v": version, "epk": epk, "nonce": nonce, "ct": ct, **extra}),
    st.one_of(st.just(1), json_values),
    st.one_of(_public_keys, st.binary(max_size=40).map(_b64), json_values),
    st.one_of(st.binary(min_size=12, max_size=12).map(_b64), st.binary(max_size=20).map(_b64), json_values),
    st.one_of(st.binary(max_size=80).map(_b64), json_values),
    st.dictionaries(st.text(max_size=5), json_values, max_size=2),
)


def _kind(field: str) -> str:
    return {"puk": "puk", "sealed_puk": "seal"}.get(field, "pin")


@st.composite
def malformed_bodies(draw, endpoint: str) -> dict:
    """A JSON object for the endpoint with at least one thing wrong: a field missing, of the wrong type or
    malformed, an extra field, or confirm_last_try not a boolean."""
    fields = ENDPOINTS[endpoint]
    body: dict = {}
    broken = False
    for field in fields:
        shape = draw(st.sampled_from(["missing", "wrong_type", "malformed", "wellformed"]))
        if shape == "missing":
            broken = True
        elif shape == "wrong_type":
            body[field], broken = draw(wrong_type), True
        elif shape == "malformed":
            body[field], broken = draw(malformed(_kind(field))), True
        else:
            body[field] = draw(wellformed_wrong(_kind(field)))
            broken = broken or _kind(field) == "seal"
    confirm = draw(st.sampled_from(["absent", "bool", "wrong_type"]))
    if confirm == "bool":
        body["confirm_last_try"] = draw(st.booleans())
    elif confirm == "wrong_type":
        body["confirm_last_try"], broken = draw(json_values.filter(lambda value: not isinstance(value, bool))), True
    allowed = {*fields, "confirm_last_try"}
    extras = draw(st.dictionaries(st.one_of(st.text(max_size=12), st.sampled_from(["puk", "sealed_puk", "PIN", "pin "])
                                            ).filter(lambda key: key not in allowed), json_values, max_size=3))
    body.update(extras)
    broken = broken or bool(extras)
    if not broken:  # everything was well formed: break one field
        field = draw(st.sampled_from(fields))
        body[field] = draw(st.one_of(wrong_type, malformed(_kind(field))))
    return body


def counters(helper: HelperClient) -> tuple[int, int]:
    answer = helper.get("/v1/card")
    assert answer.status == 200, answer.json
    return answer.json["pin_tries_left"], answer.json["puk_tries_left"]


def check_refused(answer, sent, *, error: str | None = "bad_request") -> None:
    where = f"-> {answer.status} {answer.json}; sent {_short(sent)}"
    assert 400 <= answer.status < 500, f"not a 4xx: {where}"
    assert answer.headers.get("Content-Type") == "application/json", f"not JSON: {where}"
    assert isinstance(answer.json, dict) and answer.json.get("error") in DESIGN_ERRORS, f"unknown error: {where}"
    assert isinstance(answer.json.get("message"), str) and answer.json["message"], f"no message: {where}"
    assert set(answer.json) <= {"error", "message", "tries_left"}, where
    if error is not None:
        assert answer.json["error"] == error, where


def _short(value) -> str:
    text = repr(value)
    return text if len(text) < 300 else text[:300] + f"... ({len(text)} chars)"


def post_and_check(helper: HelperClient, path: str, raw: bytes, content_type: str | None = "application/json",
                   *, error: str | None = "bad_request", **options) -> None:
    before = counters(helper)
    assert before == (3, 3)
    answer = helper.request("POST", path, raw=raw, content_type=content_type, **options)
    check_refused(answer, raw, error=error)
    assert counters(helper) == before, f"a malformed request spent a try: {_short(raw)}"


@pytest.mark.parametrize("endpoint", list(ENDPOINTS))
@HOSTILE
@given(data=st.data())
def test_malformed_json_bodies_are_bad_request_and_spend_no_try(helper, endpoint, data):
    body = data.draw(malformed_bodies(endpoint), label="body")
    raw = json.dumps(body, ensure_ascii=data.draw(st.booleans(), label="ensure_ascii")).encode()
    post_and_check(helper, endpoint.partition("#")[0], raw)


@pytest.mark.parametrize(("path", "body"), [
    ("/v1/pin/verify", {"pin": 482916}),
    ("/v1/pin/verify", {"pin": ["482916"]}),
    ("/v1/pin/verify", {"pin": {"pin": "482916"}}),
    ("/v1/pin/verify", {"pin": None}),
    ("/v1/pin/verify", {"pin": True}),
    ("/v1/pin/verify", {"pin": "٤٨٢٩١٦"}),
    ("/v1/pin/verify", {"pin": "４８２９１６"}),
    ("/v1/pin/verify", {"pin": "482916\x00"}),
    ("/v1/pin/verify", {"pin": "246802", "confirm_last_try": "true"}),
    ("/v1/pin/verify", {"pin": "246802", "confirm_last_try": 1}),
    ("/v1/pin/verify", {"pin": "246802", "extra": None}),
    ("/v1/pin/change", {"old_pin": "246802", "new_pin": "١٣٥٧٩٠"}),
    ("/v1/pin/change", {"old_pin": "246802", "new_pin": 135790}),
    ("/v1/pin/change", {"old_pin": "246802"}),
    ("/v1/pin/unblock", {"puk": "11111111", "new_pin": "13579\x000"}),
    ("/v1/pin/unblock", {"puk": "١١١١١١١١", "new_pin": "135790"}),
    ("/v1/pin/unblock", {"puk": 11111111, "new_pin": "135790"}),
    ("/v1/pin/unblock", {"puk": "11111111", "sealed_puk": "x", "new_pin": "135790"}),
    ("/v1/pin/unblock", {"sealed_puk": None, "new_pin": "135790"}),
    ("/v1/pin/unblock", {"sealed_puk": {"v": 1}, "new_pin": "135790"}),
    ("/v1/pin/unblock", {"sealed_puk": "{\"v\": 1}", "new_pin": "135790"}),
    ("/v1/pin/unblock", {"sealed_puk": "x" * 3000, "new_pin": "135790"}),
    ("/v1/pin/verify", {"pin": "4" * 60_000}),
])
def test_named_wrong_types_and_unicode_digits(helper, path, body):
    post_and_check(helper, path, json.dumps(body, ensure_ascii=False).encode())


def _could_reach_the_card(path: str, raw: bytes) -> bool:
    """True for the (vanishingly rare) raw body that is a well-formed request: it may spend a real try."""
    try:
        body = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        return False
    if not isinstance(body, dict):
        return False
    if path == "/v1/pin/unblock" and "sealed_puk" in body:
        return False  # no generated seal opens
    fields = ENDPOINTS[path]
    return (body.keys() <= {*fields, "confirm_last_try"} and isinstance(body.get("confirm_last_try", False), bool)
            and all(isinstance(body.get(field), str) and _wellformed(_kind(field), body[field]) for field in fields))


raw_bodies = st.one_of(
    st.binary(max_size=600),
    st.sampled_from([b"\xff\xfe{}", b"{\"pin\": \"\xff\"}", b"{\"pin\": \"482916\"", b"{pin: '482916'}",
                     b"{\"pin\": \"\xd9\xa4\"}\x00", b"\xef\xbb\xbf{\"pin\": 1}", b"\xc0\xaf", b"\xed\xa0\x80",
                     b"{\"pin\": \"\\ud800\"}", b"[" * 5_000 + b"]" * 5_000, b"{\"a\":" * 1_500 + b"1" + b"}" * 1_500,
                     b"1" * 5_000, b'{"pin": 1' + b"0" * 4_000 + b"}", b"NaN", b"null", b"\"482916\"", b"",
                     b" " * 60_000]),
    st.text(max_size=200).map(lambda text: text.encode("utf-8")),
    st.binary(min_size=MAX_BODY_BYTES + 1, max_size=MAX_BODY_BYTES + 200),
)
content_types = st.one_of(
    st.sampled_from([None, "application/json", "text/plain", "application/x-www-form-urlencoded",
                     "multipart/form-data; boundary=x", "text/json", "application/jsonp", "application/json-patch+json",
                     "application/json; charset=latin-1", "APPLICATION/JSON", "application/json;;", "*/*", ""]),
    st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=40),
)


@HOSTILE
@given(raw=raw_bodies, content_type=content_types, path=st.sampled_from(sorted({p.partition("#")[0]
                                                                               for p in ENDPOINTS})))
@example(raw=b"\xff\xfe\x00", content_type="application/json", path="/v1/pin/verify")
@example(raw=b'{"pin": "246802"}', content_type="text/plain", path="/v1/pin/verify")
@example(raw=b"{\"new_pin\": \"135790\", \"sealed_puk\": \"\xff\"}", content_type="application/json",
         path="/v1/pin/unblock")
def test_raw_bodies_and_content_types(helper, raw, content_type, path):
    json_type = content_type is not None and content_type.split(";")[0].strip().lower() == "application/json"
    if json_type and _could_reach_the_card(path, raw):
        return
    post_and_check(helper, path, raw, content_type)


@FEW
@given(length=st.integers(MAX_DRAIN_BYTES // 2, MAX_DRAIN_BYTES))
def test_bodies_up_to_the_drain_limit_are_answered(helper, length):
    post_and_check(helper, "/v1/pin/verify", b"{\"pin\": \"" + b"1" * (length - 11) + b"\"}")


def raw_exchange(port: int, raw: bytes) -> tuple[int, dict]:
    """Send raw bytes, close our sending side, read the first answer; fail if the helper just hangs up."""
    with socket.create_connection(("127.0.0.1", port), timeout=REQUEST_TIMEOUT_SECONDS) as connection:
        connection.sendall(raw)
        connection.shutdown(socket.SHUT_WR)
        data = b""
        while chunk := connection.recv(65536):
            data += chunk
    assert data, f"the connection was closed without an answer: {_short(raw)}"
    head, _, rest = data.partition(b"\r\n\r\n")
    assert re.match(rb"HTTP/1\.[01] \d{3} ", head), f"not an HTTP answer: {_short(data)}"
    length = int(re.search(rb"\r\nContent-Length: (\d+)", head).group(1))
    assert re.search(rb"\r\nContent-Type: application/json\r\n", head + b"\r\n"), _short(head)
    return int(head.split(b" ")[1]), json.loads(rest[:length])


BODY = b'{"pin": 246802}'  # wrong type: every prefix of it, and all of it, is a bad request


@HOSTILE
@given(lengths=st.lists(st.one_of(st.integers(0, len(BODY) + 20).map(str), st.sampled_from(
    ["-1", "+2", " 2", "2 ", "２", "٢", "0x10", "1e3", "", "1.5", "99999999999999999999999", "4097", "\u0000"])),
    min_size=0, max_size=2), chunked=st.booleans(), body=st.sampled_from([BODY, BODY[:5], b"", b"\xff" * 10]))
@example(lengths=["99999999999999999999999"], chunked=False, body=BODY)
@example(lengths=["2", "2"], chunked=False, body=BODY)
@example(lengths=[], chunked=True, body=b"2\r\n{}\r\n0\r\n\r\n")
def test_hostile_content_length_and_chunking(helper, lengths, chunked, body):
    head = [b"POST /v1/pin/verify HTTP/1.1", b"Host: 127.0.0.1:%d" % helper.port, b"Origin: " + ORIGIN.encode(),
            b"Content-Type: application/json"]
    head += [b"Content-Length: " + value.encode("utf-8") for value in lengths]
    if chunked:
        head.append(b"Transfer-Encoding: chunked")
    assert counters(helper) == (3, 3)
    status, answer = raw_exchange(helper.port, b"\r\n".join(head) + b"\r\n\r\n" + body)
    assert status == 400 and answer["error"] == "bad_request" and answer["message"], (status, answer)
    assert counters(helper) == (3, 3)


@HOSTILE
@given(segment=st.one_of(st.text(max_size=40), st.sampled_from(["..", "%00", "pin/verify/", "PIN/VERIFY", "card/",
                                                                  "status?x=1", "<script>"])),
       method=st.sampled_from(["GET", "POST"]))
def test_unknown_paths_answer_json(helper, segment, method):
    path = "/v1/" + quote(segment, safe="")
    if path in {"/v1/status", "/v1/card"}:
        return
    answer = helper.request(method, path, raw=b"{}" if method == "POST" else None)
    check_refused(answer, path, error="bad_request")
    assert answer.status in (404, 405)
    assert counters(helper) == (3, 3)


@HOSTILE
@given(origin=st.one_of(
    st.text(st.characters(min_codepoint=0x21, max_codepoint=0xFF, exclude_characters="\x7f"), max_size=60),
    st.sampled_from(["null", "*", ORIGIN.upper(), ORIGIN + ":443", ORIGIN + ".evil.example", "http://portal.example",
                     "https://portal.example\x00", "https://evil.example", ORIGIN + "//", ORIGIN + "/x"])),
    path=st.sampled_from(["/v1/status", "/v1/card", "/v1/pin/verify"]))
def test_foreign_origins_are_refused_with_json(helper, origin, path):
    if origin.removesuffix("/") == ORIGIN:
        return
    method = "POST" if path.startswith("/v1/pin") else "GET"
    answer = helper.request(method, path, {"pin": PIN} if method == "POST" else None, origin=origin)
    check_refused(answer, origin, error="forbidden_origin")
    assert answer.status == 403
    assert counters(helper) == (3, 3)


@FEW
@given(epk=st.binary(min_size=32, max_size=32), nonce=st.binary(min_size=12, max_size=12), ct=st.binary(max_size=64))
@example(epk=bytes(32), nonce=bytes(12), ct=b"")
def test_a_seal_with_any_32_byte_epk_is_bad_request(helper, epk, nonce, ct):
    sealed = json.dumps({"v": 1, "epk": _b64(epk), "nonce": _b64(nonce), "ct": _b64(ct)})
    post_and_check(helper, "/v1/pin/unblock", json.dumps({"sealed_puk": sealed, "new_pin": "135790"}).encode())
