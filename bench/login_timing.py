"""Does a login answer tell known IDs from unknown ones by its timing?

Run by hand: `.venv/bin/python bench/login_timing.py [ROUNDS]` (default 40).
Times POST /login (captcha off, demo holders) for a wrong word of a known ID and
for an unknown but checksum-valid ID, interleaved, and prints both medians and
their difference. DESIGN.md's bar: under 10 ms apart.
"""
from __future__ import annotations

import re
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from kamusm import vault  # noqa: E402
from kamusm.demo import load_demo_holders  # noqa: E402
from kamusm.web.db import get_db  # noqa: E402
from kamusm.web.factory import create_app  # noqa: E402

TOKEN = re.compile(r'name="csrf_token" value="([^"]+)"')


def timed_post(client, identity: str) -> float:
    token = TOKEN.search(client.get("/login").get_data(as_text=True)).group(1)
    started = time.perf_counter()
    response = client.post("/login", data={"csrf_token": token, "identity": identity, "security_word": "wrong-word"})
    elapsed = time.perf_counter() - started
    assert response.status_code == 401, response.status_code
    return elapsed * 1000


def main() -> None:
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 40
    with tempfile.TemporaryDirectory() as folder:
        app = create_app({"KAMUSM_INSTANCE": folder, "KAMUSM_DEMO": True, "KAMUSM_CAPTCHA": "off",
                          "RATELIMIT_ENABLED": False, "KAMUSM_LOCKOUT_THRESHOLD": 10})
        with app.app_context():
            load_demo_holders(get_db(), app.extensions["kamusm.hasher"], vault.app_keyring(), time.time())
        client = app.test_client()
        known, unknown = [], []
        for round_number in range(rounds):
            if round_number % 8 == 0:
                with app.app_context():
                    from kamusm import storage
                    known_holder = storage.holders.find_holder(get_db(), "10000000146")
                    storage.holders.clear_failures(get_db(), known_holder["id"], storage.holders.LOGIN)
            known.append(timed_post(client, "10000000146"))
            unknown.append(timed_post(client, "10000000450"))
    known_median, unknown_median = statistics.median(known), statistics.median(unknown)
    print(f"rounds:                 {rounds}")
    print(f"known ID, wrong word:   median {known_median:.1f} ms")
    print(f"unknown ID:             median {unknown_median:.1f} ms")
    print(f"difference:             {abs(known_median - unknown_median):.1f} ms (bar: < 10 ms)")


if __name__ == "__main__":
    main()
