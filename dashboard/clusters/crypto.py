"""Encryption at rest for uploaded kubeconfigs (Fernet: AES-128-CBC + HMAC-SHA256).

Keys, in order (the first encrypts, every one can decrypt — `MultiFernet`):
  1. each comma-separated entry of DAEMONVIZ_ENCRYPTION_KEY (a Fernet key as printed by
     `Fernet.generate_key()`, or any long random string, which is stretched with HKDF);
  2. a key derived from SECRET_KEY — the default, so `make run` needs no configuration,
     and kept as a decrypt-only fallback once a dedicated key is set, so uploads stored
     before that still open (re-save them to re-encrypt under the new key).

Why a key of its own rather than SECRET_KEY alone: SECRET_KEY signs sessions and is
rotated for that reason; a dedicated key can live in a different secret store than the
database and is rotated on its own schedule (put the new key first, keep the old after).
A database dump or backup without the key exposes no cluster credential.
"""

from __future__ import annotations

import base64
import binascii

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from django.conf import settings

_INFO = b"daemonviz.kubeconfig-encryption.v1"


class DecryptionError(Exception):
    """The ciphertext does not open with any configured key (the key changed?)."""


def _derive(secret: str) -> bytes:
    raw = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_INFO).derive(secret.encode())
    return base64.urlsafe_b64encode(raw)


def _as_key(text: str) -> bytes:
    """A Fernet key as given, or one derived from an arbitrary secret string."""
    try:
        if len(base64.urlsafe_b64decode(text.encode())) == 32:
            return text.encode()
    except (binascii.Error, ValueError):
        pass
    return _derive(text)


def keys() -> list[bytes]:
    configured = [k.strip() for k in settings.DAEMONVIZ_ENCRYPTION_KEY.split(",") if k.strip()]
    result = [_as_key(k) for k in configured]
    fallback = _derive(settings.SECRET_KEY)
    if fallback not in result:
        result.append(fallback)
    return result


def _fernet() -> MultiFernet:
    return MultiFernet([Fernet(k) for k in keys()])


def encrypt(plaintext: str) -> str:
    return _fernet().encrypt(plaintext.encode()).decode()


def decrypt(token: str) -> str:
    try:
        return _fernet().decrypt(token.encode()).decode()
    except (InvalidToken, UnicodeDecodeError):
        # Never include the ciphertext or key material in the message.
        raise DecryptionError(
            "the stored kubeconfig cannot be decrypted with the configured keys "
            "(DAEMONVIZ_ENCRYPTION_KEY or SECRET_KEY changed?) — upload it again"
        ) from None
