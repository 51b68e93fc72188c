"""Connection strings and the Secret's keys built from them (credentials percent-encoded)."""

from __future__ import annotations

from urllib.parse import parse_qs, quote, unquote, urlsplit, urlunsplit

__all__ = ["ConnectionInfo", "parse_uri", "secret_data"]

import dataclasses


@dataclasses.dataclass(frozen=True, repr=False)
class ConnectionInfo:
    """The parts of a PostgreSQL URI. ``repr`` never shows the password."""

    host: str
    port: int
    user: str
    password: str
    database: str
    sslmode: str

    def __repr__(self) -> str:
        return (
            f"ConnectionInfo(host={self.host!r}, port={self.port}, user={self.user!r}, "
            f"database={self.database!r})"
        )

    def uri(self, *, host: str | None = None) -> str:
        netloc = (
            f"{quote(self.user, safe='')}:{quote(self.password, safe='')}@{host or self.host}:{self.port}"
        )
        query = f"sslmode={quote(self.sslmode, safe='')}" if self.sslmode else ""
        return urlunsplit(("postgresql", netloc, "/" + quote(self.database, safe=""), query, ""))


def parse_uri(uri: str) -> ConnectionInfo:
    parts = urlsplit(uri)
    query = parse_qs(parts.query)
    return ConnectionInfo(
        host=parts.hostname or "",
        port=parts.port or 5432,
        user=unquote(parts.username or ""),
        password=unquote(parts.password or ""),
        database=unquote(parts.path.lstrip("/")),
        sslmode=(query.get("sslmode") or ["require"])[0],
    )


def pooled_host(host: str) -> str:
    """Neon's pooled host: ``ep-name-123.region.aws.neon.tech`` → ``ep-name-123-pooler.region...``."""
    first, dot, rest = host.partition(".")
    if not dot or first.endswith("-pooler"):
        return host
    return f"{first}-pooler.{rest}"


def secret_data(
    *, encrypted_uri: str, uri: str, pooled_uri: str | None, include_plaintext: bool
) -> dict[str, str]:
    """The Secret's keys: always the encrypted URI; plaintext ones only when asked for."""
    data = {"DATABASE_URL_ENCRYPTED": encrypted_uri}
    if include_plaintext:
        info = parse_uri(uri)
        data.update(
            {
                "DATABASE_URL": info.uri(),
                "DATABASE_URL_POOLED": pooled_uri or info.uri(host=pooled_host(info.host)),
                "PGHOST": info.host,
                "PGPORT": str(info.port),
                "PGUSER": info.user,
                "PGPASSWORD": info.password,
                "PGDATABASE": info.database,
                "PGSSLMODE": info.sslmode,
            }
        )
    return data
