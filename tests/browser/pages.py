"""What several browser tests share: the holder's login walk, the accessibility Tour, the local helper
and the /unlock page, the operator's console.

A test module imports this as `pages` (pytest puts tests/browser on sys.path, as the folder has no
__init__.py) and never imports another test module. The fixtures several modules use (`tour`,
`wide_screen`) are in conftest.py.
"""
from __future__ import annotations

import re
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pyotp
import pytest
from flask_babel import force_locale, gettext
from playwright.sync_api import expect

from kamusm import operators, storage
from kamusm.demo import DEMO_HOLDERS
from kamusm.helper import HelperServer, make_server
from tests.conftest import open_db

SELIN = DEMO_HOLDERS[0]
LANGUAGES = pytest.mark.parametrize("lang", ["tr", "en"])

# The login screens.

CAPTCHA_ANSWER = "KMS34"
MARKER = "window.__kamusmNoReload"
CAPTCHA_LOADED = """() => {
  const image = document.getElementById("captcha-image");
  return image !== null && image.complete && image.naturalWidth > 0;
}"""
# What the holder's login walk in each language reads on the way, up to the menu's "Kişisel Bilgiler".
LOGIN_TEXT = {
    "tr": {"login_heading": "Şifreli Giriş Ekranı", "log_in": "Giriş", "confirm": "Onay", "submit": "Gönder",
           "menu": "İşlemler Menüsü", "greeting": "Sayın S***** Y*****", "profile": "Kişisel Bilgiler"},
    "en": {"login_heading": "Password login", "log_in": "Log in", "confirm": "Confirm", "submit": "Submit",
           "menu": "Services menu", "greeting": "Dear S***** Y*****", "profile": "Personal details"},
}


def click_plain_form_button(page, button, path: str) -> None:
    """Click a button of a plain (non-htmx) form that POSTs to `path` and check it was accepted.

    The pages' Referrer-Policy no-referrer makes the browser send such a POST with Origin: null;
    the portal must still take it as same-origin (Sec-Fetch-Site says so).
    """
    with page.expect_response(lambda response: response.request.method == "POST"
                              and url_path(path).match(response.url)) as answer:
        button.click()
    response = answer.value
    assert response.status in (200, 303), f"POST {path} answered {response.status}"


def url_path(path: str) -> re.Pattern:
    """Matches a full URL whose path is `path` (any query string)."""
    return re.compile(rf"^https?://[^/]+{re.escape(path)}(\?.*)?$")


def set_marker(page) -> None:
    page.evaluate(f"{MARKER} = 'still here'")


def marker(page):
    return page.evaluate(f"{MARKER} ?? null")


def wait_for_captcha(page) -> None:
    page.wait_for_function(CAPTCHA_LOADED)


def fill_login(page, word: str, captcha: str = CAPTCHA_ANSWER, identity: str = SELIN["identity"]) -> None:
    page.locator("#identity").fill(identity)
    page.locator("#captcha").fill(captcha)
    page.locator("#security_word").fill(word)


def reach_code_screen(page, live_server) -> None:
    """Security word and "Onay", the way a holder does it, up to /login/code."""
    page.goto(live_server("/login"))
    wait_for_captcha(page)
    fill_login(page, SELIN["security_word"])
    page.get_by_role("button", name="Giriş", exact=True).click()
    page.wait_for_url(url_path("/login/sms"))
    page.get_by_role("button", name="Onay", exact=True).click()
    page.wait_for_url(url_path("/login/code"))
    expect(page.locator("#login_code_form")).to_be_visible()


