"""``tenantdb rekey``, wired: settings from the environment (as ``tenantdb run``), the metadata DB,
and the Kubernetes API in-cluster or from the kubeconfig (kopf's logins, as the operator's own).
What it does is ``reconcile.rekey``'s. Nothing printed ever holds a key, a URI or a value.
"""

from __future__ import annotations

import sys
from collections.abc import Callable

from pydantic import ValidationError

from tenantdb.config import Settings
from tenantdb.crypto import InvalidKeyError, KeyRing
from tenantdb.handlers.kube_login import kube_credentials
from tenantdb.kube import KubeClient, KubeError
from tenantdb.reconcile.rekey import Rekeying, rekey
from tenantdb.store import MetadataStore, StoreError

__all__ = ["EXIT_CONFIG", "EXIT_FAILED", "EXIT_OK", "rekey_from_environment"]

EXIT_OK = 0
EXIT_FAILED = 1  # an outside system failed mid-way: run again to go on
EXIT_CONFIG = 2  # configuration missing or invalid


def _config_error(exc: ValidationError) -> str:
    return "; ".join(
        f"{'.'.join(str(part) for part in error['loc'])}: {error['msg']}"
        for error in exc.errors(include_input=False, include_url=False, include_context=False)
    )


async def rekey_from_environment(
    *,
    writes_per_second: float,
    dry_run: bool,
    kube_url: str | None = None,
    say: Callable[[str], None] = print,
) -> int:
    """Run ``tenantdb rekey``; returns the exit code."""

    def fail(message: str) -> None:
        print(f"tenantdb rekey: {message}", file=sys.stderr)

    try:
        settings = Settings()
        keys = KeyRing.from_text(
            settings.encryption_key.get_secret_value(), settings.previous_encryption_keys.get_secret_value()
        )
    except ValidationError as exc:
        fail(f"invalid configuration: {_config_error(exc)}")
        return EXIT_CONFIG
    except InvalidKeyError as exc:
        fail(str(exc))
        return EXIT_CONFIG
    url = settings.metadata_database_url.get_secret_value()
    if not url.strip():
        fail("TENANTDB_METADATA_DATABASE_URL is not set")
        return EXIT_CONFIG
    if keys.previous_count == 0:
        say(
            "no TENANTDB_PREVIOUS_ENCRYPTION_KEYS: values sealed with another key cannot be opened "
            "and are counted as unreadable"
        )
    mode = " (dry run: nothing is written)" if dry_run else ""
    say(f"re-encrypting with ENCRYPTION_KEY, {keys.previous_count} previous key(s) to read with{mode}")
    store: MetadataStore | None = None
    kube: KubeClient | None = None
    try:
        store = await MetadataStore.open(url, cipher=keys, max_size=2)
        kube = await KubeClient.connect(host=kube_url, login=None if kube_url else kube_credentials)
        results = await rekey(
            Rekeying(
                keys=keys,
                secrets=kube,
                rows=store,
                namespaces=settings.namespaces,
                writes_per_second=writes_per_second,
                dry_run=dry_run,
                say=say,
            )
        )
    except (StoreError, KubeError) as exc:
        fail(f"{exc}; nothing is lost: run it again to go on")
        return EXIT_FAILED
    finally:
        if store is not None:
            await store.close()
        if kube is not None:
            await kube.close()
    raced = sum(counts.raced for counts in results.values())
    unreadable = sum(counts.unreadable for counts in results.values())
    if raced:
        say(f"{raced} value(s) changed while being re-encrypted: run it again to check them")
    if unreadable:
        say(f"{unreadable} value(s) no key opens: left as they are (the operator writes them anew)")
    say("done" if not dry_run else "done (dry run)")
    return EXIT_OK
