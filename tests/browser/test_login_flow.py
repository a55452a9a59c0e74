"""The login screens in a real browser (Debian's chromium through Playwright).

What only a browser shows: the captcha image really loads and "Yeni Resim" replaces it; htmx swaps
errors into the same screen (a marker set on `window` survives, so there was no page load); the
countdown ticks on its own and at zero asks the server for the expired state; the demo phone polls;
the CSRF header set by static/js/csrf.js reaches every htmx request; no screen has a console error
or a CSP violation (the `context` fixture fails the test otherwise); nothing secret reaches the
server log. Screenshots of every screen go to test-artifacts/ for a person to look at.
"""
from __future__ import annotations

import re

import pytest
from pages import (
    CAPTCHA_ANSWER,
    CAPTCHA_LOADED,
    click_plain_form_button,
    fill_login,
    marker,
    reach_code_screen,
    set_marker,
    url_path,
    wait_for_captcha,
)
from playwright.sync_api import Error as PlaywrightError
from playwright.sync_api import expect

from kamusm.demo import DEMO_HOLDERS
from kamusm.web.factory import PROJECT_ROOT

pytestmark = pytest.mark.browser

SELIN = DEMO_HOLDERS[0]
WRONG_WORD = "yanlis-sozcuk-77"
LOGIN_FAILED = "Kimlik numarası ya da güvenlik sözcüğü hatalı"
TURKISH_LOGIN_HEADING = "Şifreli Giriş Ekranı"
ENGLISH_CATALOG = PROJECT_ROOT / "kamusm" / "translations" / "en" / "LC_MESSAGES" / "messages.mo"


def countdown_value(page) -> int:
    return int(page.locator("[data-countdown-value]").inner_text())


def read_code_on_phone(phone) -> str:
    """The newest SMS on /demo/phone; the page polls every 2 s, so this waits for it to arrive."""
    newest = phone.locator("#demo_phone_messages ol.messages li").first
    expect(newest).to_contain_text(re.compile(r"\b\d{6}\b"))
    return re.search(r"\b(\d{6})\b", newest.inner_text()).group(1)


def whole_flow(page, context, live_server, browser_errors, shoot=lambda page, name: None,
               and_logout: bool = True) -> str:
    """Login to /menu (and logout), through the demo phone; returns the SMS code that was used."""
    page.goto(live_server("/login"))
    expect(page.locator("html")).to_have_attribute("lang", "tr")
    expect(page.locator("#login_form h1")).to_have_text(TURKISH_LOGIN_HEADING)
    wait_for_captcha(page)
    shoot(page, "login")

    image = page.locator("#captcha-image")
    first_src = image.get_attribute("src")
    page.get_by_role("button", name="Yeni Resim", exact=True).click()
    page.wait_for_function(f"first => document.getElementById('captcha-image').getAttribute('src') !== first "
                           f"&& ({CAPTCHA_LOADED})()", arg=first_src)
    assert image.get_attribute("src") != first_src

    fill_login(page, SELIN["security_word"])
    page.get_by_role("button", name="Giriş", exact=True).click()
    page.wait_for_url(url_path("/login/sms"))
    screen = page.locator("#login_sms_confirm")
    expect(screen.locator("h1")).to_have_text("SMS Onay Ekranı")
    expect(screen.locator(".phone strong")).to_have_text("54* *** ** **")
    shoot(page, "sms")

    phone = context.new_page()
    phone.goto(live_server("/demo/phone"))
    expect(phone.locator("#demo_phone_messages")).to_contain_text("Henüz mesaj yok.")
    set_marker(phone)

    page.get_by_role("button", name="Onay", exact=True).click()
    page.wait_for_url(url_path("/login/code"))
    expect(page.locator("#login_code_form h1")).to_have_text("SMS Onay Kodu Giriş Ekranı")
    shoot(page, "code")

    code = read_code_on_phone(phone)
    assert marker(phone) == "still here", "the demo phone reloaded instead of polling with htmx"
    assert code == live_server.latest_sms_code()
    shoot(phone, "phone")

    page.locator("#code").fill(code)
    page.get_by_role("button", name="Gönder", exact=True).click()
    page.wait_for_url(url_path("/menu"))
    menu = page.locator("#menu_operations")
    expect(menu.locator("h1")).to_have_text("İşlemler Menüsü")
    expect(menu.locator(".greeting")).to_have_text("Sayın S***** Y*****")
    for label in ("PIN/PUK Bilgisi", "Kilit Çözme", "Sertifika Durumu", "Kişisel Bilgiler"):
        expect(menu.get_by_role("link", name=label, exact=True)).to_be_visible()
    logout = menu.get_by_role("button", name="Çıkış", exact=True)
    expect(logout).to_be_visible()
    shoot(page, "menu")
    phone.close()
    if not and_logout:
        return code

    click_plain_form_button(page, logout, "/logout")
    page.wait_for_url(url_path("/login"))
    expect(page.locator("#login_form")).to_contain_text("Çıkış yaptınız.")
    wait_for_captcha(page)
    shoot(page, "logged-out")
    page.goto(live_server("/menu"))  # the session is really gone
    page.wait_for_url(url_path("/login"))
    return code


