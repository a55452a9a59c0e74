"""Account self-service in a real browser: the forgotten word by mail, the phone and e-mail changes.

What only a browser shows: "Güvenlik Sözcüğümü Unuttum" is reached from the login screen and its
answer is swapped in by htmx (a marker set on `window` survives); the demo mailbox, already open in
another page of the same context, receives the mail by its own htmx polling; the link in the mail
works when the browser opens it; the new word logs in through the SMS screens; "Kişisel Bilgiler"
swaps its code screen, its error and its result into the same page. The English variants run with
?lang=en, which the language cookie then keeps for every page of the context (mailbox included),
and the mail and SMS texts are English too. Screenshots go to test-artifacts/.
"""
from __future__ import annotations

import re

import pytest
from pages import LOGIN_TEXT, log_in_in_language, marker, open_login, open_profile, set_marker, url_path
from playwright.sync_api import expect

from kamusm import storage
from kamusm.demo import DEMO_HOLDERS
from tests.conftest import audit_events, code_sent_to

SELIN = DEMO_HOLDERS[0]
UNKNOWN_ID = "10000000450"  # checksum-valid, nobody's
NEW_WORD = "yeni-mavi-gokyuzu-2026"
NEW_PHONE_TYPED = "0543 999 88 77"
NEW_PHONE = "+905439998877"
NEW_EMAIL = "selin.yeni@demo.edu.tr"
TOKEN = r"[A-Za-z0-9_-]+"

# The login walk's texts (pages.py), then the texts of this module's screens.
TEXT = {
    "tr": {
        **LOGIN_TEXT["tr"],
        "forgot": "Güvenlik Sözcüğümü Unuttum", "send_link": "Bağlantı Gönder",
        "sent": "Bu kimlik numarası kayıtlıysa, kurumsal e-posta adresinize bir güvenlik sözcüğü yenileme "
                "bağlantısı gönderildi.",
        "mailbox": "Tanıtım e-posta kutusu", "no_mail": "Henüz e-posta yok.",
        "reset_subject": "Güvenlik sözcüğü yenileme bağlantısı", "reset_greeting": "Sayın Selin Yılmaz",
        "reset_heading": "Yeni Güvenlik Sözcüğü", "save": "Kaydet", "done": "Güvenlik sözcüğü kaydedildi",
        "change_phone": "Telefonu Değiştir",
        "phone_code": f"Yeni numaranızı doğrulamak için {NEW_PHONE} numarasına bir SMS Onay Kodu gönderildi.",
        "wrong_code": "SMS onay kodu hatalı.", "phone_changed": "Cep telefonu numaranız değiştirildi.",
        "phone_notice_sms": "Kamu SM bireysel işlemler: cep telefonu numaranız değiştirildi.",
    },
    "en": {
        **LOGIN_TEXT["en"],
        "forgot": "I forgot my security word", "send_link": "Send link",
        "sent": "If this ID number is registered, a security word reset link has been sent to your institutional "
                "e-mail address.",
        "mailbox": "Demo mailbox", "no_mail": "No e-mails yet.",
        "reset_subject": "Security word reset link", "reset_greeting": "Dear Selin Yılmaz",
        "reset_heading": "New security word", "save": "Save", "done": "Security word saved",
        "change_phone": "Change phone number",
        "phone_code": f"An SMS code has been sent to {NEW_PHONE} to verify your new number.",
        "wrong_code": "The SMS code is incorrect.",
        "phone_changed": "Your mobile phone number has been changed.",
        "phone_notice_sms": "Kamu SM personal services: your mobile phone number has been changed.",
    },
}
LANGUAGES = pytest.mark.parametrize("lang", ["tr", "en"])


def open_mailbox(context, live_server, lang: str):
    """/demo/mail in another page of the same context, empty so far; a marker proves it polls, not reloads."""
    mailbox = context.new_page()
    mailbox.goto(live_server("/demo/mail"))
    messages = mailbox.locator("#demo_mail_messages")
    expect(messages.locator("h1")).to_have_text(TEXT[lang]["mailbox"])
    expect(messages).to_contain_text(TEXT[lang]["no_mail"])
    set_marker(mailbox)
    return mailbox


def mail_to(mailbox, recipient: str):
    """The one message to `recipient`; waits for the mailbox's htmx poll (every 2 s) to bring it."""
    message = mailbox.locator("#demo_mail_messages ol.messages li").filter(
        has=mailbox.locator(".to", has_text=re.compile(rf"^{re.escape(recipient)}$")))
    expect(message).to_have_count(1)
    return message


