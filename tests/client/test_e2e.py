"""End to end over real HTTP against a live server: convergence, deletes, purge, and kills.

The kill tests run the ``offline-sync`` CLI in a subprocess slowed by the test hook
``OFFLINE_SYNC_TEST_SLOW`` (a sleep after each pulled page, and between a push response and
its local commit), SIGKILL it mid-pull or mid-push, and check that a rerun loses nothing.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from django_offline_sync.client import LocalStore, Resolution
from django_offline_sync.client.cli import EXIT_OK, EXIT_PENDING
from django_offline_sync.client.sync import SLOW_ENV
from example_project.tasks.models import Note, Task

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

ROOT = Path(__file__).resolve().parents[2]


def cli(live_server, db, generation, *args, slow: float = 0.0) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop(SLOW_ENV, None)
    if slow:
        env[SLOW_ENV] = str(slow)
    command = [
        sys.executable, "-m", "django_offline_sync.client",
        "--url", live_server.url, "--db", str(db), "--generation", generation, "--no-progress", *args,
    ]
    return subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def wait_until(condition, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        time.sleep(0.02)


def test_two_devices_edit_the_same_task_and_converge(device):
    task = Task.objects.create(text="paint the fence", priority=1)
    phone, laptop = device("phone"), device("laptop")
    phone.pull("Task")
    laptop.pull("Task")

    phone.table("Task").update({"id": task.id, "text": "paint the fence green"})
    laptop.table("Task").update({"id": task.id, "priority": 5})
    assert phone.push().ok

    seen = []

    def merge(conflict):
        seen.append(conflict)
        local, server = conflict.local_item, conflict.server_item
        return Resolution.merge({**server, "priority": local["priority"]})

    result = laptop.push(conflict_handler=merge)
    assert result.ok and len(seen) == 1
    assert seen[0].status in (409, 412) and seen[0].server_item["text"] == "paint the fence green"

    phone.pull("Task")
    laptop.pull("Task")
    mine, theirs = phone.table("Task").get(task.id), laptop.table("Task").get(task.id)
    assert mine == theirs
    assert (mine["text"], mine["priority"]) == ("paint the fence green", 5)
    server = Task.objects.get(pk=task.id)
    assert (server.text, server.priority, server.etag_version) == (mine["text"], 5, mine["version"])


def test_deletes_propagate(device):
    phone, laptop = device("phone"), device("laptop")
    task = phone.table("Task").insert({"text": "temporary"})
    phone.table("Note").insert({"taskId": task["id"], "body": "n"})
    phone.push()
    laptop.pull("Task")
    laptop.pull("Note")
    assert laptop.table("Task").count() == 1 and laptop.table("Note").count() == 1

    phone.table("Task").delete(task["id"])
    assert phone.push().ok
    laptop.pull("Task")
    assert laptop.table("Task").count() == 0
    assert Task.all_objects.get(pk=task["id"]).deleted


def test_purge_guard_from_the_command_line(live_server, tmp_path, generation):
    db = tmp_path / "d.db"
    with LocalStore(db) as store:
        store.insert("Task", {"text": "not pushed yet"})
    proc = cli(live_server, db, generation, "purge", "Task")
    proc.wait(30)
    assert proc.returncode == EXIT_PENDING
    with LocalStore(db) as store:
        assert store.count("Task") == 1 and store.pending_count() == 1

    proc = cli(live_server, db, generation, "push")
    assert proc.wait(30) == EXIT_OK
    proc = cli(live_server, db, generation, "purge", "Task")
    assert proc.wait(30) == EXIT_OK
    with LocalStore(db) as store:
        assert store.count("Task") == 0


def test_resume_after_kill_mid_pull(live_server, tmp_path, generation):
    Task.objects.bulk_create([Task(text=f"task {i:03d}") for i in range(260)])
    db = tmp_path / "d.db"
    proc = cli(live_server, db, generation, "pull", "Task", slow=0.5)

    def some_rows():
        with LocalStore(db) as store:
            return store.count("Task") > 0

    wait_until(some_rows)
    proc.send_signal(signal.SIGKILL)
    proc.wait(10)
    with LocalStore(db) as store:
        partial = store.count("Task")
        assert 0 < partial < 260, "the kill was meant to land mid-pull"
        assert store.cursor("Task", "*").token is not None

    proc = cli(live_server, db, generation, "pull", "Task")
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == EXIT_OK, err
    with LocalStore(db) as store:
        local = {item["id"]: item for item in store.query("Task")}
    server = {t.id: t for t in Task.objects.all()}
    assert local.keys() == server.keys()
    assert all(local[i]["version"] == server[i].etag_version for i in server)


def test_resume_after_kill_mid_push(live_server, tmp_path, generation):
    db = tmp_path / "d.db"
    with LocalStore(db) as store:
        ids = []
        for i in range(12):
            task = store.insert("Task", {"text": f"offline {i}"})
            store.insert("Note", {"taskId": task["id"], "body": f"note {i}"})
            store.update("Task", {"id": task["id"], "priority": i})
            ids.append(task["id"])
    proc = cli(live_server, db, generation, "--no-batch", "push", slow=0.4)

    def some_pushed():
        with LocalStore(db) as store:
            return store.pending_count() <= 20

    wait_until(some_pushed)
    time.sleep(0.1)  # now inside the pause between a server answer and its local commit
    proc.send_signal(signal.SIGKILL)
    proc.wait(10)
    with LocalStore(db) as store:
        assert 0 < store.pending_count() < 24, "the kill was meant to land mid-push"

    proc = cli(live_server, db, generation, "--no-batch", "push")
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == EXIT_OK, out + err
    with LocalStore(db) as store:
        assert store.pending_count() == 0
        assert all(store.get("Task", i)["version"] for i in ids)
    assert Task.all_objects.count() == 12 and Note.all_objects.count() == 12
    assert sorted(Task.objects.values_list("priority", flat=True)) == list(range(12))