def test_whole_login_flow_to_the_menu_and_out(page, context, live_server, browser_errors, screenshot):
    whole_flow(page, context, live_server, browser_errors, screenshot)


def test_wrong_input_is_shown_on_the_same_screen(page, live_server, browser_errors, screenshot):
    # htmx 4 swaps 4xx answers: the browser logs each one as a failed resource, by design.
    browser_errors.expect(r"status of 422 .*/login:")
    browser_errors.expect(r"status of 401 .*/login:")
    page.goto(live_server("/login"))
    wait_for_captcha(page)
    set_marker(page)

    fill_login(page, SELIN["security_word"], captcha="WRONG")
    page.get_by_role("button", name="Giriş", exact=True).click()
    expect(page.locator("#captcha-error")).to_contain_text("Resimdeki yazı hatalı")
    expect(page.locator("#captcha")).to_have_attribute("aria-invalid", "true")
    expect(page.locator("#identity")).to_have_value(SELIN["identity"])
    wait_for_captcha(page)  # the re-rendered form brings a new challenge
    assert marker(page) == "still here", "the 422 answer reloaded the page instead of being swapped in"
    screenshot(page, "wrong-captcha")

    fill_login(page, WRONG_WORD)
    page.get_by_role("button", name="Giriş", exact=True).click()
    expect(page.locator("#login_form .alert-error")).to_contain_text(LOGIN_FAILED)
    assert page.url == live_server("/login")
    assert marker(page) == "still here", "the 401 answer reloaded the page instead of being swapped in"
    expect(page.locator("#identity")).to_have_value(SELIN["identity"])
    expect(page.locator("#security_word")).to_have_value("")  # a password is never sent back
    expect(page.locator("#captcha")).to_have_value("")
    expect(page.locator("#captcha-error")).to_have_count(0)
    wait_for_captcha(page)
    screenshot(page, "wrong-word")

    # The swapped-in form works: with its new captcha and the right word it goes on.
    page.locator("#captcha").fill(CAPTCHA_ANSWER)
    page.locator("#security_word").fill(SELIN["security_word"])
    page.get_by_role("button", name="Giriş", exact=True).click()
    page.wait_for_url(url_path("/login/sms"))


def test_countdown_ticks_live(page, live_server):
    reach_code_screen(page, live_server)
    start = countdown_value(page)
    assert 0 < start <= live_server.app.config["KAMUSM_OTP_TTL"]
    page.wait_for_function("start => parseInt(document.querySelector('[data-countdown-value]')"
                           ".textContent, 10) <= start - 2", arg=start, timeout=5_000)
    assert 0 < countdown_value(page) <= start - 2


def test_code_form_swaps_to_expired_at_zero_then_resend_gives_a_live_form(page, live_server, browser_errors,
                                                                           screenshot):
    reach_code_screen(page, live_server)
    ttl = live_server.app.config["KAMUSM_OTP_TTL"]
    live_server.clock.advance(ttl - 3)
    page.goto(live_server("/login/code"))
    seconds = countdown_value(page)
    assert 0 < seconds <= 3
    set_marker(page)
    live_server.clock.advance(4)  # the server's code is dead before the browser's countdown reaches zero

    expired = page.locator("#login_code_expired")
    expect(expired).to_be_visible(timeout=seconds * 1000 + 5_000)
    expect(page.locator("#login_code_form")).to_have_count(0)
    expect(expired.locator(".alert-error")).to_contain_text("süresi doldu")
    assert marker(page) == "still here", "the expired state came with a page load, not an htmx swap"
    assert page.url == live_server("/login/code")
    screenshot(page, "expired")

    click_plain_form_button(page, expired.get_by_role("button", name="Yeni Kod Gönder", exact=True), "/login/sms")
    page.wait_for_url(url_path("/login/code"))
    expect(page.locator("#login_code_form")).to_be_visible()
    assert countdown_value(page) > ttl - 5
    page.wait_for_function("start => parseInt(document.querySelector('[data-countdown-value]')"
                           ".textContent, 10) < start", arg=countdown_value(page), timeout=3_000)
    screenshot(page, "resent")
    page.locator("#code").fill(live_server.latest_sms_code())  # the new code is the live one
    page.get_by_role("button", name="Gönder", exact=True).click()
    page.wait_for_url(url_path("/menu"))


