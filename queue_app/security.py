"""Password hashing and secret tokens."""
import hashlib
import secrets

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

_hasher = PasswordHasher()
# A fixed hash to verify against when the account does not exist, so timing does not reveal it.
_DUMMY_HASH = _hasher.hash("not-a-real-password")


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(password_hash: str | None, password: str) -> bool:
    try:
        return _hasher.verify(password_hash or _DUMMY_HASH, password) and password_hash is not None
    except (VerificationError, InvalidHashError):
        return False


def new_token() -> str:
    """An unguessable token (192 bits) for tracking links, device tokens and manage links."""
    return secrets.token_urlsafe(24)


def token_hash(token: str) -> str:
    """Tokens are stored as SHA-256: a leaked database does not leak working links."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()
