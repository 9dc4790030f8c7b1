"""End to end over real HTTP against a live server: each generation's sync loop, and all three at once.

The emulations follow docs/protocol.rst §4: v1/v2 .NET (`ge` + `$skip`, reset when the token
advances), v3 CTK (`gt` + nextLink). Three devices of three generations edit and pull the
same table concurrently and must converge to the server's rows.
"""

from __future__ import annotations

import random
import threading
from urllib.parse import quote

import httpx
import pytest

from django_offline_sync.models import encode_version
from example_project.tasks.models import Task

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


class Device:
    """A minimal device replica speaking one generation."""

    def __init__(self, base: str, generation: str, name: str) -> None:
        self.generation = generation
        self.name = name
        headers = {"ZUMO-API-VERSION": {"v2": "2.0.0", "v3": "3.0.0"}.get(generation, "")}
        if generation == "v1":
            headers = {"X-ZUMO-APPLICATION": "key"}
        self.http = httpx.Client(base_url=base, headers=headers, timeout=30)
        self.rows: dict[str, dict] = {}
        self.token = "1970-01-01T00:00:00.000Z"
        self.sysprops = "&__systemproperties=*" if generation == "v1" else ""
        self.u = "__updatedAt" if generation == "v1" else "updatedAt"
        self.v = "__version" if generation == "v1" else "version"
        self.d = "__deleted" if generation == "v1" else "deleted"

    def pull(self) -> int:
        return self._pull_v3() if self.generation == "v3" else self._pull_ge_skip()

    def _apply(self, items: list[dict]) -> None:
        for item in items:
            if item[self.d]:
                self.rows.pop(item["id"], None)
            else:
                self.rows[item["id"]] = item
            self.token = max(self.token, item[self.u])

    def _pull_ge_skip(self) -> int:
        skip, requests = 0, 0
        while True:
            query = (
                f"$filter=({self.u} ge datetimeoffset'{quote(self.token)}')&$orderby={self.u}"
                f"&$skip={skip}&$top=7&__includeDeleted=true{self.sysprops}"
            )
            response = self.http.get(f"/tables/Task?{query}")
            requests += 1
            assert response.status_code == 200, response.text
            items = response.json()
            if not items:
                return requests
            before = self.token
            self._apply(items)
            skip = 0 if self.token > before else skip + len(items)

    def _pull_v3(self) -> int:
        query = "$orderby=updatedAt&$count=true&__includedeleted=true"
        if self.token > "1970":
            query = f"$filter=(updatedAt gt cast({self.token},Edm.DateTimeOffset))&" + query
        response, requests = self.http.get(f"/tables/Task?{query}"), 1
        while True:
            assert response.status_code == 200, response.text
            body = response.json()
            self._apply(body["items"])
            if not body["nextLink"]:
                return requests
            response, requests = self.http.get(f"/tables/Task?{body['nextLink']}"), requests + 1

    def edit(self, rng: random.Random) -> int:
        """Insert, update (conditional) or delete; returns the status code."""
        choice = rng.random()
        if choice < 0.4 or not self.rows:
            response = self.http.post(
                f"/tables/Task?{self.sysprops[1:]}", json={"text": f"{self.name} new", "priority": rng.randint(0, 5)}
            )
            return response.status_code
        item = self.rows[rng.choice(sorted(self.rows))]
        headers = {"If-Match": f'"{item[self.v]}"'}
        if choice < 0.85:
            body = {"text": f"{self.name} edit {rng.randint(0, 999)}"}
            if self.generation == "v3":
                response = self.http.put(f"/tables/Task/{item['id']}", json={**item, **body}, headers=headers)
            else:
                response = self.http.patch(f"/tables/Task/{item['id']}?{self.sysprops[1:]}", json=body, headers=headers)
        else:
            response = self.http.delete(f"/tables/Task/{item['id']}", headers=headers)
        return response.status_code


def server_rows() -> dict[str, str]:
    return {t.id: encode_version(t.version) for t in Task.objects.all()}


def test_each_generation_inserts_updates_conflicts_and_deletes(live_server):
    for generation in ("v1", "v2", "v3"):
        device = Device(live_server.url, generation, generation)
        sys = device.sysprops[1:]
        created = device.http.post(f"/tables/Task?{sys}", json={"id": f"e2e-{generation}", "text": "a"})
        assert created.status_code == 201
        version = created.json()[device.v]
        assert created.headers["ETag"] == f'"{version}"'
        ok = device.http.patch(
            f"/tables/Task/e2e-{generation}?{sys}", json={"text": "b"}, headers={"If-Match": f'"{version}"'}
        )
        assert ok.status_code == 200
        stale = device.http.patch(
            f"/tables/Task/e2e-{generation}?{sys}", json={"text": "c"}, headers={"If-Match": f'"{version}"'}
        )
        assert stale.status_code == 412 and stale.json()["text"] == "b"
        assert device.http.delete(f"/tables/Task/e2e-{generation}").status_code == 204
        gone = device.http.get(f"/tables/Task/e2e-{generation}")
        assert gone.status_code == (410 if generation == "v3" else 404)
        device.pull()
        assert f"e2e-{generation}" not in device.rows


@pytest.mark.requires_postgres  # the in-memory SQLite test database is one connection shared by threads
def test_three_generations_edit_concurrently_and_converge(live_server):
    devices = [Device(live_server.url, g, f"{g}-{i}") for i, g in enumerate(["v1", "v2", "v3", "v1", "v2", "v3"])]
    for device in devices:
        device.pull()
    errors: list[str] = []

    def work(device: Device, seed: int) -> None:
        rng = random.Random(seed)
        try:
            for _ in range(25):
                status = device.edit(rng)
                if status not in (200, 201, 204, 404, 409, 410, 412):
                    errors.append(f"{device.name}: unexpected {status}")
                if rng.random() < 0.3:
                    device.pull()
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(f"{device.name}: {exc!r}")

    threads = [threading.Thread(target=work, args=(d, i)) for i, d in enumerate(devices)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    expected = server_rows()
    assert len(expected) > 10
    for device in devices:
        device.pull()
        replica = {item_id: item[device.v] for item_id, item in device.rows.items()}
        assert replica == expected, f"{device.name} diverged"
