"""``GET /tables/$events``: server-sent change events, so a device pulls when a table changed.

An extension of the protocol; ``docs/events.rst`` is the reference. The parts:

* **The view** (``events_view``, routed by ``SyncRouter``) is an async Django view: a
  subscriber costs an open socket and a suspended coroutine, not a worker thread, when the
  site runs under ASGI (uvicorn, daphne, granian's ASGI interface). At connection it checks,
  for every table asked for, what a ``GET /tables/{table}`` of the same caller would check
  (authentication, the table's read permissions, throttles), through the table's viewset.
* **The hub** (``_Hub``, one per process and event loop) knows the newest committed stamp of
  each subscribed table and wakes the subscribers when one moves. It learns it from the
  table clocks (``stamping.py``), read by one query per poll for every table of every
  subscriber, and on PostgreSQL also from ``LISTEN offline_sync``: the statement that takes
  a write's stamp queues ``pg_notify`` in the write's transaction (``stamping.notifies``),
  which PostgreSQL delivers when it commits, so every app process hears every other's writes
  at once (with ``STAMPING = "now"``, ``notify_committed``, connected to ``sync_committed``,
  sends it after the commit). The poll stays on as the safety net (writes made outside the
  endpoints with ``"now"``, a dropped listener connection).
* **Events carry no row data**, only the table and the stamp, so the data view is never
  bypassed: the device pulls. For a table whose rows may depend on the caller (``_scoped``:
  anything in the viewset's list but the library's own data view and ``$filter``), an event
  is sent only if the caller's rows, as its ``GET`` narrows them, have one stamped in the new
  range, and every stamp the stream carries (the ``ready`` id, an event's id and
  ``updatedAt``) is the newest of the caller's rows, never the table's: a subscriber never
  learns of changes it cannot see, nor when they were made.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import threading
import weakref
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final, TypeVar

import orjson
from asgiref.sync import sync_to_async
from django.core.handlers.wsgi import WSGIRequest
from django.db import DatabaseError, connections, router
from django.db.models import Max
from django.http import HttpRequest, HttpResponse, HttpResponseBase, StreamingHttpResponse
from django.utils.translation import gettext_lazy as _
from django.views.decorators.csrf import csrf_exempt
from rest_framework.exceptions import APIException, NotFound

from . import stamping
from .exceptions import BadRequest, describe
from .generations import policy_for
from .renderers import SyncJSONRenderer
from .settings import get_settings
from .throttling import client_address
from .wire import MAX_MS, format_timestamp, ms_to_datetime

__all__ = ["CHANNEL", "EVENTS_PATH", "events_view", "notify_committed"]

logger = logging.getLogger(__name__)

_T = TypeVar("_T")

#: The endpoint's name under the tables prefix (``/tables/$events``).
EVENTS_PATH: Final = "$events"

#: The PostgreSQL notification channel; a payload is ``"<clock key> <stamp ms>"``.
CHANNEL: Final = stamping.EVENTS_CHANNEL

#: Most tables one subscription may name.
MAX_TABLES: Final = 64

#: libpq connection parameters copied from Django's to open the listening connection.
_CONNINFO_KEYS: Final = frozenset(
    {
        "dbname", "user", "password", "host", "port", "options", "sslmode", "sslrootcert", "sslcert",
        "sslkey", "sslpassword", "application_name", "connect_timeout", "service", "passfile",
        "target_session_attrs",
    }
)


class InvalidSubscription(BadRequest):
    default_detail = _("The subscription is invalid.")
    default_code = "invalid_subscription"


class TooManyStreams(APIException):
    status_code = 429
    default_detail = _("Too many change-event streams are open for this caller; close one first.")
    default_code = "too_many_streams"


class AsgiRequired(APIException):
    status_code = 501
    default_detail = _(
        "Change events stream without end: serve /tables/$events under ASGI (uvicorn, daphne), "
        "where a subscriber does not hold a worker. See docs/events.rst."
    )
    default_code = "asgi_required"


# -- sending: after each commit, on PostgreSQL ---------------------------------------------------


def notify_committed(sender: type, instance: Any, **kwargs: Any) -> None:
    """``sync_committed`` receiver: ``pg_notify`` the table's new stamp to every listening process.

    With ``STAMPING = "clock"`` there is nothing left to send: the statement that took the
    write's stamp queued the notification in the write's transaction, which PostgreSQL
    delivers when that commits (``stamping.notifies``). With ``"now"`` (no clock), or with
    ``EVENTS_NOTIFY_IN_WRITE = False``, it runs
    after the commit (``sync_committed`` is sent from ``on_commit``), in autocommit, so the
    notification never announces a write that could still roll back. A failure is logged,
    never raised: the write has committed, and the pollers will see it.
    """
    settings = get_settings()
    if not settings.EVENTS or (stamping.uses_clock() and settings.EVENTS_NOTIFY_IN_WRITE):
        return
    using = router.db_for_write(sender)
    connection = connections[using]
    if connection.vendor != "postgresql":
        return
    updated_at = getattr(instance, "updated_at", None)
    ms = stamping.datetime_to_ms(updated_at) if updated_at is not None else 0
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_notify(%s, %s)", [CHANNEL, f"{stamping.clock_key(sender)} {ms}"])
    except DatabaseError:
        logger.warning("Could not notify the change of %s; subscribers will see it at the next poll.", sender,
                       exc_info=True)


# -- the hub: newest stamps, per process ---------------------------------------------------------


@dataclass
class _Hub:
    """The newest committed stamp of each subscribed table, and a wake-up for its subscribers."""

    clocks: dict[tuple[str, str], int] = field(default_factory=dict)  # (database, clock key) → ms
    models: dict[tuple[str, str], type] = field(default_factory=dict)
    subscribers: dict[tuple[str, str], int] = field(default_factory=dict)
    tick: asyncio.Event = field(default_factory=asyncio.Event)
    poller: asyncio.Task[None] | None = None
    listeners: dict[str, asyncio.Task[None]] = field(default_factory=dict)
    listening: set[str] = field(default_factory=set)

    async def subscribe(self, models: Iterable[type]) -> list[tuple[str, str]]:
        keys = []
        fresh = []
        for model in models:
            key = (router.db_for_write(model), stamping.clock_key(model))
            keys.append(key)
            self.models[key] = model
            if self.subscribers.get(key, 0) == 0 and key not in self.clocks:
                fresh.append(key)
            self.subscribers[key] = self.subscribers.get(key, 0) + 1
        if fresh:
            self.clocks.update(await sync_to_async(_read_clocks)([(k, self.models[k]) for k in fresh]))
        self._start()
        return keys

    def unsubscribe(self, keys: Iterable[tuple[str, str]]) -> None:
        for key in keys:
            self.subscribers[key] -= 1
            if self.subscribers[key] <= 0:
                del self.subscribers[key]
                self.clocks.pop(key, None)

    def advance(self, key: tuple[str, str], ms: int) -> None:
        if key in self.subscribers and ms > self.clocks.get(key, 0):
            self.clocks[key] = ms
            self._wake()

    def _wake(self) -> None:
        tick, self.tick = self.tick, asyncio.Event()
        tick.set()

    def _start(self) -> None:
        if self.poller is None or self.poller.done():
            self.poller = asyncio.create_task(self._poll())
        for using in {key[0] for key in self.subscribers}:
            listener = self.listeners.get(using)
            if connections[using].vendor == "postgresql" and (listener is None or listener.done()):
                self.listeners[using] = asyncio.create_task(self._listen(using))

    async def _poll(self) -> None:
        """Read the subscribed tables' clocks every ``EVENTS_POLL_MS`` (one query per database)."""
        while self.subscribers:
            await asyncio.sleep(get_settings().EVENTS_POLL_MS / 1000)
            wanted = [(key, self.models[key]) for key in list(self.subscribers)]
            try:
                clocks = await sync_to_async(_read_clocks)(wanted)
            except DatabaseError:
                logger.warning("Change events: reading the table clocks failed; retrying.", exc_info=True)
                continue
            for key, ms in clocks.items():
                self.advance(key, ms)

    async def _listen(self, using: str) -> None:
        """``LISTEN offline_sync`` on a connection of its own, reconnecting with backoff."""
        import psycopg
        from psycopg.conninfo import make_conninfo

        params = connections[using].get_connection_params()
        conninfo = make_conninfo("", **{k: v for k, v in params.items() if k in _CONNINFO_KEYS and v is not None})
        delay = 0.5
        while self.subscribers:
            try:
                async with await psycopg.AsyncConnection.connect(conninfo, autocommit=True) as conn:
                    await conn.execute(f"LISTEN {CHANNEL}")
                    self.listening.add(using)
                    delay = 0.5
                    async for note in conn.notifies():
                        key, _, ms = note.payload.rpartition(" ")
                        stamp = _stamp_of(ms)
                        if key and stamp is not None:
                            self.advance((using, key), stamp)
                        if not self.subscribers:
                            break
            except psycopg.Error:
                logger.warning("Change events: the LISTEN connection failed; polling meanwhile.", exc_info=True)
            finally:
                self.listening.discard(using)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 30.0)


