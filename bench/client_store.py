"""The Python client's local writes alone: pulled pages applied to its SQLite store, no server.

    .venv/bin/python bench/client_store.py --other /tmp/before

Applies N synthetic rows (the wire form the server sends, 1 in 101 deleted) page by page with
``LocalStore.apply_page`` and a delta token, as a pull does, into a fresh store file; for
``--other DIR`` the store of another checkout is loaded too and the two alternate, best of
``--rounds``. The v2 loop's own per-page token step is included (``--other`` checkouts that
parse every row's updatedAt in the loop are measured doing so). Reported: rows/s and
microseconds per row, per page size.
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib.util
import sys
import time
import types
import uuid
from pathlib import Path

from common import ROOT, WORK, log, machine_note, print_table


def load_client(root: Path, alias: str) -> types.ModuleType:
    """Import ``django_offline_sync.client.store`` (and its sibling modules) from ``root`` as ``alias``."""
    pkg_dir = root / "django_offline_sync" / "client"
    pkg = types.ModuleType(alias)
    pkg.__path__ = [str(pkg_dir)]
    sys.modules[alias] = pkg
    for name in ("errors", "store"):
        spec = importlib.util.spec_from_file_location(f"{alias}.{name}", pkg_dir / f"{name}.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules[f"{alias}.{name}"] = module
        spec.loader.exec_module(module)
    return sys.modules[f"{alias}.store"]


def make_items(rows: int) -> list[dict]:
    base = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)
    items = []
    for n in range(rows):
        at = (base + dt.timedelta(milliseconds=n)).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
        items.append({"id": uuid.UUID(int=n).hex, "createdAt": at, "updatedAt": at, "version": "AAABjMKxFkg=",
                      "deleted": n % 101 == 0, "text": f"task number {n}", "complete": n % 2 == 0,
                      "priority": n % 5, "dueDate": None})
    return items


def run(store_mod, items: list[dict], page: int, loop_parses: bool) -> float:
    path = WORK / "client_store_bench.sqlite3"
    for suffix in ("", "-wal", "-shm", "-journal"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    store = store_mod.LocalStore(path)
    store.ensure_table("Task")
    t0 = time.perf_counter()
    for start in range(0, len(items), page):
        chunk = items[start:start + page]
        store.apply_page("Task", chunk, "*")
        if loop_parses:  # the v2 loop of that checkout parsed every row's stamp again
            max(store_mod.parse_timestamp(i["updatedAt"]) for i in chunk)
    seconds = time.perf_counter() - t0
    store.close()
    return seconds


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--other", metavar="DIR", help="another checkout to compare with (e.g. a git worktree)")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args(argv)
    WORK.mkdir(exist_ok=True)
    items = make_items(args.rows)
    impls = [("this checkout", load_client(ROOT, "client_here"), False)]
    if args.other:
        other = load_client(Path(args.other), "client_other")
        loop_parses = "newest_timestamp" not in Path(args.other, "django_offline_sync/client/store.py").read_text()
        impls.append((args.other, other, loop_parses))
    best: dict[tuple[str, int], float] = {}
    for r in range(args.rounds):
        for page in (50, 1000):
            for label, mod, loop_parses in (impls if r % 2 == 0 else impls[::-1]):
                log(f"round {r + 1}: {label}, page {page} ...")
                s = run(mod, items, page, loop_parses)
                best[(label, page)] = min(best.get((label, page), s), s)
    rows = []
    for page in (50, 1000):
        ref = best[(impls[-1][0], page)]
        for label, _, _ in impls:
            s = best[(label, page)]
            rows.append([label, page, args.rows / s, 1e6 * s / args.rows, f"{ref / s:.2f}x"])
    print_table(f"Client local writes: {args.rows:,} rows applied page by page, best of {args.rounds} "
                f"alternating rounds ({machine_note()})",
                ["store", "page", "rows/s", "us/row", f"vs {impls[-1][0]}"], rows)


if __name__ == "__main__":
    main()
