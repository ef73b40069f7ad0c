"""The notebooks' pictures: each draws, says only names and sizes (no bytes of a key), and
the request picture measures its sizes from the request it is given."""
from __future__ import annotations

import io
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

from byoklib import data_path, generate_key_material, prepare_secure_import
from byoklib.primitives import token_payload_from_public_key
from byoklib.tutorial import pictures
from byoklib.tutorial.notebook import draw_flow


def texts(ax) -> str:
    return "\n".join(t.get_text() for t in ax.texts) + ax.get_title()


def png(ax) -> bytes:
    buffer = io.BytesIO()
    ax.figure.savefig(buffer, format="png")
    return buffer.getvalue()


def test_the_sequence_numbers_every_message_between_the_four_parties():
    ax = draw_flow()
    shown = texts(ax)
    for party in ("you", "your key store", "Key Protect", "its HSM"):
        assert party in shown
    for number in range(1, len(pictures.SEQUENCE) + 1):
        assert f"{number}. " in shown
    assert png(ax)[:8] == b"\x89PNG\r\n\x1a\n"


def test_the_readme_picture_is_the_sequence_diagram():
    import matplotlib.image

    height, width, _ = matplotlib.image.imread(Path(__file__).resolve().parents[2] / "data" / "flow.png").shape
    figure_width, figure_height = pictures.draw_sequence().figure.get_size_inches()
    assert (width, height) == (round(figure_width * 100), round(figure_height * 100))


def test_the_sealed_nonce_is_28_numbered_bytes():
    shown = texts(pictures.draw_sealed_nonce())
    assert "ciphertext: 12 bytes" in shown and "tag: 16 bytes" in shown
    assert "28 bytes (40 characters)" in shown and "27" in shown


def test_the_oaep_block_adds_up_to_512_bytes():
    shown = texts(pictures.draw_oaep_block())
    assert "479 bytes" in shown and "414 bytes" in shown and "EM\n512 bytes" in shown


def test_the_import_request_picture_measures_the_request():
    public = data_path("test-only", "token-key-1.pub.pem").read_bytes()
    token = {"payload": token_payload_from_public_key(public), "nonce": "AAAAAAAAAAAAAAAA",
             "creationDate": "2026-12-02T00:00:00Z", "expirationDate": "2026-12-02T00:10:00Z"}
    fields = prepare_secure_import(generate_key_material(128), token)
    shown = texts(pictures.draw_import_request(fields))
    assert "684 base64 characters = 512 bytes" in shown
    assert "40 base64 characters = 28 bytes" in shown
    assert "16 base64 characters = 12 bytes" in shown
    assert fields["payload"] not in shown and fields["encryptedNonce"] not in shown
