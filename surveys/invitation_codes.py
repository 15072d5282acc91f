"""Personal invitation codes and phone numbers: how a chat is bound to a sampled person.

Codes are stored only as hashes, so a copy of the database does not let anyone answer in
someone else's name. A link code (Telegram deep link) carries 128 random bits in the
deep-link alphabet; a typed code (Zalo, read off a letter) is short and unambiguous.
"""

from __future__ import annotations

import hashlib
import re
import secrets

#: Telegram's deep-link payload alphabet is A-Z a-z 0-9 _ - and at most 64 characters.
_LINK_CODE = re.compile(r"^[A-Za-z0-9_-]{22}$")
#: Crockford's base32: no I, L, O, U, so a code read from paper is typed right.
TYPED_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
TYPED_LENGTH = 8


def new_link_code() -> str:
    """128 random bits as 22 base64url characters (the issue asks for at least 96)."""
    return secrets.token_urlsafe(16)


def new_typed_code() -> str:
    """40 random bits in 8 characters, easy to type on a phone; brute force is rate-limited."""
    return "".join(secrets.choice(TYPED_ALPHABET) for _ in range(TYPED_LENGTH))


def normalise_typed_code(text: str) -> str:
    """What a person typed, read leniently: case, spaces and dashes do not matter."""
    cleaned = re.sub(r"[\s\-.]", "", text).upper()
    return cleaned.translate(str.maketrans({"O": "0", "I": "1", "L": "1"}))


def is_link_code(text: str) -> bool:
    return bool(_LINK_CODE.match(text))


def is_typed_code(text: str) -> bool:
    code = normalise_typed_code(text)
    return len(code) == TYPED_LENGTH and all(ch in TYPED_ALPHABET for ch in code)


def code_hash(code: str) -> str:
    return hashlib.sha256(code.encode("ascii")).hexdigest()


class PhoneError(ValueError):
    pass


def _ascii_digits(text: str) -> bool:
    return text.isascii() and text.isdigit()  # str.isdigit() alone accepts "²" and "٣"


def normalise_phone(raw: str) -> str:
    """A Vietnamese number as E.164: 0912 345 678, 84912345678 and +84 912-345-678 → +84912345678."""
    digits = re.sub(r"[\s().\-]", "", raw)
    if digits.startswith("+"):
        digits = digits[1:]
        if not digits.startswith("84"):
            if not _ascii_digits(digits) or not 8 <= len(digits) <= 15:
                raise PhoneError(f"'{raw}' is not a phone number")
            return "+" + digits  # a foreign number, kept as given
    elif digits.startswith("84") and len(digits) in (11, 12):
        pass
    elif digits.startswith("0"):
        digits = "84" + digits[1:]
    if not _ascii_digits(digits):
        raise PhoneError(f"'{raw}' is not a phone number")
    national = digits[2:]
    # Vietnamese mobile and landline numbers have 9 or 10 digits after the country code.
    if not digits.startswith("84") or len(national) not in (9, 10):
        raise PhoneError(f"'{raw}' is not a Vietnamese phone number (0xxxxxxxxx or +84xxxxxxxxx)")
    return "+" + digits
