#!/usr/bin/env python3
"""Converts public ed25519 test suites into hutong's vector format.

Each suite becomes one JSON file under core/tests/vectors/crypto/. Every vector keeps the
suite's own id, inputs and verdict, and gains the verdict of hutong's acceptance rule
(docs/adr/0002-signature-verification.md), computed here by an implementation of that rule
written from the ADR alone, independently of the Rust code in core/src/crypto.rs. The test
core/tests/signature_suites.rs then checks that the library gives the same verdicts, alone
and in batches. Where the suite's verdict and hutong's differ, the vector carries the reason,
taken from the REASONS table below; a difference with no reason stops the conversion, so
that every difference is looked at by a person once.

Usage (one suite per run; the source is a git clone of the suite's repository, read at the
given commit with `git show`, so the result does not depend on what is checked out):

    python3 scripts/vectors/signature_suites.py rfc8032 --repo CLONE --commit HASH --out FILE
    python3 scripts/vectors/signature_suites.py wycheproof --repo CLONE --commit HASH --out FILE
    python3 scripts/vectors/signature_suites.py speccheck --repo CLONE --commit HASH --out FILE
    python3 scripts/vectors/signature_suites.py cctv --repo CLONE --commit HASH --out FILE
    python3 scripts/vectors/signature_suites.py zip215 --out FILE

core/tests/vectors/README.md lists the repository and commit of each file.

Python 3.8 or later, standard library only.
"""

import argparse
import hashlib
import json
import re
import subprocess
import sys

# ---------------------------------------------------------------------------------------
# edwards25519, just enough to evaluate hutong's rule. Variable time: test data only.
# ---------------------------------------------------------------------------------------

