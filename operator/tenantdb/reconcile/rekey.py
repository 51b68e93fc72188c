"""``tenantdb rekey``: every value the operator wrote, sealed again with ``ENCRYPTION_KEY``.

After a key change (``ENCRYPTION_KEY`` the new key, ``TENANTDB_PREVIOUS_ENCRYPTION_KEYS`` the old
ones), the values the operator wrote before are still sealed with an old key: the running
operator reads them and rewrites them slowly in its fleet observation; this does it at once, at a
pace the metadata DB and the API server can take:

1. the connection Secrets: the one each GlobalDatabase and WorkspaceDatabase names in
   ``status.secretName``, while it carries that resource's ownerReference (read one by one: the
   operator may get Secrets, never list them), ``DATABASE_URL_ENCRYPTED`` only;
2. the operator's metadata rows (``user_global_database``, ``workspace_database``: those whose
   tenant claim is pinned to the project they hold);
3. the operator's env var keys (``GLOBAL_DB_URL``, ``AGENT_DB_URL``) of the tenants it holds,
   under Sim's lock, every other variable carried over as stored.

A value is rewritten only when a previous key opens it and the current one does not; one the
current key opens is done already, one no key opens is counted and left alone (never a value it
cannot read: it may be anyone's). Each rewrite is a compare-and-set, so a run beside the operator,
or a second run, never undoes a newer value. Nothing is remembered between runs: a run stopped
anywhere (a crash, Ctrl-C) is resumed by running it again, which finds what is done already
sealed with the current key and goes on with the rest. Progress is printed as it goes; no value,
key or URI ever is.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import AsyncIterator, Callable, Coroutine, Mapping
from typing import Any, Protocol

from tenantdb.api import DATABASE_KINDS, Scope
from tenantdb.kube import SecretState
from tenantdb.store.rekey import SealedRow

__all__ = ["RekeyCounts", "Rekeying", "rekey"]

_SECRET_KEY = "DATABASE_URL_ENCRYPTED"
_PAGE = 200


class KeyRing(Protocol):
    def encrypt(self, plaintext: str) -> str: ...
    def decrypt(self, stored: str) -> str: ...
    def is_current(self, stored: str) -> bool: ...


class Secrets(Protocol):
    def list_objects(self, *, plural: str, namespace: str | None) -> AsyncIterator[list[dict[str, Any]]]: ...
    async def read_secret_state(self, *, namespace: str, name: str, owner_uid: str) -> SecretState | None: ...
    async def replace_secret_values(
        self, *, namespace: str, name: str, values: Mapping[str, str], resource_version: str
    ) -> bool: ...


class Rows(Protocol):
    async def sealed_rows_page(self, scope: Scope, *, after: str, limit: int) -> list[SealedRow]: ...
    async def reseal_row(self, scope: Scope, *, owner_id: str, sealed: str, resealed: str) -> bool: ...
    async def env_owners_page(self, scope: Scope, *, after: str, limit: int) -> list[str]: ...
    async def reseal_env_var(
        self, scope: Scope, *, owner_id: str, reseal: Callable[[str], str | None]
    ) -> bool: ...


@dataclasses.dataclass
class RekeyCounts:
    """What one kind of value came to: looked at, rewritten, already current, unreadable, and
    changed by someone else between the read and the rewrite (looked at again by a next run)."""

    seen: int = 0
    rewritten: int = 0
    current: int = 0
    unreadable: int = 0
    raced: int = 0

    def line(self, what: str) -> str:
        return (
            f"{what}: {self.seen} seen, {self.rewritten} rewritten, {self.current} already current, "
            f"{self.unreadable} unreadable, {self.raced} changed meanwhile"
        )


@dataclasses.dataclass
class Rekeying:
    """One run's inputs: the key ring, the two outside systems, the pace and where progress goes."""

    keys: KeyRing
    secrets: Secrets
    rows: Rows
    namespaces: list[str]
    writes_per_second: float = 20.0
    dry_run: bool = False
    say: Callable[[str], None] = print
    progress_seconds: float = 5.0
    _next_write: float = dataclasses.field(default=0.0, init=False)
    _last_said: float = dataclasses.field(default=0.0, init=False)

    def resealed(self, stored: str, counts: RekeyCounts) -> str | None:
        """The value sealed with the current key when only a previous key opens it, else None."""
        counts.seen += 1
        if self.keys.is_current(stored):
            counts.current += 1
            return None
        try:
            plaintext = self.keys.decrypt(stored)
        except ValueError:
            counts.unreadable += 1
            return None
        return self.keys.encrypt(plaintext)

    async def paced(self) -> None:
        """Wait for the next write's turn (``writes_per_second``)."""
        now = time.monotonic()
        wait = self._next_write - now
        self._next_write = max(now, self._next_write) + 1.0 / self.writes_per_second
        if wait > 0:
            await asyncio.sleep(wait)

    def progress(self, counts: RekeyCounts, what: str, *, final: bool = False) -> None:
        now = time.monotonic()
        if final or now - self._last_said >= self.progress_seconds:
            self._last_said = now
            self.say(counts.line(what))


