"""SMS delivery behind one small interface: outbox, console, http.

`send(to, text)` either delivers or raises SmsFailed; callers audit the result.
The http backend posts a JSON body built from a template to a generic gateway,
with a timeout and a bounded number of retries on network errors and 5xx.
The text is never logged by this module: it carries the code.
"""
from __future__ import annotations

import json
import sys
import time
import urllib.error
import urllib.request
from typing import Callable, Protocol

from kamusm import storage
from kamusm.errors import SmsFailed

RETRY_PAUSE_SECONDS = 0.5


class SmsBackend(Protocol):
    def send(self, to: str, text: str) -> None: ...


class OutboxSms:
    """Stores messages in the database; /demo/phone shows them as a phone would."""

    def __init__(self, db_factory: Callable, clock: Callable[[], float]):
        self._db_factory = db_factory
        self._clock = clock

    def send(self, to: str, text: str) -> None:
        storage.outbox.add_to_outbox(self._db_factory(), "sms", to, text, self._clock())


class ConsoleSms:
    """Writes messages to standard output: for a developer's own terminal only."""

    def send(self, to: str, text: str) -> None:
        sys.stdout.write(f"SMS to {to}: {text}\n")
        sys.stdout.flush()


class HttpSms:
    """Posts to an SMS gateway's JSON webhook."""

    def __init__(self, url: str, token: str, body_template: str, timeout_seconds: int, retries: int):
        self._url = url
        self._token = token
        self._body_template = body_template
        self._timeout_seconds = timeout_seconds
        self._retries = retries

    def body(self, to: str, text: str) -> bytes:
        filled = self._body_template.replace('"{to}"', json.dumps(to)).replace('"{message}"', json.dumps(text))
        json.loads(filled)
        return filled.encode()

    def send(self, to: str, text: str) -> None:
        request = urllib.request.Request(self._url, data=self.body(to, text), method="POST",
                                         headers={"Content-Type": "application/json"})
        if self._token:
            request.add_header("Authorization", f"Bearer {self._token}")
        reason = ""
        for attempt in range(self._retries + 1):
            if attempt:
                time.sleep(RETRY_PAUSE_SECONDS)
            try:
                # config.check_settings admits only http(s):// gateway URLs, hence the nosec.
                with urllib.request.urlopen(request, timeout=self._timeout_seconds) as response:  # nosec B310
                    if 200 <= response.status < 300:
                        return
                    reason = f"HTTP {response.status}"
            except urllib.error.HTTPError as exc:
                reason = f"HTTP {exc.code}"
                if exc.code < 500:
                    break
            except (urllib.error.URLError, TimeoutError, OSError) as exc:
                reason = type(exc).__name__
        raise SmsFailed(reason)


def make_backend(settings: dict, db_factory: Callable, clock: Callable[[], float]) -> SmsBackend:
    name = settings["KAMUSM_SMS_BACKEND"]
    if name == "console":
        return ConsoleSms()
    if name == "http":
        return HttpSms(settings["KAMUSM_SMS_HTTP_URL"], settings["KAMUSM_SMS_HTTP_TOKEN"],
                       settings["KAMUSM_SMS_HTTP_BODY"], settings["KAMUSM_SMS_HTTP_TIMEOUT"],
                       settings["KAMUSM_SMS_HTTP_RETRIES"])
    return OutboxSms(db_factory, clock)
