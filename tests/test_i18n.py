"""Both catalogs hold every string the code and templates mark for translation."""
from pathlib import Path

import pytest
from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po

ROOT = Path(__file__).resolve().parent.parent
TRANSLATIONS = ROOT / "kamusm" / "translations"
KEYWORDS = {"_": None, "gettext": None, "ngettext": (1, 2), "_l": None, "lazy_gettext": None}


def marked_strings() -> set[str]:
    method_map = [("kamusm/**.py", "python"), ("templates/**.html", "jinja2")]
    found = set()
    for _, _, message, _, _ in extract_from_dir(str(ROOT), method_map=method_map, keywords=KEYWORDS):
        found.add(message if isinstance(message, str) else message[0])
    return found


@pytest.mark.parametrize("language", ["tr", "en"])
def test_catalog_is_complete(language):
    with (TRANSLATIONS / language / "LC_MESSAGES" / "messages.po").open("rb") as handle:
        catalog = read_po(handle, locale=language)
    translated = {message.id: message.string for message in catalog if message.id and message.string
                  and "fuzzy" not in message.flags}
    missing = sorted(marked_strings() - set(translated))
    assert not missing, f"untranslated in {language} (run `make messages`, then translate): {missing}"


def test_english_is_really_english():
    with (TRANSLATIONS / "en" / "LC_MESSAGES" / "messages.po").open("rb") as handle:
        catalog = read_po(handle, locale="en")
    same = [message.id for message in catalog if message.id and message.string == message.id]
    assert same == [], f"English entries left in Turkish: {same}"
