"""The user's side of Key Protect: the retrieved import token and the secure-import fields
(`token`), the `requests` client (`keyprotect`) over its session with retries
(`transport`), IAM (`iam`), the reading of answers (`answers`) and the `kp` command line
(`cli`). It talks to whatever URL it is given and knows nothing of the mock."""
from .answers import error_from_response
from .iam import iam_token
from .keyprotect import KeyProtectClient, byok_import
from .token import ImportToken, prepare_secure_import
from .transport import new_session

__all__ = ["KeyProtectClient", "byok_import", "iam_token", "new_session", "ImportToken",
           "prepare_secure_import", "error_from_response"]