def log_in(page, live_server, identity: str = SELIN["identity"], word: str = SELIN["security_word"]) -> str:
    """Security word, "Onay", the SMS code (read from the server's outbox) up to /menu; returns the code."""
    page.goto(live_server("/login"))
    wait_for_captcha(page)
    fill_login(page, word, identity=identity)
    page.get_by_role("button", name="Giriş", exact=True).click()
    page.wait_for_url(url_path("/login/sms"))
    page.get_by_role("button", name="Onay", exact=True).click()
    page.wait_for_url(url_path("/login/code"))
    expect(page.locator("#login_code_form")).to_be_visible()
    code = live_server.latest_sms_code()
    page.locator("#code").fill(code)
    page.get_by_role("button", name="Gönder", exact=True).click()
    page.wait_for_url(url_path("/menu"))
    expect(page.locator("#menu_operations")).to_be_visible()
    return code


def log_in_then_switch_language(page, live_server, lang: str) -> None:
    """The login walk of `log_in`, then the menu in `lang` (the language cookie keeps it)."""
    log_in(page, live_server)
    page.goto(live_server(with_lang("/menu", lang)))
    expect(page.locator("html")).to_have_attribute("lang", lang)


def open_login(page, live_server, lang: str) -> None:
    """/login in `lang`: ?lang=en sets the language cookie that every later page of the context keeps."""
    page.goto(live_server("/login?lang=en" if lang == "en" else "/login"))
    expect(page.locator("html")).to_have_attribute("lang", lang)
    expect(page.locator("#login_form h1")).to_have_text(LOGIN_TEXT[lang]["login_heading"])
    wait_for_captcha(page)


def log_in_in_language(page, live_server, lang: str, word: str = SELIN["security_word"]) -> None:
    """Security word, the SMS screen, the code (read from the server's outbox), up to the menu, all in `lang`."""
    text = LOGIN_TEXT[lang]
    open_login(page, live_server, lang)
    fill_login(page, word)
    page.get_by_role("button", name=text["log_in"], exact=True).click()
    page.wait_for_url(url_path("/login/sms"))
    page.get_by_role("button", name=text["confirm"], exact=True).click()
    page.wait_for_url(url_path("/login/code"))
    expect(page.locator("#login_code_form")).to_be_visible()
    page.locator("#code").fill(live_server.latest_sms_code())
    page.get_by_role("button", name=text["submit"], exact=True).click()
    page.wait_for_url(url_path("/menu"))
    menu = page.locator("#menu_operations")
    expect(menu.locator("h1")).to_have_text(text["menu"])
    expect(menu.locator(".greeting")).to_have_text(text["greeting"])


def open_profile(page, live_server, lang: str):
    page.locator("#menu_operations").get_by_role("link", name=LOGIN_TEXT[lang]["profile"], exact=True).click()
    page.wait_for_url(url_path("/profile"))
    view = page.locator("#profile_view")
    expect(view.locator("h1")).to_have_text(LOGIN_TEXT[lang]["profile"])
    return view


def with_lang(path: str, lang: str) -> str:
    return f"{path}{'&' if '?' in path else '?'}lang={lang}"


# The accessibility Tour: axe-core (tests/browser/vendor/axe.min.js, pinned; see the README there), a
# phone's width and the keyboard, screen by screen (tests/browser/test_accessibility_browser.py says what
# each check expects).

AXE = Path(__file__).resolve().parent / "vendor" / "axe.min.js"
AXE_PATH = "/__axe__/axe.min.js"  # never a portal route: the test's route answers it
AXE_TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22aa"]
DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 390, "height": 844}
MAX_TABS = 80
MIN_FOCUS_CONTRAST = 3.0
MIN_OUTLINE_PX = 2.0

AXE_RUN = """async (tags) => {
  const result = await axe.run(document, {runOnly: {type: "tag", values: tags}, resultTypes: ["violations"]});
  return result.violations.map((rule) => ({
    id: rule.id, impact: rule.impact, help: rule.help,
    nodes: rule.nodes.map((node) => ({target: node.target.join(" "), summary: node.failureSummary || ""})),
  }));
}"""

