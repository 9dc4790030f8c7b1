"""Queued operations the server cannot take.

* An adopted table's existing row may have an id new ids could not have
  (``docs/existing-models.rst``): one containing ``/`` (``B/2``) is served and pulled, but its
  own URL has no route: the server answers the URL router's 404 page, as it does for a table
  it does not have. The client asks the table's URL which it is, sets the operation aside (it
  can never succeed) instead of blaming a missing table, and ``discard`` reads the server's
  copy through the table's URL;
* an update the server refuses with a 400 (a value it does not accept) stops the push there,
  and the message says how to get out (fix and push again, or discard).

``discard`` is the device's decision: it drops the operation even when the server's copy
cannot be fetched, and says that the local row was left as it was; but not when the device
itself is at fault (signed out, a table the server does not have), which it raises.

Only a table URL that answers proves an item unaddressable: when asking it fails (401, 5xx,
no network) or the item's id has no ``/`` (a proxy's passing 404 page), the operation stays
queued and the cause is said, not hidden.
"""

from __future__ import annotations

import io
from collections.abc import Callable

import httpx
import pytest

from django_offline_sync.client import (
    AuthenticationRequired,
    PushIncomplete,
    ServerError,
    ServerFailure,
    SyncClient,
    TransportError,
    UnaddressableItem,
    UnknownTable,
)
from django_offline_sync.client.cli import EXIT_OK, main
from example_project.tasks.models import Task


def cli(client: SyncClient, *argv: str, transport: httpx.BaseTransport | None = None) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    args = ["--url", "http://testserver", "--db", client.store.path, "--generation", client.generation]
    args += ["--retries", "0", "--no-progress"]
    transport = transport or client.recorder.inner  # type: ignore[attr-defined]
    code = main([*args, *argv], stdout=out, stderr=err, transport=transport)
    return code, out.getvalue(), err.getvalue()


class Interfering(httpx.BaseTransport):
    """The server, except for the requests ``answer`` answers itself (a Response, or raises)."""

    def __init__(self, inner: httpx.BaseTransport, answer: Callable[[httpx.Request], httpx.Response | None]) -> None:
        self.inner = inner
        self.answer = answer

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        return self.answer(request) or self.inner.handle_request(request)


def interfere(client: SyncClient, answer: Callable[[httpx.Request], httpx.Response | None]) -> None:
    recorder = client.recorder  # type: ignore[attr-defined]
    recorder.inner = Interfering(recorder.inner, answer)


def asks_the_table(request: httpx.Request) -> bool:
    """The probe: a GET of the table's own URL."""
    return request.method == "GET" and request.url.path == "/tables/Task"


def not_found_page() -> httpx.Response:
    """The page a proxy (or a URL router) answers for an address it has nothing at."""
    return httpx.Response(404, html="<!doctype html><title>Not Found</title><h1>Not Found</h1>")


def probe_unauthorized(request: httpx.Request) -> httpx.Response | None:
    return httpx.Response(401, json={"error": "The sign-in token has expired."}) if asks_the_table(request) else None


def probe_failing(request: httpx.Request) -> httpx.Response | None:
    return httpx.Response(503) if asks_the_table(request) else None


def probe_unreachable(request: httpx.Request) -> httpx.Response | None:
    if asks_the_table(request):
        raise httpx.ConnectError("connection refused", request=request)
    return None


@pytest.fixture
def slashed(db, make_client) -> SyncClient:
    """A device that pulled Task with the adopted rows ``B/2`` and ``c``."""
    Task.objects.create(id="B/2", text="server")
    Task.objects.create(id="c", text="c")
    client = make_client()
    client.pull("Task")
    assert client.table("Task").get("B/2")["text"] == "server"  # served and pulled fine
    return client


