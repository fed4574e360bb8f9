"""Ingest tokens: high-entropy secrets, so a plain SHA-256 is a safe, fast lookup key."""

import hashlib
import secrets

TOKEN_PREFIX = "ms_"
_TOKEN_BYTES = 32
PREFIX_SHOWN = 10


def new_token() -> str:
    return TOKEN_PREFIX + secrets.token_urlsafe(_TOKEN_BYTES)


def digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()
