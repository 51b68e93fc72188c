"""Sim Studio's encryption format: round trip, tampering and wrong keys."""

from __future__ import annotations

import re
import secrets

import pytest

from tenantdb.crypto import DecryptionError, EncryptionKey, InvalidKeyError, KeyRing

KEY = "0123456789abcdef" * 4


def test_round_trip_in_sims_format() -> None:
    key = EncryptionKey(KEY)
    stored = key.encrypt("postgresql://u:p%40ss@host/db?sslmode=require")
    assert re.fullmatch(r"[0-9a-f]{32}:[0-9a-f]+:[0-9a-f]{32}", stored)
    assert key.decrypt(stored) == "postgresql://u:p%40ss@host/db?sslmode=require"


def test_every_encryption_uses_a_fresh_iv() -> None:
    key = EncryptionKey(KEY)
    first, second = key.encrypt("same"), key.encrypt("same")
    assert first.split(":")[0] != second.split(":")[0]


def _flip_hex(text: str, index: int) -> str:
    flipped = format(int(text[index], 16) ^ 0x1, "x")
    return text[:index] + flipped + text[index + 1 :]


def test_tampered_ciphertext_fails() -> None:
    key = EncryptionKey(KEY)
    iv, ct, tag = key.encrypt("secret value").split(":")
    with pytest.raises(DecryptionError):
        key.decrypt(f"{iv}:{_flip_hex(ct, 0)}:{tag}")


def test_tampered_tag_fails() -> None:
    key = EncryptionKey(KEY)
    iv, ct, tag = key.encrypt("secret value").split(":")
    with pytest.raises(DecryptionError):
        key.decrypt(f"{iv}:{ct}:{_flip_hex(tag, 5)}")


def test_wrong_key_fails() -> None:
    stored = EncryptionKey(KEY).encrypt("secret value")
    with pytest.raises(DecryptionError) as caught:
        EncryptionKey(secrets.token_hex(32)).decrypt(stored)
    assert "secret value" not in str(caught.value)


@pytest.mark.parametrize("bad", ["", "abc", "0" * 63, "0" * 65, "g" * 64, KEY[:-1] + "z"])
def test_a_key_that_is_not_64_hex_characters_is_refused(bad: str) -> None:
    with pytest.raises(InvalidKeyError, match="64 hexadecimal"):
        EncryptionKey(bad)


def test_malformed_values_fail_cleanly() -> None:
    key = EncryptionKey(KEY)
    for bad in ["", "nocolons", "zz:zz:zz", "00:11"]:
        with pytest.raises(DecryptionError):
            key.decrypt(bad)


def test_key_never_appears_in_repr() -> None:
    assert KEY not in repr(EncryptionKey(KEY))


# --- a key change: the current key writes, previous keys only read ----------------------------------
def test_a_key_ring_writes_with_the_current_key_and_reads_with_the_previous_ones() -> None:
    old, new = secrets.token_hex(32), secrets.token_hex(32)
    before = EncryptionKey(old).encrypt("postgresql://u:p@h/db")
    ring = KeyRing.from_text(new, f"{secrets.token_hex(32)}, {old}")
    assert ring.decrypt(before) == "postgresql://u:p@h/db"
    assert not ring.is_current(before)
    written = ring.encrypt("postgresql://u:p@h/db")
    assert ring.is_current(written)
    assert EncryptionKey(new).decrypt(written) == "postgresql://u:p@h/db"
    with pytest.raises(DecryptionError):
        EncryptionKey(old).decrypt(written)  # never written with an old key


def test_a_key_ring_refuses_what_no_key_opens_and_a_bad_previous_key_by_position() -> None:
    ring = KeyRing.from_text(KEY)
    with pytest.raises(DecryptionError):
        ring.decrypt(EncryptionKey(secrets.token_hex(32)).encrypt("x"))
    bad = "zz" * 32
    with pytest.raises(InvalidKeyError) as caught:
        KeyRing.from_text(KEY, f"{secrets.token_hex(32)},{bad}")
    assert "key 2" in str(caught.value)
    assert bad not in str(caught.value)
    assert KEY not in repr(KeyRing.from_text(KEY, KEY))
