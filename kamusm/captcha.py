"""Captcha challenges: made and checked on the server, single use, short-lived.

The answer never leaves the server: the database keeps only an HMAC of it and
the browser holds only the challenge id in its (server-side) session. Each GET
of the image or the audio makes a new challenge, so a refresh or switching to
audio invalidates the previous one. The audio alternative speaks digits only
(the voice files the `captcha` package ships), so audio challenges are digits.
"""
from __future__ import annotations

import hashlib
import hmac
import io
import secrets

from captcha.audio import AudioCaptcha
from captcha.image import ImageCaptcha

from kamusm import storage

CAPTCHA_TTL_SECONDS = 300
CAPTCHA_LENGTH = 5
ANSWER_MAX_LENGTH = 12
# No 0/O, 1/I/L, 2/Z, 5/S, 8/B: characters people misread in a distorted image.
IMAGE_ALPHABET = "ACDEFGHJKMNPQRTUVWXY34679"
AUDIO_ALPHABET = "0123456789"

_image = ImageCaptcha(width=200, height=70)
_audio = AudioCaptcha()


def _answer_mac(key: bytes, captcha_id: str, answer: str) -> str:
    message = f"{captcha_id}:{answer.strip().upper()}".encode()
    return hmac.new(key, message, hashlib.sha256).hexdigest()


def new_challenge(db, key: bytes, now: float, alphabet: str = IMAGE_ALPHABET,
                  answer: str | None = None) -> tuple[str, str]:
    """Store a fresh challenge; return (captcha_id, answer) for rendering only.

    `answer` lets tests fix the text; production always draws it from `secrets`.
    """
    if answer is None:
        answer = "".join(secrets.choice(alphabet) for _ in range(CAPTCHA_LENGTH))
    captcha_id = secrets.token_urlsafe(16)
    storage.captchas.save_captcha(db, captcha_id, _answer_mac(key, captcha_id, answer), now + CAPTCHA_TTL_SECONDS, now)
    return captcha_id, answer


def check_answer(db, key: bytes, captcha_id: str | None, answer: str, now: float) -> bool:
    """True when answer matches the challenge; the challenge is spent either way."""
    if not captcha_id or not answer or len(answer) > ANSWER_MAX_LENGTH:
        if captcha_id:
            storage.captchas.delete_captcha(db, captcha_id)
        return False
    stored = storage.captchas.take_captcha(db, captcha_id, now)
    if stored is None:
        return False
    return hmac.compare_digest(stored, _answer_mac(key, captcha_id, answer))


def render_png(answer: str) -> bytes:
    buffer = io.BytesIO()
    _image.write(answer, buffer, format="png")
    return buffer.getvalue()


def render_wav(answer: str) -> bytes:
    return bytes(_audio.generate(answer))
