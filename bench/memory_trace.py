"""Is the server's RSS growth over a long pull a leak or the allocator? Pages served in-process.

    .venv/bin/python bench/memory_trace.py --rows 1000000 --passes 2

The v2 pull loop ($top 1000, the JS client's query) runs through the full Django stack via
the test client (as one gunicorn worker would run it, without the socket), over every row,
``--passes`` times. Every ``--every`` pages it records:

* RSS (what memory.py sees);
* glibc ``mallinfo2``: bytes in use by malloc (``uordblks`` + mmapped ``hblkhd``) and bytes
  free but kept by the allocator (``fordblks``);
* live Python objects (``gc.get_objects``) and pymalloc blocks (``sys.getallocatedblocks``).

A leak grows the bytes in use and the live objects with the pages; allocator retention grows
RSS and the free-but-kept bytes while the bytes in use stay flat, and ``malloc_trim(0)`` at the
end of each pass gives the memory back.
"""

from __future__ import annotations

import argparse
import ctypes
import gc
import os
import sys

from common import inprocess_clients, log, machine_note, print_table, rss_kb, v2_url
from datagen import seed_pg


class MallInfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in (
        "arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks", "fordblks",
        "keepcost")]


LIBC = ctypes.CDLL("libc.so.6")
LIBC.mallinfo2.restype = MallInfo2


def sample(page: int, pass_no: int) -> list:
    info = LIBC.mallinfo2()
    mb = 1024 * 1024
    return [pass_no, page, rss_kb(os.getpid()) / 1024, (info.uordblks + info.hblkhd) / mb, info.fordblks / mb,
            len(gc.get_objects()), sys.getallocatedblocks()]


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--passes", type=int, default=2)
    parser.add_argument("--every", type=int, default=100, help="pages between samples (default 100)")
    args = parser.parse_args(argv)

    log(f"seeding PostgreSQL with {args.rows} Task rows ...")
    seed_pg(args.rows, args.rows // 2, log=log)
    client, _ = inprocess_clients(args.rows)
    client.get(v2_url("1970-01-01T00:00:00.000Z", 1000))  # warm
    gc.collect()
    rows = [sample(0, 0)]
    for pass_no in range(1, args.passes + 1):
        log(f"pass {pass_no}: pulling {args.rows} rows in-process ...")
        token, skip, pages = "1970-01-01T00:00:00.000Z", 0, 0
        while True:
            resp = client.get(v2_url(token, 1000, skip))
            assert resp.status_code == 200, resp.content[:300]
            items = resp.json()
            items = items["results"] if isinstance(items, dict) else items
            pages += 1
            if not items:
                break
            last = items[-1]["updatedAt"]
            token, skip = (token, skip + len(items)) if last == token else (last, 0)
            del resp, items
            if pages % args.every == 0:
                rows.append(sample(pages, pass_no))
        gc.collect()
        rows.append(sample(pages, pass_no))
        LIBC.malloc_trim(0)
        rows.append([f"{pass_no} trimmed", pages, *sample(pages, pass_no)[2:]])
    print_table(
        f"In-process v2 pull ($top 1000) of {args.rows:,} rows x {args.passes}, memory per sample ({machine_note()})",
        ["pass", "pages", "RSS MB", "malloc in use MB", "malloc free kept MB", "gc objects", "pymalloc blocks"],
        rows,
        note="'trimmed': after malloc_trim(0) at the end of the pass. A leak: 'in use' and objects grow "
             "with pages. Allocator retention: RSS and 'free kept' grow, 'in use' flat, trim returns it.")


if __name__ == "__main__":
    main()