@pytest.mark.parametrize("kind", ["update", "delete"])
def test_a_change_to_an_id_with_a_slash_is_set_aside_not_blamed_on_the_table(slashed, kind):
    if kind == "update":
        slashed.table("Task").update({"id": "B/2", "text": "local"})
    else:
        slashed.table("Task").delete("B/2")
    slashed.table("Task").update({"id": "c", "text": "after it"})
    result = slashed.push()
    assert result.ok and result.pushed == 1 and result.remaining == 0
    (aside,) = result.set_aside
    assert aside.kind == kind and aside.error == (
        "the server serves table 'Task' but has no URL for its item 'B/2' (404): "
        "an id containing '/' cannot be part of a URL"
    )
    assert "no table" not in result.summary()
    assert Task.objects.get(id="c").text == "after it"  # later operations are not blocked
    assert Task.all_objects.get(id="B/2").text == "server" and not Task.all_objects.get(id="B/2").deleted

    row = Task.objects.get(id="B/2")
    row.text = "changed on the server"
    row.save()
    slashed.pull("Task")  # not blocked either
    discarded = slashed.discard(aside.sequence)
    assert discarded.not_restored is None and slashed.pending() == []
    assert slashed.table("Task").get("B/2")["text"] == "changed on the server"  # read through the table's URL


def test_online_table_tells_an_unroutable_id_from_a_missing_table(slashed):
    with pytest.raises(UnaddressableItem, match="has no URL for its item 'B/2'"):
        slashed.online_table("Task").get("B/2")
    with pytest.raises(UnaddressableItem):
        slashed.online_table("Task").delete("B/2")
    with pytest.raises(UnknownTable):
        slashed.online_table("Nope").get("B/2")
    assert slashed.synchronizer.fetch("Task", "B/2")["text"] == "server"
    with pytest.raises(UnknownTable):
        slashed.synchronizer.fetch("Nope", "B/2")


def test_a_refused_update_says_how_to_get_out(db, make_client):
    Task.objects.create(id="t", text="server")
    client = make_client()
    client.pull("Task")
    client.table("Task").update({"id": "t", "text": "x" * 501})  # a value the server refuses: 400
    (op,) = client.pending()
    result = client.push()
    assert not result.ok and result.error_operation == op
    assert result.error.startswith("update Task/t refused (HTTP 400: ")
    assert "no more than 500 characters" in result.error
    assert result.error.endswith(
        "; it stops the push and this table's pulls until it is fixed (change the item locally, then push again) "
        f"or dropped: offline-sync discard {op.sequence}"
    )
    with pytest.raises(PushIncomplete, match=rf"offline-sync discard {op.sequence}$"):
        client.pull("Task")

    code, out, err = cli(client, "discard", str(op.sequence))
    assert code == EXIT_OK and err == ""
    assert out.strip() == f"discarded #{op.sequence} update Task/t; the server's copy restored"
    assert client.table("Task").get("t")["text"] == "server"
    client.pull("Task")


def test_discard_works_when_the_servers_copy_cannot_be_fetched(slashed):
    slashed.table("Task").update({"id": "c", "text": "local"})
    (op,) = slashed.pending()
    down = httpx.MockTransport(lambda request: httpx.Response(503))
    code, out, err = cli(slashed, "discard", str(op.sequence), transport=down)
    assert code == EXIT_OK
    assert out.strip() == f"discarded #{op.sequence} update Task/c; its local row was left as it was"
    assert err.startswith("offline-sync: the server's copy of Task/c could not be fetched (the server failed: 503")
    assert err.strip().endswith("offline-sync pull Task --full brings it back")
    assert slashed.pending() == [] and slashed.table("Task").get("c")["text"] == "local"
    slashed.pull("Task", full=True)
    assert slashed.table("Task").get("c")["text"] == "c"


def test_the_library_discard_reports_what_it_could_not_restore(tmp_path):
    down = httpx.MockTransport(lambda request: httpx.Response(503))
    with SyncClient("http://testserver", tmp_path / "d.db", transport=down, retries=0, backoff=0) as client:
        client.store.apply_page("Task", [{"id": "a", "text": "x", "version": "AAAAAAAAAAE="}], "*")
        client.table("Task").delete("a")
        (op,) = client.pending()
        discarded = client.discard(op.sequence)
        assert discarded.sequence == op.sequence and discarded.kind == "delete"
        assert discarded.not_restored is not None and "503" in discarded.not_restored
        assert client.pending() == [] and client.table("Task").count() == 0  # left as it was: deleted


