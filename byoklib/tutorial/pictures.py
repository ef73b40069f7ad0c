"""Pictures for the notebooks (matplotlib), where a learner would rather look than read.

- `draw_sequence()`: the import-token flow as a sequence diagram (you, your key store,
  Key Protect, its HSM; numbered messages). `data/flow.png` in the README is this picture
  (`python -m byoklib.tutorial.pictures data/flow.png` redraws it).
- `draw_sealed_nonce()`: the 28 bytes of `encryptedNonce` and the counter blocks behind them.
- `draw_oaep_block()`: the 512-byte OAEP block, 0x00 | maskedSeed | maskedDB, and inside DB
  lHash | PS | 0x01 | M.
- `draw_import_request(fields)`: the import request's fields with the sizes measured from
  the request itself.

Each returns its Axes; none draws key material, only names, sizes and offsets.
"""
from __future__ import annotations

from byoklib.protocol import KEY, NONCE_BYTES, TAG_BYTES

INK = "#334155"
COLOURS = {"you": "#dbeafe", "store": "#e9d5ff", "kp": "#fde68a", "hsm": "#fecaca",
           "tag": "#fde68a", "ct": "#bbf7d0", "iv": "#dbeafe", "zero": "#e2e8f0",
           "hash": "#fecaca", "sep": "#fca5a5", "msg": "#bbf7d0", "seed": "#e9d5ff"}

PARTICIPANTS = [("you", "you\n(your code)"), ("store", "your key store"),
                ("kp", "Key Protect\n(the API)"), ("hsm", "its HSM")]

# (from, to, text): a message from one lifeline to another, or to itself when from == to.
SEQUENCE = [
    ("you", "kp", "POST /import_token {expiration, maxAllowedRetrievals}"),
    ("kp", "hsm", "RSA-4096 key pair + 12-byte nonce"),
    ("you", "kp", "GET /import_token"),
    ("kp", "you", "payload = b64(PEM public key), nonce = b64(12 bytes)"),
    ("you", "store", "make 16/24/32 bytes of key material (a CSPRNG)"),
    ("store", "you", "the key material (stays on your side)"),
    ("you", "you", "seal the nonce: AES-GCM(material, iv) -> encryptedNonce, iv"),
    ("you", "you", "wrap the material: RSA-OAEP-SHA-256(token key) -> payload"),
    ("you", "kp", "POST /keys {payload, encryptedNonce, iv, encryptionAlgorithm}"),
    ("kp", "hsm", "unwrap, open the nonce, compare"),
    ("hsm", "kp", "same nonce: keep it as a root key"),
    ("kp", "you", "201 imported: true (the material never comes back)"),
    ("you", "kp", "POST /keys/{id}/actions/wrap, unwrap: data keys"),
]


def _axes(ax, size):
    import matplotlib.pyplot as plt

    if ax is None:
        figure, ax = plt.subplots(figsize=size)
        figure.subplots_adjust(left=0.01, right=0.99, bottom=0.02, top=0.92)
    ax.axis("off")
    return ax


def draw_sequence(ax=None):
    """The import-token flow as a sequence diagram with numbered messages."""
    ax = _axes(ax, (13, 8.2))
    x = {name: i * 3.4 for i, (name, _) in enumerate(PARTICIPANTS)}
    top, step = 0.0, -0.58
    bottom = top + step * (len(SEQUENCE) + 1)
    for name, label in PARTICIPANTS:
        ax.text(x[name], top + 0.45, label, ha="center", va="center", fontsize=10,
                fontweight="bold", bbox={"boxstyle": "round,pad=0.4", "facecolor": COLOURS[name],
                                             "edgecolor": INK})
        ax.plot([x[name], x[name]], [top, bottom], color=INK, lw=1, ls=(0, (4, 3)), zorder=0)
    for number, (source, target, text) in enumerate(SEQUENCE, start=1):
        y = top + step * number
        label = f"{number}. {text}"
        if source == target:
            ax.annotate("", xy=(x[source] + 0.05, y - 0.2), xytext=(x[source] + 0.05, y + 0.08),
                        arrowprops={"arrowstyle": "->", "color": INK,
                                        "connectionstyle": "arc3,rad=-1.4"})
            ax.text(x[source] + 0.5, y - 0.06, label, ha="left", va="center", fontsize=9,
                    bbox={"boxstyle": "round,pad=0.2", "facecolor": "white", "edgecolor": "none"})
            continue
        ax.annotate("", xy=(x[target], y), xytext=(x[source], y),
                    arrowprops={"arrowstyle": "-|>", "color": INK, "lw": 1.2})
        middle = (x[source] + x[target]) / 2
        left, right = sorted((x[source], x[target]))
        anchor, where = (left + 0.1, "left") if right - left > 4 else (middle, "center")
        ax.text(anchor, y + 0.06, label, ha=where, va="bottom", fontsize=9,
                bbox={"boxstyle": "square,pad=0.1", "facecolor": "white", "edgecolor": "none"})
    tls = top + step * 0.55
    ax.text(x["kp"] - 1.7, bottom + 0.1, "every arrow to or from Key Protect travels over TLS",
            ha="center", va="bottom", fontsize=8.5, style="italic", color=INK)
    ax.set_xlim(-1.2, x["hsm"] + 1.2)
    ax.set_ylim(bottom - 0.1, tls + 1.1)
    ax.set_title("Bring your own key into Key Protect with an import token")
    return ax


