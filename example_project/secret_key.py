"""The example site's ``SECRET_KEY`` when ``DJANGO_SECRET_KEY`` is not set.

A key shipped in the repository would be public: anyone could sign sessions, password-reset
links and paging cursors for every site that runs with it. So a key is generated on first use
and kept in a local file (``.secret_key`` at the repository root, git-ignored, readable by its
owner only); every later start, and every worker process, reads the same key from it.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from django.core.exceptions import ImproperlyConfigured
from django.core.management.utils import get_random_secret_key


def load_or_create(path: Path) -> str:
    """The key stored at ``path``; a new one is written there if the file does not exist."""
    for _ in range(50):
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            key = path.read_text().strip()
            if key:
                return key
            time.sleep(0.02)  # another process created the file and is still writing the key
            continue
        except OSError as exc:
            raise ImproperlyConfigured(
                f"Cannot create {path} to keep a generated SECRET_KEY ({exc}); set DJANGO_SECRET_KEY."
            ) from exc
        key = get_random_secret_key()
        with os.fdopen(fd, "w") as file:
            file.write(key + "\n")
        return key
    raise ImproperlyConfigured(f"{path} is empty; delete it or set DJANGO_SECRET_KEY.")
