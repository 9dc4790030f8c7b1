"""The ``offline-sync`` command: login, pull, push, watch, status, queue, discard, purge and logout from a
shell or a script.

Example: ``offline-sync --url http://127.0.0.1:8000 --db device.db pull Task Note``.
``offline-sync … login --username ada`` asks for the password (or reads it from stdin) and keeps
the token in the store; later commands send it. Secrets are never taken as arguments, which
other users of the machine could read in the process list.
Exit codes are stable so scripts can branch on them (see ``EXIT_*``); progress goes to
stderr, summaries to stdout, and every failure is one line on stderr. A reader that goes
away (``offline-sync status | head``) only silences the rest of the output.
"""

from __future__ import annotations

import argparse
import getpass
import json
import os
import signal
import sqlite3
import sys
from collections.abc import Callable, Sequence
from typing import TextIO

import httpx

from .conflicts import HANDLERS, Conflict
from .errors import (
    AuthenticationRequired,
    InvalidURL,
    PendingOperationsError,
    PushIncomplete,
    ServerFailure,
    StoreError,
    SyncClientError,
    TransportError,
    UnexpectedResponse,
)
from .store import DELETE, INSERT, PendingOperation
from .sync import PullResult
from .tables import SyncClient
from .transport import DEFAULT_DEADLINE, DEFAULT_MAX_RESPONSE_BYTES, MiB, check_url
from .watch import Watcher

EXIT_OK = 0
EXIT_ERROR = 1  # the server refused a request, or another client error
EXIT_USAGE = 2  # bad arguments (argparse's own code)
EXIT_UNREACHABLE = 3  # network errors or timeouts after all retries (the server was not reached)
EXIT_INCOMPLETE = 4  # the push stopped (conflict left to the user, or a failed operation)
EXIT_PENDING = 5  # purge refused because the table has pending operations
EXIT_SERVER_FAILED = 6  # the server was reached but kept answering 5xx after all retries
EXIT_NOT_API = 7  # not the sync API's answer: an HTML page, a redirect, not JSON, too large (captive portal, wrong URL)
EXIT_STORE = 8  # the --db file is not a client store (another application's database), or is corrupted
EXIT_AUTH = 9  # the server refused the sign-in (not signed in, token expired or revoked, wrong password)

#: What each exit code means, as ``--help`` lists them (``docs/client.rst`` has the same table).
EXIT_MEANINGS: dict[int, str] = {
    EXIT_OK: "success",
    EXIT_ERROR: "the server refused a request (a 4xx, e.g. an unknown table), or another error",
    EXIT_USAGE: "bad arguments (a --url without http:// or https:// too)",
    EXIT_UNREACHABLE: "server unreachable: network errors or timeouts after all retries",
    EXIT_INCOMPLETE: "push incomplete: a conflict left to you (see --conflict) or a failed operation",
    EXIT_PENDING: "purge refused: the table has pending operations (push first, or --force)",
    EXIT_SERVER_FAILED: "the server failed: it answered 5xx after all retries",
    EXIT_NOT_API: (
        "not the sync API: an HTML page, a redirect, not JSON or past --max-response-mb "
        "(a captive portal or a wrong --url?)"
    ),
    EXIT_STORE: "--db is not a client store (another application's SQLite file), or is corrupted",
    EXIT_AUTH: "sign-in refused: not signed in, the token expired or was revoked, or a wrong password "
    "(run login; queued changes are kept)",
}


class Output:
    """Writes to a stream, and goes quiet once the stream's reader is gone.

    ``offline-sync status | head -1`` closes the pipe after one line; writing more raises
    ``BrokenPipeError``. The command does not stop for that (a pull is not cut short because
    nobody reads its summary): later output is dropped, and the stream's file descriptor is
    pointed at /dev/null so that what is still buffered does not fail at exit either.
    """

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        self.gone = False

    def write(self, text: str, *, flush: bool = False) -> None:
        if self.gone:
            return
        try:
            self.stream.write(text)
            if flush:
                self.stream.flush()
        except BrokenPipeError:
            self._reader_gone()

    def line(self, text: str) -> None:
        self.write(text + "\n")

    def flush(self) -> None:
        self.write("", flush=True)

    def _reader_gone(self) -> None:
        self.gone = True
        try:
            fd = self.stream.fileno()
        except (AttributeError, OSError, ValueError):  # not a file, e.g. a StringIO
            return
        devnull = os.open(os.devnull, os.O_WRONLY)
        try:
            os.dup2(devnull, fd)
        finally:
            os.close(devnull)


