"""Writers, pullers and the bookkeeping of the gap-free pull stress test.

Writers change ``Task`` rows through the ORM (own threads, own connections), some inside long
transactions that sleep before commit. Pullers replay each client generation's incremental
pull over HTTP exactly as docs/protocol.rst §4 describes, keep a local copy and a persisted delta token,
and are "killed" now and then: they abandon a pull mid-way and resume from the stored token.

The harness's own reads and writes name the primary (``PRIMARY``) explicitly, so that it measures
the truth even when a database router sends the site's reads to a streaming replica. A puller
may be given several base URLs (app servers behind a load balancer): it sends each request to
the next one in turn, next links included.
"""

from __future__ import annotations

import collections
import datetime as dt
import random
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, urlencode, urlsplit

import httpx
from django.db import DEFAULT_DB_ALIAS, DatabaseError, connections, transaction
from django.db.models import F

from django_offline_sync import stamping
from django_offline_sync.models import decode_version
from example_project.tasks.models import Task

EPOCH_MS = 0
PAGE = 50  # the v1/v2 clients' page size (MaxPageSize / pageSize)
MAX_REQUESTS_PER_PULL = 400
PRIMARY = DEFAULT_DB_ALIAS
LINK_RE = re.compile(r"^(?P<uri>.*?);\s*rel\s*=\s*(?P<rel>\w+)\s*$")  # NETCLI LinkHeaderValue


# -- time formats ---------------------------------------------------------------------------------


def parse_wire_ms(value: str) -> int:
    return stamping.datetime_to_ms(dt.datetime.fromisoformat(value.replace("Z", "+00:00")))


def iso_ms(ms: int) -> str:
    """``…SS.mmmZ``: the JS, Android and iOS literal and the CTK cast value."""
    return stamping.ms_to_datetime(ms).strftime("%Y-%m-%dT%H:%M:%S.") + f"{ms % 1000:03d}Z"


def dotnet_o(ms: int) -> str:
    """``DateTimeOffset.ToString("o")`` in UTC: 7 fraction digits and ``+00:00``."""
    return stamping.ms_to_datetime(ms).strftime("%Y-%m-%dT%H:%M:%S.") + f"{ms % 1000:03d}0000+00:00"


def encode(params: list[tuple[str, str]]) -> str:
    return urlencode(params, quote_via=quote, safe="$(),")


# -- replicas and results -------------------------------------------------------------------------


@dataclass
class Copy:
    version: int
    deleted: bool
    updated_ms: int


@dataclass
class PullerStats:
    pulls: int = 0
    completed: int = 0
    killed: int = 0
    requests: int = 0
    rows: int = 0
    redundant: int = 0  # rows received whose exact version the replica already had
    stale_after_pull: int = 0  # row versions committed before a pull began but absent after it completed
    stale_examples: list[str] = field(default_factory=list)
    truncated: int = 0  # pulls stopped at MAX_REQUESTS_PER_PULL
    unchecked: int = 0  # completed pulls whose coverage is not promised (resumed over several servers)


class KilledPull(Exception):
    """The device died mid-pull; its store keeps what it had written so far."""


