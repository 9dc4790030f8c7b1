"""Database backends (``ENGINE`` values) for sync sites."""
