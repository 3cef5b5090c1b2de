"""Password hashing (argon2id via argon2-cffi) and the password policy staff accounts must meet."""

from __future__ import annotations

import os
from functools import lru_cache
from importlib.resources import files

from argon2 import DEFAULT_MEMORY_COST, DEFAULT_TIME_COST, PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

MIN_LENGTH = 12


@lru_cache(maxsize=1)
def _hasher() -> PasswordHasher:
    """argon2id with the library's recommended cost unless the deployment tunes it (VETCONNECT_ARGON2_TIME_COST,
    VETCONNECT_ARGON2_MEMORY_KIB) — e.g. a small box, or a test suite that hashes hundreds of passwords.
    Hashes record their parameters, so changing them later only makes ``needs_rehash`` true for old hashes."""
    return PasswordHasher(
        time_cost=int(os.environ.get("VETCONNECT_ARGON2_TIME_COST", DEFAULT_TIME_COST)),
        memory_cost=int(os.environ.get("VETCONNECT_ARGON2_MEMORY_KIB", DEFAULT_MEMORY_COST)),
    )


class WeakPassword(ValueError):
    """The password does not meet the policy; the message says which rule."""


@lru_cache(maxsize=1)
def _common_passwords() -> frozenset[str]:
    text = files("warehouse.security").joinpath("common_passwords.txt").read_text()
    return frozenset(line.strip().lower() for line in text.splitlines() if line.strip())


def check_policy(password: str, *, username: str) -> None:
    if len(password) < MIN_LENGTH:
        raise WeakPassword(f"password must be at least {MIN_LENGTH} characters")
    lowered = password.lower()
    if username and username.lower() in lowered:
        raise WeakPassword("password must not contain the user name")
    if lowered in _common_passwords() or any(
        lowered.startswith(p) and len(p) >= 8 for p in _common_passwords()
    ):
        raise WeakPassword("password is too common; choose a passphrase of several unrelated words")
    if len(set(password)) < 5:
        raise WeakPassword("password repeats too few distinct characters")


def hash_password(password: str) -> str:
    return _hasher().hash(password)


def verify_password(stored_hash: str, password: str) -> bool:
    try:
        return _hasher().verify(stored_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def needs_rehash(stored_hash: str) -> bool:
    return _hasher().check_needs_rehash(stored_hash)