# The elements wider than the viewport, outermost first (what makes the page scroll sideways).
OVERFLOW = """() => {
  const width = document.documentElement.clientWidth;
  if (document.documentElement.scrollWidth <= width) return null;
  const wide = [...document.body.querySelectorAll("*")].filter((element) => {
    const box = element.getBoundingClientRect();
    return box.width > 0 && box.right > width + 0.5;
  });
  const outermost = wide.filter((element) => !wide.includes(element.parentElement)).slice(0, 5);
  return {scrollWidth: document.documentElement.scrollWidth, width,
          culprits: outermost.map((element) => element.outerHTML.slice(0, 120))};
}"""

# Focus back to the start of the document, as on a fresh page load, so the next Tab goes to the first stop.
FOCUS_START = """() => {
  window.scrollTo(0, 0);
  document.activeElement?.blur();
  const body = document.body;
  body.tabIndex = -1;
  body.focus({preventScroll: true});
  body.removeAttribute("tabindex");
}"""

# The focused element, its outline, and the contrast of the outline's colour against what is painted
# around the outline (sampled beside each edge; the element's own background for an inset outline).
FOCUSED = """(target) => {
  const element = document.activeElement;
  if (!element || element === document.body) return null;
  const parse = (colour) => {
    const [r, g, b, a = 1] = colour.match(/[\\d.]+/g).map(Number);
    return {r, g, b, a};
  };
  const luminance = ({r, g, b}) => {
    const [R, G, B] = [r, g, b].map((value) => {
      const c = value / 255;
      return c <= 0.03928 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4;
    });
    return 0.2126 * R + 0.7152 * G + 0.0722 * B;
  };
  const contrast = (one, two) => {
    const [light, dark] = [luminance(one), luminance(two)].sort((x, y) => y - x);
    return (light + 0.05) / (dark + 0.05);
  };
  const paintedBackground = (elements) => {
    for (const candidate of elements) {
      const colour = parse(getComputedStyle(candidate).backgroundColor);
      if (colour.a > 0) return colour;
    }
    return {r: 255, g: 255, b: 255, a: 1};  // the canvas
  };
  const ancestors = (start) => {
    const chain = [];
    for (let node = start; node; node = node.parentElement) chain.push(node);
    return chain;
  };
  const style = getComputedStyle(element);
  const width = parseFloat(style.outlineWidth) || 0;
  const offset = parseFloat(style.outlineOffset) || 0;
  const box = element.getBoundingClientRect();
  const outline = style.outlineStyle === "none" || width === 0 ? null : parse(style.outlineColor);
  let lowest = null;
  let backdrop = null;
  if (outline) {
    const samples = [];
    if (offset < 0) {
      samples.push(paintedBackground(ancestors(element)));
    } else {
      const out = offset + width + 1;  // just outside the ring
      const middleX = box.left + box.width / 2;
      const middleY = box.top + box.height / 2;
      for (const [x, y] of [[box.left - out, middleY], [box.right + out, middleY],
                            [middleX, box.top - out], [middleX, box.bottom + out]]) {
        if (x < 0 || y < 0 || x >= innerWidth || y >= innerHeight) continue;
        const stack = document.elementsFromPoint(x, y).filter((under) => !element.contains(under));
        samples.push(paintedBackground(stack));
      }
    }
    for (const sample of samples) {
      const ratio = contrast(outline, sample);
      if (lowest === null || ratio < lowest) {
        lowest = ratio;
        backdrop = `rgb(${sample.r}, ${sample.g}, ${sample.b})`;
      }
    }
  }
  const label = (element.getAttribute("aria-label") || element.textContent || element.value || "")
    .replace(/\\s+/g, " ").trim();
  return {
    isTarget: element.matches(target),
    name: `<${element.tagName.toLowerCase()}${element.id ? "#" + element.id : ""}> ${label.slice(0, 40)}`,
    visible: box.width > 0 && box.height > 0,
    outline: outline ? `${style.outlineStyle} ${width}px ${style.outlineColor}` : "none",
    width, contrast: lowest, backdrop,
  };
}"""

