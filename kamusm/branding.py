"""The institution's logo: read, checked and measured once, at start-up.

The file's type is decided by its content (the PNG and JPEG signatures, an SVG root
element), never by its name, so a renamed text or HTML file is refused before the portal
serves it; so is anything larger than LOGO_MAX_BYTES. Every refusal is a ConfigError naming
KAMUSM_LOGO_FILE, so a bad logo stops the portal at start-up instead of breaking pages.

Security assumptions: an SVG is a document that can carry script and outside references.
Pages show the logo only through <img>, where browsers run no script and load nothing; a
browser that opens /branding/logo itself gets it under LOGO_CSP (nothing runs or loads, and
the sandbox gives it no origin) with nosniff. On top of that an SVG with script, event
handlers, foreign HTML or links to other documents is refused, and so is one with a DOCTYPE:
entity declarations are how XML bombs grow, and a logo needs none.
"""
from __future__ import annotations

import hashlib
import re
import xml.etree.ElementTree as ElementTree
from dataclasses import dataclass
from pathlib import Path

import defusedxml.ElementTree as SafeElementTree
from defusedxml import DefusedXmlException

from kamusm.errors import ConfigError

LOGO_MAX_BYTES = 512 * 1024
LOGO_HEIGHT_PX = 48
LOGO_CSP = "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'; sandbox"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
JPEG_SIGNATURE = b"\xff\xd8\xff"
SVG_ROOT = "{http://www.w3.org/2000/svg}svg"  # without this namespace browsers do not draw it as an image
SVG_REFUSED_ELEMENTS = {"script", "foreignObject", "iframe", "embed", "object"}
# Fragments and pictures drawn into the SVG itself; anything else an href names is another document.
SVG_ALLOWED_HREFS = ("#", "data:image/png;", "data:image/jpeg;")
# JPEG start-of-frame markers, which carry the size; C4, C8 and CC in that range are other segments.
JPEG_FRAME_MARKERS = set(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}
SVG_PIXELS = re.compile(r"\s*(\d+(?:\.\d+)?|\.\d+)\s*(?:px)?\s*")


@dataclass(frozen=True)
class Logo:
    data: bytes
    media_type: str
    etag: str  # of the content, so a new logo is a new URL and a new ETag
    width: int  # the size the header shows it at, in CSS pixels: LOGO_HEIGHT_PX high
    height: int


def load_logo(setting: str, instance_path: Path) -> Logo | None:
    """The logo KAMUSM_LOGO_FILE names (relative to the instance folder, or absolute); None when empty.

    Raises ConfigError when the file is missing, not a regular file, larger than LOGO_MAX_BYTES,
    not a PNG, JPEG or SVG by its content, or an SVG that could load or run something.
    """
    if not setting.strip():
        return None
    path = Path(setting)
    if not path.is_absolute():
        path = instance_path / path
    if not path.exists():
        raise ConfigError(f"KAMUSM_LOGO_FILE: {path} does not exist")
    if not path.is_file():
        raise ConfigError(f"KAMUSM_LOGO_FILE: {path} is not a regular file")
    try:
        with path.open("rb") as handle:
            data = handle.read(LOGO_MAX_BYTES + 1)  # never more, whatever the file grew to since
    except OSError as exc:
        raise ConfigError(f"KAMUSM_LOGO_FILE: {path} cannot be read ({exc.strerror})") from None
    if len(data) > LOGO_MAX_BYTES:
        raise ConfigError(f"KAMUSM_LOGO_FILE: {path} is larger than {LOGO_MAX_BYTES // 1024} KiB")
    try:
        media_type, width, height = inspect_image(data)
    except ValueError as exc:
        raise ConfigError(f"KAMUSM_LOGO_FILE: {path} {exc}") from None
    return Logo(data, media_type, hashlib.sha256(data).hexdigest()[:32],
                max(1, round(LOGO_HEIGHT_PX * width / height)), LOGO_HEIGHT_PX)


def inspect_image(data: bytes) -> tuple[str, float, float]:
    """(media type, width, height) from the content: for an SVG its viewBox, else its width and height.

    Raises ValueError, with the reason, for anything but a PNG, JPEG or SVG whose size can be read.
    """
    if data.startswith(PNG_SIGNATURE):
        if data[12:16] != b"IHDR" or len(data) < 24:
            raise ValueError("is a damaged PNG (no IHDR header)")
        media_type, width, height = "image/png", int.from_bytes(data[16:20]), int.from_bytes(data[20:24])
    elif data.startswith(JPEG_SIGNATURE):
        media_type, (width, height) = "image/jpeg", _jpeg_size(data)
    else:
        media_type, (width, height) = "image/svg+xml", _svg_size(_svg_root(data))
    if width <= 0 or height <= 0:
        raise ValueError("has no width or height")
    return media_type, width, height


def _jpeg_size(data: bytes) -> tuple[int, int]:
    index = 2
    while index + 9 <= len(data) and data[index] == 0xFF:
        marker = data[index + 1]
        if marker == 0xFF:  # a fill byte before the marker
            index += 1
        elif marker in JPEG_FRAME_MARKERS:
            return int.from_bytes(data[index + 7:index + 9]), int.from_bytes(data[index + 5:index + 7])
        else:
            index += 2 + int.from_bytes(data[index + 2:index + 4])
    raise ValueError("is a damaged JPEG (no frame header with its size)")


def _svg_root(data: bytes) -> ElementTree.Element:
    """The <svg> root element. Raises ValueError for what is no SVG, or one that could load or run something."""
    not_an_image = ValueError("is not a PNG, JPEG or SVG image (its content decides, not its name)")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise not_an_image from None
    if "<!doctype" in text.lower() or "<!entity" in text.lower():
        raise ValueError("has a DOCTYPE or entity declarations, which an SVG logo needs none of")
    try:
        root = SafeElementTree.fromstring(data)  # defusedxml: no DTD, entity or external reference is ever read
    except (ElementTree.ParseError, DefusedXmlException):
        raise not_an_image from None
    if root.tag != SVG_ROOT:
        raise not_an_image
    for element in root.iter():
        name = element.tag.rpartition("}")[2]
        if name in SVG_REFUSED_ELEMENTS:
            raise ValueError(f"is an SVG with a <{name}> element, which could run or load something")
        for attribute, value in element.attrib.items():
            attribute = attribute.rpartition("}")[2]
            if attribute.lower().startswith("on"):
                raise ValueError(f"is an SVG with an event handler ({attribute}), which could run script")
            if attribute == "href" and not value.strip().startswith(SVG_ALLOWED_HREFS):
                raise ValueError("is an SVG that links to another document (an href outside the file)")
    return root


def _svg_size(root: ElementTree.Element) -> tuple[float, float]:
    view_box = root.get("viewBox", "").replace(",", " ").split()
    if len(view_box) == 4 and all(SVG_PIXELS.fullmatch(number) for number in view_box[2:]):
        return float(view_box[2]), float(view_box[3])
    width, height = SVG_PIXELS.fullmatch(root.get("width", "")), SVG_PIXELS.fullmatch(root.get("height", ""))
    if width and height:
        return float(width.group(1)), float(height.group(1))
    raise ValueError("is an SVG without a viewBox or a width and height in pixels")
