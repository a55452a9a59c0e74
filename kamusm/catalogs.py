"""The translation catalogs: compiled when the portal starts, checked by /healthz.

Flask-Babel reads only the compiled messages.mo. A clone that never ran `make translations` (or a .po
edited after the last compile) would serve ?lang=en pages in Turkish under <html lang="en"> while
everything looked healthy. So the app compiles every catalog whose .mo is missing or older than its
.po at start-up (babel's own compiler, what `pybabel compile` runs), refuses to start when it cannot
write them, and /healthz reports a catalog that is still missing or empty as an error.
"""
from __future__ import annotations

from pathlib import Path

from babel.messages.mofile import read_mo, write_mo
from babel.messages.pofile import read_po

from kamusm.errors import ConfigError

TRANSLATIONS_DIR = Path(__file__).resolve().parent / "translations"
DOMAIN = "messages"


def _paths(directory: Path, language: str) -> tuple[Path, Path]:
    folder = directory / language / "LC_MESSAGES"
    return folder / f"{DOMAIN}.po", folder / f"{DOMAIN}.mo"


def stale_catalogs(languages: tuple[str, ...], directory: Path = TRANSLATIONS_DIR) -> list[str]:
    """The languages whose .mo is missing or older than their .po."""
    stale = []
    for language in languages:
        po, mo = _paths(directory, language)
        if not mo.is_file() or (po.exists() and po.stat().st_mtime > mo.stat().st_mtime):
            stale.append(language)
    return stale


def compile_stale_catalogs(languages: tuple[str, ...], directory: Path = TRANSLATIONS_DIR) -> list[str]:
    """Compile what stale_catalogs names; return those languages. Raises ConfigError when a .po is
    missing or the .mo cannot be written (a read-only install must ship compiled catalogs)."""
    compiled = []
    for language in stale_catalogs(languages, directory):
        po, mo = _paths(directory, language)
        if not po.exists():
            raise ConfigError(f"the {language} catalog is missing: {po}")
        try:
            with po.open("rb") as source:
                catalog = read_po(source, locale=language)
            with mo.open("wb") as target:
                write_mo(target, catalog)
        except OSError as exc:
            raise ConfigError(f"cannot compile the {language} catalog ({exc}); run `make translations`") from exc
        compiled.append(language)
    return compiled


def catalog_problems(languages: tuple[str, ...], directory: Path = TRANSLATIONS_DIR) -> list[str]:
    """What /healthz reports: every language whose compiled catalog is missing or has no messages."""
    problems = []
    for language in languages:
        _, mo = _paths(directory, language)
        if not mo.exists():
            problems.append(f"{language}: not compiled")
            continue
        with mo.open("rb") as source:
            if not len(read_mo(source)):
                problems.append(f"{language}: empty")
    return problems
