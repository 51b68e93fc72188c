"""Where the projects' databases are reached, and their connection URIs in Neon's shape.

Neon hands out ``postgresql://role:password@host/db?sslmode=require`` and a ``-pooler``
host for PgBouncer. Here every project lives on one PostgreSQL server: ``host`` is that
server's host, and ``pooler_host`` another name of the same machine (``localhost`` for
``127.0.0.1`` and back), so a client that swaps in the pooler host still connects. The
server's port is not 5432, so it appears in the URIs (``connection_parameters`` has no
port field, as in Neon's API: clients should use the URI).
"""

from __future__ import annotations

import dataclasses
from urllib.parse import quote

from psycopg.conninfo import conninfo_to_dict

__all__ = ["ServerAddress"]

_OTHER_NAME = {"127.0.0.1": "localhost", "localhost": "127.0.0.1", "::1": "localhost"}
_TLS_MODES = {"require", "verify-ca", "verify-full"}


@dataclasses.dataclass(frozen=True)
class ServerAddress:
    host: str
    port: int
    ssl: bool

    @classmethod
    def from_admin_url(cls, url: str, *, ssl: bool | None = None) -> ServerAddress:
        """The address in a superuser URI; TLS on when the URI demands it, unless ``ssl`` says."""
        params = conninfo_to_dict(url)
        host = str(params.get("host") or "localhost").split(",")[0]
        port = int(str(params.get("port") or "5432").split(",")[0])
        if ssl is None:
            ssl = str(params.get("sslmode", "")) in _TLS_MODES
        return cls(host=host, port=port, ssl=ssl)

    @property
    def pooler_host(self) -> str:
        return _OTHER_NAME.get(self.host, self.host)

    @property
    def sslmode(self) -> str:
        return "require" if self.ssl else "disable"

    def uri(self, *, user: str, password: str, database: str, pooled: bool = False) -> str:
        host = self.pooler_host if pooled else self.host
        if ":" in host:  # an IPv6 literal
            host = f"[{host}]"
        return (
            f"postgresql://{quote(user, safe='')}:{quote(password, safe='')}@{host}:{self.port}/"
            f"{quote(database, safe='')}?sslmode={self.sslmode}"
        )
