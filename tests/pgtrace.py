"""What a test sees of the default connection's traffic to PostgreSQL (libpq's trace)."""

from __future__ import annotations

import tempfile

from django.db import connection


def round_trips(run):
    """The messages that wait for PostgreSQL's answer while ``run()`` runs on ``connection``: one
    per simple query (``Query``) and per extended-protocol exchange (``Sync``), as libpq's
    trace of the connection records them."""
    from psycopg.pq import Trace

    connection.ensure_connection()
    pgconn = connection.connection.pgconn
    with tempfile.TemporaryFile() as trace:
        pgconn.trace(trace.fileno())
        pgconn.set_trace_flags(Trace.SUPPRESS_TIMESTAMPS)
        try:
            run()
        finally:
            pgconn.untrace()
        trace.seek(0)
        sent = [line.split("\t") for line in trace.read().decode().splitlines()]
    return [fields[3].strip(" \"") if fields[2] == "Query" else "Sync" for fields in sent
            if fields[0] == "F" and fields[2] in ("Query", "Sync")]


def idle():
    """No transaction open on the connection (not even a failed one)."""
    from psycopg.pq import TransactionStatus

    return connection.connection.info.transaction_status == TransactionStatus.IDLE
