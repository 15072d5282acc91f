"""Names and phones encrypted at rest, so that a copied database file does not expose them.

The key comes from the environment, never from the database or the configuration file:
``KHAOSAT_DATA_KEY`` holds one or more keys (32 random bytes in URL-safe base64, 44 characters;
``khaosat rekey --generate-key`` prints a new one), separated by commas. The first encrypts;
every one of them decrypts (key rotation, see README *Personal data at rest*).

* Cipher: AES-256-GCM from ``cryptography`` (authenticated: a value cannot be read or altered
  without the key), a fresh 96-bit random nonce per value. Not Fernet: the same library's
  Fernet took 87 µs per value against GCM's 7 µs here, minutes on a million-row frame.
* Stored form: ``enc1:<key id>:<base64 of nonce + ciphertext>``; the key id (8 hex digits of
  the key's SHA-256) picks the key to decrypt with, so rotation needs no trial decryption. A
  value without the prefix is plaintext: written without a key (see below) or before
  encryption existed; it is read as is and encrypted by ``khaosat rekey`` once a key is set.
* Looking a person up by phone (the contact button in Telegram) cannot compare ciphertexts,
  which differ at every write: ``respondent_personal.phone_hmac`` holds HMAC-SHA256 of the
  normalised phone under a key derived from the data key. A lookup compares it with the HMAC
  under each configured key, so it keeps working between a rotation and ``khaosat rekey``.
* Without ``KHAOSAT_DATA_KEY``, personal fields are written in plaintext (the demo, tests, a
  first try) and a warning says so once per process: refusing them would stop every frame
  import on a machine where the operator has not yet set a key, and the README's deployment
  steps set one. A database with encrypted values read without the right key is refused with a
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
from functools import cached_property, lru_cache

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from .errors import StorageError

ENV = "KHAOSAT_DATA_KEY"
PREFIX = "enc1:"
log = logging.getLogger(__name__)


class PersonalKeyError(StorageError):
    """The data key is missing, malformed or not the one the values were written with."""


@dataclass(frozen=True)
class PersonalCodec:
    keys: tuple[bytes, ...] = ()  # raw 32-byte keys, the current one first

    @property
    def encrypting(self) -> bool:
        return bool(self.keys)

    @cached_property
    def _ciphers(self) -> dict[str, AESGCM]:
        return {_key_id(key): AESGCM(key) for key in self.keys}

    def seal(self, value: str | None) -> str | None:
        """The stored form of a name or phone: encrypted with the first key, or plaintext without one."""
        if value is None:
            return None
        if not self.keys:
            _warn_plaintext()
            return value
        key_id = _key_id(self.keys[0])
        nonce = os.urandom(12)
        sealed = nonce + self._ciphers[key_id].encrypt(nonce, value.encode("utf-8"), _AAD)
        return f"{PREFIX}{key_id}:{base64.urlsafe_b64encode(sealed).decode('ascii')}"

    def open(self, stored: str | None) -> str | None:
        """The name or phone a stored value holds."""
        if stored is None or not stored.startswith(PREFIX):
            return stored
        if not self.keys:
            raise PersonalKeyError(f"names and phones in this database are encrypted: set {ENV} to the key "
                                   "they were written with")
        key_id, _, text = stored[len(PREFIX):].partition(":")
        cipher = self._ciphers.get(key_id)
        if cipher is None:
            raise PersonalKeyError(f"a name or phone was encrypted with a key that is not in {ENV}: add the "
                                   "old key after the new one (see `khaosat rekey --help`)")
        try:
            sealed = base64.urlsafe_b64decode(text.encode("ascii"))
            return cipher.decrypt(sealed[:12], sealed[12:], _AAD).decode("utf-8")
        except (InvalidTag, ValueError, binascii.Error):
            raise PersonalKeyError("a stored name or phone is damaged (it does not decrypt)") from None

    def seal_bytes(self, content: bytes) -> tuple[bytes, str | None]:
        """A media file's stored bytes and the id of the key that sealed them (None: plaintext,
        without a key); nonce + ciphertext, as `seal` does for text."""
        if not self.keys:
            _warn_plaintext()
            return content, None
        key_id = _key_id(self.keys[0])
        nonce = os.urandom(12)
        return nonce + self._ciphers[key_id].encrypt(nonce, content, _MEDIA_AAD), key_id

    def open_bytes(self, stored: bytes, key_id: str | None) -> bytes:
        """A media file's bytes as sent."""
        if key_id is None:
            return bytes(stored)
        cipher = self._ciphers.get(key_id)
        if cipher is None:
            raise PersonalKeyError(f"a media file was encrypted with a key that is not in {ENV}: set the key "
                                   "it was written with (see `khaosat rekey --help`)")
        try:
            stored = bytes(stored)
            return cipher.decrypt(stored[:12], stored[12:], _MEDIA_AAD)
        except (InvalidTag, ValueError):
            raise PersonalKeyError("a stored media file is damaged (it does not decrypt)") from None

    @property
    def current_key_id(self) -> str | None:
        """The id of the key that seals now (the first one; None without a key): what
        ``answer_media.sealed_with`` holds for a file ``khaosat rekey`` need not touch."""
        return _key_id(self.keys[0]) if self.keys else None

    def is_current(self, stored: str | None) -> bool:
        """Already encrypted with the first key (``khaosat rekey`` leaves it as it is)."""
        return stored is None or bool(self.keys) and stored.startswith(f"{PREFIX}{_key_id(self.keys[0])}:")

    def phone_hash(self, phone: str | None) -> str | None:
        """The lookup column for ``phone`` under the current key (None without a key or a phone)."""
        if phone is None or not self.keys:
            return None
        return _phone_hmac(self.keys[0], phone)

    def phone_hashes(self, phone: str) -> list[str]:
        """Every lookup value ``phone`` may be stored under: one per configured key."""
        return [_phone_hmac(key, phone) for key in self.keys]

    def derived_secret(self, purpose: bytes) -> bytes | None:
        """A secret for ``purpose`` derived from the current data key (None without one), the same
        in every process and after a restart (the web pages' CSRF tokens)."""
        return hmac.new(self.keys[0], b"khaosat derived secret v1:" + purpose, hashlib.sha256).digest() \
            if self.keys else None

    def address_hash(self, address: str) -> str:
        """What is kept of a client's network address (the web's limit on wrong codes per address):
        HMAC-SHA256 under a key derived from the current data key, so the stored value cannot be
        turned back into the address by hashing all 2³² IPv4 addresses; without a key, a plain
        SHA-256, as names and phones are plaintext then."""
        if not self.keys:
            return hashlib.sha256(address.encode("utf-8")).hexdigest()[:16]
        address_key = hmac.new(self.keys[0], b"khaosat client address v1", hashlib.sha256).digest()
        return hmac.new(address_key, address.encode("utf-8"), hashlib.sha256).hexdigest()[:16]