class Puller:
    """One device: a client algorithm, a local replica and a persisted delta token."""

    def __init__(self, name: str, algorithm: str, base_url: str | list[str], *, path: str = "/tables/Task",
                 kill_rate: float = 0.25, seed: int = 0, clock_versions: bool = True) -> None:
        self.name = name
        self.algorithm = algorithm
        self.base_urls = [base_url] if isinstance(base_url, str) else list(base_url)
        self.base_url = self.base_urls[0].rstrip("/")
        self.path = path
        self.kill_rate = kill_rate
        self.rng = random.Random(seed)
        self.clock_versions = clock_versions
        self.replica: dict[str, Copy] = {}
        self.token_ms = EPOCH_MS  # the persisted delta token (ms)
        self.stats = PullerStats()
        self.stale_seen: set[tuple[str, int]] = set()
        self.clients = [httpx.Client(base_url=b.rstrip("/"), timeout=60.0) for b in self.base_urls]
        self._turn = seed  # the next server of the round robin
        self._kill_after = -1  # requests left before the simulated kill, -1: none
        self._kill_item = -1

    # -- plumbing ----------------------------------------------------------------------------
    def close(self) -> None:
        for client in self.clients:
            client.close()

    def _headers(self) -> dict[str, str]:
        if self.algorithm.startswith("v1"):
            return {"X-ZUMO-APPLICATION": "app-key"}
        if self.algorithm.startswith("v3"):
            # The Community Toolkit client (8.x and later), which appends a query-string nextLink.
            return {"ZUMO-API-VERSION": "3.0.0", "User-Agent": "Datasync/9.0.0.0 (lang=Managed)"}
        return {"ZUMO-API-VERSION": "2.0.0"}

    def _get(self, url: str) -> httpx.Response:
        if self._kill_after == 0:
            raise KilledPull()
        if self._kill_after > 0:
            self._kill_after -= 1
        self.stats.requests += 1
        self._turn += 1
        response = self.clients[self._turn % len(self.clients)].get(url, headers=self._headers())
        if response.status_code != 200:
            raise AssertionError(f"{self.name}: GET {url} -> {response.status_code} {response.text[:300]}")
        return response

    def _names(self) -> tuple[str, str, str]:
        if self.algorithm.startswith("v1"):
            return "__updatedAt", "__version", "__deleted"
        return "updatedAt", "version", "deleted"

    def _apply(self, item: dict[str, Any]) -> int:
        """Store one pulled row, as the client's local store does; returns its updatedAt (ms)."""
        u_name, v_name, d_name = self._names()
        updated = parse_wire_ms(item[u_name])
        version = decode_version(item[v_name])
        self.stats.rows += 1
        have = self.replica.get(item["id"])
        if have is not None and have.version == version:
            self.stats.redundant += 1
        self.replica[item["id"]] = Copy(version, bool(item[d_name]), updated)
        return updated

    def _items(self, response: httpx.Response) -> list[dict[str, Any]]:
        body = response.json()
        if isinstance(body, dict):
            return body["items"] if "items" in body else body["results"]
        return body

    # -- one pull ----------------------------------------------------------------------------
    def pull(self, *, allow_kill: bool = True) -> bool:
        """One incremental pull; ``False`` when it was killed mid-way."""
        self.stats.pulls += 1
        self._kill_after = -1
        self._kill_item = -1
        if allow_kill and self.rng.random() < self.kill_rate:
            self._kill_after = self.rng.randint(0, 4)
            self._kill_item = self.rng.randint(0, PAGE - 1)
        try:
            algorithm = {
                "v1-net": self._pull_dotnet,
                "v2-net": self._pull_dotnet,
                "v2-net-nolink": self._pull_dotnet,
                "v2-js": self._pull_js,
                "v2-android": self._pull_js,
                "v3-ctk": self._pull_ctk,
            }[self.algorithm]
            algorithm()
        except KilledPull:
            self.stats.killed += 1
            return False
        self.stats.completed += 1
        return True

    def _pull_dotnet(self) -> None:
        """v1/v2 .NET ``IncrementalPullStrategy`` + ``PullAction`` (docs/protocol.rst §4.1)."""
        v1 = self.algorithm.startswith("v1")
        follow_links = self.algorithm != "v2-net-nolink"
        updated_name = "__updatedAt" if v1 else "updatedAt"
        query_token = self.token_ms
        max_updated = self.token_ms
        skip = 0
        read_since_reset = 0

        def query() -> str:
            params = [
                ("$filter", f"({updated_name} ge datetimeoffset'{dotnet_o(query_token)}')"),
                ("$orderby", updated_name),
                ("$skip", str(skip)),
                ("$top", str(PAGE)),
                ("__includeDeleted", "true"),
            ]
            if v1:
                params.append(("__systemproperties", "*"))
            return f"{self.path}?{encode(params)}"

        def process(rows: list[dict[str, Any]]) -> None:
            nonlocal max_updated, read_since_reset
            for item in rows:
                max_updated = max(max_updated, self._apply(item))
            read_since_reset += len(rows)
            self.token_ms = max_updated  # OnResultsProcessedAsync: the token is saved per page

        url = query()
        for _ in range(MAX_REQUESTS_PER_PULL):
            response = self._get(url)
            rows = self._items(response)
            process(rows)
            while rows and follow_links:  # FollowNextLinks: a valid Link first
                link = self._next_link(response)
                if link is None:
                    break
                response = self._get(link)
                rows = self._items(response)
                process(rows)
            if not rows:  # EndOfResult
                return
            # MoveToNextPageAsync
            if max_updated > query_token:
                query_token, skip, read_since_reset = max_updated, 0, 0
            else:
                skip = read_since_reset
            url = query()
        self.stats.truncated += 1

    def _next_link(self, response: httpx.Response) -> str | None:
        header = response.headers.get("link")
        if not header:
            return None
        match = LINK_RE.match(header)
        if not match or match.group("rel").lower() != "next":
            return None
        uri = urlsplit(match.group("uri"))
        base = urlsplit(str(response.request.url))  # the server that answered
        if (uri.scheme, uri.netloc) != (base.scheme, base.netloc):  # IsNextLinkValid
            return None
        return f"{uri.path}?{uri.query}"

    def _pull_js(self) -> None:
        """v2 JS ``sync/pull.js`` (docs/protocol.rst §4.2); ``v2-android`` stores the last row's time.

        JS stores ``lastKnownUpdatedAt`` (the token of the page's query) after each page;
        Android stores the last row's updatedAt. Both skip by the page length when the last
        row's updatedAt equals the token, and stop on an empty page.
        """
        token = self.token_ms
        skip = 0
        for _ in range(MAX_REQUESTS_PER_PULL):
            params = [
                ("$filter", f"(updatedAt ge datetimeoffset'{iso_ms(token)}')"),
                ("$orderby", "updatedAt"),
                ("$top", str(PAGE)),
                ("__includeDeleted", "true"),
            ]
            if skip:
                params.insert(2, ("$skip", str(skip)))
            rows = self._items(self._get(f"{self.path}?{encode(params)}"))
            last = token
            for item in rows:
                last = self._apply(item)
            if not rows:
                return
            self.token_ms = last if self.algorithm == "v2-android" else token  # onPagePulled
            if last == token:
                skip += len(rows)
            else:
                token, skip = last, 0
        self.stats.truncated += 1

    def _pull_ctk(self) -> None:
        """v3 CTK ``PullOperationManager`` (docs/protocol.rst §4.3): ``gt``, follow nextLink.

        The token is max(updatedAt), written per item (``DefaultDeltaTokenStore``), so a kill
        can land between two items of a page.
        """
        params = []
        if self.token_ms != EPOCH_MS:
            params.append(("$filter", f"(updatedAt gt cast({iso_ms(self.token_ms)},Edm.DateTimeOffset))"))
        params += [("$orderby", "updatedAt"), ("$count", "true"), ("__includedeleted", "true")]
        url = f"{self.path}?{encode(params)}"
        for _ in range(MAX_REQUESTS_PER_PULL):
            body = self._get(url).json()
            for index, item in enumerate(body["items"]):
                if self._kill_after == 0 and index == self._kill_item:
                    raise KilledPull()
                self.token_ms = max(self.token_ms, self._apply(item))
            if not body.get("nextLink"):
                return
            url = f"{self.path}?{body['nextLink']}"
        self.stats.truncated += 1

    # -- checks ------------------------------------------------------------------------------
    def check_covers(self, snapshot: dict[str, tuple[int, int]]) -> None:
        """After a completed pull: every row committed before it began is here, as new or newer.

        In clock mode the version is the stamp, so "newer" is exact; in "now" mode the check
        compares updatedAt and is a lower bound on what was missed.
        """
        for pk, (version, updated_ms) in snapshot.items():
            have = self.replica.get(pk)
            if have is None:
                ok = False
            elif self.clock_versions:
                ok = have.version >= version
            else:
                ok = have.version == version or have.updated_ms > updated_ms
            if not ok and (pk, version) not in self.stale_seen:
                self.stale_seen.add((pk, version))
                self.stats.stale_after_pull += 1
                if len(self.stats.stale_examples) < 5:
                    self.stats.stale_examples.append(f"{pk}@{updated_ms} (have {have})")


