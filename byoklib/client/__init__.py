"""The user's side of Key Protect: the retrieved import token and the secure-import fields
(`token`), the `requests` client (`keyprotect`) and its reading of answers (`answers`).
It talks to whatever URL it is given and knows nothing of the mock."""
from .answers import error_from_response
from .keyprotect import KeyProtectClient, byok_import, iam_token, new_session
from .token import ImportToken, prepare_secure_import

__all__ = ["KeyProtectClient", "byok_import", "iam_token", "new_session", "ImportToken",
           "prepare_secure_import", "error_from_response"]
