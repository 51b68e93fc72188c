"""Identifiers and secrets shaped like Neon's, and the physical PostgreSQL names behind them.

Neon ids: projects ``wandering-fog-12345678``, branches ``br-cool-paper-a1b2c3d4``, endpoints
``ep-quiet-sun-a1b2c3d4``, operations UUIDs; role passwords ``npg_`` and 12 characters.
"""

from __future__ import annotations

import secrets
import string
import uuid

__all__ = [
    "PG_IDENTIFIER_BYTES",
    "branch_id",
    "endpoint_id",
    "operation_id",
    "password",
    "physical_name",
    "project_id",
    "request_id",
]

PG_IDENTIFIER_BYTES = 63
"""PostgreSQL truncates longer identifiers (NAMEDATALEN - 1), so names are cut to fit."""

_ADJECTIVES = (
    "aged", "autumn", "billowing", "bitter", "bold", "broad", "calm", "cool", "crimson", "damp",
    "dark", "dawn", "delicate", "divine", "dry", "empty", "falling", "floral", "fragrant", "frosty",
    "gentle", "hidden", "holy", "icy", "late", "lingering", "little", "lively", "long", "misty",
    "morning", "muddy", "nameless", "old", "patient", "plain", "polished", "proud", "quiet",
    "rapid", "restless", "rough", "shiny", "shy", "silent", "small", "snowy", "soft", "solitary",
    "sparkling", "spring", "steep", "still", "summer", "super", "sweet", "wandering", "weathered",
    "white", "wild", "winter", "wispy", "withered", "young",
)  # fmt: skip
_NOUNS = (
    "bird", "breeze", "brook", "bush", "butterfly", "cherry", "cloud", "darkness", "dawn", "dew",
    "dream", "dust", "field", "fire", "firefly", "flower", "fog", "forest", "frog", "frost",
    "glade", "glitter", "grass", "haze", "hill", "king", "lake", "leaf", "meadow", "moon",
    "morning", "mountain", "night", "paper", "pine", "pond", "rain", "resonance", "river", "salad",
    "sea", "shadow", "shape", "silence", "sky", "smoke", "snow", "snowflake", "sound", "star",
    "sun", "sunset", "surf", "thunder", "tree", "violet", "voice", "water", "waterfall", "wave",
    "wildflower", "wind", "wood",
)  # fmt: skip
_SUFFIX_ALPHABET = string.ascii_lowercase + string.digits


def _words() -> str:
    return f"{secrets.choice(_ADJECTIVES)}-{secrets.choice(_NOUNS)}"


def _suffix(length: int = 8) -> str:
    return "".join(secrets.choice(_SUFFIX_ALPHABET) for _ in range(length))


def project_id() -> str:
    """``wandering-fog-12345678``: two words and eight digits."""
    return f"{_words()}-{secrets.randbelow(10**8):08d}"


def branch_id() -> str:
    return f"br-{_words()}-{_suffix()}"


def endpoint_id() -> str:
    return f"ep-{_words()}-{_suffix()}"


def operation_id() -> str:
    return str(uuid.uuid4())


def request_id() -> str:
    return str(uuid.uuid4())


def password() -> str:
    """A role password of Neon's current shape (``npg_`` and 12 letters or digits)."""
    alphabet = string.ascii_letters + string.digits
    return "npg_" + "".join(secrets.choice(alphabet) for _ in range(12))


def physical_name(logical: str, project: str) -> str:
    """The server-wide unique name of a project's database or role.

    Every project wants ``neondb`` and ``neondb_owner``, but one PostgreSQL server hosts
    them all, so the physical name appends the project's unique digits. The logical part
    is cut (on a character boundary) so the whole fits PostgreSQL's 63-byte limit.
    """
    tag = "_" + project.rsplit("-", 1)[-1]
    room = PG_IDENTIFIER_BYTES - len(tag.encode())
    head = logical
    while len(head.encode()) > room:
        head = head[:-1]
    return head + tag