def _bytes_bar(ax, y, parts, height=0.8, fontsize=9, scale=None):
    """Draw adjacent boxes [(label, size, colour, width)] at height y; returns the edges."""
    from matplotlib.patches import Rectangle

    edges, left = [], 0.0
    for label, size, colour, width in parts:
        ax.add_patch(Rectangle((left, y), width, height, facecolor=COLOURS[colour],
                               edgecolor=INK))
        ax.text(left + width / 2, y + height / 2, f"{label}\n{size}", ha="center",
                va="center", fontsize=fontsize)
        edges.append((left, left + width))
        left += width
    return edges


def draw_sealed_nonce(ax=None, nonce_bytes: int = NONCE_BYTES, tag_bytes: int = TAG_BYTES):
    """encryptedNonce = ciphertext || tag, with the counter blocks that made each part."""
    from matplotlib.patches import Rectangle

    ax = _axes(ax, (12, 3.6))
    unit = 0.4
    total = nonce_bytes + tag_bytes
    for i in range(total):
        kind = "ct" if i < nonce_bytes else "tag"
        ax.add_patch(Rectangle((i * unit, 1.0), unit, 0.7, facecolor=COLOURS[kind],
                               edgecolor=INK, lw=0.6))
        ax.text(i * unit + unit / 2, 0.85, str(i), ha="center", va="top", fontsize=6.5)
    ax.text(nonce_bytes * unit / 2, 1.9, f"ciphertext: {nonce_bytes} bytes (0-{nonce_bytes - 1})",
            ha="center", va="center", fontsize=10)
    ax.text((nonce_bytes + tag_bytes / 2) * unit, 1.9,
            f"tag: {tag_bytes} bytes ({nonce_bytes}-{total - 1})", ha="center", va="center",
            fontsize=10)
    ax.text(total * unit / 2, 2.4, f"encryptedNonce = base64 of these {total} bytes "
            f"({4 * -(-total // 3)} characters)", ha="center", fontsize=11, fontweight="bold")
    notes = [(nonce_bytes * unit / 2,
              "= nonce XOR E_K(IV || 00000002)\n(AES-CTR from counter 2)"),
             ((nonce_bytes + tag_bytes / 2) * unit,
              ("= E_K(IV || 00000001) XOR GHASH_H(ciphertext, lengths)\n"
              "with H = E_K(0^128)"))]
    for cx, text in notes:
        ax.text(cx, 0.45, text, ha="center", va="top", fontsize=9)
    ax.text(total * unit + 0.5, 1.35, "sent beside it:\niv = base64 of 12 random bytes\n"
            "(16 characters), the IV", ha="left", va="center", fontsize=9,
            bbox={"boxstyle": "round,pad=0.3", "facecolor": COLOURS["iv"], "edgecolor": INK})
    ax.set_xlim(-0.2, total * unit + 4.2)
    ax.set_ylim(-0.4, 2.7)
    return ax


