"""Log redaction: what a log line may carry of a request, and what it must not.

Access logs print request paths, and a one-time link token (/reset/<token>, /profile/email/<token>) in
a path is as good as the link itself: anyone who reads the log could use it. The filter is on every
logger that prints paths (werkzeug, gunicorn's access and error logs, the app's own).
"""
from __future__ import annotations

import logging
import re
from collections.abc import Mapping


class RedactLinkTokens(logging.Filter):
    """Access logs print request paths; one-time link tokens (/reset/<token>, /profile/email/<token>,
    /admin/enrol/<token>) must not reach them."""

    PATTERN = re.compile(r"(/reset/|/profile/email/|/admin/enrol/)[^\s?\"']+")

    def _redact(self, text: str) -> str:
        return self.PATTERN.sub(r"\1[redacted]", text)

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = self._redact(str(record.msg))
        if isinstance(record.args, Mapping):
            # gunicorn's access atoms: a mapping object that must stay itself (it fills missing keys).
            for key, value in list(record.args.items()):
                if isinstance(value, str):
                    record.args[key] = self._redact(value)
        elif record.args:
            record.args = tuple(self._redact(arg) if isinstance(arg, str) else arg
                                for arg in (record.args if isinstance(record.args, tuple) else (record.args,)))
        return True
