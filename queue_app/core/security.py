"""Password hashing and secret tokens."""
import functools
import hashlib
import re
import secrets

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

# Argon2id's cost in the notation of the hash itself: memory in KiB, passes, lanes. These are
# argon2-cffi's defaults (RFC 9106's low-memory profile), about 0.2 s a hash on one core. The app
# passes its PASSWORD_HASH_COST setting (core/config.py); the tests set a cheap one, except the tests
# of hashing and sign-in (tests/accounts/test_accounts.py). A hash keeps its own cost, so hashes made at
# another cost still verify.
DEFAULT_HASH_COST = "m=65536,t=3,p=4"
_COST = re.compile(r"m=(\d+),t=(\d+),p=(\d+)")


@functools.cache
def _hasher(cost: str) -> tuple[PasswordHasher, str]:
    """The hasher for `cost`, and a fixed hash at that cost to verify against when the account does
    not exist, so timing does not reveal it."""
    match = _COST.fullmatch(cost)
    if match is None:
        raise ValueError(f"password hash cost {cost!r}: expected 'm=KIB,t=PASSES,p=LANES'")
    memory, passes, lanes = (int(group) for group in match.groups())
    hasher = PasswordHasher(time_cost=passes, memory_cost=memory, parallelism=lanes)
    return hasher, hasher.hash("not-a-real-password")


def hash_password(password: str, cost: str = DEFAULT_HASH_COST) -> str:
    return _hasher(cost)[0].hash(password)


def verify_password(password_hash: str | None, password: str, cost: str = DEFAULT_HASH_COST) -> bool:
    hasher, dummy = _hasher(cost)
    try:
        return hasher.verify(password_hash or dummy, password) and password_hash is not None
    except (VerificationError, InvalidHashError):
        return False


def new_token() -> str:
    """An unguessable token (192 bits) for tracking links, device tokens and manage links."""
    return secrets.token_urlsafe(24)


def token_hash(token: str) -> str:
    """Tokens are stored as SHA-256: a leaked database does not leak working links."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()