def draw_oaep_block(ax=None, k: int = 512, h_len: int = 32, m_len: int = 32):
    """The k-byte OAEP block and the data block DB inside maskedDB (RFC 8017 7.1.1)."""
    ax = _axes(ax, (12, 4.4))
    db_len = k - h_len - 1
    ps_len = db_len - h_len - 1 - m_len
    em = _bytes_bar(ax, 3.0, [("0x00", "1 byte", "zero", 0.8),
                              ("maskedSeed", f"{h_len} bytes", "seed", 2.2),
                              ("maskedDB", f"{db_len} bytes", "ct", 9.0)])
    ax.text(-0.15, 3.4, f"EM\n{k} bytes", ha="right", va="center", fontsize=10,
            fontweight="bold")
    offset = em[2][0]
    db = [("lHash = SHA-256(label \"\")", f"{h_len} bytes", "hash", 2.4),
          ("PS: zero bytes", f"{ps_len} bytes", "zero", 3.6),
          ("0x01", "1 byte", "sep", 0.8), ("M: the key material", f"{m_len} bytes", "msg", 2.2)]
    from matplotlib.patches import Rectangle

    left = offset
    for label, size, colour, width in db:
        ax.add_patch(Rectangle((left, 0.9), width, 0.8, facecolor=COLOURS[colour],
                               edgecolor=INK))
        ax.text(left + width / 2, 1.3, f"{label}\n{size}", ha="center", va="center",
                fontsize=9)
        left += width
    ax.text(offset - 0.15, 1.3, f"DB\n{db_len} bytes", ha="right", va="center", fontsize=10,
            fontweight="bold")
    for xs in (offset, em[2][1]):
        ax.plot([xs, xs], [1.7, 3.0], color=INK, lw=0.8, ls=":")
    ax.text((offset + em[2][1]) / 2, 2.35, "maskedDB = DB XOR MGF1-SHA-256(seed)",
            ha="center", va="center", fontsize=9.5,
            bbox={"boxstyle": "round,pad=0.25", "facecolor": "white", "edgecolor": INK})
    ax.text(sum(em[1]) / 2, 2.35, "maskedSeed = seed XOR\nMGF1-SHA-256(maskedDB)",
            ha="center", va="center", fontsize=9,
            bbox={"boxstyle": "round,pad=0.25", "facecolor": "white", "edgecolor": INK})
    ax.text(em[2][1] / 2, 0.45, f"then RSA: c = EM^e mod n, {k} bytes; the seed is {h_len} "
            "fresh random bytes, so two wraps of the same key differ (widths not to scale)",
            ha="center", va="center", fontsize=9, style="italic")
    ax.set_xlim(-1.6, em[2][1] + 0.2)
    ax.set_ylim(0.2, 4.1)
    ax.set_title("RSAES-OAEP-SHA-256: the block inside a 4096-bit payload")
    return ax


def draw_import_request(fields: dict, ax=None):
    """The resource of POST /keys: each field, its bytes and its base64 characters,
    measured from `fields` (e.g. what `prepare_secure_import` returned)."""
    import base64

    ax = _axes(ax, (11, 3.6))
    rows = []
    for name in ("payload", "encryptedNonce", "iv"):
        raw = base64.b64decode(fields[name])
        rows.append((name, f"{len(fields[name])} base64 characters = {len(raw)} bytes"))
    rows.append(("encryptionAlgorithm", repr(fields["encryptionAlgorithm"])))
    rows += [("type", repr(KEY)), ("name", "your choice"),
             ("extractable", "false (a root key)")]
    meaning = {"payload": "the key material, wrapped with RSA-OAEP (notebook 04)",
               "encryptedNonce": "the token's nonce, sealed with AES-GCM (notebook 03)",
               "iv": "the GCM IV used for that seal",
               "encryptionAlgorithm": "how payload was wrapped",
               "type": "a key resource", "name": "your label for the key",
               "extractable": "root keys never leave the HSM"}
    for i, (name, size) in enumerate(rows):
        y = len(rows) - i
        colour = COLOURS["msg"] if i < 3 else COLOURS["zero"]
        ax.text(0, y, f'"{name}"', ha="left", va="center", fontsize=10, family="monospace",
                bbox={"boxstyle": "round,pad=0.3", "facecolor": colour, "edgecolor": INK})
        ax.text(3.2, y, size, ha="left", va="center", fontsize=10)
        ax.text(7.4, y, meaning[name], ha="left", va="center", fontsize=9, color=INK)
    ax.set_xlim(-0.2, 12)
    ax.set_ylim(0.4, len(rows) + 0.8)
    ax.set_title("POST /api/v2/keys: the resource of a secure import", fontsize=11)
    return ax


if __name__ == "__main__":   # redraw the README's picture: python -m byoklib.tutorial.pictures
    import sys

    import matplotlib

    matplotlib.use("Agg")
    target = sys.argv[1] if len(sys.argv) > 1 else "data/flow.png"
    draw_sequence().figure.savefig(target, dpi=100, metadata={"Software": None})
    print("wrote", target)
