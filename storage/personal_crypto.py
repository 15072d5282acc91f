"""Names and phones encrypted at rest, so that a copied database file does not expose them.

The key comes from the environment, never from the database or the configuration file:
``KHAOSAT_DATA_KEY`` holds one or more Fernet keys (``khaosat rekey --generate-key`` prints a
new one), separated by commas. The first encrypts; every one of them decrypts (key rotation,
see README *Personal data at rest*). Fernet (from ``cryptography``) is AES-128-CBC with an
HMAC-SHA256 tag and a timestamp: a value cannot be read or altered without the key.

* Stored form: ``enc1:<Fernet token>``. A value without the prefix is plaintext: written
  without a key (see below) or before encryption existed; it is read as is and encrypted by
  ``khaosat rekey`` once a key is set.
* Looking a person up by phone (the contact button in Telegram) cannot compare ciphertexts,
  which differ at every write: ``respondent_personal.phone_hmac`` holds HMAC-SHA256 of the
  normalised phone under a key derived from the data key. A lookup compares it with the HMAC
  under each configured key, so it keeps working between a rotation and ``khaosat rekey``.
* Without ``KHAOSAT_DATA_KEY``, personal fields are written in plaintext (the demo, tests, a
  first try) and a warning says so once per process: refusing them would stop every frame
  import on a machine where the operator has not yet set a key, and the README's deployment
  steps set one. A database with encrypted values read without the key is refused with a
  clear error rather than shown as ciphertext.

The codec is pure (no I/O besides reading the environment): repositories call ``seal`` at their
one write path and ``open`` where they read.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import logging
import os
from dataclasses import dataclass
from functools import lru_cache

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

from .errors import StorageError

ENV = "KHAOSAT_DATA_KEY"
PREFIX = "enc1:"
log = logging.getLogger(__name__)


class PersonalKeyError(StorageError):
    """The data key is missing, malformed or not the one the values were written with."""


@dataclass(frozen=True)
class PersonalCodec:
    keys: tuple[bytes, ...] = ()

    @property
    def encrypting(self) -> bool:
        return bool(self.keys)

    def seal(self, value: str | None) -> str | None:
        """The stored form of a name or phone: encrypted with the first key, or plaintext without one."""
        if value is None:
            return None
        if not self.keys:
            _warn_plaintext()
            return value
        return PREFIX + self._fernet().encrypt(value.encode("utf-8")).decode("ascii")

    def open(self, stored: str | None) -> str | None:
        """The name or phone a stored value holds."""
        if stored is None or not stored.startswith(PREFIX):
            return stored
        if not self.keys:
            raise PersonalKeyError(f"names and phones in this database are encrypted: set {ENV} to the key "
                                   "they were written with")
        try:
            return self._fernet().decrypt(stored[len(PREFIX):].encode("ascii")).decode("utf-8")
        except InvalidToken:
            raise PersonalKeyError(f"a name or phone was encrypted with a key that is not in {ENV}: add the "
                                   "old key after the new one (see `khaosat rekey --help`)") from None

    def phone_hash(self, phone: str | None) -> str | None:
        """The lookup column for ``phone`` under the current key (None without a key or a phone)."""
        if phone is None or not self.keys:
            return None
        return _phone_hmac(self.keys[0], phone)

    def phone_hashes(self, phone: str) -> list[str]:
        """Every lookup value ``phone`` may be stored under: one per configured key."""
        return [_phone_hmac(key, phone) for key in self.keys]

    def _fernet(self) -> MultiFernet:
        return _multi(self.keys)


def _phone_hmac(key: bytes, phone: str) -> str:
    lookup_key = hmac.new(base64.urlsafe_b64decode(key), b"khaosat phone lookup v1", hashlib.sha256).digest()
    return hmac.new(lookup_key, phone.encode("utf-8"), hashlib.sha256).hexdigest()


@lru_cache(maxsize=8)
def _multi(keys: tuple[bytes, ...]) -> MultiFernet:
    return MultiFernet([Fernet(key) for key in keys])


@lru_cache(maxsize=8)
def _parse(text: str) -> PersonalCodec:
    keys = []
    for number, part in enumerate((p.strip() for p in text.split(",") if p.strip()), start=1):
        try:
            if len(base64.urlsafe_b64decode(part.encode("ascii"))) != 32:
                raise ValueError
            Fernet(part.encode("ascii"))
        except (ValueError, binascii.Error, UnicodeEncodeError):
            raise PersonalKeyError(f"{ENV}: key {number} is not a key (44 characters of URL-safe base64); "
                                   "`khaosat rekey --generate-key` prints a new one") from None
        keys.append(part.encode("ascii"))
    return PersonalCodec(tuple(keys))


def codec() -> PersonalCodec:
    """The codec of the keys in the environment now."""
    return _parse(os.environ.get(ENV, ""))


def opened(*stored: str | None) -> tuple[str | None, ...]:
    """The plaintext of several stored values (a row's name and phone)."""
    personal = codec()
    return tuple(personal.open(value) for value in stored)


def generate_key() -> str:
    return Fernet.generate_key().decode("ascii")


_warned = False


def _warn_plaintext() -> None:
    global _warned
    if not _warned:
        _warned = True
        log.warning("%s is not set: names and phones are stored unencrypted (see README, Personal data at rest)",
                    ENV)