# The ids an element's aria-describedby names, and the text of each.
DESCRIPTIONS = """(element) => (element.getAttribute("aria-describedby") || "").split(/\\s+/).filter(Boolean)
  .map((id) => document.getElementById(id)?.textContent.trim() ?? null)"""


@dataclass
class Tour:
    """Checks screens as the walk reaches them and keeps what is wrong, named by screen."""

    page: object
    lang: str
    axe_url: str
    problems: list[str] = field(default_factory=list)

    def check(self, screen: str, main_action: str | None = None) -> None:
        """axe at both widths, no sideways scroll on a phone, then the keyboard to `main_action` (a selector)."""
        page = self.page
        name = f"{screen} [{self.lang}]"
        for viewport in (DESKTOP, PHONE):
            page.set_viewport_size(viewport)
            for rule in run_axe(page, self.axe_url):
                nodes = "\n".join(f"      {node['target']}: {first_line(node['summary'])}" for node in rule["nodes"])
                self.problems.append(f"{name} at {viewport['width']} px: axe {rule['id']} ({rule['impact']}): "
                                     f"{rule['help']}\n{nodes}")
        overflow = page.evaluate(OVERFLOW)  # still at the phone's width
        if overflow:
            culprits = "\n".join(f"      {culprit}" for culprit in overflow["culprits"])
            self.problems.append(f"{name} at {PHONE['width']} px: {overflow['scrollWidth']} px wide, "
                                 f"it scrolls sideways:\n{culprits}")
        page.set_viewport_size(DESKTOP)
        if main_action:
            self.problems.extend(f"{name}: {problem}" for problem in keyboard_problems(page, main_action))

    def field_error(self, screen: str, selector: str) -> None:
        """The field is aria-invalid and its description includes the error text shown with it."""
        name = f"{screen} [{self.lang}]"
        control = self.page.locator(selector)
        if control.get_attribute("aria-invalid") != "true":
            self.problems.append(f"{name}: {selector} shows an error but is not aria-invalid")
        texts = control.evaluate(DESCRIPTIONS)
        error_id = control.evaluate("(element) => element.closest('.field')?.querySelector('.error')?.id ?? null")
        if not error_id:
            self.problems.append(f"{name}: no error text beside {selector}")
        elif error_id not in (control.get_attribute("aria-describedby") or "").split():
            self.problems.append(f"{name}: {selector} is not described by its error #{error_id} ({texts})")

    def assert_clean(self) -> None:
        assert not self.problems, f"{len(self.problems)} accessibility problems:\n" + "\n".join(self.problems)


def first_line(text: str) -> str:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return " / ".join(lines[:3])


def run_axe(page, axe_url: str) -> list[dict]:
    if not page.evaluate("typeof window.axe !== 'undefined'"):
        page.add_script_tag(url=axe_url)
    return page.evaluate(AXE_RUN, AXE_TAGS)


def keyboard_problems(page, main_action: str) -> list[str]:
    """Tab from the top to `main_action`; every stop on the way must show a focus ring of 3:1 or more."""
    if page.locator(main_action).count() == 0:
        return [f"no main action {main_action} on the screen"]
    page.evaluate(FOCUS_START)
    problems = []
    for _ in range(MAX_TABS):
        page.keyboard.press("Tab")
        focused = page.evaluate(FOCUSED, main_action)
        if focused is None:
            continue
        if not focused["visible"]:
            problems.append(f"Tab reaches {focused['name']}, which is not visible")
        elif focused["width"] < MIN_OUTLINE_PX or focused["contrast"] is None:
            problems.append(f"{focused['name']} shows no focus outline ({focused['outline']})")
        elif focused["contrast"] < MIN_FOCUS_CONTRAST:
            problems.append(f"{focused['name']}: focus outline {focused['outline']} has "
                            f"{focused['contrast']:.2f}:1 against {focused['backdrop']}")
        if focused["isTarget"]:
            return problems
    return [*problems, f"{MAX_TABS} Tab presses did not reach {main_action}"]


