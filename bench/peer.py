"""Against the reference server: our site and azure-mobile-apps 4.0.2, both on a SQLite file.

    .venv/bin/python bench/peer.py --rows 100000

Both servers get byte-identical rows (bench/datagen.py) in a fresh copy of their seeded
SQLite file (WAL journal on both) and are driven by the same loops in the same run:
* a clean v2 pull of every row with the JS client's query at $top 50 and at $top 1000;
* inserts (POST) and conditional updates (PATCH + If-Match) from 8 concurrent clients.
Reported: rows/s and ops/s for each, and ours / peer (target >= 2x for pulls and inserts).
The peer is one Node process (its sqlite provider runs every statement on one connection);
ours is granian (or gunicorn, --server) with --workers workers of --threads threads each.
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

from common import SERVERS, WORK, Peer, Site, log, machine_note, pct, print_table, pull_v2
from datagen import seed_peer, seed_sqlite, sqlite_path
from push import run_phase


def fresh_copy(src: Path, name: str) -> Path:
    dst = WORK / name
    for suffix in ("", "-wal", "-shm", "-journal"):
        Path(f"{dst}{suffix}").unlink(missing_ok=True)
    shutil.copyfile(src, dst)
    return dst


def measure(server, key: str, args, owned) -> tuple:
    """One measure on one server: (rate, unit, p50, p99, rows or failures, server CPU ms per request)."""
    cpu0 = server.cpu()
    if key.startswith("pull"):
        top = int(key.split()[1])
        st = pull_v2(server.host, top)
        if st.rows != args.rows:
            log(f"  warning: {server.name} pulled {st.rows} rows, expected {args.rows}")
        cpu_ms = (server.cpu() - cpu0) * 1e3 / max(st.requests, 1)
        return (st.rows_per_s, "rows/s", pct(st.latencies, 50), pct(st.latencies, 99), st.rows, cpu_ms)
    kind = key.split()[0]
    ph = run_phase(server.host, args.clients, args.seconds, kind, owned)
    fails = ", ".join(f"{k}x{v}" for k, v in sorted(ph.statuses.items()))
    requests = max(len(ph.latencies), 1)
    cpu_ms = (server.cpu() - cpu0) * 1e3 / requests
    return (ph.ops, "ops/s", pct(ph.latencies, 50), pct(ph.latencies, 99), fails or ph.ok, cpu_ms)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000, help="rows in the table and pulled (default 100000)")
    parser.add_argument("--clients", type=int, default=8, help="concurrent push clients (default 8)")
    parser.add_argument("--seconds", type=float, default=8.0, help="duration of each push phase (default 8)")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers (default 2)")
    parser.add_argument("--threads", type=int, default=1,
                        help="threads per worker: granian --blocking-threads, gunicorn gthread (default 1)")
    parser.add_argument("--rounds", type=int, default=2, help="rounds; each side's best is reported (default 2)")
    parser.add_argument("--server", choices=SERVERS, default="granian",
                        help="application server for our site (default granian, as the README recommends)")
    args = parser.parse_args(argv)

    log(f"seeding the two SQLite files with {args.rows} Task rows ...")
    seed_sqlite(args.rows, args.rows // 2, log=log)
    seed_peer(args.rows, log=log)
    site_db = fresh_copy(sqlite_path(args.rows, "site"), "run_site.sqlite3")
    peer_db = fresh_copy(sqlite_path(args.rows, "peer"), "run_peer.sqlite3")
    keys = ["pull 50", "pull 1000", f"insert x{args.clients}", f"update x{args.clients}"]
    best: dict[str, dict[str, tuple]] = {"ours": {}, "peer": {}}
    rss: dict[str, float] = {}
    # Both servers stay up; the measures alternate between them (and the order flips each
    # round), so a load change on the shared machine hits both sides alike.
    with Site(f"sqlite:///{site_db}", workers=args.workers, threads=args.threads, server=args.server) as site, \
            Peer(peer_db) as node:
        sides = [("ours", site), ("peer", node)]
        owned = {name: [[] for _ in range(args.clients)] for name, _ in sides}
        for _, server in sides:  # warm every worker (imports, connections) before measuring
            for top in (50, 1000):
                pull_v2(server.host, top, max_requests=10)
        for r in range(args.rounds):
            for key in keys:
                for name, server in (sides if r % 2 == 0 else sides[::-1]):
                    log(f"round {r + 1}: {name}: {key} ...")
                    result = measure(server, key, args, owned[name])
                    if key not in best[name] or result[0] > best[name][key][0]:
                        best[name][key] = result
        rss = {name: sum(server.rss().values()) / 1024 for name, server in sides}

    rows = []
    for key in keys:
        o, p = best["ours"][key], best["peer"][key]
        rows.append([key, o[1], o[0], p[0], f"{o[0] / p[0]:.2f}x" if p[0] else "n/a",
                     f"{o[2] * 1e3:.1f} / {p[2] * 1e3:.1f}", f"{o[3] * 1e3:.1f} / {p[3] * 1e3:.1f}",
                     f"{o[5]:.2f} / {p[5]:.2f}", f"{o[4]} / {p[4]}"])
    rows.append(["server RSS after (MB)", "MB", rss["ours"], rss["peer"], f"{rss['ours'] / rss['peer']:.2f}x",
                 "", "", "", ""])
    print_table(
        f"Ours vs azure-mobile-apps 4.0.2 (Node {node_version()}), both on SQLite, {args.rows:,} rows, "
        f"best of {args.rounds} interleaved rounds ({machine_note()})",
        ["measure", "unit", "ours", "peer", "ours/peer", "p50 ms ours/peer", "p99 ms ours/peer",
         "CPU ms/req ours/peer", "rows or failures"],
        rows,
        note=f"Ours: {args.server}, {args.workers} workers, {args.threads} thread(s) each. Peer: one Node process. "
             "Targets: pull (page 50 and 1000) and insert x8 each >= 2x the peer.")


def node_version() -> str:
    import subprocess

    return subprocess.run(["node", "--version"], capture_output=True, text=True).stdout.strip()


if __name__ == "__main__":
    main()