FIELD_PRIME = 2**255 - 19
GROUP_ORDER = 2**252 + 27742317777372353535851937790883648493
CURVE_D = (-121665 * pow(121666, FIELD_PRIME - 2, FIELD_PRIME)) % FIELD_PRIME
SQRT_MINUS_ONE = pow(2, (FIELD_PRIME - 1) // 4, FIELD_PRIME)

# A point in extended twisted Edwards coordinates (X : Y : Z : T), x = X/Z, y = Y/Z,
# x*y = T/Z, on -x^2 + y^2 = 1 + d x^2 y^2.
IDENTITY = (0, 1, 1, 0)


def field_inverse(value):
    return pow(value, FIELD_PRIME - 2, FIELD_PRIME)


def add(first, second):
    """The complete addition law for a = -1 (Hisil, Wong, Carter, Dawson 2008, section 3.1)."""
    x1, y1, z1, t1 = first
    x2, y2, z2, t2 = second
    p = FIELD_PRIME
    a = (y1 - x1) * (y2 - x2) % p
    b = (y1 + x1) * (y2 + x2) % p
    c = 2 * CURVE_D * t1 * t2 % p
    d = 2 * z1 * z2 % p
    e, f, g, h = b - a, d - c, d + c, b + a
    return (e * f % p, g * h % p, f * g % p, e * h % p)


def negate(point):
    x, y, z, t = point
    return ((-x) % FIELD_PRIME, y, z, (-t) % FIELD_PRIME)


def multiply(scalar, point):
    result = IDENTITY
    addend = point
    while scalar:
        if scalar & 1:
            result = add(result, addend)
        addend = add(addend, addend)
        scalar >>= 1
    return result


def times_cofactor(point):
    for _ in range(3):
        point = add(point, point)
    return point


def is_identity(point):
    x, y, z, _ = point
    return x % FIELD_PRIME == 0 and (y - z) % FIELD_PRIME == 0


def x_from_y(y, sign):
    """The x with the given sign (low bit) on the curve at y, or None if there is none."""
    p = FIELD_PRIME
    x_squared = (y * y - 1) * field_inverse(CURVE_D * y * y + 1) % p
    if x_squared == 0:
        return 0
    # p = 5 mod 8: a candidate root is x_squared^((p+3)/8), possibly times sqrt(-1).
    x = pow(x_squared, (p + 3) // 8, p)
    if (x * x - x_squared) % p != 0:
        x = x * SQRT_MINUS_ONE % p
    if (x * x - x_squared) % p != 0:
        return None
    if x & 1 != sign:
        x = p - x
    return x


def encode(point):
    x, y, z, _ = point
    inverse = field_inverse(z)
    x, y = x * inverse % FIELD_PRIME, y * inverse % FIELD_PRIME
    return (y | ((x & 1) << 255)).to_bytes(32, "little")


BASEPOINT_Y = 4 * field_inverse(5) % FIELD_PRIME
BASEPOINT_X = x_from_y(BASEPOINT_Y, 0)
BASEPOINT = (BASEPOINT_X, BASEPOINT_Y, 1, BASEPOINT_X * BASEPOINT_Y % FIELD_PRIME)


def is_canonical_encoding(encoding):
    """ADR 0002 rule 1: y below p, and the sign bit clear when x is zero (y = 1 or p - 1)."""
    value = int.from_bytes(encoding, "little")
    y = value & (2**255 - 1)
    sign = value >> 255
    if y >= FIELD_PRIME:
        return False
    return not (sign == 1 and y in (1, FIELD_PRIME - 1))


def decode_canonical(encoding):
    """The point a canonical encoding names, or None if it is not on the curve."""
    value = int.from_bytes(encoding, "little")
    y = value & (2**255 - 1)
    x = x_from_y(y, value >> 255)
    if x is None:
        return None
    return (x, y, 1, x * y % FIELD_PRIME)


def hutong_verdict(public_key, message, signature):
    """hutong's answer by ADR 0002: "accept", or the SignatureError variant that refuses.

    A key or signature of the wrong length cannot be a `PublicKey` or `Signature` value: the
    hex decoder refuses it with `HexLength` before any check of the rule runs.
    """
    if len(public_key) != 32 or len(signature) != 64:
        return "HexLength"
    # Rules 1 and 2: the key.
    if not is_canonical_encoding(public_key):
        return "NonCanonicalKey"
    key_point = decode_canonical(public_key)
    if key_point is None:
        return "KeyNotOnCurve"
    if is_identity(times_cofactor(key_point)):
        return "SmallOrderKey"
    # Rule 3: R.
    r_bytes = signature[:32]
    if not is_canonical_encoding(r_bytes):
        return "NonCanonicalR"
    r_point = decode_canonical(r_bytes)
    if r_point is None:
        return "RNotOnCurve"
    if is_identity(times_cofactor(r_point)):
        return "SmallOrderR"
    # Rule 4: s.
    s = int.from_bytes(signature[32:], "little")
    if s >= GROUP_ORDER:
        return "NonCanonicalS"
    # Rule 5: [8]([s]B - R - [k]A) is the identity.
    digest = hashlib.sha512(r_bytes + public_key + message).digest()
    k = int.from_bytes(digest, "little") % GROUP_ORDER
    difference = add(
        add(multiply(s, BASEPOINT), negate(r_point)), negate(multiply(k, key_point))
    )
    if is_identity(times_cofactor(difference)):
        return "accept"
    return "Mismatch"


def public_key_of(secret_key):
    """RFC 8032 section 5.1.5: the public key of a 32-byte secret key."""
    digest = hashlib.sha512(secret_key).digest()
    scalar = int.from_bytes(digest[:32], "little")
    scalar &= (1 << 254) - 8
    scalar |= 1 << 254
    return encode(multiply(scalar, BASEPOINT))


def self_check():
    """The rule on inputs whose answers are known without it; stops on any surprise."""
    identity_encoding = (1).to_bytes(32, "little")
    assert encode(BASEPOINT).hex() == "58" + "66" * 31
    assert is_identity(multiply(GROUP_ORDER, BASEPOINT))
    # A small-order key with a small-order R and s = 0 passes the bare cofactored equation
    # for every message; the rule refuses it at the key.
    universal = identity_encoding + bytes(32)
    assert hutong_verdict(identity_encoding, b"any", universal) == "SmallOrderKey"
    # y = 2: no point of the curve.
    assert decode_canonical((2).to_bytes(32, "little")) is None


# ---------------------------------------------------------------------------------------
# Reasons for the differences between a suite's verdict and hutong's
# ---------------------------------------------------------------------------------------

# (suite, suite answer, hutong answer) -> why hutong answers otherwise. Written by hand; a
# combination missing here stops the conversion.
REASONS = {
    ("speccheck", "valid", "SmallOrderKey"): (
        "ADR 0002 refuses a small-order public key; a cofactored RFC 8032 verifier accepts "
        "it (the suite's 'cofactored' column describes a verifier without that check)"
    ),
    ("speccheck", "valid", "SmallOrderR"): (
        "ADR 0002 refuses a small-order R; a cofactored RFC 8032 verifier accepts it"
    ),
    ("speccheck", "valid", "NonCanonicalS"): (
        "ADR 0002 refuses s >= l, as RFC 8032 section 5.1.7 requires; the suite's "
        "'cofactored' column describes a verifier that reduces s instead"
    ),
    ("speccheck", "valid", "NonCanonicalR"): (
        "ADR 0002 refuses a non-canonical encoding of R, as RFC 8032 section 5.1.3 "
        "requires; the suite's 'cofactored' column describes a verifier that decodes "
        "leniently"
    ),
    ("speccheck", "valid", "NonCanonicalKey"): (
        "ADR 0002 refuses a non-canonical encoding of the public key, as RFC 8032 section "
        "5.1.3 requires; the suite's 'cofactored' column describes a verifier that decodes "
        "leniently"
    ),
    ("cctv", "valid", "SmallOrderKey"): (
        "ADR 0002 refuses a small-order public key, on which RFC 8032 is silent"
    ),
    ("cctv", "valid", "SmallOrderR"): (
        "ADR 0002 refuses a small-order R, on which RFC 8032 is silent"
    ),
    ("zip215", "valid", "SmallOrderKey"): (
        "ADR 0002 refuses a small-order public key; ZIP 215 accepts every point of the curve"
    ),
    ("zip215", "valid", "NonCanonicalKey"): (
        "ADR 0002 refuses a non-canonical encoding of the public key (as RFC 8032 section "
        "5.1.3 does); ZIP 215 accepts any encoding whose y, reduced mod p, names a point"
    ),
}


def differs(suite_answer, hutong):
    if suite_answer == "acceptable":
        return False
    return (suite_answer == "valid") != (hutong == "accept")


def finish_vector(suite, vector):
    """Adds hutong's verdict, and the reason when it differs from the suite's."""
    public_key = bytes.fromhex(vector["public_key"])
    message = bytes.fromhex(vector["message"])
    signature = bytes.fromhex(vector["signature"])
    hutong = hutong_verdict(public_key, message, signature)
    vector["hutong"] = hutong
    if differs(vector["suite_answer"], hutong):
        key = (suite, vector["suite_answer"], hutong)
        if key not in REASONS:
            sys.exit(f"{suite} {vector['id']}: suite says {key[1]}, hutong {hutong}; "
                     "no reason recorded in REASONS")
        vector["reason"] = REASONS[key]
    return vector


# ---------------------------------------------------------------------------------------
# Reading the sources
# ---------------------------------------------------------------------------------------


def git_show(repo, commit, path):
    result = subprocess.run(
        ["git", "-C", repo, "show", f"{commit}:{path}"],
        check=True,
        capture_output=True,
    )
    return result.stdout


def full_commit(repo, commit):
    result = subprocess.run(
        ["git", "-C", repo, "rev-parse", "--verify", f"{commit}^{{commit}}"],
        check=True,
        capture_output=True,
        text=True,
    )
    return result.stdout.strip()


def source(repository, path, commit, licence):
    return {"repository": repository, "path": path, "commit": commit, "licence": licence}


ANSWERS = (
    "suite_answer is the suite's verdict as valid, invalid or acceptable (either verdict "
    "conforms); suite holds the suite's own fields. hutong is 'accept' or the "
    "SignatureError variant that hutong_core::crypto::verify returns (HexLength: the key or "
    "signature has the wrong length, so the hex decoder refuses it before the rule runs). "
    "reason is present exactly when suite_answer and hutong disagree."
)


def rfc8032(repo, commit):
    """RFC 8032 section 7.1, as carried verbatim in LibTomCrypt's tests/ed25519_test.c."""
    path = "tests/ed25519_test.c"
    text = git_show(repo, commit, path).decode("ascii")
    start = text.index("rfc_8032_7_1[] = {")
    end = text.index("};", start)
    names = ["TEST 1", "TEST 2", "TEST 3", "TEST 1024", "TEST SHA(abc)"]
    vectors = []
    body = re.sub(r"/\*.*?\*/", "", text[start + len("rfc_8032_7_1[] = {") : end], flags=re.S)
    for index, block in enumerate(re.findall(r"\{(.*?)\}", body, re.S)):
        # Each entry: secret key, public key, message, signature, context, as C string
        # literals (adjacent literals concatenate) or NULL.
        fields = []
        for part in block.split(","):
            part = part.strip()
            if part == "NULL":
                fields.append(None)
            elif part:
                literals = re.findall(r'"([^"]*)"', part)
                assert re.fullmatch(r'("[0-9a-f]*"\s*)+', part), part
                fields.append("".join(literals))
        secret_key, public_key, message, signature, context = fields
        assert context is None, "section 7.1 is plain Ed25519, without a context"
        vectors.append({
            "id": names[index],
            "secret_key": secret_key,
            "public_key": public_key,
            "message": message,
            "signature": signature,
            "suite": {"section": "7.1"},
            "suite_answer": "valid",
        })
    assert [len(vector["message"]) // 2 for vector in vectors] == [0, 1, 2, 1023, 64]
    for vector in vectors:
        assert public_key_of(bytes.fromhex(vector["secret_key"])).hex() == vector["public_key"]
    return {
        "description": (
            "The five Ed25519 test vectors of RFC 8032 section 7.1 (TEST 1, 2, 3, 1024 and "
            "SHA(abc)), each a secret key, its public key, a message and the signature. "
            "RFC 8032 publishes them as valid; secret_key lets a test check that hutong's "
            "signer reproduces the public key and the signature byte for byte. " + ANSWERS
        ),
        "source": source("libtom/libtomcrypt", path, commit,
                         "Unlicense (public domain); the vectors themselves are RFC 8032's"),
        "command": "python3 scripts/vectors/signature_suites.py rfc8032 "
                   f"--repo <clone of libtom/libtomcrypt> --commit {commit} "
                   "--out core/tests/vectors/crypto/rfc8032.json",
        "vectors": [finish_vector("rfc8032", vector) for vector in vectors],
    }


def wycheproof(repo, commit):
    path = "testvectors_v1/ed25519_test.json"
    suite = json.loads(git_show(repo, commit, path))
    assert suite["algorithm"] == "EDDSA"
    vectors = []
    for group in suite["testGroups"]:
        assert group["type"] == "EddsaVerify"
        assert group["publicKey"]["curve"] == "edwards25519"
        for test in group["tests"]:
            vectors.append({
                "id": f"tcId {test['tcId']}",
                "public_key": group["publicKey"]["pk"],
                "message": test["msg"],
                "signature": test["sig"],
                "suite": {
                    "result": test["result"],
                    "flags": test["flags"],
                    "comment": test["comment"],
                },
                "suite_answer": test["result"],
            })
    assert len(vectors) == suite["numberOfTests"]
    return {
        "description": (
            "Project Wycheproof's ed25519 verification vectors (" + path + "), one entry per "
            "test case, in file order. suite.result is Wycheproof's verdict, suite.flags "
            "its labels (see the file's 'notes'), suite.comment its comment. " + ANSWERS
        ),
        "source": source("C2SP/wycheproof", path, commit, "Apache-2.0"),
        "command": "python3 scripts/vectors/signature_suites.py wycheproof "
                   f"--repo <clone of C2SP/wycheproof> --commit {commit} "
                   "--out core/tests/vectors/crypto/wycheproof.json",
        "vectors": [finish_vector("wycheproof", vector) for vector in vectors],
    }


# The condition table of ed25519-speccheck's README.md, one row per case of cases.json: the
# bound on S, the orders of A and R ("mixed": a torsion component that is not the whole
# point; "*": a non-canonical encoding), and what a cofactored and a cofactorless verifier
# that check nothing else say (V valid, X invalid, V* valid unless the verifier
# pre-reduces 8k).
SPECCHECK_TABLE = [
    ("S = 0", "small", "small", "V", "V", "small A and R"),
    ("0 < S < L", "small", "mixed", "V", "V", "small A only"),
    ("0 < S < L", "mixed", "small", "V", "V", "small R only"),
    ("0 < S < L", "mixed", "mixed", "V", "V", "succeeds unless full-order is checked"),
    ("0 < S < L", "mixed", "mixed", "V", "X", ""),
    ("0 < S < L", "mixed", "L", "V*", "X", "fails cofactored iff (8h) prereduced"),
    ("S > L", "L", "L", "V", "V", "S out of bounds"),
    ("S >> L", "L", "L", "V", "V", "S out of bounds"),
    ("0 < S < L", "mixed", "small*", "V", "V", "non-canonical R, reduced for hash"),
    ("0 < S < L", "mixed", "small*", "V", "V", "non-canonical R, not reduced for hash"),
    ("0 < S < L", "small*", "mixed", "V", "V", "non-canonical A, reduced for hash"),
    ("0 < S < L", "small*", "mixed", "V", "V", "non-canonical A, not reduced for hash"),
]


def speccheck(repo, commit):
    path = "cases.json"
    cases = json.loads(git_show(repo, commit, path))
    assert len(cases) == len(SPECCHECK_TABLE)
    vectors = []
    for index, (case, row) in enumerate(zip(cases, SPECCHECK_TABLE)):
        s_bound, a_order, r_order, cofactored, cofactorless, comment = row
        vectors.append({
            "id": f"case {index}",
            "public_key": case["pub_key"],
            "message": case["message"],
            "signature": case["signature"],
            "suite": {
                "s": s_bound,
                "a_order": a_order,
                "r_order": r_order,
                "cofactored": cofactored,
                "cofactorless": cofactorless,
                "comment": comment,
            },
            "suite_answer": "valid" if cofactored.startswith("V") else "invalid",
        })
    return {
        "description": (
            "The twelve cases of 'Taming the many EdDSAs' (Chalkias, Garillot, Nikolaenko, "
            "SSR 2020), from ed25519-speccheck's cases.json, with the condition table of its "
            "README.md in suite: the bound on S, the orders of A and R (mixed: a non-zero "
            "torsion component on a point that is not small; *: a non-canonical encoding), "
            "and the verdicts of a cofactored and of a cofactorless verifier that check "
            "nothing else (V, X; V*: valid unless the verifier pre-reduces 8k). suite_answer "
            "is the cofactored column, the equation ADR 0002 uses. " + ANSWERS
        ),
        "source": source("novifinancial/ed25519-speccheck", path, commit, "Apache-2.0"),
        "command": "python3 scripts/vectors/signature_suites.py speccheck "
                   f"--repo <clone of novifinancial/ed25519-speccheck> --commit {commit} "
                   "--out core/tests/vectors/crypto/speccheck.json",
        "vectors": [finish_vector("speccheck", vector) for vector in vectors],
    }


def cctv_answer(flags):
    """RFC 8032's verdict on a vector, read from its flags as CCTV's README reads the RFC:
    non-canonical A or R must be refused, a low-order residue may be accepted or refused
    (it depends on the equation), and the rest passes."""
    if "non_canonical_A" in flags or "non_canonical_R" in flags:
        return "invalid"
    if "low_order_residue" in flags:
        return "acceptable"
    return "valid"


def cctv(repo, commit):
    path = "ed25519/ed25519vectors.json"
    cases = json.loads(git_show(repo, commit, path))
    vectors = []
    for case in cases:
        flags = case.get("flags") or []
        vectors.append({
            "id": f"number {case['number']}",
            "public_key": case["key"],
            "message": case["msg"].encode("utf-8").hex(),
            "signature": case["sig"],
            "suite": {"flags": flags},
            "suite_answer": cctv_answer(flags),
        })
    return {
        "description": (
            "C2SP's CCTV ed25519 vectors (" + path + "): every combination of edge cases "
            "for the points A and R. The suite gives no single verdict; suite.flags are its "
            "labels, and suite_answer is RFC 8032's verdict as the suite's README reads it: "
            "invalid with non_canonical_A or non_canonical_R, acceptable with "
            "low_order_residue (valid under the cofactored equation, invalid under the "
            "cofactorless one), valid otherwise. message is the hex of the suite's text "
            "message. " + ANSWERS
        ),
        "source": source("C2SP/CCTV", path, commit, "BSD-3-Clause (ed25519/LICENSE)"),
        "command": "python3 scripts/vectors/signature_suites.py cctv "
                   f"--repo <clone of C2SP/CCTV> --commit {commit} "
                   "--out core/tests/vectors/crypto/cctv.json",
        "vectors": [finish_vector("cctv", vector) for vector in vectors],
    }


def zip215_encodings():
    """The 14 encodings of ZIP 215's small-order test set: the canonical encodings of the
    eight points of order dividing 8, as multiples 0..7 of the order-8 point whose encoding
    is c7176a70...ac037a, then the six non-canonical encodings of points of small order."""
    generator_encoding = bytes.fromhex(
        "c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a"
    )
    generator = decode_canonical(generator_encoding)
    assert not is_identity(multiply(4, generator)) and is_identity(multiply(8, generator))
    canonical = [encode(multiply(index, generator)) for index in range(8)]
    minus_one = FIELD_PRIME - 1
    non_canonical = [
        (1 | 1 << 255).to_bytes(32, "little"),  # y = 1 (the identity), sign bit set
        (minus_one | 1 << 255).to_bytes(32, "little"),  # y = -1 (order 2), sign bit set
        FIELD_PRIME.to_bytes(32, "little"),  # y = p, that is 0 (order 4)
        (FIELD_PRIME | 1 << 255).to_bytes(32, "little"),  # y = p, the other x
        (FIELD_PRIME + 1).to_bytes(32, "little"),  # y = p + 1, that is 1 (the identity)
        (FIELD_PRIME + 1 | 1 << 255).to_bytes(32, "little"),  # y = p + 1, sign bit set
    ]
    for encoding in non_canonical:
        assert not is_canonical_encoding(encoding)
    return canonical + non_canonical


def zip215():
    encodings = zip215_encodings()
    vectors = []
    for a_index, a_bytes in enumerate(encodings):
        for r_index, r_bytes in enumerate(encodings):
            number = a_index * len(encodings) + r_index
            vectors.append({
                "id": f"SMALL_ORDER_SIGS[{number}]",
                "public_key": a_bytes.hex(),
                "message": b"Zcash".hex(),
                "signature": (r_bytes + bytes(32)).hex(),
                "suite": {"a_encoding": a_index, "r_encoding": r_index, "zip215_valid": True},
                "suite_answer": "valid",
            })
    return {
        "description": (
            "ZIP 215's small-order test set: every pair (A, R) of the 14 encodings listed "
            "in 'encodings' (the canonical encodings of the eight points of order dividing "
            "8, as multiples 0..7 of one order-8 point, then six non-canonical encodings "
            "of small-order points), with s = 0 and the message 'Zcash'. [8][s]B = [8]R + "
            "[8][k]A holds for each, so ZIP 215 (cofactored equation, any encoding whose "
            "y names a point) accepts all of them. The set and its order are those of "
            "SMALL_ORDER_SIGS in ed25519-zebra's tests/small_order.rs; this file is "
            "generated from that definition, not copied. suite.a_encoding and "
            "suite.r_encoding index 'encodings'. " + ANSWERS
        ),
        "source": {
            "repository": "zcash/zips",
            "path": "zips/zip-0215.rst",
            "commit": "dcf748970908092c0c46a9600ba144299d899303",
            "licence": "BSD-2-Clause (ZIP 215); the set is the one of "
                       "ZcashFoundation/ed25519-zebra tests/small_order.rs at commit "
                       "3d5adb4b76be0272c909c373ee22f0c71dc331a8 (MIT OR Apache-2.0)",
        },
        "command": "python3 scripts/vectors/signature_suites.py zip215 "
                   "--out core/tests/vectors/crypto/zip215.json",
        "encodings": [encoding.hex() for encoding in encodings],
        "vectors": [finish_vector("zip215", vector) for vector in vectors],
    }


def write_document(path, document, list_key):
    """The header indented, then one line per entry, so that a diff or a search names the
    entries it touches."""
    header = {name: value for name, value in document.items() if name != list_key}
    text = json.dumps(header, indent=1, ensure_ascii=True)
    lines = [json.dumps(entry, ensure_ascii=True, separators=(", ", ": ")) for entry in document[list_key]]
    text = text[: -len("\n}")] + f',\n "{list_key}": [\n  ' + ",\n  ".join(lines) + "\n ]\n}\n"
    assert json.loads(text) == document
    with open(path, "w", encoding="ascii") as out:
        out.write(text)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("suite", choices=["rfc8032", "wycheproof", "speccheck", "cctv", "zip215"])
    parser.add_argument("--repo", help="a git clone of the suite's repository")
    parser.add_argument("--commit", help="the commit to read the suite at")
    parser.add_argument("--out", required=True, help="the JSON file to write")
    arguments = parser.parse_args()
    self_check()
    if arguments.suite == "zip215":
        document = zip215()
    else:
        if not arguments.repo or not arguments.commit:
            parser.error(f"{arguments.suite} needs --repo and --commit")
        commit = full_commit(arguments.repo, arguments.commit)
        document = {
            "rfc8032": rfc8032,
            "wycheproof": wycheproof,
            "speccheck": speccheck,
            "cctv": cctv,
        }[arguments.suite](arguments.repo, commit)
    vectors = document["vectors"]
    document["counts"] = {
        "vectors": len(vectors),
        "hutong_accepts": sum(vector["hutong"] == "accept" for vector in vectors),
        "differ_from_suite": sum("reason" in vector for vector in vectors),
    }
    # Vectors last, after the counts, for a reader who opens the file.
    document["vectors"] = document.pop("vectors")
    write_document(arguments.out, document, "vectors")
    print(f"{arguments.out}: {document['counts']}", file=sys.stderr)


if __name__ == "__main__":
    main()