def test_language_switch_is_remembered(page, live_server, screenshot):
    page.goto(live_server("/login"))
    html = page.locator("html")
    heading = page.locator("#login_form h1")
    expect(html).to_have_attribute("lang", "tr")
    expect(heading).to_have_text(TURKISH_LOGIN_HEADING)

    page.get_by_role("link", name="English", exact=True).click()
    page.wait_for_url(re.compile(r"/login\?lang=en$"))
    expect(html).to_have_attribute("lang", "en")
    expect(page.get_by_role("link", name="English", exact=True)).to_have_attribute("aria-current", "true")
    english = heading.inner_text().strip()
    assert english and english != TURKISH_LOGIN_HEADING, \
        f"?lang=en still shows Turkish (is {ENGLISH_CATALOG.relative_to(PROJECT_ROOT)} compiled? make translations)"
    assert "Password login" in english
    screenshot(page, "english")

    page.goto(live_server("/login"))  # no ?lang: the cookie remembers
    expect(html).to_have_attribute("lang", "en")
    expect(heading).to_have_text(english)

    page.get_by_role("link", name="Türkçe", exact=True).click()
    page.wait_for_url(re.compile(r"/login\?lang=tr$"))
    expect(html).to_have_attribute("lang", "tr")
    expect(heading).to_have_text(TURKISH_LOGIN_HEADING)
    page.goto(live_server("/login"))
    expect(html).to_have_attribute("lang", "tr")
    expect(heading).to_have_text(TURKISH_LOGIN_HEADING)
    expect(page.get_by_role("link", name="Türkçe", exact=True)).to_have_attribute("aria-current", "true")


def test_csrf_header_reaches_every_htmx_request(page, context, live_server, browser_errors):
    requests = []
    meta_when_sent = {}

    def remember_meta(route):
        # The request is held here, so the document that sent it is still the one in its frame.
        request = route.request
        try:
            if request.headers.get("hx-request") == "true":
                meta_when_sent[request] = request.frame.evaluate(
                    "document.querySelector('meta[name=\"csrf-token\"]')?.content ?? null")
            route.continue_()
        except PlaywrightError:  # the page was closed while this request waited (a last demo-phone poll)
            pass

    def record(request) -> None:
        requests.append(request)

    context.route("**/*", remember_meta)
    context.on("page", lambda new_page: new_page.on("request", record))
    page.on("request", record)

    whole_flow(page, context, live_server, browser_errors, and_logout=False)

    htmx_requests = [request for request in requests if request.headers.get("hx-request") == "true"]
    checked = set()
    for request in htmx_requests:
        where = f"{request.method} {request.url}"
        token = request.headers.get("x-csrftoken")
        assert token, f"{where} went without X-CSRFToken"
        if request in meta_when_sent:
            assert meta_when_sent[request], f"{where}: its page has no csrf-token meta"
            assert token == meta_when_sent[request], f"{where}: X-CSRFToken is not its page's csrf-token"
            checked.add((request.method, re.sub(r"^https?://[^/]+", "", request.url)))
    for wanted in (("POST", "/login"), ("POST", "/login/sms"), ("POST", "/login/code"), ("GET", "/demo/phone")):
        assert wanted in checked, f"no htmx request {wanted} was checked; checked: {sorted(checked)}"


def test_server_log_keeps_no_secrets(page, context, live_server, browser_errors, capfd):
    browser_errors.expect(r"status of 401 .*/login:")
    page.goto(live_server("/login"))
    wait_for_captcha(page)
    fill_login(page, WRONG_WORD)
    page.get_by_role("button", name="Giriş", exact=True).click()
    expect(page.locator("#login_form .alert-error")).to_contain_text(LOGIN_FAILED)

    code = whole_flow(page, context, live_server, browser_errors, and_logout=False)

    log = live_server.log.text()
    assert '"POST /login/code HTTP/1.1" 200' in log, "the log capture missed the requests: the check would be empty"
    captured = capfd.readouterr()
    for where, text in (("server log", log), ("stdout", captured.out), ("stderr", captured.err)):
        for name, secret in (("security word", SELIN["security_word"]), ("wrong security word", WRONG_WORD),
                             ("SMS code", code), ("captcha answer", CAPTCHA_ANSWER)):
            assert not re.search(rf"(?<![0-9A-Za-z]){re.escape(secret)}(?![0-9A-Za-z])", text), \
                f"the {name} is in the {where}"


def test_a_csp_violation_would_fail_the_test(page, live_server, browser_errors):
    """The watchdog works: an inline script is refused by the portal's CSP and reported."""
    page.goto(live_server("/login"))
    with page.expect_console_message(lambda message: "Content Security Policy" in message.text):
        page.evaluate("""() => {
          const script = document.createElement("script");
          script.textContent = "window.__inlineRan = true";
          document.body.append(script);
        }""")
    assert page.evaluate("window.__inlineRan ?? false") is False
    problems = [problem for problem in browser_errors.problems if "Content Security Policy" in problem]
    assert problems, f"no CSP violation was reported: {browser_errors.problems}"
    browser_errors.expect("Content Security Policy")


def test_first_page_load_logs_no_console_error(page, live_server, browser_errors):
    page.goto(live_server("/login"))
    page.wait_for_load_state("networkidle")
    assert browser_errors.problems == []
