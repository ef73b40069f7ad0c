"""What every notebook needs and none should re-implement.

- `connect(url, instance_id, api_key, token)`: the mock on 127.0.0.1 by default; the real
  Key Protect (or any server that speaks its API) when a URL, an instance id and an API key
  or a bearer token are given, as papermill parameters or the environment variables
  KP_URL, KP_INSTANCE_ID, KP_API_KEY, KP_TOKEN.
- `Checks`: the "what you verified" table each notebook ends with; `checks.check(...)`
  records a fact and says it.
- `refused(call)`: run a call that must fail and say how the service refused it.
- `draw_flow()`: the import-token flow as a picture.
- `environment_report()`: Python, byoklib, cryptography and OpenSSL versions.

This module sits at the top, beside `timing` and `__main__`: it may use the client and the
server; nothing in byoklib imports it.
"""
from __future__ import annotations

import contextlib
import os
import platform
from dataclasses import dataclass, field

from byoklib.errors import KeyProtectError

ENV_URL, ENV_INSTANCE, ENV_API_KEY, ENV_TOKEN = "KP_URL", "KP_INSTANCE_ID", "KP_API_KEY", "KP_TOKEN"


# --- connecting ---------------------------------------------------------------------------

@dataclass
class Connection:
    """A client plus, on the mock, the running server (for its clock)."""
    client: object
    server: object | None = None

    @property
    def on_mock(self) -> bool:
        return self.server is not None

    @property
    def target(self) -> str:
        """Where requests go: the notebook's own mock, or the service at the URL given
        (which may be the real Key Protect or a mock started elsewhere)."""
        if self.on_mock:
            return "the local mock (127.0.0.1)"
        return f"the service at {self.client.url}"

    def advance_clock(self, **delta) -> None:
        """Move the mock's clock forward (e.g. `minutes=11`); the real service's time
        cannot be moved, so this refuses there rather than pretending."""
        if not self.on_mock:
            raise RuntimeError("the real service's clock cannot be moved")
        self.server.clock.advance(**delta)


def settings(url: str = "", instance_id: str = "", api_key: str = "",
             token: str = "") -> tuple[str, str, str, str]:
    """Parameters win; the environment fills what they leave empty."""
    return (url or os.environ.get(ENV_URL, ""),
            instance_id or os.environ.get(ENV_INSTANCE, ""),
            api_key or os.environ.get(ENV_API_KEY, ""),
            token or os.environ.get(ENV_TOKEN, ""))


@contextlib.contextmanager
def connect(url: str = "", instance_id: str = "", api_key: str = "", token: str = "", *,
            instance_for_mock: str = "learner-instance", **server_options):
    """Yield a `Connection` to the given service when a URL, an instance id and an API key
    (exchanged at IAM) or a bearer token are given; else to a fresh mock started for this
    notebook and stopped at the end."""
    from byoklib.client import KeyProtectClient

    url, instance_id, api_key, token = settings(url, instance_id, api_key, token)
    if url and instance_id and (api_key or token):
        if token:
            yield Connection(KeyProtectClient(url, instance_id, token))
        else:
            yield Connection(KeyProtectClient.from_api_key(url, instance_id, api_key))
        return
    if url or instance_id or api_key or token:
        raise ValueError("to use a service of your own, give a URL, an instance id and an "
                         "API key or a bearer token; give none of them for the local mock")
    from byoklib.mock import running_server

    with running_server(**server_options) as server:
        client = KeyProtectClient(server.url, instance_for_mock, "learner-token")
        yield Connection(client, server)


def start(url: str = "", instance_id: str = "", api_key: str = "", token: str = "",
          **options) -> Connection:
    """`connect` for notebooks, whose cells cannot sit inside one `with` block: the mock
    is stopped when the kernel exits."""
    import atexit

    stack = contextlib.ExitStack()
    connection = stack.enter_context(connect(url, instance_id, api_key, token, **options))
    atexit.register(stack.close)
    return connection


# --- the "what you verified" table ------------------------------------------------------------

