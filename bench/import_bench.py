"""Roster import speed against the raw AES-GCM seal rate.

Run by hand: `.venv/bin/python bench/import_bench.py [ROWS]` (default 100,000).
Makes a roster CSV of ROWS holders without security words (a word costs one
Argon2id hash, which would measure Argon2, not the import), imports it through
`kamusm import` into a throwaway instance, and in the same run times sealing
ROWS x 2 secrets with AES-GCM alone. Prints rows/s, seals/s and their ratio.
"""
from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from cryptography.hazmat.primitives.ciphers.aead import AESGCM  # noqa: E402

from kamusm.identity import tckn_checksum_ok  # noqa: E402
from kamusm.web.factory import create_app  # noqa: E402


def valid_identities(count: int):
    number = 10000000000
    while count:
        number += 1
        text = str(number)
        if tckn_checksum_ok(text):
            count -= 1
            yield text


def write_roster(path: Path, rows: int) -> None:
    with path.open("w", encoding="utf-8") as handle:
        handle.write("identity,name,phone,email,card_serial,cert_issued,pin,puk\n")
        for index, identity in enumerate(valid_identities(rows)):
            handle.write(f"{identity},Bench Holder,+90543{index % 10**7:07d},bench{index}@demo.edu.tr,"
                         f"B{index:09d},2015-01-01,{index % 10**6:06d},{index % 10**8:08d}\n")


def seal_rate(count: int) -> float:
    aead = AESGCM(os.urandom(32))
    started = time.perf_counter()
    for index in range(count):
        aead.encrypt(os.urandom(12), f"{index:08d}".encode(), b"kamusm:v1:secret:1:B000000001:pin")
    return count / (time.perf_counter() - started)


def main() -> None:
    rows = int(sys.argv[1]) if len(sys.argv) > 1 else 100_000
    with tempfile.TemporaryDirectory() as folder:
        roster = Path(folder) / "roster.csv"
        write_roster(roster, rows)
        # A non-demo portal must name real backends (the outbox is demo-only); an import sends nothing.
        app = create_app({"KAMUSM_INSTANCE": str(Path(folder) / "instance"), "KAMUSM_SMS_BACKEND": "console",
                          "KAMUSM_MAIL_BACKEND": "smtp"})
        runner = app.test_cli_runner()
        started = time.perf_counter()
        result = runner.invoke(args=["kamusm", "import", str(roster)])
        elapsed = time.perf_counter() - started
        if result.exit_code != 0:
            print(result.output)
            raise SystemExit(1)
    rows_per_second = rows / elapsed
    seals_per_second = seal_rate(rows * 2)
    print(f"rows imported:        {rows}")
    print(f"import:               {elapsed:.1f} s, {rows_per_second:,.0f} rows/s")
    print(f"raw AES-GCM seals:    {seals_per_second:,.0f} seals/s")
    print(f"rows/s : seals/s:     {rows_per_second / seals_per_second:.4f}")
    print(f"AES share of import:  {rows_per_second * 3 / seals_per_second:.1%} (3 AES-GCM operations a row: "
          "2 secrets, 1 data-key wrap)")


if __name__ == "__main__":
    main()
