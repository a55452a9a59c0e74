"""Every kamusm screen through axe-core and a keyboard, in Turkish and English, at a desktop's and a phone's width.

Each test walks one part of the portal the way a holder does and, on every screen it reaches:
- runs axe-core (tests/browser/vendor/axe.min.js, pinned; see the README there) with the WCAG 2.0,
  2.1 and 2.2 A and AA rules, at 1280x800 and at 390x844, and expects no violation;
- at 390 px expects no horizontal scroll (the page is no wider than the viewport);
- from the top of the page presses Tab until the screen's main action has the focus, and expects every
  element focused on the way to show an outline whose colour has at least 3:1 contrast (WCAG 1.4.11)
  against what is painted around it;
- where the screen shows a field error, expects the field to be aria-invalid and described by that error.

The last test expects the PIN/PUK delete box and the revoke form's reason and box to carry their own
errors too (the views pass them as field errors).

Problems are collected over the whole walk and reported together, screen by screen, so one run shows
everything that is wrong. The page keeps the portal's CSP: axe is served to the page from the portal's
own origin by a Playwright route (add_script_tag(path=...) would inline it, which `default-src 'self'`
rightly refuses), so the CSP stays on and a violation still fails the test.
"""
from __future__ import annotations

import re
from pathlib import Path

import pytest
from pages import (
    LANGUAGES,
    HelperConsole,
    closed_port,
    fill_login,
    log_in_then_switch_language,
    polls_held,
    running_helper,
    url_path,
    wait_for_captcha,
    with_lang,
)
from playwright.sync_api import expect

from kamusm import certificates, reset, storage
from kamusm.demo import DEMO_HOLDERS
from kamusm.helper import make_backend
from kamusm.helper.dist import wheel_filename
from kamusm.web.stepup import RECENT_CODE_SECONDS

pytestmark = pytest.mark.browser

SELIN = DEMO_HOLDERS[0]
# Long enough to overflow a phone's width unless the page lets it wrap.
LONG_EMAIL = "selin.yilmaz.bilgiislemdairebaskanligi@kamusertifikasyonmerkezi.demo.edu.tr"
NEW_WORD = "mavi-gokyuzu-kumsal"
NEW_EMAIL = "selin.yeni@demo.edu.tr"


@pytest.fixture
def demo_certificates(live_server, db) -> None:
    """The demo CA and the demo holders' certificates (`kamusm demo`), as on the demo portal."""
    certificates.issue_demo_certificates(db, Path(live_server.app.instance_path), "", live_server.clock())


@pytest.fixture
def helper_wheel(live_server) -> None:
    """A wheel in the helper's dist folder, as make helper-dist leaves one, so /unlock shows the commands."""
    dist = Path(live_server.app.config["KAMUSM_HELPER_DIST_DIR"])
    dist.mkdir(parents=True, exist_ok=True)
    (dist / wheel_filename()).write_bytes(b"the helper wheel")


def mailed_link(page, live_server, recipient: str, path: str) -> str:
    """The `path`<token> link of the mail to `recipient`, read in the demo mailbox (which polls until it comes)."""
    page.goto(live_server("/demo/mail"))
    body = page.locator("#demo_mail_messages li", has_text=recipient).first.locator("pre")
    expect(body).to_contain_text(path)
    return re.search(rf"{re.escape(path)}[A-Za-z0-9_-]+", body.inner_text()).group(0)


def submit_wrong_code(page, live_server, button: str) -> None:
    sent = live_server.latest_sms_code()
    page.locator("#code").fill("000000" if sent != "000000" else "111111")
    page.locator(button).click()
    expect(page.locator("#code")).to_have_attribute("aria-invalid", "true")


