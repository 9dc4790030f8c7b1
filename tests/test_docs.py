"""The Sphinx documentation builds with no warning (as ``make docs`` and CI build it).

Run within the suite so that a docstring the API reference renders, a new setting without its
``#:`` comment or a broken link between the pages fails where it is made.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

# Nothing here touches a database: run once, in the SQLite run, not again per backend.
pytestmark = pytest.mark.skipif(
    bool(os.environ.get("DATABASE_URL")), reason="database-independent: runs in the run without DATABASE_URL"
)
ROOT = Path(__file__).resolve().parents[1]


def test_the_documentation_builds_without_warnings(tmp_path):
    pytest.importorskip("sphinx", reason="the test extra installs Sphinx")
    result = subprocess.run(
        [sys.executable, "-m", "sphinx", "-W", "--keep-going", "-n", "-q", "-b", "html",
         "-d", str(tmp_path / "doctrees"), str(ROOT / "docs"), str(tmp_path / "html")],
        capture_output=True, text=True, timeout=300, cwd=ROOT,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    settings = (tmp_path / "html" / "settings.html").read_text()
    # The generated reference tables are there, from the code.
    assert "CURSOR_MAX_AGE" in settings and "offline_sync.E030" in settings
    assert "SyncViewSet" in (tmp_path / "html" / "reference.html").read_text()