class ProgressBar:
    """A one-line progress bar on a terminal stream; silent when disabled."""

    def __init__(self, stream: TextIO | Output, enabled: bool, width: int = 30) -> None:
        self.output = stream if isinstance(stream, Output) else Output(stream)
        self.stream = self.output.stream
        self.enabled = enabled
        self.width = width
        self._shown = False

    def __call__(self, label: str, done: int, total: int | None) -> None:
        if not self.enabled:
            return
        if total:
            filled = int(self.width * min(done, total) / total)
            bar = "#" * filled + "." * (self.width - filled)
            text = f"\r{label:<16} [{bar}] {done}/{total}"
        else:
            text = f"\r{label:<16} {done} row(s)"
        self.output.write(text, flush=True)
        self._shown = True

    def finish(self) -> None:
        if self._shown:
            self.output.write("\n", flush=True)
            self._shown = False


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="offline-sync",
        description="Sync a local SQLite store with a django-offline-sync server.",
        epilog="exit codes (failures print one line on stderr):\n"
        + "\n".join(f"  {code}  {meaning}" for code, meaning in sorted(EXIT_MEANINGS.items())),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--url", help="server base URL with http:// or https://, e.g. http://127.0.0.1:8000 (needed by pull and push)"
    )
    parser.add_argument(
        "--db", required=True, help="local store file (created if missing; any other SQLite file is refused)"
    )
    parser.add_argument("--generation", choices=["v2", "v3"], default="v3", help="protocol generation (default v3)")
    parser.add_argument(
        "--header", action="append", default=[], metavar="NAME:VALUE", help="extra HTTP header, e.g. an Authorization"
    )
    parser.add_argument(
        "--timeout", type=float, default=30.0, help="seconds a connection or each read may take (default 30)"
    )
    parser.add_argument("--retries", type=int, default=3, help="retries on network errors and 5xx (default 3)")
    parser.add_argument(
        "--deadline",
        type=_positive,
        default=DEFAULT_DEADLINE,
        metavar="SECONDS",
        help=f"seconds a whole answer may take, however slowly it arrives (default {DEFAULT_DEADLINE:g})",
    )
    parser.add_argument(
        "--max-response-mb",
        type=_positive,
        default=DEFAULT_MAX_RESPONSE_BYTES / MiB,
        metavar="MIB",
        help=f"largest answer read, in MiB once decompressed (default {DEFAULT_MAX_RESPONSE_BYTES // MiB})",
    )
    parser.add_argument(
        "--no-batch",
        dest="batch",
        action="store_const",
        const=False,
        default=None,
        help="push one request per operation even when the server accepts batches (POST /tables/$batch)",
    )
    conflict_help = "what to do on a conflict (default cancel: stop and report it)"
    parser.add_argument("--conflict", choices=sorted(HANDLERS), default="cancel", help=conflict_help)
    progress = parser.add_mutually_exclusive_group()
    progress.add_argument("--progress", dest="progress", action="store_true", default=None, help="always show progress")
    progress.add_argument("--no-progress", dest="progress", action="store_false", help="never show progress")
    parser.add_argument("-q", "--quiet", action="store_true", help="print nothing on success")
    commands = parser.add_subparsers(dest="command", required=True)

    pull = commands.add_parser("pull", help="push pending changes, then pull tables incrementally")
    pull.add_argument("tables", nargs="+", metavar="TABLE")
    pull.add_argument("--full", action="store_true", help="ignore the delta token and fetch everything")
    pull.add_argument("--filter", help="an OData $filter limiting the pull (its own delta token)")
    pull.add_argument("--query-id", help="name under which the delta token is kept")

    push = commands.add_parser("push", help="send pending local changes in order")
    push.add_argument("tables", nargs="*", metavar="TABLE", help="only these tables (default: all)")

    watch = commands.add_parser(
        "watch", help="pull tables whenever the server announces a change (GET /tables/$events), until interrupted"
    )
    watch.add_argument("tables", nargs="+", metavar="TABLE")
    watch.add_argument("--max-events", type=int, metavar="N", help="stop after N change events")
    for command in (pull, push, watch):  # also after the command: "offline-sync ... pull Task --conflict server-wins"
        command.add_argument("--conflict", choices=sorted(HANDLERS), default=argparse.SUPPRESS, help=conflict_help)

    status = commands.add_parser("status", help="show local rows, pending operations and delta tokens")
    status.add_argument("tables", nargs="*", metavar="TABLE")

    queue = commands.add_parser("queue", help="list the queued operations (with --show, what each would send)")
    queue.add_argument("tables", nargs="*", metavar="TABLE", help="only these tables (default: all)")
    queue.add_argument("--show", action="store_true", help="also print each operation's item as JSON")

    discard = commands.add_parser(
        "discard",
        help="drop queued operations by number (see queue) and put their items back as the server has them",
    )
    discard.add_argument("sequences", nargs="+", type=int, metavar="NUMBER")

    login = commands.add_parser(
        "login",
        help="sign in and keep the token in the store (password or provider token read from stdin or a prompt)",
    )
    login.add_argument(
        "provider", nargs="?", default="custom", help="sign-in provider (default custom: username/password)"
    )
    login.add_argument("--username", help="the custom provider's username")
    login.add_argument(
        "--token-type",
        choices=["id_token", "access_token", "authorization_code"],
        default="id_token",
        help="what the provider token read from stdin is (default id_token)",
    )
    commands.add_parser("logout", help="sign out: the server revokes the token, the store forgets it")

    purge = commands.add_parser("purge", help="clear a table's local rows and delta tokens")
    purge.add_argument("tables", nargs="+", metavar="TABLE")
    purge.add_argument("--force", action="store_true", help="also discard pending local changes")
    return parser