@LANGUAGES
def test_screens_without_login(lang, tour, page, live_server, db):
    page.goto(live_server(with_lang("/forgot", lang)))
    send = "#forgot_form button[type=submit]"
    tour.check("forgot", send)
    page.locator(send).click()
    expect(page.locator("#identity")).to_have_attribute("aria-invalid", "true")
    tour.check("forgot, empty", send)
    tour.field_error("forgot, empty", "#identity")
    page.locator("#identity").fill(SELIN["identity"])
    page.locator(send).click()
    expect(page.locator("#forgot_sent")).to_be_visible()
    tour.check("forgot, sent")

    holder = storage.holders.find_holder(db, SELIN["identity"])
    token = reset.issue_link_token(db, holder["id"], reset.PURPOSE_RESET, live_server.clock())
    page.goto(live_server(f"/reset/{token}"))
    save = "#reset_form button[type=submit]"
    tour.check("reset form", save)
    page.locator("#security_word").fill("kisa")
    page.locator(save).click()
    expect(page.locator("#security_word")).to_have_attribute("aria-invalid", "true")
    tour.check("reset form, too short", save)
    tour.field_error("reset form, too short", "#security_word")
    page.locator("#security_word").fill(NEW_WORD)
    page.locator("#security_word_confirm").fill(NEW_WORD)
    page.locator(save).click()
    expect(page.locator("#reset_done")).to_be_visible()
    tour.check("reset done")

    for path, screen in (("/reset/not-a-token", "#reset_invalid"),
                         ("/profile/email/not-a-token", "#profile_email_invalid"),
                         ("/no-such-page", "#error_message")):
        page.goto(live_server(path))
        expect(page.locator(screen)).to_be_visible()
        tour.check(path)

    for path, screen in (("/demo/phone", "#demo_phone_messages"), ("/demo/mail", "#demo_mail_messages")):
        page.goto(live_server(path))
        expect(page.locator(screen)).to_be_visible()
        with polls_held(page, live_server(path)):  # so axe does not read a list that htmx swaps away
            tour.check(path)
    tour.assert_clean()


@LANGUAGES
def test_login_screens(lang, tour, page, live_server):
    page.goto(live_server(with_lang("/login", lang)))
    wait_for_captcha(page)
    log_in_button = "#login_form button[type=submit]"
    tour.check("login form", log_in_button)

    page.locator(log_in_button).click()  # nothing typed
    expect(page.locator("#identity")).to_have_attribute("aria-invalid", "true")
    wait_for_captcha(page)
    tour.check("login form, empty", log_in_button)
    for name in ("identity", "captcha", "security_word"):
        tour.field_error("login form, empty", f"#{name}")

    fill_login(page, "yanlis-sozcuk-77")
    page.locator(log_in_button).click()
    expect(page.locator("#login_form .alert-error")).to_be_visible()
    wait_for_captcha(page)
    tour.check("login form, wrong word", log_in_button)

    fill_login(page, SELIN["security_word"])
    page.locator(log_in_button).click()
    page.wait_for_url(url_path("/login/sms"))
    tour.check("login sms", "#login_sms_confirm button[type=submit]")

    page.locator("#login_sms_confirm button[type=submit]").click()
    page.wait_for_url(url_path("/login/code"))
    send = "#login_code_form form[action='/login/code'] button[type=submit]"
    tour.check("login code", send)
    submit_wrong_code(page, live_server, send)
    tour.check("login code, wrong", send)
    tour.field_error("login code, wrong", "#code")

    live_server.clock.advance(live_server.app.config["KAMUSM_OTP_TTL"] + 1)
    page.reload()
    resend = "#login_code_expired .resend button[type=submit]"
    expect(page.locator(resend)).to_be_visible()
    tour.check("login code, expired", resend)
    page.locator(resend).click()
    expect(page.locator(send)).to_be_visible()

    page.locator("#code").fill(live_server.latest_sms_code())
    page.locator(send).click()
    page.wait_for_url(url_path("/menu"))
    tour.check("menu", "#menu_operations .operations a")
    tour.assert_clean()