_hubs: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _Hub] = weakref.WeakKeyDictionary()


def _hub() -> _Hub:
    loop = asyncio.get_running_loop()
    hub = _hubs.get(loop)
    if hub is None:
        hub = _hubs[loop] = _Hub()
    return hub


def _read_clocks(wanted: list[tuple[tuple[str, str], type]]) -> dict[tuple[str, str], int]:
    """The committed stamp of each table: its clock row (``STAMPING="clock"``), else its newest row."""
    result: dict[tuple[str, str], int] = {}
    if stamping.uses_clock():
        by_db: dict[str, list[str]] = {}
        for (using, key), _model in wanted:
            by_db.setdefault(using, []).append(key)
        for using, keys in by_db.items():
            connection = connections[using]
            qn = connection.ops.quote_name
            marks = ", ".join(["%s"] * len(keys))
            table, column = qn("table"), qn("last_ms")
            sql = f"SELECT {table}, {column} FROM {qn(stamping.CLOCK_TABLE)} WHERE {table} IN ({marks})"
            with connection.cursor() as cursor:
                cursor.execute(sql, keys)
                found = {str(table): int(ms) for table, ms in cursor.fetchall()}
            for key in keys:
                result[(using, key)] = found.get(key, 0)
        return result
    for (using, key), model in wanted:
        manager: Any = model.all_objects  # type: ignore[attr-defined]  # a SyncModel: tombstones count
        newest = manager.using(using).aggregate(newest=Max("updated_at"))["newest"]
        result[(using, key)] = stamping.datetime_to_ms(newest) if newest is not None else 0
    return result


