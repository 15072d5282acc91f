"""The chat's name for invitation codes and phone numbers, which live in `surveys.invitation_codes`.

They moved there because letters (`exporters`), paper forms (`fieldwork`) and the frame reader
(`surveys.sampling`) use them too, and those layers never import `bot`.
"""

from surveys.invitation_codes import (  # noqa: F401
    TYPED_ALPHABET,
    TYPED_LENGTH,
    PhoneError,
    code_hash,
    is_link_code,
    is_typed_code,
    new_link_code,
    new_typed_code,
    normalise_phone,
    normalise_typed_code,
)
