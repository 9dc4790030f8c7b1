"""A test-only app whose table predates SyncModel; its migrations adopt it (see test_migrations)."""