# -- the view ------------------------------------------------------------------------------------


class _Streams:
    """The streams open in this process per caller (``EVENTS_MAX_STREAMS_PER_CALLER``).

    Taken on Django's sync thread while the subscription is checked, given back on the event
    loop when the stream ends, or when a response that never streamed is dropped.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._open: dict[str, int] = {}
        self._given_back: collections.deque[str] = collections.deque()

    def take(self, caller: str, limit: int) -> Callable[[], None]:
        """A slot for ``caller``, as the function that gives it back (once); else ``TooManyStreams``."""
        with self._lock:
            while self._given_back:
                returned = self._given_back.popleft()
                left = self._open[returned] - 1
                if left:
                    self._open[returned] = left
                else:
                    del self._open[returned]
            if self._open.get(caller, 0) >= limit:
                raise TooManyStreams(
                    f"At most {limit} change-event streams may be open at once for one caller "
                    "(a user, or an address when signed out); close one before opening another."
                )
            self._open[caller] = self._open.get(caller, 0) + 1
        once = [caller]

        def give_back() -> None:
            # Without the lock: a dropped response gives its slot back from a weakref
            # finalizer, which the garbage collector runs at any allocation of any thread,
            # one inside take() holding the lock included. list.pop and deque.append are
            # atomic; the next take() counts what was given back.
            with contextlib.suppress(IndexError):
                self._given_back.append(once.pop())

        return give_back


_STREAMS: Final = _Streams()


def _caller(view: Any) -> str:
    """Who a stream counts against: the signed-in user, else the client's address
    (``X-Forwarded-For`` only with ``NUM_PROXIES`` set: ``throttling.client_address``)."""
    request = view.request
    user = getattr(request, "user", None)
    if user is not None and user.is_authenticated:
        return f"user:{user.pk}"
    return f"address:{client_address(request)}"


@dataclass
class _Subscription:
    """One table of one subscriber: its name, clock key, if per caller its data view, and
    how far the stream has got."""

    name: str
    key: tuple[str, str]
    model: type
    #: The table's viewset set up for this caller, kept only when its data view depends on
    #: the caller (it holds the request: an idle subscriber should not).
    view: Any
    #: The table's stamp up to which changes have been looked at (the hub's, never sent).
    seen: int = 0
    #: The stamp last announced (the ``id``): within the caller's data view when per caller.
    sent: int = 0

    def newest_visible(self, low: int, high: int) -> int | None:
        """The newest stamp in ``(low, high]`` of a row the caller's data view shows, deletes
        included, or None: one ``MAX`` query over the (``updated_at``, ``id``) index range."""
        queryset = self.view.filter_queryset(self.view.get_queryset()).using(self.key[0])
        newest = queryset.filter(updated_at__gt=ms_to_datetime(low), updated_at__lte=ms_to_datetime(high)).aggregate(
            newest=Max("updated_at")
        )["newest"]
        return stamping.datetime_to_ms(newest) if newest is not None else None


def _take_in(subscriptions: list[_Subscription], clocks: Mapping[tuple[str, str], int]) -> list[_Subscription]:
    """Move each subscription's ``seen`` to its table's clock; those with something to announce.

    A table shared by every caller announces the table's stamp. A per-caller table announces
    only the newest stamp among the caller's own rows, if one is newer than the last look:
    another user's write moves ``seen``, never ``sent``, so nothing the caller receives
    depends on it.
    """
    announce = []
    for subscription in subscriptions:
        low, high = subscription.seen, clocks.get(subscription.key, 0)
        subscription.seen = high
        newest = high if subscription.view is None else subscription.newest_visible(low, high)
        if newest is not None:
            subscription.sent = newest
            announce.append(subscription)
    return announce


def events_view(tables: Mapping[str, Any]) -> Callable[..., Any]:
    """The async view of ``GET /tables/$events`` for a router's ``tables`` (lower-cased name → table)."""

    async def events(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
        if request.method != "GET":
            response = HttpResponse(status=405)
            response["Allow"] = "GET"
            return response
        opening = asyncio.ensure_future(sync_to_async(_open)(request, tables))
        try:
            opened = await asyncio.shield(opening)
        except asyncio.CancelledError:
            # The client went away while its subscription was checked (Django then cancels
            # the view): the check goes on in its thread, and the slot it takes goes back
            # when it ends, or it would count against the caller for the process's life.
            opening.add_done_callback(_give_back_unused)
            raise
        if isinstance(opened, HttpResponseBase):
            return opened
        subscriptions, resume, give_back = opened
        try:
            hub = _hub()
            keys = await hub.subscribe(s.model for s in subscriptions)
            for subscription, key in zip(subscriptions, keys, strict=True):
                subscription.key = key
            events = _stream(hub, subscriptions, resume, give_back)
        except BaseException:
            give_back()
            raise
        weakref.finalize(events, give_back)  # a response dropped before it streamed
        stream = StreamingHttpResponse(events, content_type="text/event-stream")
        stream["Cache-Control"] = "no-cache"
        stream["X-Accel-Buffering"] = "no"  # nginx: pass each event on at once
        return stream

    # Nothing to forge: GET only, and any other method is a 405 rather than CSRF's 403.
    return csrf_exempt(events)


_Opened = tuple[list["_Subscription"], dict[str, int], Callable[[], None]]


def _give_back_unused(opening: asyncio.Future[HttpResponseBase | _Opened]) -> None:
    """Give back the stream slot of a subscription whose view was cancelled while it was checked."""
    if not opening.cancelled() and opening.exception() is None:
        opened = opening.result()
        if not isinstance(opened, HttpResponseBase):
            opened[2]()


def _open(request: HttpRequest, tables: Mapping[str, Any]) -> HttpResponseBase | _Opened:
    """Parse the subscription and check the caller may read every table (sync: DRF and the ORM)."""
    generation = policy_for(None)
    try:
        if not get_settings().EVENTS:
            raise NotFound("Change events are turned off (OFFLINE_SYNC['EVENTS']).")
        if isinstance(request, WSGIRequest):
            raise AsgiRequired()
        names = [name.strip() for name in request.GET.get("tables", "").split(",") if name.strip()]
        if not names:
            raise InvalidSubscription("Name the tables to watch: /tables/$events?tables=Task,Note.")
        if len({n.lower() for n in names}) > MAX_TABLES:
            raise InvalidSubscription(f"At most {MAX_TABLES} tables in one subscription.")
        subscriptions: list[_Subscription] = []
        seen: set[str] = set()
        for name in names:
            table = tables.get(name.lower())
            if table is None:
                raise NotFound(f"There is no table {name!r}.")
            if table.name in seen:
                continue
            seen.add(table.name)
            view = _checked_view(request, table)
            generation = view.generation
            subscriptions.append(_Subscription(table.name, ("", ""), table.model, view if _scoped(view) else None))
        give_back = _STREAMS.take(_caller(view), get_settings().EVENTS_MAX_STREAMS_PER_CALLER)
    except APIException as exc:
        message, extra = describe(exc)
        body = generation.error_body(exc.status_code, message, extra)
        content = SyncJSONRenderer().render(body)
        response = HttpResponse(content, status=exc.status_code, content_type="application/json")
        auth_header = getattr(exc, "auth_header", None)
        if exc.status_code == 401 and isinstance(auth_header, str):
            response["WWW-Authenticate"] = auth_header
        return response
    resume = _resume_point(request.headers.get("Last-Event-ID") or request.GET.get("lastEventId"))
    return subscriptions, resume, give_back


def _checked_view(request: HttpRequest, table: Any) -> Any:
    """The table's viewset, set up as for ``GET /tables/{table}`` by this caller, its checks run."""
    from .batch import _SubRequest

    base = request.path_info[: -len(EVENTS_PATH)] if request.path_info.endswith(EVENTS_PATH) else "/"
    sub = _SubRequest(request, "GET", f"{base}{table.name}", None)
    sub.META["HTTP_ACCEPT"] = "application/json"
    view = table.viewset(action_map={"get": "list"}, basename=table.basename, detail=False)
    view.action = "list"
    view.args, view.kwargs, view.headers = (), {}, {}
    drf_request = view.initialize_request(sub)
    view.request = drf_request
    view.format_kwarg = None
    try:
        view.initial(drf_request)  # version, authentication, permissions, throttles
    except APIException as exc:
        if exc.status_code == 401:
            exc.auth_header = view.get_authenticate_header(drf_request)  # type: ignore[attr-defined]
        raise
    return view


def _scoped(view: Any) -> bool:
    """Whether the rows a GET of the table reads may differ between callers (then each event
    is checked, and its stamps taken, within the caller's rows).

    Unless the viewset's data view is every row (``get_queryset`` not overridden, no
    ``queryset``, the library's manager) and its list narrows it by nothing but the query
    (``filter_queryset`` not overridden, ``filter_backends`` just ``ODataFilterBackend``),
    the caller may narrow it: a project's manager, filter backend or ``filter_queryset`` can
    scope rows to the user as well as ``get_queryset`` can.
    """
    from rest_framework.viewsets import GenericViewSet

    from .filters import ODataFilterBackend

    return (
        not view.plain_data_view
        or type(view).filter_queryset is not GenericViewSet.filter_queryset
        or list(view.filter_backends) != [ODataFilterBackend]
    )


def _resume_point(last_event_id: str | None) -> dict[str, int]:
    """``Last-Event-ID`` (``Task:1732874400123,Note:…``) as table name → stamp; junk is ignored.

    Junk includes what no event id holds: digits other than ASCII, and a stamp past the latest
    timestamp (``int()`` refuses more than 4300 digits, and such a stamp would silence the table).
    """
    resume: dict[str, int] = {}
    for part in (last_event_id or "").split(","):
        name, _, ms = part.strip().rpartition(":")
        stamp = _stamp_of(ms)
        if name and stamp is not None:
            resume[name.lower()] = stamp
    return resume


def _stamp_of(ms: str) -> int | None:
    """``ms`` as a stamp (ASCII digits, at most the latest timestamp), else None: event ids and
    the notifications' payloads are read with it (``int()`` refuses more than 4300 digits and
    takes other scripts' digits, and a stamp past the latest would silence its table)."""
    digits = ms.lstrip("0") or "0"
    if ms.isascii() and ms.isdigit() and len(digits) <= len(str(MAX_MS)) and int(digits) <= MAX_MS:
        return int(digits)
    return None


def _event_id(sent: Mapping[str, int]) -> str:
    return ",".join(f"{name}:{ms}" for name, ms in sent.items())


def _id_of(subscriptions: Iterable[_Subscription]) -> str:
    """The stream's ``id``: each table's stamp as last announced to this caller."""
    return _event_id({s.name: s.sent for s in subscriptions})


async def _stream(
    hub: _Hub, subscriptions: list[_Subscription], resume: Mapping[str, int], give_back: Callable[[], None]
) -> AsyncIterator[bytes]:
    """The event stream: a ``ready`` event, then a change event per table when it moves.

    Every wake-up of the hub (any write to a subscribed table) makes the subscription look,
    but a look at another user's rows must leave no trace on this stream: no event, no moved
    ``id``, and no keep-alive put off, so the keep-alives keep their own clock.
    """
    settings = get_settings()
    loop = asyncio.get_running_loop()
    keys = [s.key for s in subscriptions]
    try:
        await _in_sync(subscriptions, _start_at)(subscriptions, resume, dict(hub.clocks))
        ready = orjson.dumps({"tables": [s.name for s in subscriptions]}).decode()
        yield f"retry: 2000\nevent: ready\nid: {_id_of(subscriptions)}\ndata: {ready}\n\n".encode()
        deadline = loop.time() + settings.EVENTS_KEEPALIVE_SECONDS
        while True:
            if loop.time() >= deadline:
                yield b": keepalive\n\n"  # keeps proxies from closing an idle stream; finds dead peers
                deadline = loop.time() + settings.EVENTS_KEEPALIVE_SECONDS
            tick = hub.tick
            moved = [s for s in subscriptions if hub.clocks.get(s.key, 0) > s.seen]
            if not moved:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(tick.wait(), max(deadline - loop.time(), 0))
                continue
            for subscription in await _in_sync(moved, _take_in)(moved, dict(hub.clocks)):
                data = {"table": subscription.name, "updatedAt": format_timestamp(ms_to_datetime(subscription.sent))}
                yield f"id: {_id_of(subscriptions)}\ndata: {orjson.dumps(data).decode()}\n\n".encode()
                deadline = loop.time() + settings.EVENTS_KEEPALIVE_SECONDS
            # At most one look (one query per per-caller table) and one event per table per
            # interval; a keep-alive that falls due meanwhile still goes out on time.
            until = loop.time() + settings.EVENTS_COALESCE_MS / 1000
            while (now := loop.time()) < until:
                if now >= deadline:
                    yield b": keepalive\n\n"
                    deadline = now + settings.EVENTS_KEEPALIVE_SECONDS
                await asyncio.sleep(min(until, deadline) - now)
    finally:
        hub.unsubscribe(keys)
        give_back()


def _in_sync(subscriptions: Iterable[_Subscription], function: Callable[..., _T]) -> Callable[..., Awaitable[_T]]:
    """``function`` on Django's sync thread if it will query a per-caller data view; else here,
    so a table shared by everyone costs its subscribers no trip to that one thread."""
    if any(s.view is not None for s in subscriptions):
        return sync_to_async(function)

    async def here(*args: Any) -> _T:
        return function(*args)

    return here


def _start_at(
    subscriptions: list[_Subscription], resume: Mapping[str, int], clocks: Mapping[tuple[str, str], int]
) -> None:
    """Where each subscription starts: at ``Last-Event-ID``'s stamp, else at the present.

    The present of a per-caller table is its newest stamp among the caller's rows (one query):
    the table's own could be another user's write.
    """
    for subscription in subscriptions:
        resumed = resume.get(subscription.name.lower())
        if resumed is not None:
            subscription.seen = subscription.sent = resumed
            continue
        subscription.seen = subscription.sent = clocks.get(subscription.key, 0)
        if subscription.view is not None:
            subscription.sent = subscription.newest_visible(0, subscription.seen) or 0
