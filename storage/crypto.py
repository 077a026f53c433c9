"""Encryption at rest and the hashes used for lookups.

Blob layout (`SecretBox.encrypt`)::

    version (1 byte) | key id (4 bytes) | nonce (12 bytes) | AES-256-GCM ciphertext + tag

The associated data is the header plus a string naming the table, column and row the
value belongs to, so a ciphertext copied to another row (or column) fails to decrypt.
The first configured key encrypts; every configured key decrypts (rotation).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import secrets
import stat
from collections.abc import Sequence
from pathlib import Path
from typing import Final

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

VERSION: Final = 1
KEY_BYTES: Final = 32
KEY_ID_BYTES: Final = 4
NONCE_BYTES: Final = 12
_HEADER_BYTES: Final = 1 + KEY_ID_BYTES
_MIN_BLOB: Final = _HEADER_BYTES + NONCE_BYTES + 16  # 16 = GCM tag
_PEPPER_LABEL: Final = b"moahook/2fa-code-pepper/v1"


def decode_master_key(text: str) -> bytes:
    """A master key is 32 random bytes in URL-safe base64 (what `moahook gen-key` prints)."""
    stripped = text.strip()
    try:
        raw = base64.urlsafe_b64decode(stripped + "=" * (-len(stripped) % 4))
    except (binascii.Error, ValueError) as exc:
        raise ValueError("not URL-safe base64") from exc
    if len(raw) != 32:
        raise ValueError(f"decodes to {len(raw)} bytes, expected 32")
    return raw


def encode_master_key(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode()


class DecryptionError(Exception):
    """A stored value cannot be decrypted; the message says why, never what."""


class MasterKeyError(Exception):
    """The master key is missing, malformed or stored unsafely."""


def key_id(key: bytes) -> bytes:
    """Names a key inside blobs without revealing it: first 4 bytes of its SHA-256."""
    return hashlib.sha256(key).digest()[:KEY_ID_BYTES]


class SecretBox:
    """AES-GCM with row-bound associated data and several keys for rotation."""

    __slots__ = ("_ciphers", "_current_id", "_pepper")

    def __init__(self, keys: Sequence[bytes]) -> None:
        if not keys:
            raise MasterKeyError("no master key configured: refusing to store secrets")
        ciphers: dict[bytes, AESGCM] = {}
        for position, key in enumerate(keys, start=1):
            if len(key) != KEY_BYTES:
                raise MasterKeyError(
                    f"master key #{position} is {len(key)} bytes, expected {KEY_BYTES}"
                )
            ciphers.setdefault(key_id(key), AESGCM(key))
        self._ciphers = ciphers
        self._current_id = key_id(keys[0])
        # 2FA codes have only 10**6 values: their hashes need a secret to be unguessable.
        self._pepper = hmac.new(keys[0], _PEPPER_LABEL, hashlib.sha256).digest()

    def __repr__(self) -> str:
        return f"SecretBox(keys={len(self._ciphers)}, current={self._current_id.hex()})"

    @property
    def pepper(self) -> bytes:
        """A secret derived from the current key, for keyed hashes (`hash_code`)."""
        return self._pepper

    def encrypt(self, plaintext: str, aad: str) -> bytes:
        header = bytes([VERSION]) + self._current_id
        nonce = os.urandom(NONCE_BYTES)
        sealed = self._ciphers[self._current_id].encrypt(
            nonce, plaintext.encode("utf-8"), header + aad.encode("utf-8")
        )
        return header + nonce + sealed

    def decrypt(self, blob: bytes, aad: str) -> str:
        blob = bytes(blob)
        if len(blob) < _MIN_BLOB or blob[0] != VERSION:
            raise DecryptionError(
                "stored value is not a moahook ciphertext (unknown format or truncated)"
            )
        header = blob[:_HEADER_BYTES]
        kid = blob[1:_HEADER_BYTES]
        cipher = self._ciphers.get(kid)
        if cipher is None:
            raise DecryptionError(
                "stored value was encrypted with a master key that is not configured "
                f"(key id {kid.hex()}); add that key to MOAHOOK_MASTER_KEY"
            )
        nonce = blob[_HEADER_BYTES : _HEADER_BYTES + NONCE_BYTES]
        try:
            plain = cipher.decrypt(
                nonce, blob[_HEADER_BYTES + NONCE_BYTES :], header + aad.encode("utf-8")
            )
        except InvalidTag:
            raise DecryptionError(
                f"stored value does not belong to this row or was altered ({aad.split(':')[0]})"
            ) from None
        return plain.decode("utf-8")

    def needs_rotation(self, blob: bytes) -> bool:
        """True when the blob was not written under the current (first) key."""
        return bytes(blob[1:_HEADER_BYTES]) != self._current_id


def hash_token(token: str) -> str:
    """Lookup hash for high-entropy tokens (>= 128 bits): plain SHA-256 suffices."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def hash_code(code: str, salt: bytes, pepper: bytes) -> str:
    """Keyed hash for short codes: without the pepper a stolen hash is not brute-forceable."""
    return hmac.new(pepper, salt + code.encode("utf-8"), hashlib.sha256).hexdigest()


def generate_master_key() -> bytes:
    return secrets.token_bytes(KEY_BYTES)


def load_master_keys(configured: tuple[bytes, ...], key_file: Path) -> tuple[bytes, ...]:
    """Configured keys win; else the key file; else a new key file (mode 0600)."""
    if configured:
        return configured
    try:
        return (_read_key_file(key_file),)
    except FileNotFoundError:
        pass
    key_file.parent.mkdir(parents=True, exist_ok=True)
    key = generate_master_key()
    try:
        fd = os.open(key_file, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
    except FileExistsError:
        # Another process created it between our read and our create: use theirs.
        return (_read_key_file(key_file),)
    with os.fdopen(fd, "w", encoding="ascii") as handle:
        handle.write(encode_master_key(key) + "\n")
    return (key,)


def _read_key_file(key_file: Path) -> bytes:
    mode = key_file.stat().st_mode
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise MasterKeyError(
            f"{key_file}: master key file is accessible by group or others "
            f"(mode {stat.S_IMODE(mode):o}); run `chmod 600 {key_file}`"
        )
    text = key_file.read_text(encoding="ascii", errors="replace")
    try:
        return decode_master_key(text)
    except ValueError as exc:
        raise MasterKeyError(f"{key_file}: not a master key ({exc})") from None


__all__ = [
    "DecryptionError",
    "MasterKeyError",
    "SecretBox",
    "generate_master_key",
    "hash_code",
    "hash_token",
    "key_id",
    "load_master_keys",
]
