"""The lifecycle of tenant databases and budgets, written against small ports.

Nothing here imports kopf, httpx or psycopg: the handlers pass in the Neon client, the
Kubernetes client, the metadata store and an event sink, so the logic is testable alone.
"""