def server_snapshot() -> dict[str, tuple[int, int]]:
    """``{id: (version, updated_ms)}`` of the whole table, read in one statement."""
    return {
        pk: (version, stamping.datetime_to_ms(updated))
        for pk, version, updated in Task.all_objects.using(PRIMARY).values_list("id", "version", "updated_at")
    }


def server_state() -> dict[str, tuple[int, bool]]:
    rows = Task.all_objects.using(PRIMARY).values_list("id", "version", "deleted")
    return {pk: (version, deleted) for pk, version, deleted in rows}


def compare(replica: dict[str, Copy], server: dict[str, tuple[int, bool]]) -> dict[str, int]:
    missing = sum(1 for pk in server if pk not in replica)
    extra = sum(1 for pk in replica if pk not in server)
    wrong = sum(
        1 for pk, (v, d) in server.items() if pk in replica and (replica[pk].version, replica[pk].deleted) != (v, d)
    )
    return {"missing": missing, "stale": wrong, "extra": extra}


# -- writers --------------------------------------------------------------------------------------


@dataclass
class WriterStats:
    inserts: int = 0
    updates: int = 0
    deletes: int = 0
    undeletes: int = 0
    bulk_updates: int = 0
    long_transactions: int = 0
    errors: int = 0
    error_examples: list[str] = field(default_factory=list)

    @property
    def operations(self) -> int:
        return self.inserts + self.updates + self.deletes + self.undeletes + self.bulk_updates


