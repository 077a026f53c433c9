"""SecretBox, key files and lookup hashes: pure crypto, no database."""

from __future__ import annotations

import os
import secrets
import stat
from pathlib import Path

import pytest

from storage.crypto import (
    DecryptionError,
    MasterKeyError,
    SecretBox,
    decode_master_key,
    encode_master_key,
    hash_code,
    hash_token,
    key_id,
    load_master_keys,
)


def test_round_trip_and_fresh_nonce_each_time() -> None:
    box = SecretBox([secrets.token_bytes(32)])
    first = box.encrypt("app-secret-value", "key_sets.app_secret_enc:1:paper")
    second = box.encrypt("app-secret-value", "key_sets.app_secret_enc:1:paper")
    assert first != second
    assert b"app-secret-value" not in first
    assert box.decrypt(first, "key_sets.app_secret_enc:1:paper") == "app-secret-value"


def test_other_row_identity_fails_with_clear_error() -> None:
    box = SecretBox([secrets.token_bytes(32)])
    blob = box.encrypt("s3cr3t-value", "key_sets.app_secret_enc:1:paper")
    with pytest.raises(DecryptionError, match="does not belong to this row or was altered") as e:
        box.decrypt(blob, "key_sets.app_secret_enc:2:paper")
    assert "s3cr3t" not in str(e.value)


def test_altered_ciphertext_fails() -> None:
    box = SecretBox([secrets.token_bytes(32)])
    blob = bytearray(box.encrypt("value", "aad"))
    blob[-1] ^= 1
    with pytest.raises(DecryptionError, match="was altered"):
        box.decrypt(bytes(blob), "aad")


def test_unknown_key_names_its_key_id() -> None:
    old = secrets.token_bytes(32)
    blob = SecretBox([old]).encrypt("value", "aad")
    with pytest.raises(DecryptionError, match="master key that is not configured") as e:
        SecretBox([secrets.token_bytes(32)]).decrypt(blob, "aad")
    assert key_id(old).hex() in str(e.value)


def test_garbage_is_refused_not_decoded() -> None:
    box = SecretBox([secrets.token_bytes(32)])
    with pytest.raises(DecryptionError, match="not a moahook ciphertext"):
        box.decrypt(b"plaintext secret stored by mistake", "aad")


def test_rotation_first_encrypts_all_decrypt() -> None:
    k1, k2 = secrets.token_bytes(32), secrets.token_bytes(32)
    old_blob = SecretBox([k1]).encrypt("v", "aad")
    rotated = SecretBox([k2, k1])
    assert rotated.decrypt(old_blob, "aad") == "v"
    assert rotated.needs_rotation(old_blob)
    new_blob = rotated.encrypt("v", "aad")
    assert not rotated.needs_rotation(new_blob)
    assert SecretBox([k2]).decrypt(new_blob, "aad") == "v"


def test_no_key_or_bad_key_refused() -> None:
    with pytest.raises(MasterKeyError, match="no master key"):
        SecretBox([])
    with pytest.raises(MasterKeyError, match="expected 32"):
        SecretBox([b"short"])


def test_repr_shows_no_key_material() -> None:
    key = secrets.token_bytes(32)
    text = repr(SecretBox([key]))
    assert key.hex() not in text and encode_master_key(key) not in text


def test_key_file_generated_0600_and_reused(tmp_path: Path) -> None:
    key_file = tmp_path / "data" / "master.key"
    (generated,) = load_master_keys((), key_file)
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert decode_master_key(key_file.read_text()) == generated
    assert load_master_keys((), key_file) == (generated,)


def test_configured_keys_win_over_file(tmp_path: Path) -> None:
    key_file = tmp_path / "master.key"
    configured = (secrets.token_bytes(32),)
    assert load_master_keys(configured, key_file) == configured
    assert not key_file.exists()


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604])
def test_key_file_readable_by_others_refused(tmp_path: Path, mode: int) -> None:
    key_file = tmp_path / "master.key"
    key_file.write_text(encode_master_key(secrets.token_bytes(32)))
    os.chmod(key_file, mode)
    with pytest.raises(MasterKeyError, match="chmod 600"):
        load_master_keys((), key_file)


def test_malformed_key_file_refused(tmp_path: Path) -> None:
    key_file = tmp_path / "master.key"
    fd = os.open(key_file, os.O_CREAT | os.O_WRONLY, 0o600)
    os.write(fd, b"not-a-key")
    os.close(fd)
    with pytest.raises(MasterKeyError, match="not a master key"):
        load_master_keys((), key_file)


def test_hashes() -> None:
    assert hash_token("abc") == hash_token("abc") != hash_token("abd")
    assert len(hash_token("abc")) == 64
    salt = b"0123456789abcdef"
    assert hash_code("123456", salt, b"p1") != hash_code("123456", salt, b"p2")
    assert hash_code("123456", salt, b"p1") != hash_code("123456", b"x" * 16, b"p1")
