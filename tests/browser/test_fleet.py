"""Running a fleet in a real browser: the sync status page, resolving conflicts both ways from
the ledger, and restoring a soft-deleted row.

The conflicts come from real HTTP writes with a stale ``If-Match`` against the live server;
every browser step is followed by a look at the database.
"""

from __future__ import annotations

import httpx
import pytest
from playwright.sync_api import expect

from django_offline_sync.models import SyncRejection
from django_offline_sync.wire import encode_version
from example_project.tasks.models import Task
from tests.factories import TaskFactory

pytestmark = pytest.mark.django_db(transaction=True)


def refused_write(base_url: str, task: Task, text: str) -> SyncRejection:
    """A device's replace with a version the server has moved past: 412, recorded in the ledger."""
    stale = f'"{encode_version(task.version)}"'
    Task.objects.get(pk=task.pk).save()  # another device wrote it first
    response = httpx.put(
        f"{base_url}/tables/Task/{task.pk}",
        json={"text": text},
        headers={"ZUMO-API-VERSION": "3.0.0", "If-Match": stale},
        timeout=15,
    )
    assert response.status_code == 412, response.text
    return SyncRejection.objects.get(row_id=task.pk)


def status_cell(page, table: str, column: str):
    return page.locator(f'#sync-tables tr[data-table="{table}"] td.{column}')


def run_action(page, name: str, ids: list[int]) -> None:
    for pk in ids:
        page.check(f'#result_list input.action-select[value="{pk}"]')
    page.select_option("select[name=action]", name)
    page.click("button[name=index]")


def test_sync_status_ledger_resolution_and_restore(page, live_server, login, admin_user, external_requests):
    keep = TaskFactory(text="Server keeps this")
    apply = TaskFactory(text="Client will win")
    gone = TaskFactory(text="Deleted by mistake", deleted_row=True)
    kept_entry = refused_write(live_server.url, keep, "Client text that loses")
    applied_entry = refused_write(live_server.url, apply, "Client text that wins")
    version_kept = Task.objects.get(pk=keep.pk).version

    login(admin_user.username, "password")

    # The sync status page, reached from the admin index like any model page.
    page.locator("#content-main").get_by_role("link", name="Sync status", exact=True).click()
    page.wait_for_url("**/admin/offline_sync/syncactivity/")
    expect(page.locator("h1")).to_have_text("Sync status")
    expect(status_cell(page, "tasks.task", "live")).to_have_text("2")
    expect(status_cell(page, "tasks.task", "tombstones")).to_have_text("1")
    expect(status_cell(page, "tasks.task", "conflicts")).to_have_text("2")

    # Its open-conflicts link opens the ledger filtered to this table's open conflicts.
    status_cell(page, "tasks.task", "conflicts").get_by_role("link").click()
    page.wait_for_url("**/admin/offline_sync/syncrejection/?kind=open&table=tasks.task")
    expect(page.locator("#result_list tbody tr")).to_have_count(2)

    # Keep the server's row for one conflict: resolved, the row untouched.
    run_action(page, "keep_server_row", [kept_entry.pk])
    expect(page.locator("ul.messagelist")).to_contain_text("Kept the server's row for 1 conflict(s).")
    kept_entry.refresh_from_db()
    assert kept_entry.resolution == "server" and kept_entry.resolved_by == admin_user
    assert Task.objects.get(pk=keep.pk).version == version_kept

    # Apply the client's item for the other: a stamped write of the client's text.
    before = Task.objects.get(pk=apply.pk)
    page.goto("/admin/offline_sync/syncrejection/?kind=open")
    expect(page.locator("#result_list tbody tr")).to_have_count(1)
    run_action(page, "apply_client_item", [applied_entry.pk])
    expect(page.locator("ul.messagelist")).to_contain_text("Applied the client's item for 1 conflict(s).")
    after = Task.objects.get(pk=apply.pk)
    assert after.text == "Client text that wins"
    assert after.version != before.version and after.updated_at > before.updated_at
    applied_entry.refresh_from_db()
    assert applied_entry.resolution == "client" and applied_entry.applied_version == encode_version(after.version)

    # The entry's page shows both items.
    page.goto(f"/admin/offline_sync/syncrejection/{applied_entry.pk}/change/")
    expect(page.locator("#content-main")).to_contain_text("Client text that wins")

    # Restore the soft-deleted row from its table's "Deleted" filter.
    page.goto("/admin/offline_sync/syncactivity/")
    status_cell(page, "tasks.task", "tombstones").get_by_role("link").click()
    page.wait_for_url("**/admin/tasks/task/?deleted=deleted")
    page.check(f'#result_list input.action-select[value="{gone.pk}"]')
    page.select_option("select[name=action]", "restore_selected")
    page.click("button[name=index]")
    expect(page.locator("ul.messagelist")).to_contain_text("Restored 1 task.")
    assert not Task.all_objects.get(pk=gone.pk).deleted

    # The status page agrees: three live rows, no tombstone, no open conflict.
    page.goto("/admin/offline_sync/syncactivity/")
    expect(status_cell(page, "tasks.task", "live")).to_have_text("3")
    expect(status_cell(page, "tasks.task", "tombstones")).to_have_text("0")
    expect(status_cell(page, "tasks.task", "conflicts")).to_have_text("0")
    assert external_requests == []