@contextmanager
def polls_held(page, url: str) -> Iterator[None]:
    """The page's polls of `url` wait unanswered inside the block, and go on after it."""
    held = []
    page.route(url, lambda route: held.append(route))
    try:
        yield
    finally:
        page.unroute(url)
        for route in held:
            route.continue_()


# The local helper (kamusm.helper.make_server in a thread) and the /unlock page that talks to it.

NEW_PIN = "582046"
WRONG_PIN = "246802"
HELPER_POLL_SECONDS = 0.01
BODY_TYPES = ("text/html", "application/json")
# The code line of the helper's pairing notice: "      123 456".
CONSOLE_CODE = re.compile(r"^\s+(\d{3} \d{3})\s*$", re.MULTILINE)


class HelperConsole:
    """What the holder reads on the helper's terminal (the helper's ``display``)."""

    def __init__(self) -> None:
        self.texts: list[str] = []
        self._texts_lock = threading.Lock()

    def __call__(self, text: str) -> None:
        with self._texts_lock:
            self.texts.append(text)

    def text(self) -> str:
        with self._texts_lock:
            return "\n".join(self.texts)

    def pairing_code(self) -> str:
        """The newest pairing code shown, as shown ("123 456")."""
        codes = CONSOLE_CODE.findall(self.text())
        assert codes, f"the helper showed no pairing code:\n{self.text()}"
        return codes[-1]


@contextmanager
def running_helper(backend, home: Path, live_server, console: HelperConsole,
                   port: int = 0) -> Iterator[HelperServer]:
    """The helper on 127.0.0.1:``port`` for the live portal's origin, served by a thread, on the portal's
    clock, printing to ``console``; the portal's KAMUSM_HELPER_URL points at it until the block ends."""
    # Exactly the Origin chromium sends for a page of the live server.
    server = make_server(port, [live_server.url], backend, home, clock=live_server.clock, display=console)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": HELPER_POLL_SECONDS},
                              name="kamusm-test-helper", daemon=True)
    thread.start()
    app = live_server.app
    old_url = app.config["KAMUSM_HELPER_URL"]
    app.config["KAMUSM_HELPER_URL"] = f"http://127.0.0.1:{server.port}"
    try:
        yield server
    finally:
        app.config["KAMUSM_HELPER_URL"] = old_url
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
        assert not thread.is_alive(), "the helper thread did not stop"


