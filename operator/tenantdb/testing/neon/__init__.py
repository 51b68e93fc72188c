"""An emulator of the Neon API v2, backed by a real PostgreSQL server."""
