"""The API a device app uses: ``SyncClient`` with offline ``SyncTable``\\ s and ``OnlineTable``\\ s.

A ``SyncTable`` reads and writes the local store (every write queued for the next push); an
``OnlineTable`` calls the server directly. ``SyncClient`` ties a store, a transport and a
conflict handler together and offers push, pull, purge and watch.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any, Self
from urllib.parse import quote

import httpx

from .conflicts import ConflictHandler, cancel
from .errors import ConflictError, ItemNotFound, ServerError, UnaddressableItem, UnknownTable
from .store import Credentials, Item, LocalStore, PendingOperation, check_name
from .sync import DiscardedOperation, Progress, PullResult, PushResult, Synchronizer, authentication_required, body_for
from .transport import (
    DEFAULT_DEADLINE,
    DEFAULT_MAX_RESPONSE_BYTES,
    HttpTransport,
    decode_json,
    error_text,
    etag,
    looks_like_html,
    unexpected,
)
from .watch import Watcher


class SyncClient:
    """An offline-capable connection to one server.

    ``store`` is a ``LocalStore`` or a path to its SQLite file. ``generation`` picks the
    protocol (``"v3"``, the default, or ``"v2"``). ``transport`` is any httpx transport, for
    example ``httpx.WSGITransport(app=...)`` in tests. ``conflict_handler`` is one handler, or
    a dict of handlers by table name; the default, ``cancel``, stops the push at a conflict.
    ``batch``: ``None`` (the default) pushes in batches when the server advertises
    ``POST /tables/$batch`` (``docs/batch.rst``), ``False`` never does, ``True`` requires it.
    ``timeout`` bounds each network read, ``deadline`` each attempt of a request as a whole,
    and ``max_response_bytes`` an answer's decoded body (``HttpTransport``).
    """

    def __init__(
        self,
        url: str,
        store: LocalStore | str | os.PathLike[str] = ":memory:",
        *,
        generation: str = "v3",
        transport: httpx.BaseTransport | None = None,
        conflict_handler: ConflictHandler | dict[str, ConflictHandler] = cancel,
        headers: Mapping[str, str] | None = None,
        timeout: float = 30.0,
        retries: int = 3,
        backoff: float = 0.5,
        page_size: int = 50,
        batch: bool | None = None,
        batch_size: int = 50,
        max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES,
        deadline: float = DEFAULT_DEADLINE,
    ) -> None:
        # The transport first: a bad URL or generation is refused before a store file is created.
        self.http = HttpTransport(
            url,
            generation,
            transport=transport,
            timeout=timeout,
            retries=retries,
            backoff=backoff,
            headers=headers,
            max_response_bytes=max_response_bytes,
            deadline=deadline,
        )
        try:
            self.store = store if isinstance(store, LocalStore) else LocalStore(store)
        except BaseException:
            self.http.close()
            raise
        self.synchronizer = Synchronizer(
            self.store, self.http, conflict_handler, page_size=page_size, batch=batch, batch_size=batch_size
        )
        self._server = url.rstrip("/")
        # A sign-in kept in the store (``login``) is used, unless the caller sends credentials itself.
        own = {name.lower() for name in (headers or {})} & {"authorization", "x-zumo-auth"}
        saved = self.store.credentials()
        if saved is not None and saved.server == self._server and not own:
            self.http.set_token(saved.token)

    @property
    def user_id(self) -> str | None:
        """The ``userId`` of the signed-in user (``login``), or None."""
        saved = self.store.credentials()
        return saved.user_id if saved is not None and saved.server == self._server else None

    def login(
        self,
        provider: str = "custom",
        *,
        username: str | None = None,
        password: str | None = None,
        token: Mapping[str, str] | None = None,
    ) -> str:
        """Sign in and keep the token in the store for every later request; returns the ``userId``.

        ``provider="custom"`` with ``username`` and ``password`` (the site's Django users), or a
        provider name with ``token``, e.g. ``{"id_token": …}`` or ``{"access_token": …}`` from the
        provider's own SDK (``POST /.auth/login/{provider}``, ``docs/auth.rst``). A refused
        sign-in raises ``AuthenticationRequired``.
        """
        if provider == "custom":
            if not username or password is None:
                raise ValueError("the custom provider needs a username and a password")
            body: Mapping[str, str] = {"username": username, "password": password}
        elif token:
            body = token
        else:
            raise ValueError(f"signing in with {provider!r} needs its token, e.g. token={{'id_token': …}}")
        response = self.http.request("POST", f"/.auth/login/{quote(provider, safe='')}", json=dict(body))
        if response.status_code == 401:
            raise authentication_required(response)
        if response.status_code >= 400:
            raise ServerError(response.status_code, error_text(response), response.content)
        answer = decode_json(response)
        token_value = answer.get("authenticationToken") if isinstance(answer, dict) else None
        user = answer.get("user") if isinstance(answer, dict) else None
        if not isinstance(token_value, str) or not isinstance(user, dict) or not isinstance(user.get("userId"), str):
            raise unexpected(response, "is not a sign-in answer ({authenticationToken, user: {userId}})")
        self.store.save_credentials(Credentials(self._server, token_value, user["userId"], provider))
        self.http.set_token(token_value)
        return str(user["userId"])

    def logout(self) -> None:
        """Sign out: the server revokes the token (if reachable), and the store forgets it."""
        saved = self.store.credentials()
        try:
            if saved is not None and saved.server == self._server:
                self.http.request("POST", "/.auth/logout")
        finally:
            self.store.clear_credentials()
            self.http.set_token(None)

    @property
    def generation(self) -> str:
        return self.http.generation

    def close(self) -> None:
        self.http.close()
        self.store.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def table(self, name: str) -> SyncTable:
        """The offline table ``name`` (created in the local store on first use)."""
        return SyncTable(self, name)

    def online_table(self, name: str) -> OnlineTable:
        """Direct server access to table ``name``, bypassing the local store."""
        return OnlineTable(self.http, name)

    def pending(self, table: str | None = None) -> list[PendingOperation]:
        """The operation queue, in push order."""
        return self.store.operations(table)

    def push(
        self,
        tables: Sequence[str] | None = None,
        *,
        conflict_handler: ConflictHandler | None = None,
        progress: Progress | None = None,
    ) -> PushResult:
        """Send the queued operations (all, or those of ``tables``) in queue order."""
        return self.synchronizer.push(tables, conflict_handler, progress)

    def pull(
        self,
        table: str,
        *,
        query_id: str | None = None,
        filter: str | None = None,
        full: bool = False,
        conflict_handler: ConflictHandler | None = None,
        progress: Progress | None = None,
    ) -> PullResult:
        """Pull ``table`` (see ``Synchronizer.pull``); pushes the queue first if the table has changes."""
        return self.synchronizer.pull(
            table, query_id=query_id, filter=filter, full=full, handler=conflict_handler, progress=progress
        )

    def discard(self, sequence: int) -> DiscardedOperation:
        """Drop a queued operation and put its item back as the server has it, when it can be
        fetched (``Synchronizer.discard``)."""
        return self.synchronizer.discard(sequence)

    def purge(self, table: str, *, force: bool = False) -> int:
        """Clear the local rows and delta tokens of ``table``; refused while it has pending changes."""
        return self.synchronizer.purge(table, force=force)

    def watch(
        self,
        tables: Sequence[str],
        *,
        on_pull: Callable[[PullResult], None] | None = None,
        on_error: Callable[[str], None] | None = None,
        max_events: int | None = None,
    ) -> Watcher:
        """Pull ``tables`` now and whenever the server announces a change (``GET /tables/$events``),
        reconnecting with backoff, until ``max_events`` events or ``Watcher.stop()`` (from a
        callback or another thread). Returns the ``Watcher`` once it has stopped."""
        watcher = Watcher(self, tables, on_pull=on_pull, on_error=on_error)
        watcher.run(max_events=max_events)
        return watcher


class SyncTable:
    """One table of the local store: reads are local, writes are local and queued."""

    def __init__(self, client: SyncClient, name: str) -> None:
        self.client = client
        self.name = check_name(name)
        client.store.ensure_table(name)

    def __repr__(self) -> str:
        return f"<SyncTable {self.name}>"

    def insert(self, item: Mapping[str, Any]) -> Item:
        """Add an item (an id is generated if it has none) and queue its insert."""
        return self.client.store.insert(self.name, item)

    def update(self, item: Mapping[str, Any]) -> Item:
        """Merge the given fields into the item with ``item["id"]`` and queue the update."""
        return self.client.store.update(self.name, item)

    def delete(self, item: Mapping[str, Any] | str) -> None:
        """Delete the item (given as an item or an id) and queue the delete."""
        self.client.store.delete(self.name, item if isinstance(item, str) else item["id"])

    def get(self, item_id: str) -> Item:
        """The local item with this id; ``ItemNotFound`` if there is none."""
        item = self.client.store.get(self.name, item_id)
        if item is None:
            raise ItemNotFound(f"{self.name}/{item_id} is not in the local store")
        return item

    def query(
        self,
        where: Mapping[str, Any] | Callable[[Item], bool] | None = None,
        *,
        order_by: str | Sequence[str] | None = None,
        skip: int = 0,
        top: int | None = None,
    ) -> list[Item]:
        """Local items matching ``where`` (see ``LocalStore.query``)."""
        return self.client.store.query(self.name, where, order_by, skip, top)

    def count(self) -> int:
        return self.client.store.count(self.name)

    def pending(self) -> list[PendingOperation]:
        return self.client.store.operations(self.name)

    def pull(self, **kwargs: Any) -> PullResult:
        return self.client.pull(self.name, **kwargs)

    def purge(self, *, force: bool = False) -> int:
        return self.client.purge(self.name, force=force)


class OnlineTable:
    """One server table, called directly. Writes raise ``ConflictError`` on 409/412."""

    def __init__(self, http: HttpTransport, name: str) -> None:
        self.http = http
        self.name = check_name(name)

    def __repr__(self) -> str:
        return f"<OnlineTable {self.name}>"

    @property
    def _deleted_param(self) -> str:
        return "__includedeleted" if self.http.generation == "v3" else "__includeDeleted"

    def _item(self, response: httpx.Response, *, item_id: str | None = None) -> Item:
        body = self._result(response, item_id=item_id)
        if not isinstance(body, dict):
            raise ServerError(response.status_code, "expected an item in the response", response.content)
        return body

    def _no_route(self, response: httpx.Response, item_id: str | None) -> None:
        """Raise for the URL router's 404 (not the API's own): on the table's URL, the server has
        no such table; on an item's URL, either that or no route for the id (one with ``/``),
        which the table's own URL tells apart. Only a table URL that answers (2xx) makes the
        item unaddressable; a probe that fails raises what it failed with (a 401 asks to sign
        in again, a 5xx or an unreachable server is a ``TransportError``), not a guess."""
        if item_id is not None:
            probe = self.http.request("GET", self.http.table_path(self.name), params={"$top": "1"})
            if 200 <= probe.status_code < 300:
                raise UnaddressableItem(self.name, item_id, response.content)
            if probe.status_code == 401:
                raise authentication_required(probe)
            if probe.status_code != 404:
                raise ServerError(probe.status_code, error_text(probe), probe.content)
        raise UnknownTable(self.name, response.content)

    def _result(self, response: httpx.Response, *, item_id: str | None = None) -> Any:
        """The decoded answer to a request on the table's URL (``item_id`` None) or an item's."""
        if response.status_code == 404 and (item_id is None or looks_like_html(response)):
            self._no_route(response, item_id)
        if response.status_code in (409, 412):
            try:
                body = response.json() if response.content else None
            except ValueError:
                body = None
            raise ConflictError(response.status_code, body)
        if response.status_code == 404:
            raise ItemNotFound(f"{self.name}: {response.request.url.path} not found")
        if response.status_code >= 400:
            raise ServerError(response.status_code, error_text(response), response.content)
        return decode_json(response) if response.content else None

    def get(self, item_id: str, *, include_deleted: bool = False) -> Item:
        params = {self._deleted_param: "true"} if include_deleted else None
        response = self.http.request("GET", self.http.table_path(self.name, item_id), params=params)
        return self._item(response, item_id=item_id)

    def insert(self, item: Mapping[str, Any]) -> Item:
        response = self.http.request("POST", self.http.table_path(self.name), json=body_for(dict(item)))
        return self._item(response)

    def update(self, item: Mapping[str, Any], *, force: bool = False) -> Item:
        """Update the item; its ``version`` goes into If-Match unless ``force`` (overwrite)."""
        headers = {"If-Match": etag(item["version"])} if item.get("version") and not force else None
        method = "PUT" if self.http.generation == "v3" else "PATCH"
        path = self.http.table_path(self.name, item["id"])
        response = self.http.request(method, path, json=body_for(dict(item)), headers=headers)
        return self._item(response, item_id=item["id"])

    def delete(self, item: Mapping[str, Any] | str) -> None:
        item_id = item if isinstance(item, str) else item["id"]
        version = None if isinstance(item, str) else item.get("version")
        headers = {"If-Match": etag(version)} if version else None
        response = self.http.request("DELETE", self.http.table_path(self.name, item_id), headers=headers)
        if response.status_code == 404 and looks_like_html(response):
            self._no_route(response, item_id)
        if response.status_code in (404, 410):
            raise ItemNotFound(f"{self.name}/{item_id} does not exist or is already deleted")
        self._result(response, item_id=item_id)

    def query(
        self,
        filter: str | None = None,
        *,
        order_by: str | None = None,
        skip: int | None = None,
        top: int | None = None,
        include_deleted: bool = False,
    ) -> list[Item]:
        """One page of server items (the server may cap its size); see ``iterate`` for all."""
        params: dict[str, str] = {}
        if filter:
            params["$filter"] = filter
        if order_by:
            params["$orderby"] = order_by
        if skip:
            params["$skip"] = str(skip)
        if top is not None:
            params["$top"] = str(top)
        if include_deleted:
            params[self._deleted_param] = "true"
        body = self._result(self.http.request("GET", self.http.table_path(self.name), params=params))
        return _page_items(body)

    def iterate(self, filter: str | None = None, *, order_by: str | None = None, page_size: int = 50) -> Iterator[Item]:
        """Every matching server item, page by page ($skip paging, ordered by ``order_by`` then id)."""
        order = f"{order_by},id" if order_by else "id"
        skip = 0
        while True:
            page = self.query(filter, order_by=order, skip=skip, top=page_size)
            yield from page
            if not page:
                return
            skip += len(page)


def _page_items(body: Any) -> list[Item]:
    if isinstance(body, list):
        return body
    if isinstance(body, dict):
        return list(body.get("items") or body.get("results") or [])
    return []
