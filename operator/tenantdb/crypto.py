"""AES-256-GCM in the exact text format Sim Studio decrypts.

Stored text is ``"<iv hex>:<ciphertext hex>:<auth tag hex>"``, lower-case hex, with a fresh
16-byte IV per value and a 16-byte tag. Sim's own ``decrypt`` splits on ``:`` and takes the
first part as the IV and the last as the tag, so that is what ``decrypt`` here accepts too.

Changing the key: ``KeyRing`` holds the key the operator writes with (``ENCRYPTION_KEY``) and
the keys it may still read with (``TENANTDB_PREVIOUS_ENCRYPTION_KEYS``); ``is_current`` tells a
value sealed with a previous key, which the operator then writes again with the current one.

``cryptography`` is imported only here.
"""

from __future__ import annotations

import os
import re

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

__all__ = ["DecryptionError", "EncryptionKey", "InvalidKeyError", "KeyRing"]

_IV_BYTES = 16
_TAG_BYTES = 16
_KEY_PATTERN = re.compile(r"^[0-9a-fA-F]{64}$")


class InvalidKeyError(ValueError):
    """The encryption key is not 64 hexadecimal characters (32 bytes)."""


class DecryptionError(ValueError):
    """A value could not be decrypted: malformed, tampered with, or another key's."""


class EncryptionKey:
    """A 32-byte key that encrypts and decrypts values the way Sim Studio does.

    The key's text never appears in ``repr`` or ``str``.
    """

    __slots__ = ("_aead",)

    def __init__(self, hex_key: str) -> None:
        if not _KEY_PATTERN.fullmatch(hex_key.strip()):
            # The message names the rule, never the value: the value is a secret.
            raise InvalidKeyError(
                "ENCRYPTION_KEY must be exactly 64 hexadecimal characters (32 bytes), "
                "the same key Sim Studio uses; generate one with `openssl rand -hex 32`"
            )
        self._aead = AESGCM(bytes.fromhex(hex_key.strip()))

    def __repr__(self) -> str:
        return "EncryptionKey(<redacted>)"

    def is_current(self, stored: str) -> bool:
        """Whether ``stored`` decrypts with this key (one key: nothing else is current)."""
        try:
            self.decrypt(stored)
        except DecryptionError:
            return False
        return True

    def encrypt(self, plaintext: str) -> str:
        iv = os.urandom(_IV_BYTES)
        sealed = self._aead.encrypt(iv, plaintext.encode("utf-8"), None)
        ciphertext, tag = sealed[:-_TAG_BYTES], sealed[-_TAG_BYTES:]
        return f"{iv.hex()}:{ciphertext.hex()}:{tag.hex()}"

    def decrypt(self, stored: str) -> str:
        parts = stored.strip().split(":")
        if len(parts) < 3:
            raise DecryptionError("encrypted value is not in the '<iv>:<ciphertext>:<tag>' format")
        try:
            iv = bytes.fromhex(parts[0])
            tag = bytes.fromhex(parts[-1])
            ciphertext = bytes.fromhex("".join(parts[1:-1]))
        except ValueError as exc:
            raise DecryptionError("encrypted value is not hexadecimal") from exc
        if len(tag) != _TAG_BYTES or not iv:
            raise DecryptionError("encrypted value has a malformed IV or authentication tag")
        try:
            plaintext = self._aead.decrypt(iv, ciphertext + tag, None)
        except InvalidTag:
            # Raised from None: nothing of the value travels on in a traceback chain.
            raise DecryptionError(
                "decryption failed: the value was tampered with or encrypted with another key"
            ) from None
        return plaintext.decode("utf-8")


class KeyRing:
    """The key the operator writes with, and the previous keys it may only read with.

    ``encrypt`` always uses ``current``; ``decrypt`` tries ``current`` first, then each previous
    key in the order given, so a value written before a key change stays readable until it is
    written again (``is_current`` tells which values those are). Sim Studio itself reads one
    key only: see the README's procedure for changing it.
    """

    __slots__ = ("_current", "_previous")

    def __init__(self, current: EncryptionKey, previous: tuple[EncryptionKey, ...] = ()) -> None:
        self._current = current
        self._previous = previous

    @classmethod
    def from_text(cls, current: str, previous: str = "") -> KeyRing:
        """``current`` as ``ENCRYPTION_KEY`` holds it, ``previous`` comma-separated (the
        ``TENANTDB_PREVIOUS_ENCRYPTION_KEYS`` text). ``InvalidKeyError`` names which key is bad
        (by position, never by value)."""
        keys: list[EncryptionKey] = []
        for position, text in enumerate((item for item in previous.split(",") if item.strip()), start=1):
            try:
                keys.append(EncryptionKey(text))
            except InvalidKeyError:
                raise InvalidKeyError(
                    f"TENANTDB_PREVIOUS_ENCRYPTION_KEYS: key {position} is not 64 hexadecimal "
                    "characters (32 bytes)"
                ) from None
        return cls(EncryptionKey(current), tuple(keys))

    def __repr__(self) -> str:
        return f"KeyRing(<redacted>, previous={len(self._previous)})"

    @property
    def previous_count(self) -> int:
        return len(self._previous)

    def encrypt(self, plaintext: str) -> str:
        return self._current.encrypt(plaintext)

    def decrypt(self, stored: str) -> str:
        try:
            return self._current.decrypt(stored)
        except DecryptionError:
            if not self._previous:
                raise
        for key in self._previous:
            try:
                return key.decrypt(stored)
            except DecryptionError:
                continue
        raise DecryptionError(
            "decryption failed: the value was tampered with or encrypted with a key the operator "
            "does not hold"
        )

    def is_current(self, stored: str) -> bool:
        """Whether ``stored`` is sealed with the key the operator writes with (a value only a
        previous key opens is not: it is to be written again)."""
        return self._current.is_current(stored)
