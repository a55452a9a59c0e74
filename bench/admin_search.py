"""The console's holder search with many holders: median and worst time per query kind.

    .venv/bin/python bench/admin_search.py [HOLDERS]      # default 100000

Makes a throwaway database (the real migrations), adds HOLDERS holders with a card each in one
transaction, then times storage.holders.search_holders for an identity prefix, a card serial, a name
part, a name part matching many, and an empty query (every holder), 25 rows per page.
"""
from __future__ import annotations

import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from kamusm import storage  # noqa: E402

NAMES = ["Ayşe", "Mehmet", "Selin", "Deniz", "Can", "Elif", "Burak", "Zeynep", "Emre", "Ece"]
SURNAMES = ["Yılmaz", "Kaya", "Demir", "Şahin", "Çelik", "Yıldız", "Aydın", "Öztürk", "Arslan", "Doğan"]


def main(count: int) -> None:
    with tempfile.TemporaryDirectory() as folder:
        db = storage.connect(Path(folder) / "kamusm.db")
        storage.migrations.migrate(db)
        started = time.perf_counter()
        with storage.write(db):
            for n in range(count):
                storage.holders.upsert_holder(db, {"identity": f"{10000000000 + n}", "name": f"{NAMES[n % 10]} "
                                                   f"{SURNAMES[n // 10 % 10]} {n}", "phone": "+905300000000",
                                                   "email": "", "word_hash": None}, 0)
            db.conn.executemany("INSERT INTO cards (holder_id, serial, cert_issued) VALUES (?, ?, '2026')",
                                [(n + 1, f"S{n:09d}") for n in range(count)])
        print(f"{count} holders with a card each added in {time.perf_counter() - started:.1f} s")
        for label, query in [("identity prefix", "1000004"), ("card serial", f"S{count // 2:09d}"),
                             ("name, few", f"{count - 7}"), ("name, many", "şahin"), ("every holder", "")]:
            times = []
            for _ in range(15):
                started = time.perf_counter()
                rows, total = storage.holders.search_holders(db, query, 25, 0)
                times.append(time.perf_counter() - started)
            print(f"{label:16} {total:7d} matches  median {statistics.median(times) * 1000:6.1f} ms"
                  f"  worst {max(times) * 1000:6.1f} ms")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 100_000)
