"""Fill the Turkish catalog: the message ids are Turkish, so each msgstr is its msgid.

Run by `make messages` after pybabel update; the English catalog is translated by hand.
"""
import sys
from pathlib import Path

from babel.messages.pofile import read_po, write_po

CATALOG = Path(__file__).parent / "tr" / "LC_MESSAGES" / "messages.po"


def main() -> int:
    with CATALOG.open("rb") as handle:
        catalog = read_po(handle, locale="tr")
    for message in catalog:
        if message.id and not message.string:
            message.string = message.id
        message.flags.discard("fuzzy")
    with CATALOG.open("wb") as handle:
        write_po(handle, catalog, width=100)
    return 0


if __name__ == "__main__":
    sys.exit(main())