@pytest.mark.parametrize(
    ("answer", "cause"),
    [
        (probe_failing, "(the server failed: 503"),
        (probe_unreachable, "GET http://testserver/tables/Task: ConnectError"),
    ],
)
def test_a_failing_probe_stops_the_push_and_keeps_the_operation(slashed, answer, cause):
    slashed.table("Task").update({"id": "B/2", "text": "local"})
    (op,) = slashed.pending()
    interfere(slashed, answer)
    result = slashed.push()  # ends as a push does, not with the probe's exception
    assert not result.ok and result.error_operation == op and result.set_aside == []
    assert result.error.startswith(
        "update Task/B/2: its URL answered a 'Not Found' page, and asking the table's URL whether the table is there "
        "failed ("
    )
    assert cause in result.error
    assert result.error.endswith("; it stays queued: push again later")
    (still,) = slashed.pending()
    assert still.sequence == op.sequence and not still.set_aside

    slashed.recorder.inner = slashed.recorder.inner.inner  # the server answers again
    result = slashed.push()
    assert result.ok and [aside.sequence for aside in result.set_aside] == [op.sequence]


def test_a_probe_answered_401_asks_to_sign_in_again(slashed):
    slashed.table("Task").delete("B/2")
    interfere(slashed, probe_unauthorized)
    with pytest.raises(AuthenticationRequired, match="sign in again"):
        slashed.push()
    (op,) = slashed.pending()
    assert op.kind == "delete" and not op.set_aside


def test_a_passing_not_found_page_for_an_id_without_a_slash_is_not_set_aside(slashed):
    def proxy(request: httpx.Request) -> httpx.Response | None:
        return not_found_page() if request.method in ("PUT", "PATCH") and request.url.path == "/tables/Task/c" else None

    slashed.table("Task").update({"id": "c", "text": "local"})
    (op,) = slashed.pending()
    interfere(slashed, proxy)
    result = slashed.push()
    assert not result.ok and result.error_operation == op and result.set_aside == []
    assert result.error == (
        "update Task/c: its URL answered a 'Not Found' page though the server serves table 'Task' "
        "(a proxy, or a server being deployed?); it stays queued: push again later"
    )
    slashed.recorder.inner = slashed.recorder.inner.inner
    result = slashed.push()
    assert result.ok and result.pushed == 1 and Task.objects.get(id="c").text == "local"


def test_discard_signed_out_keeps_the_operation(slashed):
    slashed.table("Task").update({"id": "c", "text": "local"})
    (op,) = slashed.pending()
    interfere(slashed, lambda request: httpx.Response(401, json={"error": "expired"}))
    with pytest.raises(AuthenticationRequired):
        slashed.discard(op.sequence)
    code, _out, err = cli(slashed, "discard", str(op.sequence), transport=slashed.recorder.inner)
    assert code == 9 and "sign in again" in err
    # Dropped, it would leave "local" in the row, where incremental pulls do not look.
    assert slashed.pending() == [op] and slashed.table("Task").get("c")["text"] == "local"


def test_discard_of_an_operation_on_a_table_the_server_lacks_raises(slashed):
    slashed.store.apply_page("Gone", [{"id": "a", "text": "x", "version": "AAAAAAAAAAE="}], "*")
    slashed.table("Gone").update({"id": "a", "text": "local"})
    (op,) = slashed.pending()
    with pytest.raises(UnknownTable):
        slashed.discard(op.sequence)
    assert slashed.pending() == [op]


@pytest.mark.parametrize(
    ("answer", "raised"),
    [
        (probe_unauthorized, AuthenticationRequired),
        (lambda request: httpx.Response(403, json={"error": "no"}) if asks_the_table(request) else None, ServerError),
        (probe_failing, ServerFailure),
        (probe_unreachable, TransportError),
    ],
)
def test_online_table_says_why_the_probe_failed(slashed, answer, raised):
    interfere(slashed, answer)
    with pytest.raises(raised) as caught:
        slashed.online_table("Task").get("B/2")
    assert not isinstance(caught.value, UnaddressableItem)


def test_unaddressable_item_is_a_server_error_in_full():
    exc = UnaddressableItem("Task", "B/2", b"<html>")
    assert isinstance(exc, ServerError) and (exc.status, exc.body, exc.table, exc.item_id) == (
        404,
        b"<html>",
        "Task",
        "B/2",
    )
    assert str(exc) == (
        "the server serves table 'Task' but has no URL for its item 'B/2' (404): "
        "an id containing '/' cannot be part of a URL"
    )
