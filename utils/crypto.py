"""Encryption at rest for what identifies a patient, switched on by DATA_ENCRYPTION_KEY.

With a key, the answer cache's values and the history's patient-bearing columns are
stored as Fernet tokens (AES-128-CBC with an HMAC-SHA256, from `cryptography`) and read
back transparently. Without one, nothing changes. Generate a key with

    python -c "from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())"

Several keys, comma-separated, rotate: the first encrypts, every one of them decrypts.
A sealed value carries a prefix, so plain values written before the key was set still read,
and a value sealed under a key this process does not hold is recognised as such rather
than shown as gibberish.
"""

from __future__ import annotations

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

from utils.settings import SettingsError

SEALED_PREFIX = "fernet1:"
_SEALED_PREFIX_BYTES = SEALED_PREFIX.encode("ascii")

GENERATE_HINT = ('python -c "from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())"')


class SealedWithAnotherKey(ValueError):
    """A value was encrypted with a key this process does not have (or with no key set at all)."""


class Sealer:
    """Encrypts and decrypts values with the DATA_ENCRYPTION_KEY; with no key, a pass-through."""

    def __init__(self, key: str = "") -> None:
        """`key`: one Fernet key, or several comma-separated (first encrypts); '' switches encryption off.

        Raises `SettingsError` naming DATA_ENCRYPTION_KEY when a key is not a Fernet key.
        """
        keys = [part.strip() for part in (key or "").split(",") if part.strip()]
        try:
            self._fernet = MultiFernet([Fernet(k) for k in keys]) if keys else None
        except (ValueError, TypeError):  # binascii.Error is a ValueError
            # The message never repeats the value: it is a secret even when mistyped.
            raise SettingsError("DATA_ENCRYPTION_KEY must be a Fernet key (32 url-safe base64-encoded bytes, "
                                f"44 characters); generate one with: {GENERATE_HINT}") from None

    def __repr__(self) -> str:
        return f"Sealer(enabled={self.enabled})"

    @property
    def enabled(self) -> bool:
        """True when a key is set, so new values are stored encrypted."""
        return self._fernet is not None

    @staticmethod
    def is_sealed(value: object) -> bool:
        """True for a value this class sealed (text or bytes), under whatever key."""
        if isinstance(value, str):
            return value.startswith(SEALED_PREFIX)
        if isinstance(value, (bytes, bytearray, memoryview)):
            return bytes(value[:len(_SEALED_PREFIX_BYTES)]) == _SEALED_PREFIX_BYTES
        return False

    def seal_bytes(self, data: bytes) -> bytes:
        """`data` encrypted and prefixed; unchanged when no key is set."""
        if self._fernet is None:
            return data
        return _SEALED_PREFIX_BYTES + self._fernet.encrypt(bytes(data))

    def open_bytes(self, stored: bytes) -> bytes:
        """The plain bytes of `stored`; plain input comes back as it is.

        Raises `SealedWithAnotherKey` when `stored` is sealed and no key set here opens it.
        """
        stored = bytes(stored)
        if not self.is_sealed(stored):
            return stored
        if self._fernet is None:
            raise SealedWithAnotherKey("encrypted, and DATA_ENCRYPTION_KEY is not set")
        try:
            return self._fernet.decrypt(stored[len(_SEALED_PREFIX_BYTES):])
        except InvalidToken:
            raise SealedWithAnotherKey("encrypted with another key") from None

    def seal_text(self, text: str) -> str:
        """`text` encrypted, as ASCII text with the prefix; unchanged when no key is set."""
        if self._fernet is None:
            return text
        return SEALED_PREFIX + self._fernet.encrypt(text.encode("utf-8")).decode("ascii")

    def open_text(self, stored: str) -> str:
        """The plain text of `stored`; plain input comes back as it is.

        Raises `SealedWithAnotherKey` when `stored` is sealed and no key set here opens it.
        """
        if not self.is_sealed(stored):
            return stored
        try:
            return self.open_bytes(stored.encode("ascii")).decode("utf-8")
        except UnicodeError:  # a token is ASCII: this one was damaged after it was written
            raise SealedWithAnotherKey("damaged encrypted value") from None


__all__ = ["Sealer", "SealedWithAnotherKey", "SEALED_PREFIX", "GENERATE_HINT"]