def link_in(message, live_server, path: str) -> str:
    """The link to `path`/<token> in a mail; the app builds it on KAMUSM_PUBLIC_URL (the live server's here)."""
    body = message.locator("pre").inner_text()
    found = re.findall(rf"{re.escape(live_server.url)}{re.escape(path)}{TOKEN}", body)
    assert len(found) == 1, f"expected one {path} link in the mail:\n{body}"
    return found[0]


def ask_for_link(page, live_server, lang: str, identity: str) -> str:
    """/forgot, the ID, "Bağlantı Gönder": the answer is swapped into the same page; returns its text."""
    text = TEXT[lang]
    form = page.locator("#forgot_form")
    expect(form.locator("h1")).to_have_text(text["forgot"])
    set_marker(page)
    with page.expect_response(lambda response: response.request.method == "POST"
                              and url_path("/forgot").match(response.url)) as answer:
        form.locator("#identity").fill(identity)
        form.get_by_role("button", name=text["send_link"], exact=True).click()
    assert answer.value.status == 200
    sent = page.locator("#forgot_sent")
    expect(sent.locator("h1")).to_have_text(text["forgot"])
    expect(sent.locator(".alert-info")).to_contain_text(text["sent"])
    expect(page.locator("#forgot_form")).to_have_count(0)
    assert marker(page) == "still here", "the answer to /forgot came with a page load, not an htmx swap"
    assert page.url == live_server("/forgot")
    return sent.inner_text().strip()


@pytest.mark.browser
@LANGUAGES
def test_forgot_mail_reset_login(lang, page, context, live_server, db, screenshot):
    text = TEXT[lang]
    live_server.app.config["KAMUSM_PUBLIC_URL"] = live_server.url  # so the mailed link leads to this server

    open_login(page, live_server, lang)
    mailbox = open_mailbox(context, live_server, lang)
    page.get_by_role("link", name=text["forgot"], exact=True).click()
    page.wait_for_url(url_path("/forgot"))
    expect(page.locator("html")).to_have_attribute("lang", lang)
    screenshot(page, "forgot-form")

    answer_known = ask_for_link(page, live_server, lang, SELIN["identity"])
    screenshot(page, "forgot-sent")

    # An unknown (but well-formed) ID gets word for word the same answer, and no mail is queued for it.
    page.goto(live_server("/forgot"))
    answer_unknown = ask_for_link(page, live_server, lang, UNKNOWN_ID)
    assert answer_unknown == answer_known
    assert db.execute("SELECT count(*) FROM mail_queue").fetchone()[0] == 1

    message = mail_to(mailbox, SELIN["email"])
    assert marker(mailbox) == "still here", "the demo mailbox reloaded instead of polling with htmx"
    expect(message.locator("h2")).to_have_text(text["reset_subject"])
    expect(message.locator("pre")).to_contain_text(text["reset_greeting"])
    expect(mailbox.locator("#demo_mail_messages ol.messages li")).to_have_count(1)
    screenshot(mailbox, "mailbox")
    link = link_in(message, live_server, "/reset/")
    mailbox.close()

    page.goto(link)
    form = page.locator("#reset_form")
    expect(form.locator("h1")).to_have_text(text["reset_heading"])
    screenshot(page, "reset-form")
    set_marker(page)
    form.locator("#security_word").fill(NEW_WORD)
    form.locator("#security_word_confirm").fill(NEW_WORD)
    form.get_by_role("button", name=text["save"], exact=True).click()
    done = page.locator("#reset_done")
    expect(done.locator("h1")).to_have_text(text["done"])
    expect(page.locator("#reset_form")).to_have_count(0)
    assert marker(page) == "still here", "the done screen came with a page load, not an htmx swap"
    screenshot(page, "reset-done")

    log_in_in_language(page, live_server, lang, NEW_WORD)
    screenshot(page, "menu")


