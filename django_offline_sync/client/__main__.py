"""``python -m django_offline_sync.client``: the same command line as ``offline-sync``."""

from __future__ import annotations

import sys

from .cli import main

sys.exit(main())