@LANGUAGES
def test_screens_after_login(lang, tour, page, live_server, db, demo_certificates):
    holder = storage.holders.find_holder(db, SELIN["identity"])
    storage.holders.set_contact(db, holder["id"], "email", LONG_EMAIL)
    log_in_then_switch_language(page, live_server, lang)  # the login code counts as a fresh step-up for five minutes

    page.goto(live_server("/pin-puk"))
    reveal = "#pin_puk_masked form[action='/pin-puk/reveal'] button"
    tour.check("pin-puk masked", reveal)
    delete = "#pin_puk_masked .delete-form button[type=submit]"
    page.locator(delete).click()  # the box not ticked
    expect(page.locator("#pin_puk_masked .alert-error")).to_be_visible()
    tour.check("pin-puk delete, not confirmed", delete)
    page.locator(reveal).click()
    expect(page.locator("#pin_puk_revealed")).to_be_visible()
    tour.check("pin-puk revealed", "#pin_puk_revealed form[action='/pin-puk/save'] button")

    page.goto(live_server("/profile"))
    change_email = "#profile_view form:has(#email) button[type=submit]"
    tour.check("profile", change_email)
    page.locator("#email").fill("not-an-address")
    page.locator(change_email).click()
    expect(page.locator("#email")).to_have_attribute("aria-invalid", "true")
    tour.check("profile, bad e-mail", change_email)
    tour.field_error("profile, bad e-mail", "#email")
    page.locator("#email").fill(NEW_EMAIL)
    page.locator(change_email).click()
    expect(page.locator("#profile_view .alert-info")).to_be_visible()
    tour.check("profile, link sent", change_email)
    page.goto(live_server(mailed_link(page, live_server, NEW_EMAIL, "/profile/email/")))
    confirm = "#profile_email_confirm button[type=submit]"
    tour.check("profile e-mail link", confirm)
    page.locator(confirm).click()
    expect(page.locator("#profile_email_confirmed")).to_be_visible()
    tour.check("profile e-mail confirmed")

    page.goto(live_server("/certificate"))
    revoke = "#certificate_list form[data-action=revoke] button[type=submit]"
    tour.check("certificate list", "#certificate_list form[data-action=suspend] button")
    page.locator(revoke).click()  # no reason chosen
    expect(page.locator("#certificate_list .alert-error")).to_be_visible()
    tour.check("certificate revoke, no reason", revoke)

    live_server.clock.advance(RECENT_CODE_SECONDS + 1)  # from here on every change asks for a new code
    page.locator("#certificate_list form[data-action=suspend] button").click()
    send = "#certificate_stepup button[type=submit]"
    expect(page.locator(send)).to_be_visible()
    tour.check("certificate stepup", send)
    submit_wrong_code(page, live_server, send)
    tour.check("certificate stepup, wrong code", send)
    tour.field_error("certificate stepup, wrong code", "#code")

    page.goto(live_server("/pin-puk"))
    page.locator(reveal).click()
    send = "#pin_puk_stepup button[type=submit]"
    expect(page.locator(send)).to_be_visible()
    tour.check("pin-puk stepup", send)
    submit_wrong_code(page, live_server, send)
    tour.check("pin-puk stepup, wrong code", send)
    tour.field_error("pin-puk stepup, wrong code", "#code")

    page.goto(live_server("/profile"))
    page.locator("#phone").fill("0543 999 88 77")
    page.locator("#profile_view form:has(#phone) button[type=submit]").click()
    send = "#profile_code button[type=submit]"
    expect(page.locator(send)).to_be_visible()
    tour.check("profile code", send)
    page.locator("#code").fill("000000" if live_server.latest_sms_code() != "000000" else "111111")
    page.locator(send).click()
    # The step-up's code is now wrong for the third time (certificate, PIN/PUK, here) and dead: the screen
    # says so and offers a new one instead of a field that can no longer succeed.
    expect(page.locator("#profile_code .alert-error")).to_be_visible()
    expect(page.locator("#profile_code form:has(input[name=send_sms]) button")).to_be_visible()
    expect(page.locator("#code")).to_have_count(0)
    tour.check("profile code, dead", "#profile_code form:has(input[name=send_sms]) button")

    tour.assert_clean()