@pytest.mark.browser
@LANGUAGES
def test_phone_change(lang, page, live_server, db, browser_errors, screenshot):
    # htmx 4 swaps 4xx answers; the browser logs each one as a failed resource, by design.
    browser_errors.expect(r"status of 422 .*/profile:")
    text = TEXT[lang]
    log_in_in_language(page, live_server, lang)  # the login code counts as the step-up: no extra code to the old number
    view = open_profile(page, live_server, lang)
    expect(view.locator("dd[data-field=phone]")).to_have_text(SELIN["phone"])
    screenshot(page, "profile")
    set_marker(page)

    view.locator("#phone").fill(NEW_PHONE_TYPED)
    view.get_by_role("button", name=text["change_phone"], exact=True).click()
    screen = page.locator("#profile_code")
    expect(screen).to_contain_text(text["phone_code"])
    expect(page.locator("#profile_view")).to_have_count(0)
    assert marker(page) == "still here", "the code screen came with a page load, not an htmx swap"
    assert storage.holders.find_holder(db, SELIN["identity"])["phone"] == SELIN["phone"]  # not before the code is back
    screenshot(page, "code")

    new_code = code_sent_to(db, NEW_PHONE)
    old_code = code_sent_to(db, SELIN["phone"])  # the login code: it proves nothing about the new number
    wrong = old_code if old_code != new_code else ("000000" if new_code != "000000" else "111111")
    with page.expect_response(lambda response: response.request.method == "POST"
                              and url_path("/profile").match(response.url)) as answer:
        screen.locator("#code").fill(wrong)
        screen.get_by_role("button", name=text["submit"], exact=True).click()
    assert answer.value.status == 422
    expect(screen.locator(".alert-error")).to_contain_text(text["wrong_code"])
    expect(screen).to_contain_text(text["phone_code"])
    expect(screen.locator("#code")).to_have_attribute("aria-invalid", "true")
    expect(screen.locator("#code")).to_have_value("")
    assert marker(page) == "still here", "the 422 answer reloaded the page instead of being swapped in"
    assert storage.holders.find_holder(db, SELIN["identity"])["phone"] == SELIN["phone"]
    screenshot(page, "wrong-code")

    screen.locator("#code").fill(new_code)
    screen.get_by_role("button", name=text["submit"], exact=True).click()
    view = page.locator("#profile_view")
    expect(view.locator(".alert-info")).to_have_text(text["phone_changed"])
    expect(view.locator("dd[data-field=phone]")).to_have_text(NEW_PHONE)
    expect(page.locator("#profile_code")).to_have_count(0)
    assert marker(page) == "still here", "the result came with a page load, not an htmx swap"
    assert page.url == live_server("/profile")
    screenshot(page, "changed")

    assert storage.holders.find_holder(db, SELIN["identity"])["phone"] == NEW_PHONE
    notice = storage.outbox.latest_outbox(db, "sms")[0]  # the newest SMS: the notice to the old number
    assert notice["recipient"] == SELIN["phone"]
    assert text["phone_notice_sms"] in notice["body"]
    assert not re.search(r"\b\d{6}\b", notice["body"]), "the notice to the old number carries a code"
    assert ("profile.phone", "confirmed") in audit_events(db)

    page.reload()  # the change is stored, not only shown
    expect(page.locator("#profile_view dd[data-field=phone]")).to_have_text(NEW_PHONE)


@pytest.mark.browser
def test_email_change(page, context, live_server, db, screenshot):
    live_server.app.config["KAMUSM_PUBLIC_URL"] = live_server.url  # so the mailed link leads to this server
    log_in_in_language(page, live_server, "tr")
    view = open_profile(page, live_server, "tr")
    expect(view.locator("dd[data-field=email]")).to_have_text(SELIN["email"])
    set_marker(page)

    view.locator("#email").fill(NEW_EMAIL)
    view.get_by_role("button", name="E-postayı Değiştir", exact=True).click()
    view = page.locator("#profile_view")
    expect(view.locator(".alert-info")).to_have_text(
        f"{NEW_EMAIL} adresine bir doğrulama bağlantısı gönderildi. "
        "Bağlantıyı açana kadar eski adresiniz geçerli kalır.")
    expect(view.locator("dd[data-field=email]")).to_have_text(SELIN["email"])  # the old one, until the link
    assert marker(page) == "still here", "the answer came with a page load, not an htmx swap"
    assert storage.holders.find_holder(db, SELIN["identity"])["email"] == SELIN["email"]
    screenshot(page, "link-sent")

    mailbox = context.new_page()
    mailbox.goto(live_server("/demo/mail"))
    message = mail_to(mailbox, NEW_EMAIL)
    expect(message.locator("h2")).to_have_text("E-posta adresi doğrulama")
    expect(message.locator("pre")).to_contain_text("Sayın Selin Yılmaz")
    expect(mailbox.locator("#demo_mail_messages .to", has_text=SELIN["email"])).to_have_count(0)
    screenshot(mailbox, "mailbox")
    link = link_in(message, live_server, "/profile/email/")
    mailbox.close()

    page.goto(link)
    page.locator("#profile_email_confirm").get_by_role("button", name="E-posta Adresini Onayla", exact=True).click()
    confirmed = page.locator("#profile_email_confirmed")
    expect(confirmed.locator("h1")).to_have_text("E-posta adresi doğrulandı")
    expect(confirmed.locator(".alert-info")).to_have_text("Yeni e-posta adresiniz kaydedildi.")
    screenshot(page, "confirmed")

    page.goto(live_server("/profile"))
    expect(page.locator("#profile_view dd[data-field=email]")).to_have_text(NEW_EMAIL)
    assert storage.holders.find_holder(db, SELIN["identity"])["email"] == NEW_EMAIL
    screenshot(page, "profile-after")
