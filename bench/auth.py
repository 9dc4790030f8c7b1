"""What signing in costs a table request: CPU per request, in one process, against baselines.

    .venv/bin/python bench/auth.py --requests 2000
    .venv/bin/python bench/auth.py --requests 500 --profile "v2 zumo-auth"   # where its time goes

In-process (Django's test client over the WSGI handler, no network), on a SQLite file
migrated for the run, the example site's settings. Timed with ``time.process_time`` (CPU of
this process, so a busy shared machine disturbs it little), each mode interleaved over
several rounds, the median round kept:

* ``v2 drf-token``: ``GET /tables/Inspection`` (per-user) with DRF's ``Authorization: Token``
  (one query): the baseline of v2;
* ``v2 zumo-auth``: the same with ``X-ZUMO-AUTH`` (JWT verify, the user, the revocation lookup);
* ``v3 drf-token`` and ``v3 bearer``: the same pair as a v3 client (``Authorization: Bearer``);
* ``anonymous``: ``GET /tables/Task`` (the public table, no credentials), for scale.

Each page has 20 rows. Reported: CPU microseconds per request and the ratio to DRF's token
in the same generation.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=2000, help="requests per mode (default 2000)")
    parser.add_argument("--rounds", type=int, default=5, help="interleaved rounds (default 5)")
    parser.add_argument("--profile", default=None, help="cProfile this mode instead (e.g. 'v2 zumo-auth')")
    args = parser.parse_args()

    workdir = Path(tempfile.mkdtemp(prefix="bench-auth-"))
    os.environ["DATABASE_URL"] = f"sqlite:///{workdir / 'db.sqlite3'}"
    os.environ.setdefault("DJANGO_SECRET_KEY", "bench-auth-not-secret-0123456789")
    os.environ["DJANGO_SETTINGS_MODULE"] = "bench_settings"
    import django

    django.setup()
    from common import machine_note, print_table
    from django.conf import settings
    from django.contrib.auth.models import User
    from django.core.management import call_command
    from django.test import Client
    from rest_framework.authtoken.models import Token

    from django_offline_sync.auth.tokens import issue_token
    from example_project.tasks.models import Inspection, Task

    settings.ALLOWED_HOSTS = ["testserver"]
    call_command("migrate", verbosity=0)
    user = User.objects.create_user("bench", password="bench-password-123")
    for i in range(20):
        Task.objects.create(text=f"task {i}")
        Inspection.objects.create(owner=user, site=f"site {i}", pipe_id=str(i))
    drf_token = Token.objects.create(user=user).key
    jwt = issue_token(user, "custom").token
    v2, v3 = {"HTTP_ZUMO_API_VERSION": "2.0.0"}, {"HTTP_ZUMO_API_VERSION": "3.0.0"}
    modes = {
        "v2 drf-token": ("/tables/Inspection", {**v2, "HTTP_AUTHORIZATION": f"Token {drf_token}"}),
        "v2 zumo-auth": ("/tables/Inspection", {**v2, "HTTP_X_ZUMO_AUTH": jwt}),
        "v3 drf-token": ("/tables/Inspection", {**v3, "HTTP_AUTHORIZATION": f"Token {drf_token}"}),
        "v3 bearer": ("/tables/Inspection", {**v3, "HTTP_AUTHORIZATION": f"Bearer {jwt}"}),
        "anonymous": ("/tables/Task", v2),
    }
    client = Client()
    for path, headers in modes.values():  # warm up, and check every mode answers 20 rows
        response = client.get(path, **headers)
        body = response.json()
        assert response.status_code == 200 and len(body if isinstance(body, list) else body["items"]) == 20, path
    if args.profile and args.profile not in modes:
        sys.exit(f"unknown mode {args.profile!r}; one of: {', '.join(modes)}")
    if args.profile and os.environ.get("BENCH_CALLGRIND"):
        # Under valgrind --tool=callgrind --collect-atstart=no --toggle-collect=_operator_call:
        # instructions of the requests only (as bench/cpu.py --callgrind).
        import operator

        path, headers = modes[args.profile]
        operator.call(lambda: [client.get(path, **headers) for _ in range(args.requests)])
        return
    if args.profile:
        import cProfile
        import pstats

        path, headers = modes[args.profile]
        profiler = cProfile.Profile()
        profiler.enable()
        for _ in range(args.requests):
            client.get(path, **headers)
        profiler.disable()
        pstats.Stats(profiler).sort_stats("cumulative").print_stats(int(os.environ.get("BENCH_TOP", "45")))
        return
    per_round = max(1, args.requests // args.rounds)
    samples: dict[str, list[float]] = {name: [] for name in modes}
    for _ in range(args.rounds):
        for name, (path, headers) in modes.items():
            start = time.process_time()
            for _ in range(per_round):
                client.get(path, **headers)
            samples[name].append((time.process_time() - start) / per_round * 1e6)
    rows = []
    for name, sample in samples.items():
        base = statistics.median(samples[f"{name[:2]} drf-token"]) if name[:2] in ("v2", "v3") else None
        ratio = "-" if base is None else f"{statistics.median(sample) / base:.2f}x"
        rows.append([name, round(statistics.median(sample)), ratio])
    print_table(
        f"CPU per table request (20 rows, {per_round * args.rounds} requests per mode, median of {args.rounds} rounds)",
        ["mode", "CPU µs/request", "vs DRF token, same generation"],
        rows,
        note=machine_note(),
    )


if __name__ == "__main__":
    main()
