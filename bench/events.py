"""Change events (``GET /tables/$events``): memory per idle subscriber, and commit→event delay.

    .venv/bin/python bench/events.py [--subscribers 1000] [--seconds 10] [--databases postgresql sqlite]

For each database, on a fresh migrated database:

1. **Idle subscribers.** One uvicorn process (ASGI) serves the example site. The bench opens
   ``--subscribers`` streams to ``/tables/$events?tables=Task,Note`` (asyncio sockets, one
   connection each) and reads each one's ``ready`` event; the server's RSS before and after
   gives the memory per subscriber. Then one write, through a second process (gunicorn), is
   announced to every subscriber: the fan-out time (first and last arrival) is reported.
2. **Delay under load.** ``--writers`` threads insert Tasks through gunicorn (2 workers) for
   ``--seconds`` while ``--listeners`` subscribers read the stream; for each event the delay is
   its arrival time minus its ``updatedAt`` (the stamp, taken just before the commit, from the
   same clock). Reported: p50/p99 delay and the write rate. With the default settings events
   are coalesced to one per 250 ms per table, and a non-PostgreSQL database is polled every
   1,000 ms: those bound the delay there. Clients and servers share the machine's cores.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import os
import tempfile
import threading
import time
import uuid
from pathlib import Path

import psycopg
from common import (
    BENCH,
    ROOT,
    TABLE,
    V3,
    VENV_BIN,
    WORK,
    Http,
    Site,
    _Server,
    free_port,
    log,
    machine_note,
    pct,
    print_table,
)
from datagen import PG_ADMIN, fresh_database

PG_NAME = "bench_events_run"
SUBSCRIBE = "/tables/$events?tables=Task,Note"


class Uvicorn(_Server):
    """The example site under uvicorn, one process (ASGI)."""

    name = "uvicorn"

    def __init__(self, database_url: str) -> None:
        super().__init__()
        self.database_url = database_url

    def start(self) -> None:
        self.port = free_port()
        env = {**os.environ, "DJANGO_SETTINGS_MODULE": "bench_settings", "DATABASE_URL": self.database_url,
               "PYTHONPATH": f"{BENCH}:{ROOT}:{WORK}"}
        args = [str(VENV_BIN / "python"), "-m", "uvicorn", "example_project.asgi:application", "--host", "127.0.0.1",
                "--port", str(self.port), "--log-level", "warning", "--backlog", "4096", "--no-access-log"]
        self._spawn(args, env, ROOT, "uvicorn.log")
        self.wait_ready(V3)


async def open_stream(port: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port, limit=1 << 20)
    writer.write(f"GET {SUBSCRIBE} HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: text/event-stream\r\n"
                 "ZUMO-API-VERSION: 3.0.0\r\n\r\n".encode())
    await writer.drain()
    status = await reader.readline()
    if b" 200 " not in status:
        raise RuntimeError(f"subscription refused: {status!r}")
    while (await reader.readline()).strip():  # headers
        pass
    return reader, writer


async def next_change(reader: asyncio.StreamReader) -> dict:
    """The next change event's data (chunked framing and comments skipped)."""
    while True:
        line = await reader.readline()
        if not line:
            raise ConnectionError("stream closed")
        if line.startswith(b"data: {\"table\""):
            return json.loads(line[6:])


def stamp_seconds(updated_at: str) -> float:
    return dt.datetime.fromisoformat(updated_at.replace("Z", "+00:00")).timestamp()