@dataclass
class Checks:
    """Collects named facts the notebook proved; `table()` shows them, `assert_all()` makes
    papermill and CI fail when one is false."""
    rows: list[tuple[str, bool, str]] = field(default_factory=list)

    def add(self, what: str, passed, how: str = "") -> bool:
        passed = bool(passed)
        self.rows.append((what, passed, how))
        return passed

    def check(self, what: str, passed, how: str = "") -> None:
        """Record a proven fact, and say it here: ✔ or ✘, then what. Returns nothing, so a
        check that ends a cell shows no bare `True`."""
        print("✔" if self.add(what, passed, how) else "✘", what)

    def table(self):
        import pandas as pd

        return pd.DataFrame(self.rows, columns=["what you verified", "passed", "how"])

    @property
    def all_passed(self) -> bool:
        return bool(self.rows) and all(passed for _, passed, _ in self.rows)

    def assert_all(self) -> str:
        failed = [what for what, passed, _ in self.rows if not passed]
        if not self.rows:
            raise AssertionError("no checks were recorded")
        if failed:
            raise AssertionError(f"checks failed: {failed}")
        return f"ALL {len(self.rows)} CHECKS PASSED"


def refused(call):
    """Run a call that should fail; return its KeyProtectError, or None when it succeeded."""
    try:
        call()
    except KeyProtectError as e:
        print(f"refused: {type(e).__name__} status={e.status} code={e.code}")
        return e
    print("accepted (not refused!)")
    return None


# --- environment ---------------------------------------------------------------------------

def environment_report() -> dict[str, str]:
    import cryptography

    import byoklib
    from byoklib.tutorial.openssl import OpenSSL, OpenSSLUnavailable

    report = {"python": platform.python_version(), "byoklib": byoklib.__version__,
              "cryptography": cryptography.__version__}
    try:
        report["openssl"] = OpenSSL().version()
    except OpenSSLUnavailable as exc:
        report["openssl"] = f"UNAVAILABLE: {exc}"
    return report


# --- the flow, drawn -------------------------------------------------------------------------

FLOW_STEPS = [
    ("service", "1. POST /import_token\nHSM makes an\nRSA-4096 key pair\nand a 12-byte nonce"),
    ("client", "2. GET /import_token\npayload =\nb64(PEM public key)\nnonce = b64(12 bytes)"),
    ("client", "3a. key material:\n16/24/32 bytes\nfrom a CSPRNG"),
    ("client", "3b. AES-GCM seals\nthe nonce under\nthe key material\n-> encryptedNonce, iv"),
    ("client", "3c. RSA-OAEP-SHA-256\nwraps the key\nmaterial under the\ntoken key -> payload"),
    ("service", "4. POST /keys\nHSM unwraps,\nopens the nonce,\ncompares -> imported"),
    ("service", "5. wrap / unwrap\ndata keys\n(envelope\nencryption)"),
]


def draw_flow(ax=None):
    """The import-token flow as two swim lanes (you / Key Protect)."""
    import matplotlib.pyplot as plt
    from matplotlib.patches import FancyBboxPatch

    if ax is None:
        figure, ax = plt.subplots(figsize=(16, 4.6))
        # the default margins leave the boxes narrower than their text
        figure.subplots_adjust(left=0.01, right=0.99, bottom=0.02, top=0.9)
    lanes = {"client": 2.5, "service": 0.4}
    colours = {"client": "#dbeafe", "service": "#fde68a"}
    width, height, gap = 2.15, 1.45, 0.3
    for name, y in lanes.items():
        ax.text(-0.15, y + height / 2, {"client": "you", "service": "Key Protect\n(HSM)"}[name],
                ha="right", va="center", fontsize=11, fontweight="bold")
    centres = []
    for i, (lane, text) in enumerate(FLOW_STEPS):
        x, y = i * (width + gap), lanes[lane]
        ax.add_patch(FancyBboxPatch((x, y), width, height, boxstyle="round,pad=0.04",
                                    facecolor=colours[lane], edgecolor="#334155"))
        ax.text(x + width / 2, y + height / 2, text, ha="center", va="center", fontsize=9)
        centres.append((x + width / 2, y + height / 2, x, y))
    for (x0, y0, bx0, by0), (x1, y1, bx1, by1) in zip(centres, centres[1:]):
        start = (bx0 + width, y0) if by0 == by1 else (x0 + 0.4, by0 + (height if by1 > by0 else 0))
        end = (bx1, y1) if by0 == by1 else (x1 - 0.4, by1 + (0 if by1 > by0 else height))
        ax.annotate("", xy=end, xytext=start, arrowprops=dict(arrowstyle="->", color="#334155"))
    ax.set_xlim(-1.3, len(FLOW_STEPS) * (width + gap))
    ax.set_ylim(0.2, 4.2)
    ax.axis("off")
    ax.set_title("Bring your own key into Key Protect with an import token")
    return ax