def _positive(value: str) -> float:
    """An argument that is a number greater than 0."""
    try:
        number = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {value!r}") from None
    if not number > 0 or number == float("inf"):
        raise argparse.ArgumentTypeError(f"must be a number greater than 0, not {value!r}")
    return number


def _headers(values: Sequence[str]) -> dict[str, str]:
    headers = {}
    for value in values:
        name, sep, content = value.partition(":")
        if not sep or not name.strip():
            raise ValueError(f"--header needs NAME:VALUE, got {value!r}")
        headers[name.strip()] = content.strip()
    return headers


def main(
    argv: Sequence[str] | None = None,
    stdout: TextIO | None = None,
    stderr: TextIO | None = None,
    transport: httpx.BaseTransport | None = None,
    stdin: TextIO | None = None,
) -> int:
    """Run the command line; returns the exit code. ``transport`` lets tests drive an in-process app."""
    source = stdin or sys.stdin
    out = Output(stdout or sys.stdout)
    err = Output(stderr or sys.stderr)
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command in ("pull", "push", "watch", "login") and not args.url:
        parser.error(f"{args.command} needs --url")

    try:
        if args.url:
            check_url(args.url)  # "127.0.0.1:8000" is a usage error, not an unreachable server
        headers = _headers(args.header)
    except (InvalidURL, ValueError) as exc:
        parser.error(str(exc))
    enabled = err.stream.isatty() if args.progress is None else args.progress
    bar = ProgressBar(err, enabled and not args.quiet)

    def say(text: str) -> None:
        if not args.quiet:
            out.line(text)

    def warn(text: str) -> None:
        err.line(f"offline-sync: {text}")

    client: SyncClient | None = None
    try:
        client = SyncClient(
            args.url or "http://localhost",
            args.db,
            generation=args.generation,
            conflict_handler=HANDLERS[args.conflict],
            headers=headers,
            timeout=args.timeout,
            retries=args.retries,
            deadline=args.deadline,
            max_response_bytes=max(1, int(args.max_response_mb * MiB)),
            transport=transport,
            batch=args.batch,
        )
        if args.command in ("login", "logout"):
            return _sign_in(args, client, source, say, warn)
        return _run(args, client, bar, say, warn)
    except SyncClientError as exc:
        bar.finish()
        code, text = _failure(exc)
        warn(text)
        return code
    except sqlite3.DatabaseError as exc:  # damage found past the open: "database disk image is malformed"
        bar.finish()
        warn(f"the local store {args.db} cannot be used: {exc}")
        return EXIT_STORE
    finally:
        if client is not None:
            client.close()
        out.flush()  # now, so that a reader gone meanwhile is noticed here and not at exit
        err.flush()