async def idle(port: int, server: Uvicorn, writes: Site, count: int) -> list:
    await asyncio.sleep(1)
    before = server.rss()
    streams = []
    for batch in range(0, count, 100):
        streams += await asyncio.gather(*(open_stream(port) for _ in range(min(100, count - batch))))
    for reader, _ in streams:  # each one's ready event
        while not (await reader.readline()).startswith(b"data: {\"tables\""):
            pass
    await asyncio.sleep(2)
    after = server.rss()
    grown = sum(after.values()) - sum(before.values())
    # one write, announced to everybody
    http = Http(writes.host, V3)
    started = time.time()
    status, _, data = http.request("POST", TABLE, json.dumps({"text": "fan-out"}).encode())
    assert status == 201, data
    arrivals = await asyncio.gather(*(asyncio.wait_for(next_change(r), 60) for r, _ in streams))
    done = time.time()
    received = sum(1 for a in arrivals if a["table"] == "Task")
    for _, writer in streams:
        writer.close()
    return [count, sum(before.values()) / 1024, sum(after.values()) / 1024, grown / count, received,
            f"{(done - started) * 1000:,.0f} ms"]


def load(port: int, writes: Site, writers: int, listeners: int, seconds: float) -> list:
    delays: list[float] = []
    stop = threading.Event()
    written = [0]

    async def listen_all() -> None:
        streams = [await open_stream(port) for _ in range(listeners)]

        async def one(reader: asyncio.StreamReader) -> None:
            while not stop.is_set():
                try:
                    change = await asyncio.wait_for(next_change(reader), 1)
                except TimeoutError:
                    continue
                delays.append(time.time() - stamp_seconds(change["updatedAt"]))

        await asyncio.gather(*(one(r) for r, _ in streams))
        for _, writer in streams:
            writer.close()

    def write() -> None:
        http = Http(writes.host, V3)
        while not stop.is_set():
            status, _, _ = http.request("POST", TABLE, json.dumps({"text": "load", "id": uuid.uuid4().hex}).encode())
            written[0] += status == 201
        http.close()

    listener = threading.Thread(target=lambda: asyncio.run(listen_all()))
    listener.start()
    time.sleep(2)
    threads = [threading.Thread(target=write) for _ in range(writers)]
    for thread in threads:
        thread.start()
    time.sleep(seconds)
    stop.set()
    for thread in [*threads, listener]:
        thread.join()
    return [listeners, writers, written[0] / seconds, len(delays), pct(delays, 50) * 1e3, pct(delays, 99) * 1e3]


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--subscribers", type=int, default=1000)
    parser.add_argument("--listeners", type=int, default=20)
    parser.add_argument("--writers", type=int, default=4)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--databases", nargs="+", choices=["postgresql", "sqlite"], default=["postgresql", "sqlite"])
    args = parser.parse_args(argv)
    idle_rows, load_rows = [], []
    with tempfile.TemporaryDirectory() as tmp:
        for kind in args.databases:
            url = fresh_database(kind, PG_NAME, Path(tmp))
            try:
                with Uvicorn(url) as server, Site(url, workers=2) as writes:
                    log(f"{kind}: {args.subscribers} idle subscribers ...")
                    idle_rows.append([kind, *asyncio.run(idle(server.port, server, writes, args.subscribers))])
                    log(f"{kind}: {args.listeners} subscribers, {args.writers} writers, {args.seconds:g}s ...")
                    load_rows.append([kind, *load(server.port, writes, args.writers, args.listeners, args.seconds)])
            finally:
                if kind == "postgresql":
                    with psycopg.connect(PG_ADMIN, autocommit=True) as admin:
                        admin.execute(f'DROP DATABASE IF EXISTS "{PG_NAME}" WITH (FORCE)')
    print_table(
        f"Idle change-event subscribers on one uvicorn process ({machine_note()})",
        ["database", "subscribers", "RSS before MiB", "RSS after MiB", "KiB per subscriber", "got the write",
         "fan-out (last)"],
        idle_rows,
    )
    print_table(
        f"Commit -> event delay under a write load ({machine_note()})",
        ["database", "listeners", "writers", "writes/s", "events", "delay p50 ms", "delay p99 ms"],
        load_rows,
        note="Delay = arrival - updatedAt (the write's stamp). Defaults: EVENTS_COALESCE_MS 250, "
             "EVENTS_POLL_MS 1000 (PostgreSQL: LISTEN/NOTIFY).",
    )


if __name__ == "__main__":
    main()
