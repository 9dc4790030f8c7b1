"""The ``offline-sync`` command line: summaries, progress on stderr and exit codes."""

from __future__ import annotations

import io

import httpx
import pytest

from django_offline_sync.client import LocalStore
from django_offline_sync.client.cli import (
    EXIT_INCOMPLETE,
    EXIT_NOT_API,
    EXIT_OK,
    EXIT_PENDING,
    EXIT_UNREACHABLE,
    ProgressBar,
    main,
)


def run(argv, transport=None):
    out, err = io.StringIO(), io.StringIO()
    code = main(argv, stdout=out, stderr=err, transport=transport)
    return code, out.getvalue(), err.getvalue()


def test_status_of_an_empty_store(tmp_path):
    code, out, _ = run(["--db", str(tmp_path / "d.db"), "status"])
    assert code == EXIT_OK and "no tables" in out


def test_status_lists_rows_and_pending_operations(tmp_path):
    db = tmp_path / "d.db"
    with LocalStore(db) as store:
        store.insert("Task", {"id": "t1", "text": "x"})
    code, out, _ = run(["--db", str(db), "status"])
    assert code == EXIT_OK
    assert "Task: 1 row(s), 1 pending" in out and "#1 insert t1" in out


def test_pull_without_url_is_a_usage_error(tmp_path):
    with pytest.raises(SystemExit) as info:
        run(["--db", str(tmp_path / "d.db"), "pull", "Task"])
    assert info.value.code == 2


@pytest.mark.parametrize("option", ["--max-response-mb", "--deadline"])
@pytest.mark.parametrize("value", ["0", "-1", "many", "inf", "nan"])
def test_limits_must_be_positive_numbers(tmp_path, capsys, option, value):
    with pytest.raises(SystemExit) as info:
        run(["--db", str(tmp_path / "d.db"), f"{option}={value}", "status"])
    assert info.value.code == 2 and option in capsys.readouterr().err


def test_the_limits_reach_the_transport(tmp_path):
    seen = []

    def answer(request):
        seen.append(request)
        return httpx.Response(200, json={"items": [{"id": "a1", "text": "x" * 2000, "updatedAt": "2024-01-01T00:00:00Z",
                                                    "version": "AAAAAAAAAAE=", "deleted": False}]})

    argv = ["--url", "http://sync.test", "--db", str(tmp_path / "d.db"), "--max-response-mb", "0.001", "pull", "Task"]
    code, _, err = run(argv, transport=httpx.MockTransport(answer))
    assert code == EXIT_NOT_API and "more than 1048 bytes" in err and len(seen) == 1


def test_purge_refused_with_pending_operations(tmp_path):
    db = tmp_path / "d.db"
    with LocalStore(db) as store:
        store.insert("Task", {"id": "t1"})
    code, _, err = run(["--db", str(db), "purge", "Task"])
    assert code == EXIT_PENDING and "pending" in err
    code, out, _ = run(["--db", str(db), "purge", "--force", "Task"])
    assert code == EXIT_OK and "purged 1 row(s)" in out


def test_unreachable_server_exit_code(tmp_path):
    def refuse(request):
        raise httpx.ConnectError("connection refused")

    code, _, err = run(
        ["--url", "http://offline.test", "--db", str(tmp_path / "d.db"), "--retries", "0", "pull", "Task"],
        transport=httpx.MockTransport(refuse),
    )
    assert code == EXIT_UNREACHABLE and "unreachable" in err


def test_progress_bar_draws_on_its_stream():
    stream = io.StringIO()
    bar = ProgressBar(stream, enabled=True, width=10)
    bar("Task", 5, 10)
    bar("Task", 10, 10)
    bar.finish()
    assert "[#####.....] 5/10" in stream.getvalue() and stream.getvalue().endswith("\n")
    quiet = io.StringIO()
    ProgressBar(quiet, enabled=False)("Task", 1, 2)
    assert quiet.getvalue() == ""


@pytest.mark.django_db
def test_pull_and_push_against_the_app(tmp_path, wsgi_app):
    from example_project.tasks.models import Task

    for i in range(60):
        Task.objects.create(text=f"t{i}")
    db = str(tmp_path / "d.db")
    transport = httpx.WSGITransport(app=wsgi_app)
    code, out, err = run(["--url", "http://testserver", "--db", db, "--progress", "pull", "Task", "Note"], transport)
    assert code == EXIT_OK, err
    assert "Task: 60 row(s) received" in out and "Note: 0 row(s) received" in out
    assert "60/60" in err

    with LocalStore(db) as store:
        store.update("Task", {"id": store.query("Task", top=1)[0]["id"], "text": "mine"})
        victim = store.query("Task", top=1)[0]["id"]
    Task.objects.filter(pk=victim).update(text="theirs")
    code, out, _ = run(["--url", "http://testserver", "--db", db, "push"], transport)
    assert code == EXIT_INCOMPLETE and "conflict on update Task/" in out
    code, out, _ = run(["--url", "http://testserver", "--db", db, "--conflict", "client-wins", "push"], transport)
    assert code == EXIT_OK and "0 pending" in out
    assert Task.objects.get(pk=victim).text == "mine"


def test_every_exit_code_is_in_the_help_and_in_the_docs(capsys):
    import re
    from pathlib import Path

    from django_offline_sync.client import cli

    codes = {value for name, value in vars(cli).items() if name.startswith("EXIT_") and isinstance(value, int)}
    assert codes == set(cli.EXIT_MEANINGS) == set(range(len(codes)))
    with pytest.raises(SystemExit):
        main(["--help"])
    help_text = capsys.readouterr().out
    for code, meaning in cli.EXIT_MEANINGS.items():
        assert f"  {code}  {meaning}" in help_text
    docs = (Path(__file__).resolve().parents[2] / "docs" / "client.rst").read_text()
    table = docs[docs.index("Code  Meaning") :]
    table = table[: table.index("\n\n")]
    assert {int(code) for code in re.findall(r"^(\d+)\s{2,}\S", table, re.MULTILINE)} == codes
