"""The floors `make bench` compares the mock with: bare keep-alive servers in another
process (one that does nothing, one that only decrypts an import, one that only keeps busy),
on Python's http.server or on the mock's own HTTP layer with a few-line app, and the
cryptography of one import done in-process. A bare server answers a POST with the body
it is given, by default one of the shape and size of the mock's answer to an import
(`IMPORT_ANSWER`), so a round trip to it is of the import's size both ways and the
client's own import code can read it."""
from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
from contextlib import contextmanager

import requests
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from byoklib import data_path, primitives
from byoklib.protocol import IV_BYTES, KEY, NONCE_BYTES
from byoklib.client import new_session
from byoklib.mock.keypairs import load_token_key
from byoklib.tutorial.timing import measure

TEST_KEYS = [data_path("test-only", f"token-key-{i}.pem") for i in (1, 2, 3)]
KEYS_PATH = "/api/v2/keys"
# The mock's answer to an import (the minimal form), with made-up ids of the same length.
IMPORT_ANSWER = json.dumps({
    "metadata": {"collectionType": KEY, "collectionTotal": 1},
    "resources": [{
        "type": KEY,
        "id": "00000000-0000-4000-8000-000000000000", "name": "bench-key", "state": 1,
        "crn": "crn:v1:bluemix:public:kms:us-south:a/0000000000000000000000000000mock:"
               "bench:key:00000000-0000-4000-8000-000000000000",
        "extractable": False, "imported": True, "deleted": False}]})


def median_seconds(fn, repeat: int, warmup: int = 1, label: str = "step") -> float:
    return float(measure(fn, repeat=repeat, warmup=warmup, label=label)["seconds"].median())


BARE_SERVER = r"""
import base64, json, sys, time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

# stdin: the answer's body (not an argument: `ps` shows those). --mock-http: served by the
# mock's own HTTP layer (cheroot read strictly) instead of http.server, so the difference
# to the mock is what its service does.
answer = sys.stdin.buffer.read()
mock_http = sys.argv[1:2] == ["--mock-http"]
if mock_http:
    del sys.argv[1]
# What a POST does besides reading the body and answering:
#   (nothing)          the floor's HTTP round trip;
#   decrypt KEY_FILE   parse the body, RSA-OAEP-SHA-256-decrypt its resources[0].payload
#                      with that key and open the nonce with the material: the import's
#                      server-side work in the simplest server;
#   busy SECONDS       keep the CPU busy that long: what waiting for a server costs.
work = None
if sys.argv[1:2] == ["decrypt"]:
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import padding
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM
    key = serialization.load_pem_private_key(open(sys.argv[2], "rb").read(), None)
    pad = padding.OAEP(padding.MGF1(hashes.SHA256()), hashes.SHA256(), None)
    def work(body):
        resource = json.loads(body)["resources"][0]
        material = key.decrypt(base64.b64decode(resource["payload"]), pad)
        AESGCM(material).decrypt(base64.b64decode(resource["iv"]),
                                 base64.b64decode(resource["encryptedNonce"]), None)
elif sys.argv[1:2] == ["busy"]:
    seconds = float(sys.argv[2])
    def work(body):
        end = time.perf_counter() + seconds
        while time.perf_counter() < end:
            pass

class Bare(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"       # keep-alive, like the mock
    disable_nagle_algorithm = True      # TCP_NODELAY
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        if work:
            work(body)
        self.send_response(201)
        self.send_header("Content-Type", "application/vnd.ibm.collection+json")
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)
    def log_message(self, *args):
        pass

def app(environ, start_response):
    body = environ["wsgi.input"].read()
    if work:
        work(body)
    start_response("201 Created", [("Content-Type", "application/vnd.ibm.collection+json"),
                                   ("Content-Length", str(len(answer)))])
    return [answer]

if mock_http:
    from byoklib.mock.http.strict import Limits, StrictServer
    server = StrictServer(("127.0.0.1", 0), app, max_body=1 << 20, limits=Limits(),
                          error_page=lambda status: ("application/json", b"{}"))
    server.prepare()
    print(server.port, flush=True)
    server.serve()
else:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Bare)
    print(server.server_address[1], flush=True)
    server.serve_forever()
"""


@contextmanager
def bare_server(*work: str, mock_http: bool = False, answer: str = IMPORT_ANSWER):
    """A keep-alive server on Python's standard http.server (TCP_NODELAY) in another
    process, answering every POST with `answer`; yields its base URL (the client's `url`;
    a POST goes to it + KEYS_PATH). With no `work` it does nothing (the floor's round
    trip); ("decrypt", key file) RSA-decrypts each body's payload and opens its nonce;
    ("busy", seconds) keeps the CPU busy that long before answering (a diagnostic of the
    import). `mock_http`: served by the mock's HTTP layer instead, with the same work."""
    flag = ["--mock-http"] if mock_http else []
    process = subprocess.Popen([sys.executable, "-c", BARE_SERVER, *flag, *work],
                               stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        process.stdin.write(answer)
        process.stdin.close()
        port = process.stdout.readline().strip()
        if not port.isdigit():
            raise RuntimeError("the bare server did not start")
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait(10)


HEADERS = {"Content-Type": "application/json", "Authorization": "Bearer bench",
           "Bluemix-Instance": "bench"}


def round_trip(session: requests.Session, url: str, body: bytes):
    """One POST of `body` with an API call's headers; returns a callable to time."""
    return lambda: session.post(url, data=body, headers=HEADERS)


def bare_round_trip(body: bytes, repeat: int) -> float:
    """Median seconds of one keep-alive POST of `body` to the do-nothing server."""
    with bare_server() as url, new_session() as session:
        post = round_trip(session, url + KEYS_PATH, body)
        if post().text != IMPORT_ANSWER:   # what is timed must be a round trip answered
            raise RuntimeError("the bare server did not answer")
        return median_seconds(post, repeat, warmup=3)


def crypto_step():
    """The cryptography of one import, done directly with `cryptography`: OAEP encrypt and
    decrypt under RSA-4096, AES-GCM seal and open of a 12-byte nonce."""
    private = load_token_key(TEST_KEYS[0].read_bytes())
    public = private.public_key()
    material, nonce, iv = os.urandom(32), os.urandom(NONCE_BYTES), os.urandom(IV_BYTES)
    pad = primitives.oaep_padding()

    def crypto():
        aead = AESGCM(material)
        sealed = aead.encrypt(iv, nonce, None)
        aead.decrypt(iv, sealed, None)
        private.decrypt(public.encrypt(material, pad), pad)

    return crypto


def import_body(fields: dict) -> bytes:
    resource = {"type": KEY, "name": "bench-key",
                "extractable": False, **fields}
    return json.dumps({"metadata": {"collectionType": KEY, "collectionTotal": 1},
                       "resources": [resource]}).encode()


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def decryption_step():
    """One RSA-4096 OAEP-SHA-256 decryption, in this process, back to back."""
    private = load_token_key(TEST_KEYS[0].read_bytes())
    pad = primitives.oaep_padding()
    ciphertext = private.public_key().encrypt(os.urandom(32), pad)
    return lambda: private.decrypt(ciphertext, pad)
