"""The step indicator of the three login screens, in a real browser at a phone's width (390 px).

Each screen marks its own step as the current one (aria-current="step"), the steps before it as
done; the current step stands out by more than colour (bold text, a filled number); the list fits
the screen without scrolling sideways, in Turkish and in the longer English.
"""
from __future__ import annotations

import pytest
from pages import SELIN, fill_login, url_path, wait_for_captcha
from playwright.sync_api import expect

pytestmark = pytest.mark.browser
PHONE = {"width": 390, "height": 844}
LABELS = ["Şifreli Giriş", "SMS Onay", "SMS Onay Kodu"]

MARKING = """steps => Array.from(steps.querySelectorAll("li"), step => ({
  weight: getComputedStyle(step).fontWeight,
  fill: getComputedStyle(step.querySelector(".step-number")).backgroundColor,
}))"""
FITS = "() => document.documentElement.scrollWidth <= window.innerWidth"


def check_steps(page, current: int, labels=LABELS) -> None:
    steps = page.locator("ol.login-steps")
    expect(steps).to_have_count(1)
    expect(steps).to_have_attribute("aria-label", "Giriş adımları")
    items = steps.locator("li")
    expect(items).to_have_count(3)
    for number, label in enumerate(labels, start=1):
        expect(items.nth(number - 1).locator(".step-label")).to_contain_text(label)
    expect(steps.locator('[aria-current="step"]')).to_have_count(1)
    expect(items.nth(current - 1)).to_have_attribute("aria-current", "step")
    expect(steps.locator(".done .visually-hidden")).to_have_count(current - 1)
    marking = steps.evaluate(MARKING)
    others = [mark for number, mark in enumerate(marking, start=1) if number != current]
    assert all(int(marking[current - 1]["weight"]) > int(mark["weight"]) for mark in others), marking
    assert all(marking[current - 1]["fill"] != mark["fill"] for mark in others), marking
    assert page.evaluate(FITS), "the page scrolls sideways at 390 px"
    box = steps.bounding_box()
    assert box["x"] >= 0 and box["x"] + box["width"] <= PHONE["width"]


def test_each_login_screen_marks_its_step(page, live_server, screenshot):
    page.set_viewport_size(PHONE)
    page.goto(live_server("/login"))
    wait_for_captcha(page)
    check_steps(page, 1)
    screenshot(page, "step-1")

    fill_login(page, SELIN["security_word"])
    page.get_by_role("button", name="Giriş", exact=True).click()
    page.wait_for_url(url_path("/login/sms"))
    check_steps(page, 2)
    screenshot(page, "step-2")

    page.get_by_role("button", name="Onay", exact=True).click()
    page.wait_for_url(url_path("/login/code"))
    check_steps(page, 3)
    screenshot(page, "step-3")


def test_the_english_steps_fit_a_phone_too(page, live_server, screenshot):
    page.set_viewport_size(PHONE)
    page.goto(live_server("/login?lang=en"))
    wait_for_captcha(page)
    expect(page.locator("html")).to_have_attribute("lang", "en")
    current = page.locator('ol.login-steps [aria-current="step"] .step-label')
    expect(current).not_to_have_text(LABELS[0])  # the English wording, whatever the catalog says
    assert page.evaluate(FITS), "the page scrolls sideways at 390 px"
    screenshot(page, "english")
