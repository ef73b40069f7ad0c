"""HTTP/1.1 framing as RFC 9112 writes it, read strictly: the bounds and the grammar of the
request line, header lines and chunk-size lines, the header block reader, and a socket reader
that gives up at a deadline however slowly the bytes trickle in. `strict` builds cheroot's
request on these; a refusal is a `Refusal(status)`."""
from __future__ import annotations

import io
import re
import socket
import time

from byoklib import protocol

MAX_REQUEST_LINE = 8192
MAX_HEADER_BLOCK = 65536       # the header fields together, CRLFs included
MAX_HEADERS = 100
MAX_CHUNK_LINE = 4096
METHODS = frozenset({b"GET", b"HEAD", b"POST", b"PUT", b"PATCH", b"DELETE", b"OPTIONS"})
# Fields that carry one value: a second copy is ambiguous (which instance? which length?)
SINGLE_VALUED = frozenset(name.lower().encode() for name in (
    "Host", protocol.AUTHORIZATION_HEADER, "Content-Length", "Content-Type",
    protocol.PREFER_HEADER, protocol.INSTANCE_HEADER, protocol.KEY_RING_HEADER))

_TOKEN = rb"[!#$%&'*+.^_`|~0-9A-Za-z-]+"
REQUEST_LINE = re.compile(rb"(" + _TOKEN + rb") ([\x21-\x7e]+) HTTP/([0-9])\.([0-9])\r\n")
# A field name is a token without "_" (refused, not dropped: WSGI would read `a_b` as `a-b`).
# RFC 9110 5.5: a value has no control characters but HTAB; its trailing OWS is stripped
# after the match (a lazy value would make the regex retry at every byte).
FIELD_LINE = re.compile(rb"([!#$%&'*+.^`|~0-9A-Za-z-]+):[ \t]*([\t\x20-\x7e\x80-\xff]*)\r\n")
CHUNK_LINE = re.compile(rb"([0-9A-Fa-f]{1,16})(?:;[\t\x20-\x7e\x80-\xff]*)?\r\n")
ABSOLUTE_FORM = re.compile(rb"(?i)https?://")


class Refusal(Exception):
    def __init__(self, status: int):
        super().__init__(status)
        self.status = status


class DeadlineSocketIO(socket.SocketIO):
    """Raw socket reads that give up at `deadline` (time.monotonic()), however the bytes
    trickle in: each recv waits at most what is left of it."""

    deadline: float | None = None
    idle: float = 60.0
    peeking = False

    def readinto(self, buffer):
        if self.peeking:   # has_data(): report what is buffered, never wait
            return None
        if self.deadline is None:
            self._sock.settimeout(self.idle)
        else:
            remaining = self.deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError("timed out")
            self._sock.settimeout(min(remaining, self.idle))
        return super().readinto(buffer)


class DeadlineReader(io.BufferedReader):
    """The connection's buffered reader (C io, unlike cheroot's own) with cheroot's
    `has_data` and `bytes_read`."""

    bytes_read = 0

    def has_data(self) -> bool:
        self.raw.peeking = True
        try:
            return bool(self.peek(1))
        finally:
            self.raw.peeking = False


def read_fields(rfile, limit: int, too_large: int) -> dict[bytes, bytes]:
    """The `name: value` lines up to the empty line, names lower-cased; a list-valued
    field sent twice is joined with ", " (RFC 9110 5.3)."""
    fields: dict[bytes, bytes] = {}
    count = 0
    readline, field_line = rfile.readline, FIELD_LINE.fullmatch
    while True:
        line = readline(limit + 1)
        limit -= len(line)
        if limit < 0:
            raise Refusal(too_large)
        if line == b"\r\n":
            return fields
        if not line.endswith(b"\r\n"):   # cut short, or a bare LF
            raise Refusal(400)
        count += 1
        if count > MAX_HEADERS:
            raise Refusal(too_large)
        match = field_line(line)
        if match is None:
            raise Refusal(400)
        name, value = match.groups()
        name, value = name.lower(), value.rstrip(b" \t")
        if name in fields:
            if name in SINGLE_VALUED:
                raise Refusal(400)
            value = fields[name] + b", " + value
        fields[name] = value