def closed_port() -> int:
    """A port of 127.0.0.1 nothing listens on (it was free a moment ago)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class Traffic:
    """Every HTML and JSON response body the page received, and every request it sent (URL and body)."""

    def __init__(self, page) -> None:
        self.bodies: list[tuple[str, str, int, str]] = []  # (method, url, status, body)
        self.sent: list[tuple[str, str, str]] = []  # (method, url, body or "")
        # (method, url, reason): chromium drops the body of a response whose page was navigated
        # away from before it could be read (the login steps' htmx answers that redirect).
        self.unreadable: list[tuple[str, str, str]] = []
        page.on("request", self._on_request)
        page.on("response", self._on_response)

    def _on_request(self, request) -> None:
        self.sent.append((request.method, request.url, request.post_data or ""))

    def _on_response(self, response) -> None:
        content_type = response.headers.get("content-type", "")
        if 300 <= response.status < 400 or not content_type.startswith(BODY_TYPES):
            return
        try:
            body = response.text()
        except Exception as exc:  # noqa: BLE001 - recorded; the test decides what it may miss
            self.unreadable.append((response.request.method, response.url, str(exc)))
            return
        self.bodies.append((response.request.method, response.url, response.status, body))

    def body_of(self, method: str, url_ending: str) -> list[str]:
        return [body for seen_method, url, _, body in self.bodies if seen_method == method and url.endswith(url_ending)]

    def missed(self, helper_url: str) -> list[tuple[str, str, str]]:
        """Unread bodies that matter: anything from /unlock or the helper, or lost for another reason."""
        return [(method, url, reason) for method, url, reason in self.unreadable
                if url.startswith(helper_url) or "/unlock" in url or "navigated away" not in reason]

    def sent_to(self, method: str, url_ending: str) -> list[str]:
        return [body for seen_method, url, body in self.sent if seen_method == method and url.endswith(url_ending)]

    def places(self) -> dict[str, str]:
        """Every response body and every request (URL and body), each named for an assertion message."""
        named = {f"{method} {url} ({status}) #{index}": body
                 for index, (method, url, status, body) in enumerate(self.bodies)}
        named.update({f"request {method} {url} #{index}": f"{url}\n{body}"
                      for index, (method, url, body) in enumerate(self.sent)})
        return named


def code_pattern(shown: str) -> re.Pattern:
    """The pairing code however it could be written: 123456, 123 456, or form-encoded 123+456 / 123%20456."""
    first, second = shown.split(" ")
    return re.compile(rf"(?<![0-9A-Za-z]){first}(?: |\+|%20)?{second}(?![0-9A-Za-z])")


def open_unlock(page) -> None:
    """From the menu, the way a holder goes: the "Kilit Çözme" button."""
    page.locator("#menu_operations").get_by_role("link", name="Kilit Çözme", exact=True).click()
    page.wait_for_url(url_path("/unlock"))
    expect(page.locator("#unlock h1")).to_have_text("Kilit Çözme")


def card_fact(page, name: str, state: str = "unlock_forms"):
    return page.locator(f"#{state} dd[data-card={name}]")


def expect_card_facts(page, serial: str, pin_tries_left: int, state: str = "unlock_forms") -> None:
    expect(page.locator(f"#{state}")).to_be_visible()
    expect(card_fact(page, "serial", state)).to_have_text(serial)
    expect(card_fact(page, "pin_tries_left", state)).to_have_text(str(pin_tries_left))


def result_line(page):
    return page.locator("#unlock [data-unlock-result]")


def pair_in_browser(page, console: HelperConsole, screenshot=None) -> str:
    """"Eşleştir", then the code the helper's console shows typed in as shown; returns that code."""
    pair = page.locator("#unlock_pair")
    expect(pair).to_be_visible()
    fingerprint = pair.locator("[data-fingerprint]").inner_text().strip()
    pair.get_by_role("button", name="Eşleştir", exact=True).click()
    code_screen = page.locator("#unlock_pair_code")
    expect(code_screen).to_be_visible()
    # The holder compares the fingerprints the page and the helper's window show.
    expect(code_screen.locator("[data-fingerprint]")).to_have_text(fingerprint)
    assert fingerprint in console.text(), console.text()
    shown = console.pairing_code()
    if screenshot:
        screenshot(page, "pairing-code")
    code_screen.locator("#pairing_code").fill(shown)
    code_screen.get_by_role("button", name="Onayla", exact=True).click()
    expect(page.locator(f'#unlock_helpers tr[data-helper-fingerprint="{fingerprint}"]')).to_have_count(1)
    expect(code_screen).to_have_count(0)
    return shown


@contextmanager
def operation_done(page) -> Iterator[None]:
    """Waits, after the block's click, for the page's closing refresh: a submit reads the card
    (GET /v1/card) before the operation and again when it ends. The next operation must not start
    before that, or the helper rightly answers busy."""
    seen = {"card_reads": 0}

    def second_card_read(response) -> bool:
        if response.request.method == "GET" and response.url.endswith("/v1/card"):
            seen["card_reads"] += 1
        return seen["card_reads"] >= 2

    with page.expect_response(second_card_read):
        yield


