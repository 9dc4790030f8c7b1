"""Swagger UI at /api/docs/ renders in a browser that can reach nothing but the site.

The page fixture aborts every request to another host, as a device on a site without internet
would see; the UI must still draw every table's operations from the site's own files
(drf-spectacular-sidecar) and the schema at /api/schema/.
"""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

pytestmark = pytest.mark.django_db(transaction=True)


def test_swagger_ui_renders_every_table_with_no_network(page, external_requests):
    failed: list[str] = []
    page.on("requestfailed", lambda request: failed.append(request.url))
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))

    page.goto("/api/docs/")
    expect(page.locator(".swagger-ui .info .title")).to_contain_text("OAS 3")
    for table in ("Task", "Note", "Inspection"):
        block = page.locator(f"#operations-tables-tables_{table}_undelete")
        expect(block).to_be_visible()
        expect(page.locator(f"#operations-tables-tables_{table}_list")).to_be_visible()

    # Open one operation: its parameters (the OData options) come from the schema.
    page.click("#operations-tables-tables_Task_list .opblock-summary")
    expect(page.locator("#operations-tables-tables_Task_list")).to_contain_text("$filter")

    assert external_requests == []
    assert failed == []
    assert errors == []