async def rekey(run: Rekeying) -> dict[str, RekeyCounts]:
    """Every value the operator wrote, sealed with the current key (see the module's steps)."""
    results = {"secrets": await _secrets(run)}
    for scope in Scope:
        results[f"{scope.value} rows"] = await _rows(run, scope)
    for scope in Scope:
        results[f"{scope.env_var} env vars"] = await _env_vars(run, scope)
    return results


async def _secrets(run: Rekeying) -> RekeyCounts:
    counts = RekeyCounts()
    scopes: list[str | None] = list(run.namespaces) if run.namespaces else [None]
    for kind in DATABASE_KINDS:
        for namespace in scopes:
            async for page in run.secrets.list_objects(plural=kind.plural, namespace=namespace):
                for obj in page:
                    await _secret_of(run, counts, obj)
                    run.progress(counts, "Secrets")
    run.progress(counts, "Secrets", final=True)
    return counts


async def _secret_of(run: Rekeying, counts: RekeyCounts, obj: Mapping[str, Any]) -> None:
    """The Secret a database resource names, while it is that resource's."""
    meta: Mapping[str, Any] = obj.get("metadata") or {}
    name = (obj.get("status") or {}).get("secretName")
    if not name:
        return
    namespace, uid = str(meta.get("namespace")), str(meta.get("uid"))
    secret = await run.secrets.read_secret_state(namespace=namespace, name=str(name), owner_uid=uid)
    stored = secret.data.get(_SECRET_KEY) if secret is not None and secret.owned else None
    if secret is None or not stored:
        return
    resealed = run.resealed(stored, counts)
    if resealed is not None:
        await _write(
            run,
            counts,
            run.secrets.replace_secret_values(
                namespace=namespace,
                name=str(name),
                values={_SECRET_KEY: resealed},
                resource_version=secret.resource_version,
            ),
        )


async def _rows(run: Rekeying, scope: Scope) -> RekeyCounts:
    counts = RekeyCounts()
    what = f"{scope.value} database rows"
    after = ""
    while page := await run.rows.sealed_rows_page(scope, after=after, limit=_PAGE):
        for row in page:
            owner_id, sealed = row.owner_id, row.sealed_uri
            after = owner_id
            resealed = run.resealed(sealed, counts)
            if resealed is not None:
                await _write(
                    run,
                    counts,
                    run.rows.reseal_row(scope, owner_id=owner_id, sealed=sealed, resealed=resealed),
                )
            run.progress(counts, what)
    run.progress(counts, what, final=True)
    return counts


async def _env_vars(run: Rekeying, scope: Scope) -> RekeyCounts:
    counts = RekeyCounts()
    what = f"{scope.env_var} env vars"
    after = ""
    while page := await run.rows.env_owners_page(scope, after=after, limit=_PAGE):
        for owner_id in page:
            after = owner_id
            decided: list[bool] = []
            reseal = _env_resealer(run, counts, decided)
            if run.dry_run:
                await run.rows.reseal_env_var(scope, owner_id=owner_id, reseal=reseal)
                counts.rewritten += sum(decided)
            else:
                await run.paced()
                if await run.rows.reseal_env_var(scope, owner_id=owner_id, reseal=reseal):
                    counts.rewritten += 1
                elif any(decided):
                    counts.raced += 1
            run.progress(counts, what)
    run.progress(counts, what, final=True)
    return counts


def _env_resealer(run: Rekeying, counts: RekeyCounts, decided: list[bool]) -> Callable[[str], str | None]:
    """What the store calls with the env var's stored value, under Sim's lock (``decided``: whether
    it was to be rewritten; a dry run rewrites nothing)."""

    def reseal(stored: str) -> str | None:
        resealed = run.resealed(stored, counts)
        decided.append(resealed is not None)
        return None if run.dry_run else resealed

    return reseal


async def _write(run: Rekeying, counts: RekeyCounts, write: Coroutine[Any, Any, bool]) -> None:
    """One compare-and-set write, paced (``write`` is its coroutine; not awaited in a dry run)."""
    if run.dry_run:
        write.close()
        counts.rewritten += 1
        return
    await run.paced()
    if await write:
        counts.rewritten += 1
    else:
        counts.raced += 1