@LANGUAGES
def test_unlock_screens(lang, tour, page, live_server, browser_errors, helper_wheel, tmp_path):
    # Until the helper starts its port is closed: chromium logs each refused fetch to it.
    browser_errors.expect(r"net::ERR_(CONNECTION_REFUSED|FAILED)")
    port = closed_port()
    helper_url = f"http://127.0.0.1:{port}"
    live_server.app.config["KAMUSM_HELPER_URL"] = helper_url
    log_in_then_switch_language(page, live_server, lang)

    held = []  # the page's calls to the helper, unanswered for now: the page stays at "checking"
    page.route(f"{helper_url}/**", lambda route: held.append(route))
    page.goto(live_server("/unlock"))
    expect(page.locator("#unlock_checking")).to_be_visible()
    tour.check("unlock checking")
    page.unroute(f"{helper_url}/**")
    for route in held:
        route.abort("connectionrefused")
    retry = "#unlock_unreachable [data-unlock-action=retry]"
    expect(page.locator(retry)).to_be_visible()
    tour.check("unlock unreachable", retry)

    console = HelperConsole()
    home = tmp_path / "helper-home"
    with running_helper(make_backend("sim", home), home, live_server, console, port=port):
        page.locator(retry).click()
        pair = "#unlock_pair [data-unlock-action=pair-start]"
        expect(page.locator(pair)).to_be_visible()
        tour.check("unlock pair", pair)

        page.locator(pair).click()
        confirm = "#unlock_pair_code form[data-unlock-form=pair] button[type=submit]"
        expect(page.locator(confirm)).to_be_visible()
        tour.check("unlock pairing code", confirm)
        digits = console.pairing_code().replace(" ", "")
        page.locator("#pairing_code").fill(f"{(int(digits) + 1) % 1_000_000:06d}")
        page.locator(confirm).click()
        expect(page.locator("#pairing_code")).to_have_attribute("aria-invalid", "true")
        tour.check("unlock pairing code, wrong", confirm)
        tour.field_error("unlock pairing code, wrong", "#pairing_code")

        page.locator("#pairing_code").fill(console.pairing_code())
        page.locator(confirm).click()
        unblock = "#unlock_forms form[data-operation=unblock] button[type=submit]"
        expect(page.locator(unblock)).to_be_visible()
        tour.check("unlock forms", unblock)

        live_server.clock.advance(RECENT_CODE_SECONDS + 1)
        page.reload()
        send_code = "#unlock_forms [data-unlock-action=stepup-send]"
        expect(page.locator(send_code)).to_be_visible()
        tour.check("unlock forms, code needed", send_code)
        page.locator(send_code).click()
        send = "#unlock_stepup form[data-unlock-form=stepup] button[type=submit]"
        expect(page.locator(send)).to_be_visible()
        tour.check("unlock stepup", send)
        submit_wrong_code(page, live_server, send)
        tour.check("unlock stepup, wrong code", send)
        tour.field_error("unlock stepup, wrong code", "#code")
    tour.assert_clean()


# The views pass a box's or a choice's error as a field error (errors={field: message}, and for
# /certificate errors_for=<the certificate's id>). The language does not change where a view puts an
# error, so this runs once.
@pytest.mark.parametrize("lang", ["tr"])
def test_refused_boxes_and_choices_say_so_at_the_field(lang, tour, page, live_server, demo_certificates):
    log_in_then_switch_language(page, live_server, lang)
    page.goto(live_server("/pin-puk"))
    page.locator("#pin_puk_masked .delete-form button[type=submit]").click()
    expect(page.locator("#pin_puk_masked .alert-error")).to_be_visible()
    tour.field_error("pin-puk delete, not confirmed", "#pin_puk_masked .delete-form input[name=confirm]")

    page.goto(live_server("/certificate"))
    page.locator("#certificate_list form[data-action=revoke] button[type=submit]").click()
    expect(page.locator("#certificate_list .alert-error")).to_be_visible()
    tour.field_error("certificate revoke, no reason", "#certificate_list form[data-action=revoke] select")
    page.locator("#certificate_list form[data-action=revoke] select").select_option("keyCompromise")
    page.locator("#certificate_list form[data-action=revoke] button[type=submit]").click()
    # The alert of the first refusal is still up: wait for the second answer's error beside the box.
    expect(page.locator("#certificate_list form[data-action=revoke] [id^=confirm-][id$=-error]")).to_be_visible()
    tour.field_error("certificate revoke, box not ticked",
                     "#certificate_list form[data-action=revoke] input[name=confirm]")
    # The reason chosen is still chosen: only the box is left to tick.
    expect(page.locator("#certificate_list form[data-action=revoke] select")).to_have_value("keyCompromise")
    tour.assert_clean()
