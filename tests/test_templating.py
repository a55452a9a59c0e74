"""Templates compiled per language give the pages runtime translation would, and kept links follow
the script root."""
import pytest
from flask import render_template_string

from kamusm.web import templating

SOURCE = ('<p title="{{ _(\'Çıkış\') }}">{{ _("İşlemler Menüsü") }}</p>'
          '<p>{{ _("Sayın %(name)s", name=who) }}</p><p>{{ _("%%100 <b>") }}</p>')


@pytest.mark.parametrize("language", ["tr", "en"])
def test_a_compiled_template_says_what_runtime_translation_says(app, language):
    compiled = app.extensions[templating.ENVIRONMENTS][language].from_string(SOURCE)
    with app.test_request_context(f"/?lang={language}"):
        at_runtime = render_template_string(SOURCE, who="<A**>")
        assert compiled.render(who="<A**>") == at_runtime
    assert "&lt;A**&gt;" in at_runtime  # variables are still escaped
    assert ("Services menu" in at_runtime) == (language == "en")


def test_only_literal_calls_are_compiled_in(app):
    code = app.extensions[templating.ENVIRONMENTS]["en"].compile(SOURCE + "{{ _(label) }}", raw=True)
    assert "Services menu" in code and "İşlemler Menüsü" not in code
    assert "Log out" in code and "Çıkış" not in code
    assert "Sayın %(name)s" in code and "%%100" in code and "label" in code  # left to render time


@pytest.mark.parametrize(("language", "labels"), [
    ("tr", ["PIN/PUK Bilgisi", "Kilit Çözme", "Sertifika Durumu", "Kişisel Bilgiler"]),
    ("en", ["PIN/PUK details", "Unblock PIN", "Certificate status", "Personal details"]),
])
def test_the_menu_speaks_the_holders_language(client, auth, language, labels):
    auth.login()
    page = client.get(f"/menu?lang={language}").get_data(as_text=True)
    for path, label in zip(["/pin-puk", "/unlock", "/certificate", "/profile"], labels, strict=True):
        assert f'href="{path}">{label}</a>' in page


def test_kept_links_follow_the_script_root(client):
    mounted = client.get("/login", base_url="http://localhost/portal").get_data(as_text=True)
    assert 'href="/portal/static/css/kamusm.css' in mounted and 'action="/portal/login"' in mounted
    page = client.get("/login").get_data(as_text=True)
    assert 'href="/static/css/kamusm.css' in page and "/portal" not in page


def test_links_with_values_or_unknown_endpoints_are_left_to_render_time(app):
    code = app.extensions[templating.ENVIRONMENTS]["tr"].compile(
        "{{ url_for('auth.logout') }} {{ static_url('css/kamusm.css') }} {{ url_for('auth.login', expired=1) }}"
        " {{ url_for('demo.nowhere') }} {{ url_for('.relative') }}", raw=True)
    assert "/logout" in code and "/static/css/kamusm.css" in code and "auth.logout" not in code
    assert "auth.login" in code and "demo.nowhere" in code and ".relative" in code