def _secret(source: TextIO, prompt: str) -> str:
    """A password or token: typed at a prompt (not echoed) on a terminal, else stdin's first line."""
    if source.isatty():
        return getpass.getpass(prompt)
    return source.readline().rstrip("\r\n")


def _sign_in(
    args: argparse.Namespace,
    client: SyncClient,
    source: TextIO,
    say: Callable[[str], None],
    warn: Callable[[str], None],
) -> int:
    if args.command == "logout":
        try:
            client.logout()
        except TransportError as exc:  # signed out locally all the same
            warn(f"the server was not told (its token stays valid until it expires): {exc}")
        say("signed out")
        return EXIT_OK
    if args.provider == "custom":
        if not args.username:
            warn("login with the custom provider needs --username (the password is read from stdin or a prompt)")
            return EXIT_USAGE
        password = _secret(source, f"password for {args.username}: ")
        user_id = client.login(username=args.username, password=password)
    else:
        token = _secret(source, f"{args.provider} {args.token_type}: ")
        if not token:
            warn(f"no {args.token_type} on stdin")
            return EXIT_USAGE
        user_id = client.login(args.provider, token={args.token_type: token})
    say(f"signed in as user {user_id} ({args.provider}); the token is kept in {args.db}")
    return EXIT_OK


#: The exit code of each error, first match wins (subclasses before their bases).
_EXIT_CODES: tuple[tuple[type[SyncClientError], int], ...] = (
    (AuthenticationRequired, EXIT_AUTH),
    (PushIncomplete, EXIT_INCOMPLETE),
    (PendingOperationsError, EXIT_PENDING),
    (StoreError, EXIT_STORE),
    (UnexpectedResponse, EXIT_NOT_API),
    (ServerFailure, EXIT_SERVER_FAILED),
    (TransportError, EXIT_UNREACHABLE),
)


def _describe(op: PendingOperation, *, table: bool = False) -> str:
    """One line for a queued operation: its number (for ``discard``), what, and its state."""
    where = f"{op.table}/{op.item_id}" if table else op.item_id
    text = f"#{op.sequence} {op.kind} {where} (base version {op.base_version or '-'})"
    return text + (f" SET ASIDE: {op.error}" if op.error else "")


def _report_set_aside(ops: Sequence[PendingOperation], warn: Callable[[str], None]) -> None:
    for op in ops:
        warn(
            f"{op.kind} {op.table}/{op.item_id} set aside, the server refused it ({op.error}); "
            f"it is no longer pushed. Drop it with: offline-sync discard {op.sequence}"
        )


def _failure(exc: SyncClientError) -> tuple[int, str]:
    """The exit code and the one-line message for an error."""
    code = next((code for kind, code in _EXIT_CODES if isinstance(exc, kind)), EXIT_ERROR)
    if code == EXIT_UNREACHABLE:
        return code, f"server unreachable: {exc}"
    if code == EXIT_AUTH:
        return code, f"{exc} (offline-sync login; queued changes are kept)"
    if isinstance(exc, PushIncomplete) and (conflict := exc.result.blocking_conflict) is not None:
        what = f"pull of {exc.table}" if exc.table else "pull"
        return code, f"{what} blocked by a conflict: {conflict.describe()}; {resolve_hint(conflict)}"
    return code, str(exc)


def resolve_hint(conflict: Conflict) -> str:
    """How to settle ``conflict`` from the command line: which ``--conflict`` does what."""
    if conflict.server_tombstone:
        return "rerun with --conflict server-wins to drop the local change (the item is deleted on the server)"
    if conflict.server_item is None:
        keep, take = "create the item again on the server", "drop the local change"
    elif conflict.operation.kind == DELETE:
        keep, take = "delete it on the server anyway", "keep the server's copy"
    else:
        keep, take = "keep the local change", "take the server's copy"
    return f"rerun with --conflict client-wins to {keep}, or --conflict server-wins to {take}"