def unblock(page, new_pin: str = NEW_PIN) -> None:
    form = page.locator("#unlock_forms form[data-operation=unblock]")
    form.locator("#new_pin").fill(new_pin)
    form.locator("#new_pin_confirm").fill(new_pin)
    with operation_done(page):
        form.get_by_role("button", name="Kilidi Çöz", exact=True).click()


def sms_bodies(db) -> list[str]:
    return [row["body"] for row in storage.outbox.latest_outbox(db, "sms", 100)]


# The institution console (/admin).

PASSWORD = "Kurum-Konsolu-2026!"
TOTP_STEP_SECONDS = 30
LOGIN_BUTTON = "#admin_login_form button[type=submit]"
ENROL_BUTTON = "#admin_enrol_form button[type=submit]"


class OperatorConsole:
    """One operator in the browser: the app's codes at the live server's clock, and the texts in `lang`."""

    def __init__(self, page, live_server, lang: str, name: str, role: str):
        self.page, self.live_server, self.lang, self.name = page, live_server, lang, name
        self.totp: pyotp.TOTP | None = None
        with open_db(live_server.app) as db:
            self.token = operators.add(db, name, role, live_server.clock())

    def text(self, msgid: str, **values) -> str:
        app = self.live_server.app
        with app.test_request_context(), force_locale(self.lang):
            translated = gettext(msgid, **values)
        if self.lang != "tr":
            with app.test_request_context(), force_locale("tr"):
                assert translated != gettext(msgid, **values), f"no {self.lang} msgstr for {msgid!r}"
        return translated

    def pattern(self, msgid: str, name: str, value: str | int, wildcard: str) -> re.Pattern:
        """The translated text as a regular expression, with `wildcard` where the value `name` goes."""
        text = re.escape(self.text(msgid, **{name: value}))
        return re.compile("^" + text.replace(re.escape(str(value)), wildcard) + "$")

    def code(self) -> str:
        return self.totp.at(self.live_server.clock())

    def open_enrolment(self) -> None:
        self.page.goto(self.live_server(with_lang(f"/admin/enrol/{self.token}", self.lang)))
        expect(self.page.locator("html")).to_have_attribute("lang", self.lang)
        seed = self.page.locator("#admin_enrol_form code.seed").inner_text().replace(" ", "")
        self.totp = pyotp.TOTP(seed)

    def fill_enrolment(self, password: str) -> None:
        page = self.page
        page.locator("#password").fill(password)
        page.locator("#password_confirm").fill(password)
        page.locator("#totp_code").fill(self.code())
        page.locator(ENROL_BUTTON).click()

    def enrol(self) -> None:
        self.open_enrolment()
        self.fill_enrolment(PASSWORD)
        expect(self.page.locator("#admin_enrol_done")).to_be_visible()

    def fill_login(self, password: str = PASSWORD) -> None:
        self.live_server.clock.advance(TOTP_STEP_SECONDS)  # a new time step: each is accepted once
        page = self.page
        page.locator("#name").fill(self.name)
        page.locator("#password").fill(password)
        page.locator("#totp_code").fill(self.code())
        page.locator(LOGIN_BUTTON).click()

    def log_in(self) -> None:
        self.page.goto(self.live_server("/admin/login"))
        self.fill_login()
        self.page.wait_for_url(url_path("/admin"))
        expect(self.page.locator("#admin_home_menu")).to_be_visible()

    def open_selin(self) -> None:
        page = self.page
        page.goto(self.live_server("/admin/holders"))
        page.locator("#q").fill(SELIN["name"])
        page.locator("#admin_holders_list .search button[type=submit]").click()
        expect(page.locator("#admin_holders_list [role=status]")).to_have_text(
            self.text("Bulunan kart sahibi: %(n)d", n=1))
        page.locator("#admin_holders_list tbody").get_by_role("link", name=SELIN["name"], exact=True).click()
        expect(page.locator("#admin_holder_view h1")).to_have_text(SELIN["name"])