_AAD = b"khaosat personal field v1"
_MEDIA_AAD = b"khaosat media file v1"


def _key_id(key: bytes) -> str:
    return hashlib.sha256(b"khaosat key id" + key).hexdigest()[:8]


def _phone_hmac(key: bytes, phone: str) -> str:
    lookup_key = hmac.new(key, b"khaosat phone lookup v1", hashlib.sha256).digest()
    return hmac.new(lookup_key, phone.encode("utf-8"), hashlib.sha256).hexdigest()


@lru_cache(maxsize=8)
def _parse(text: str) -> PersonalCodec:
    keys = []
    for number, part in enumerate((p.strip() for p in text.split(",") if p.strip()), start=1):
        try:
            key = base64.urlsafe_b64decode(part.encode("ascii"))
            if len(key) != 32 or len(part) != 44:
                raise ValueError
        except (ValueError, binascii.Error, UnicodeEncodeError):
            raise PersonalKeyError(f"{ENV}: key {number} is not a key (44 characters of URL-safe base64); "
                                   "`khaosat rekey --generate-key` prints a new one") from None
        keys.append(key)
    return PersonalCodec(tuple(keys))


def codec() -> PersonalCodec:
    """The codec of the keys in the environment now."""
    return _parse(os.environ.get(ENV, ""))


def opened(*stored: str | None) -> tuple[str | None, ...]:
    """The plaintext of several stored values (a row's name and phone)."""
    personal = codec()
    return tuple(personal.open(value) for value in stored)


def generate_key() -> str:
    return base64.urlsafe_b64encode(AESGCM.generate_key(bit_length=256)).decode("ascii")


_warned = False
PLAINTEXT_WARNING = f"{ENV} is not set: names and phones are stored unencrypted (see README, Personal data at rest)"


def _warn_plaintext() -> None:
    global _warned
    if not _warned:
        _warned = True
        log.warning(PLAINTEXT_WARNING)


def take_plaintext_warning() -> str | None:
    """The warning, for a caller that prints it in its own output (the demo, whose people are
    invented), or None when a key is set; the logger then stays silent."""
    global _warned
    if codec().encrypting:
        return None
    _warned = True
    return PLAINTEXT_WARNING
