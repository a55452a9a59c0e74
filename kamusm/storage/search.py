"""How names are folded for search, so "sahin", "ŞAHİN" and "Şahin" find the same holder."""
from __future__ import annotations

import unicodedata


def search_key(text: str) -> str:
    """Lower case without accents, Turkish dotted and dotless i both as i: what name_key holds and what a
    query is compared in."""
    text = text.replace("İ", "i").replace("I", "i").replace("ı", "i")
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    return " ".join("".join(char for char in decomposed if not unicodedata.combining(char)).split())