def _watch(
    args: argparse.Namespace, client: SyncClient, say: Callable[[str], None], warn: Callable[[str], None]
) -> int:
    """``watch``: pull on every change event until Ctrl-C, SIGTERM or ``--max-events``."""

    def pulled(result: PullResult) -> None:
        if result.pushed is not None:
            say(f"push: {result.pushed.summary()}")
        say(result.summary())
        sys.stdout.flush()

    def terminate(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, terminate)
    watcher = Watcher(client, args.tables, on_pull=pulled, on_error=warn)
    try:
        watcher.run(max_events=args.max_events)
    except KeyboardInterrupt:
        pass
    finally:
        signal.signal(signal.SIGTERM, previous)
    return EXIT_OK


def _run(
    args: argparse.Namespace,
    client: SyncClient,
    bar: ProgressBar,
    say: Callable[[str], None],
    warn: Callable[[str], None],
) -> int:
    if args.command == "pull":
        for table in args.tables:
            pulled = client.pull(table, full=args.full, filter=args.filter, query_id=args.query_id, progress=bar)
            bar.finish()
            if pulled.pushed is not None:
                say(f"push: {pulled.pushed.summary()}")
                _report_set_aside(pulled.pushed.set_aside, warn)
            say(pulled.summary())
        return EXIT_OK
    if args.command == "push":
        result = client.push(args.tables or None, progress=bar)
        bar.finish()
        _report_set_aside(result.set_aside, warn)
        for record in result.conflicts:
            op, fields = record.conflict.operation, record.conflict.differing_fields
            status = f"HTTP {record.conflict.status}" + (f"; differs in {', '.join(fields)}" if fields else "")
            say(f"conflict on {op.kind} {op.table}/{op.item_id} ({status}): {record.action}")
        say(result.summary())
        if (conflict := result.blocking_conflict) is not None:
            warn(f"push stopped by a conflict: {conflict.describe()}; {resolve_hint(conflict)}")
        return EXIT_OK if result.ok else EXIT_INCOMPLETE
    if args.command == "watch":
        return _watch(args, client, say, warn)
    if args.command == "status":
        tables = args.tables or sorted(set(client.store.tables()) | {op.table for op in client.pending()})
        for table in tables:
            ops = client.pending(table)
            tokens = ", ".join(f"{c.query_id}={c.token}" for c in client.store.cursors(table)) or "never pulled"
            say(f"{table}: {client.store.count(table)} row(s), {len(ops)} pending; delta tokens: {tokens}")
            for op in ops:
                say(f"  {_describe(op)}")
        if not tables:
            say("no tables in the local store")
        return EXIT_OK
    if args.command == "queue":
        ops = [op for op in client.pending() if not args.tables or op.table in args.tables]
        for op in ops:
            say(_describe(op, table=True))
            if args.show:
                say("    " + json.dumps(op.item, sort_keys=True, ensure_ascii=False))
        aside = sum(op.set_aside for op in ops)
        say(f"{len(ops)} queued operation(s), {len(ops) - aside} to push, {aside} set aside")
        if aside:
            say("set-aside operations are not pushed; drop them with: offline-sync discard NUMBER")
        return EXIT_OK
    if args.command == "discard":
        chosen = [client.store.operation(n) for n in args.sequences]
        if missing := [n for n, op in zip(args.sequences, chosen, strict=True) if op is None]:
            warn(f"no queued operation #{missing[0]} (see offline-sync queue)")
            return EXIT_ERROR
        if not args.url and (online := next((op for op in chosen if op and op.kind != INSERT), None)):
            # Only a discarded insert needs no server: its row never reached it.
            warn(f"discard of #{online.sequence} ({online.kind}) needs --url to fetch the server's copy back")
            return EXIT_USAGE
        for sequence in args.sequences:
            op = client.discard(sequence)
            if op.not_restored is not None:
                say(f"discarded #{op.sequence} {op.kind} {op.table}/{op.item_id}; its local row was left as it was")
                warn(
                    f"the server's copy of {op.table}/{op.item_id} could not be fetched ({op.not_restored}); "
                    f"offline-sync pull {op.table} --full brings it back"
                )
                continue
            what = "its local row removed" if op.kind == INSERT else "the server's copy restored"
            say(f"discarded #{op.sequence} {op.kind} {op.table}/{op.item_id}; {what}")
        return EXIT_OK
    for table in args.tables:  # purge
        removed = client.purge(table, force=args.force)
        say(f"{table}: purged {removed} row(s)")
    return EXIT_OK
