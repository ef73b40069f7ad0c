"""A scripted HTTP server on 127.0.0.1 for the client's tests, and its fixtures.

It answers each request with the next scripted reply (not the mock), so a test can send
what the mock never would (a proxy's HTML page, a 401 without reasons, a 2xx that is not
JSON) over real HTTP. A test module imports the fixtures it uses from here.
"""
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from byoklib.client import KeyProtectClient

SECRET = "sUp3r-s3cret-api-key"
KEY = {"metadata": {"collectionTotal": 1}, "resources": [{"id": "k1", "name": "n"}]}

class Scripted:
    """Answers each request with the next scripted (status, headers, body) and records
    what came in."""

    def __init__(self):
        self.replies, self.requests = [], []
        scripted = self

        class Handler(BaseHTTPRequestHandler):
            def _answer(self):
                length = int(self.headers.get("Content-Length") or 0)
                scripted.requests.append({
                    "method": self.command, "path": self.path,
                    "headers": {k.lower(): v for k, v in self.headers.items()},
                    "body": self.rfile.read(length) if length else b""})
                status, headers, body = (scripted.replies.pop(0) if scripted.replies
                                         else (204, {}, b""))
                if isinstance(body, (dict, list)):
                    body = json.dumps(body).encode()
                    headers = {"Content-Type": "application/json", **headers}
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(body)

            do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = _answer

            def log_message(self, *args):  # keep test output clean
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever,
                                       kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()

    def reply(self, status, body=b"", headers=None):
        self.replies.append((status, headers or {}, body))

    @property
    def last(self):
        return self.requests[-1]

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()

@pytest.fixture
def scripted():
    server = Scripted()
    yield server
    server.close()

@pytest.fixture
def client(scripted):
    with KeyProtectClient(scripted.url, "inst-1", "abc.def") as c:
        yield c

def kp_error(status, code, message, target=None, error_msg=None):
    reason = {"code": code, "message": message, "status": status,
              "moreInfo": "https://cloud.ibm.com/apidocs/key-protect"}
    if target:
        reason["target"] = target
    return {"metadata": {"collectionType": "application/vnd.ibm.kms.error+json",
                         "collectionTotal": 1},
            "resources": [{"errorMsg": error_msg or f"Conflict: x ({code})", "reasons": [reason]}]}
