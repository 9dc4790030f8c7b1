"""Sphinx configuration: ``make docs`` builds docs/ into docs/_build/html with warnings as errors."""

from __future__ import annotations

import os
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path[:0] = [str(ROOT), str(HERE / "_ext")]

# The reference pages import the package (settings, checks, autodoc), which needs Django set up:
# the test settings name every optional app the package supports.
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.settings")
import django  # noqa: E402

django.setup()

import django_offline_sync  # noqa: E402

project = "django-offline-sync"
author = "django-offline-sync contributors"
copyright = "django-offline-sync contributors"
release = django_offline_sync.__version__
version = ".".join(release.split(".")[:2])

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.intersphinx",
    "sphinx.ext.viewcode",
    "offline_sync_reference",
]
exclude_patterns = ["_build"]
nitpicky = False
root_doc = "index"
language = "en"

autodoc_member_order = "bysource"
autodoc_typehints = "none"  # the signatures are typed; the rendered pages stay readable
autodoc_default_options = {"members": True}

# No network while building: intersphinx inventories are not fetched (none are configured).
intersphinx_mapping: dict[str, tuple[str, str | None]] = {}

html_theme = "furo"
html_title = f"django-offline-sync {release}"
html_static_path: list[str] = []
