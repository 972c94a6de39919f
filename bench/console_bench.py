"""Review console benchmark: page render latency with many decisions stored.

    .venv/bin/python bench/console_bench.py [--decisions 100000] [--requests 40] [--postgres] [--out bench/results/console.md]

Fills a fresh database (SQLite file; with --postgres also a throwaway PostgreSQL cluster, as the tests start one) with
audit records spread over the last 7 days (texts kept, 1 % reviewed), runs the console in-process on loopback, signs in
as a browser does, and times each main page over HTTP (server render and transfer, one client at a time). The default is
short (10,000 decisions); the target figure is for 100,000.
"""

from __future__ import annotations

import argparse
import random
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx
from sqlalchemy import text

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
from app.config import Settings  # noqa: E402
from app.console.auth import add_token  # noqa: E402
from app.console.db import Database  # noqa: E402
from app.console.ingest import store_records  # noqa: E402
from app.console.reviews import record_review  # noqa: E402
from app.console.server import create_standalone  # noqa: E402
from app.local_server import LocalServer  # noqa: E402
from tests.console.pg import PostgresServer  # noqa: E402
from tests.console.records import audit_record  # noqa: E402

TARGET_MS = 200.0


def fill(url: str, count: int) -> float:
    started = time.perf_counter()
    db = Database(url)
    rng = random.Random(7)
    now = time.time()
    batch = []
    for i in range(count):
        tenant = ("acme", "globex", "initech")[i % 3]
        batch.append(audit_record(i, now - rng.random() * 7 * 86400, rng, tenant=tenant))
        if len(batch) == 5000:
            store_records(db, batch)
            batch = []
    store_records(db, batch)
    for decision_id in range(1, count + 1, 100):
        record_review(db, decision_id, "bench", {"pacification": "correct", "distress": "correct"})
    # What autovacuum (PostgreSQL) and a long-running database have done by the time anyone reads 100,000 decisions:
    # fresh planner statistics and, on PostgreSQL, the visibility map that lets a count read the index alone.
    with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        connection.execute(text("VACUUM ANALYZE" if db.backend == "postgresql" else "ANALYZE"))
    db.dispose()
    return time.perf_counter() - started


def pages(count: int) -> list[tuple[str, str]]:
    middle = max(1, count // 2)
    return [("decisions list", "/"), ("list, rule filter", "/?rule=pacification"),
            ("list, label + tenant filter", "/?label=rushed_advice&tenant=acme"),
            ("list, page 200", "/?page=200"), ("decision", f"/decisions/{middle}"),
            ("charts (7 days)", "/charts"), ("charts, tenant filter", "/charts?tenant=globex"),
            ("API list", "/api/decisions?action=regenerate")]


def measure(url: str, count: int, requests: int, workdir: Path) -> list[tuple[str, float, float]]:
    tokens = workdir / "tokens.json"
    token = add_token(tokens, "bench", "admin")
    settings = Settings(console_db_url=url, console_tokens_file=tokens, console_secure_cookies=False)
    rows = []
    with LocalServer(create_standalone(settings)) as server, httpx.Client(base_url=f"{server.url}/console",
                                                                          timeout=60) as http:
        form = http.get("/login").text
        csrf = re.search(r'name="csrf" value="([^"]+)"', form)
        assert csrf is not None
        http.post("/login", data={"token": token, "csrf": csrf.group(1)})
        for name, path in pages(count):
            headers = {"authorization": f"Bearer {token}"} if path.startswith("/api/") else {}
            http.get(path, headers=headers).raise_for_status()  # warm: model loaded, caches filled
            times = []
            for _ in range(requests):
                started = time.perf_counter()
                http.get(path, headers=headers).raise_for_status()
                times.append((time.perf_counter() - started) * 1000)
            times.sort()
            rows.append((name, statistics.median(times), times[max(0, int(len(times) * 0.95) - 1)]))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--decisions", type=int, default=10_000)
    parser.add_argument("--requests", type=int, default=40, help="timed requests per page")
    parser.add_argument("--postgres", action="store_true", help="also on a throwaway PostgreSQL cluster")
    parser.add_argument("--out", type=Path, help="write the results as Markdown here")
    args = parser.parse_args()
    results = {}
    with tempfile.TemporaryDirectory(prefix="heedful-console-bench-") as tmp:
        workdir = Path(tmp)
        sqlite_url = f"sqlite:///{workdir / 'console.db'}"
        print(f"filling SQLite with {args.decisions} decisions ...", file=sys.stderr)
        fill_s = fill(sqlite_url, args.decisions)
        results["SQLite"] = (fill_s, measure(sqlite_url, args.decisions, args.requests, workdir))
        if args.postgres:
            server = PostgresServer()
            server.start()
            try:
                url = server.url(server.create_database())
                print(f"filling PostgreSQL with {args.decisions} decisions ...", file=sys.stderr)
                fill_s = fill(url, args.decisions)
                results["PostgreSQL"] = (fill_s, measure(url, args.decisions, args.requests, workdir))
            finally:
                server.stop()
    lines = [f"Decisions stored: {args.decisions:,}; {args.requests} timed requests per page, one client; "
             f"target p95 ≤ {TARGET_MS:.0f} ms.", ""]
    for backend, (fill_s, rows) in results.items():
        lines += [f"### {backend} (filled in {fill_s:.0f} s)", "", "| page | p50 ms | p95 ms | within target |",
                  "| --- | ---: | ---: | --- |"]
        lines += [f"| {name} | {p50:.1f} | {p95:.1f} | {'yes' if p95 <= TARGET_MS else 'NO'} |" for name, p50, p95 in rows]
        lines.append("")
    text = "\n".join(lines)
    print(text)
    if args.out:
        command = " ".join(["bench/console_bench.py", *sys.argv[1:]])
        args.out.write_text(f"# Console benchmark\n\nCommand: `.venv/bin/python {command}`\n\n{text}\n", encoding="utf-8")


if __name__ == "__main__":
    main()