class Pool:
    """Ids known to exist, with the most recently written ones kept apart ("hot" rows)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.ids: list[str] = []
        self.recent: collections.deque[str] = collections.deque(maxlen=8)

    def add(self, pk: str) -> None:
        with self.lock:
            self.ids.append(pk)
            self.recent.append(pk)

    def touch(self, pk: str) -> None:
        with self.lock:
            self.recent.append(pk)

    def pick(self, rng: random.Random, hot: bool) -> str | None:
        with self.lock:
            if hot and self.recent:
                return rng.choice(self.recent)
            return rng.choice(self.ids) if self.ids else None


class Writer:
    """Random inserts, updates, soft deletes, undeletes and bulk updates, some in long transactions."""

    def __init__(self, index: int, pool: Pool, stop: threading.Event, *, long_rate: float = 0.12,
                 long_sleep: tuple[float, float] = (0.05, 0.4), pause: tuple[float, float] = (0.0, 0.02)) -> None:
        self.index = index
        self.pool = pool
        self.stop = stop
        self.long_rate = long_rate
        self.long_sleep = long_sleep
        self.pause = pause
        self.rng = random.Random(1000 + index)
        self.stats = WriterStats()
        self.serial = 0

    def run(self) -> None:
        try:
            while not self.stop.is_set():
                try:
                    if self.rng.random() < self.long_rate:
                        with transaction.atomic():
                            for _ in range(self.rng.randint(1, 3)):
                                self.one()
                            time.sleep(self.rng.uniform(*self.long_sleep))
                        self.stats.long_transactions += 1
                    else:
                        self.one()
                except DatabaseError as exc:  # deadlock victims, lock timeouts: retried by the next op
                    self.stats.errors += 1
                    if len(self.stats.error_examples) < 3:
                        self.stats.error_examples.append(f"{type(exc).__name__}: {exc}"[:200])
                time.sleep(self.rng.uniform(*self.pause))
        finally:
            connections.close_all()

    def one(self) -> None:
        roll = self.rng.random()
        if roll < 0.35 or not self.pool.ids:
            self.serial += 1
            task = Task(text=f"w{self.index}-{self.serial}", priority=self.rng.randint(0, 5))
            task.save(force_insert=True)
            self.stats.inserts += 1
            transaction.on_commit(lambda pk=task.pk: self.pool.add(pk))
            return
        if roll < 0.80:
            pk = self.pool.pick(self.rng, hot=roll < 0.55)
            task = Task.all_objects.using(PRIMARY).filter(pk=pk).first()
            if task is None:
                return
            task.text = f"{task.text[:40]}+{self.index}"
            task.priority = self.rng.randint(0, 5)
            task.complete = not task.complete
            task.save()
            self.stats.updates += 1
            transaction.on_commit(lambda pk=pk: self.pool.touch(pk))
        elif roll < 0.90:
            task = Task.all_objects.using(PRIMARY).filter(pk=self.pool.pick(self.rng, hot=False)).first()
            if task is None:
                return
            if task.deleted:
                task.undelete()
                self.stats.undeletes += 1
            else:
                task.delete()
                self.stats.deletes += 1
        else:
            pks = {self.pool.pick(self.rng, hot=False) for _ in range(self.rng.randint(2, 6))}
            Task.all_objects.using(PRIMARY).filter(pk__in=pks).update(priority=F("priority") + 1)
            self.stats.bulk_updates += 1


# -- the run --------------------------------------------------------------------------------------


@dataclass
class RunResult:
    mode: str
    vendor: str
    seconds: float
    rows: int
    writers: list[WriterStats]
    pullers: list[Puller]
    final: dict[str, dict[str, int]]

    @property
    def operations(self) -> int:
        return sum(w.operations for w in self.writers)

    def final_misses(self, name: str) -> int:
        return sum(self.final[name].values())

    def report(self) -> str:
        w = self.writers
        lines = [
            f"stamping={self.mode} db={self.vendor} duration={self.seconds:.1f}s rows={self.rows} "
            f"ops={self.operations} (ins {sum(x.inserts for x in w)}, upd {sum(x.updates for x in w)}, "
            f"del {sum(x.deletes for x in w)}, undel {sum(x.undeletes for x in w)}, "
            f"bulk {sum(x.bulk_updates for x in w)}, "
            f"long tx {sum(x.long_transactions for x in w)}, errors {sum(x.errors for x in w)})",
            f"{'puller':<16}{'pulls':>7}{'done':>6}{'killed':>8}{'requests':>10}{'rows':>8}{'dup':>7}"
            f"{'stale/pull':>12}{'unchecked':>11}{'missing':>9}{'stale':>7}{'extra':>7}",
        ]
        for p in self.pullers:
            s, f = p.stats, self.final[p.name]
            lines.append(
                f"{p.name:<16}{s.pulls:>7}{s.completed:>6}{s.killed:>8}{s.requests:>10}{s.rows:>8}{s.redundant:>7}"
                f"{s.stale_after_pull:>12}{s.unchecked:>11}{f['missing']:>9}{f['stale']:>7}{f['extra']:>7}"
            )
        errors = [e for x in w for e in x.error_examples][:3]
        if errors:
            lines.append("writer errors: " + " | ".join(errors))
        return "\n".join(lines)


def run(
    base_url: str | list[str],
    *,
    mode: str,
    pullers: list[tuple[str, str, str]],
    writers: int = 8,
    seconds: float = 20.0,
    seed_rows: int = 150,
    kill_rate: float = 0.25,
    until: Callable[[list[Puller]], bool] | None = None,
    writer_options: dict[str, Any] | None = None,
    snapshot: Callable[[], dict[str, tuple[int, int]]] = server_snapshot,
    settle: Callable[[], None] | None = None,
) -> RunResult:
    """Writers and pullers for ``seconds`` (or until ``until`` says so), then final pulls.

    ``pullers`` are ``(name, algorithm, table path)``. ``snapshot`` reads what every pull must
    cover, before the pull begins: the primary's rows by default; with pulls served by a
    replica, the replica's (a replica shows what it has replayed, never less later).
    ``settle`` runs once the writers stopped, before the final pulls (wait for the replicas).
    """
    vendor = connections["default"].vendor
    pool = Pool()
    Task.all_objects.using(PRIMARY).bulk_create([Task(text=f"seed-{i}") for i in range(seed_rows)])
    for pk in Task.all_objects.using(PRIMARY).values_list("pk", flat=True):
        pool.add(pk)
    stop, stop_pullers = threading.Event(), threading.Event()
    the_writers = [Writer(i, pool, stop, **(writer_options or {})) for i in range(writers)]
    the_pullers = [
        Puller(name, algorithm, base_url, path=path, kill_rate=kill_rate, seed=index, clock_versions=(mode == "clock"))
        for index, (name, algorithm, path) in enumerate(pullers)
    ]
    failures: list[BaseException] = []

    def puller_loop(p: Puller) -> None:
        resumed = False
        try:
            while not stop_pullers.is_set():
                covered = snapshot()
                if p.pull():
                    # A pull that resumes a killed one starts from a token saved mid-page. Over
                    # several servers that page may have come from a database ahead of the one
                    # this pull reads, which moved rows above the token that the other still
                    # shows below it: this pull may end without them and the next one brings
                    # them (docs/scaling.rst, "Replicas and next links"). Only the final
                    # comparison holds it to account.
                    if resumed and len(p.base_urls) > 1:
                        p.stats.unchecked += 1
                    else:
                        p.check_covers(covered)
                    resumed = False
                else:
                    resumed = True
                time.sleep(p.rng.uniform(0.0, 0.15))
        except BaseException as exc:  # surfaced by the caller
            failures.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=w.run, name=f"writer-{w.index}") for w in the_writers]
    threads += [threading.Thread(target=puller_loop, args=(p,), name=p.name) for p in the_pullers]
    started = time.monotonic()
    for t in threads:
        t.start()
    try:
        while time.monotonic() - started < seconds and not failures:
            time.sleep(0.25)
            if until is not None and until(the_pullers):
                break
    finally:
        stop.set()
        for t in threads[:writers]:
            t.join()
        stop_pullers.set()
        for t in threads[writers:]:
            t.join()
    elapsed = time.monotonic() - started
    if failures:
        raise failures[0]
    # Writers are stopped: one complete pull per device, then compare with the server.
    if settle is not None:
        settle()
    final_state = server_state()
    final: dict[str, dict[str, int]] = {}
    for p in the_pullers:
        snapshot = server_snapshot()
        assert p.pull(allow_kill=False)
        p.check_covers(snapshot)
        final[p.name] = compare(p.replica, final_state)
        p.close()
    return RunResult(mode, vendor, elapsed, len(final_state), [w.stats for w in the_writers], the_pullers, final)
