"""The admin in a real browser: log in, the deleted filter, restore, soft delete, hard delete.

Each step is done as a person does it (links, the action menu, confirmation pages) and is
followed by a look at the database, so a page that only looks right fails the test.
"""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from example_project.tasks.models import Note, Task
from tests.factories import NoteFactory, TaskFactory

pytestmark = pytest.mark.django_db(transaction=True)


def listed_ids(page) -> set[str]:
    """The primary keys of the rows on the current changelist page (its action checkboxes)."""
    return set(page.locator("#result_list input.action-select").evaluate_all("boxes => boxes.map(b => b.value)"))


def run_action(page, name: str, ids: list[str]) -> None:
    for pk in ids:
        page.check(f'#result_list input.action-select[value="{pk}"]')
    page.select_option("select[name=action]", name)
    page.click("button[name=index]")


def test_admin_filters_restores_soft_and_hard_deletes(page, live_server, login, admin_user, external_requests):
    kept, soft, hard = TaskFactory(text="Kept task"), TaskFactory(text="Soft task"), TaskFactory(text="Hard task")
    gone = TaskFactory(text="Gone task", deleted_row=True)
    note = NoteFactory(task=hard, body="Note of the hard task")
    gone_version = Task.all_objects.get(pk=gone.pk).version

    login(admin_user.username, "password")

    # The changelist shows the live rows; the "deleted" filter's "Deleted" link shows tombstones.
    page.locator("#content-main").get_by_role("link", name="Tasks", exact=True).last.click()
    page.wait_for_url("**/admin/tasks/task/")
    assert listed_ids(page) == {kept.pk, soft.pk, hard.pk}
    page.locator("#changelist-filter").get_by_role("link", name="Deleted", exact=True).click()
    page.wait_for_url("**/admin/tasks/task/?deleted=deleted")
    assert listed_ids(page) == {gone.pk}

    # Restore the tombstone with the "restore selected" action.
    run_action(page, "restore_selected", [gone.pk])
    expect(page.locator("ul.messagelist")).to_contain_text("Restored 1 task.")
    restored = Task.all_objects.get(pk=gone.pk)
    assert not restored.deleted and restored.version != gone_version
    assert Task.objects.count() == 4

    # Soft delete from the change form's Delete link: the row stays, marked deleted.
    page.goto("/admin/tasks/task/")
    page.click(f"text={soft.text}")
    before = Task.objects.get(pk=soft.pk)
    page.click("a.deletelink")
    expect(page.locator("#content")).to_contain_text("The row is marked deleted")
    page.click("#content input[type=submit]")
    page.wait_for_url("**/admin/tasks/task/")
    after = Task.all_objects.get(pk=soft.pk)
    assert after.deleted and after.version != before.version and after.updated_at > before.updated_at
    assert soft.pk not in listed_ids(page)
    page.goto("/admin/tasks/task/?deleted=deleted")
    assert listed_ids(page) == {soft.pk}

    # Hard delete: the confirmation page refuses without its checkbox, then removes the row
    # and its note for good.
    page.goto("/admin/tasks/task/")
    run_action(page, "hard_delete_selected", [hard.pk])
    content = page.locator("#content")
    expect(content).to_contain_text("It cannot be undone")
    expect(content).to_contain_text("Note of the hard task")  # the cascade is listed
    submit = page.locator("input[type=submit][value='Delete permanently']")
    submit.click()  # the checkbox is required: the browser does not submit the form
    assert page.locator("input[name=confirm]").evaluate("box => box.validity.valueMissing")
    assert Task.all_objects.filter(pk=hard.pk).exists()
    page.check("input[name=confirm]")
    submit.click()
    page.wait_for_url("**/admin/tasks/task/")
    expect(page.locator("ul.messagelist")).to_contain_text("Permanently deleted 1 task.")
    assert not Task.all_objects.filter(pk=hard.pk).exists()
    assert not Note.all_objects.filter(pk=note.pk).exists()

    # What is left: the kept and restored rows live, the soft-deleted one a tombstone.
    assert set(Task.objects.values_list("pk", flat=True)) == {kept.pk, gone.pk}
    assert set(Task.deleted_objects.values_list("pk", flat=True)) == {soft.pk}
    page.goto("/admin/tasks/task/?deleted=all")
    assert listed_ids(page) == {kept.pk, gone.pk, soft.pk}
    assert external_requests == []
