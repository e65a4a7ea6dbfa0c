#!/usr/bin/env python3
"""Writes verify/tests/vectors/witness.json: C2SP checkpoint notes and cosignature/v1 lines
computed independently of the Rust code (verify/src/witness.rs), from the texts of
c2sp.org/tlog-checkpoint and c2sp.org/tlog-cosignature, with the `cryptography` package's
Ed25519 (RFC 8032). verify/src/witness.rs's test `independent_vectors_match` checks that the
library makes the same note bodies, key ids, signed messages, signatures and note lines, and
accepts every signature here.

Usage:

    python3 scripts/vectors/witness.py > verify/tests/vectors/witness.json

Python 3.8 or later and `cryptography`.
"""

import base64
import hashlib
import json

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

CASES = [
    # (witness name, seed byte, chain id, log size, root byte, time in seconds)
    ("witness.court.example/hutong", 0x2A, "hutong-test", 42, 0x07, 1700000000),
    ("w1", 0x01, "hutong-demo", 0, 0x00, 0),
    ("province.example/w", 0xFE, "hutong-demo", 20852163, 0xA5, 9223372036854775807),
]


def case(name, seed_byte, chain_id, size, root_byte, time):
    seed = bytes([seed_byte]) * 32
    key = Ed25519PrivateKey.from_private_bytes(seed)
    public = key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    root = bytes([root_byte]) * 32
    body = f"hutong/{chain_id}\n{size}\n{base64.b64encode(root).decode()}\n"
    message = f"cosignature/v1\ntime {time}\n".encode() + body.encode()
    signature = key.sign(message)
    key_id = hashlib.sha256(name.encode() + b"\n\x04" + public).digest()[:4]
    line = "\u2014 " + name + " " + base64.b64encode(
        key_id + time.to_bytes(8, "big") + signature
    ).decode()
    material = base64.b64encode(bytes([0x04]) + public).decode()
    vkey = f"{name}+{key_id.hex()}+{material}"
    return {
        "name": name,
        "seed": seed.hex(),
        "public_key": public.hex(),
        "chain_id": chain_id,
        "log_size": size,
        "log_root": root.hex(),
        "time": time,
        "note_body": body,
        "signed_message": message.decode(),
        "key_id": key_id.hex(),
        "signature": signature.hex(),
        "note_line": line,
        "vkey": vkey,
    }


print(json.dumps({"cases": [case(*c) for c in CASES]}, indent=2, ensure_ascii=False))
