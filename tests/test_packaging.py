"""The sdist and the wheel as ``python -m build`` makes them.

The wheel is the package and its data (templates, ``py.typed``) and nothing else; the sdist adds
what the README and the documentation link to, so that every relative link of the README and of
docs/ resolves inside an unpacked sdist; the build prints no setuptools warning about packages.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path, PurePosixPath

import pytest

ROOT = Path(__file__).resolve().parents[1]
# Nothing here touches a database: run once, in the SQLite run, not again per backend.
pytestmark = pytest.mark.skipif(
    bool(os.environ.get("DATABASE_URL")), reason="database-independent: runs in the run without DATABASE_URL"
)
LINK = re.compile(r"`[^`<]*<([^>`:]+\.rst)(?:#[^>]*)?>`_")


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> tuple[str, set[str], set[str]]:
    pytest.importorskip("build", reason="the test extra installs build")
    out = tmp_path_factory.mktemp("dist")
    # --no-isolation: the installed setuptools and wheel (test extra); nothing is downloaded.
    result = subprocess.run(
        [sys.executable, "-m", "build", "--no-isolation", "--outdir", str(out), str(ROOT)],
        capture_output=True, text=True, timeout=240,
    )
    log = result.stdout + result.stderr
    assert result.returncode == 0, log
    (sdist,) = out.glob("*.tar.gz")
    (wheel,) = out.glob("*.whl")
    with tarfile.open(sdist) as tar:
        sdist_files = {str(PurePosixPath(*PurePosixPath(m.name).parts[1:])) for m in tar.getmembers() if m.isfile()}
    with zipfile.ZipFile(wheel) as whl:
        wheel_files = set(whl.namelist())
    return log, sdist_files, wheel_files


def test_the_build_prints_no_package_warning(built):
    log, _, _ = built
    assert "absent from the `packages` configuration" not in log
    assert "Package would be ignored" not in log


def test_the_wheel_holds_the_package_and_its_data_only(built):
    _, _, wheel = built
    assert "django_offline_sync/py.typed" in wheel
    assert "django_offline_sync/templates/offline_sync/admin/hard_delete_selected_confirmation.html" in wheel
    assert "django_offline_sync/migrations/0001_initial.py" in wheel
    assert "django_offline_sync/client/cli.py" in wheel
    tops = {name.split("/")[0] for name in wheel}
    assert {t for t in tops if not t.endswith(".dist-info")} == {"django_offline_sync"}


def test_every_relative_link_of_the_readme_and_docs_resolves_in_the_sdist(built):
    _, sdist, _ = built
    for required in ("README.rst", "CHANGES.rst", "LICENSE", "docs/index.rst", "docs/conf.py",
                     "example_project/settings.py", "manage.py", "tests/settings.py"):
        assert required in sdist, required
    assert not any("__pycache__" in f or f.startswith("docs/_build/") for f in sdist)
    checked = 0
    for source in ["README.rst", "CHANGES.rst", *sorted(f for f in sdist if re.fullmatch(r"docs/[^/]+\.rst", f))]:
        base = PurePosixPath(source).parent
        for target in LINK.findall((ROOT / source).read_text()):
            resolved = str(PurePosixPath(*(base / target).parts)).replace("docs/../", "")
            assert resolved in sdist, f"{source} links to {target}, missing from the sdist"
            checked += 1
    assert checked > 20
