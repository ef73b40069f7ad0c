"""Parsers of `openssl speed` output: pure functions over its text, whatever columns the
installed version prints (OpenSSL 1.1.1 and 3.x differ), tested on their own."""
from __future__ import annotations

import re

_COLUMN_NAMES = {"encr.": "encrypt", "decr.": "decrypt"}


def _column_key(header: str) -> str:
    per_second = header.endswith("/s")
    name = header[:-2] if per_second else header
    name = _COLUMN_NAMES.get(name, name).rstrip(".")
    return f"{name}_per_second" if per_second else f"{name}_seconds"


def parse_speed_rsa(output: str, bits: int) -> dict:
    """Parse the RSA table of `openssl speed`, whatever columns this version prints."""
    lines = output.splitlines()
    for index, line in enumerate(lines):
        match = re.match(rf"\s*rsa\s+{int(bits)}\s+bits?\s+(.*)$", line)
        if not match:
            continue
        header = next((lines[i] for i in range(index - 1, -1, -1)
                       if "sign" in lines[i] and "verify" in lines[i]), None)
        if header is None:
            break
        columns = header.split()
        values = match.group(1).split()
        if len(columns) != len(values):
            break
        result = {"bits": int(bits)}
        for column, value in zip(columns, values):
            result[_column_key(column)] = float(value.rstrip("s"))
        return result
    raise ValueError(f"no 'rsa {bits} bits' row in `openssl speed` output")


def parse_speed_cipher(output: str) -> dict:
    """Parse a cipher table of `openssl speed` ('type 16 bytes ...' / 'AES-256-GCM 1234.56k')."""
    lines = output.splitlines()
    for index, line in enumerate(lines):
        if not line.startswith("type"):
            continue
        sizes = [int(s) for s in re.findall(r"(\d+)\s+bytes", line)]
        for row in lines[index + 1:]:
            parts = row.split()
            if len(parts) == len(sizes) + 1:
                values = [float(v.rstrip("k")) * 1000 for v in parts[1:]]
                per_size = dict(zip(sizes, values))
                return {"algorithm": parts[0], "bytes_per_second": per_size,
                        "ops_per_second": {s: v / s for s, v in per_size.items()}}
    raise ValueError("no cipher table ('type ... bytes') in `openssl speed` output")
