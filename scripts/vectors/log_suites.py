#!/usr/bin/env python3
"""Converts transparency-dev/merkle's inclusion and consistency probes into hutong's format.

The probes (testdata/inclusion/ and testdata/consistency/ of transparency-dev/merkle) are
RFC 6962 / RFC 9162 proofs over SHA-256, each a valid proof or a valid proof changed in the
way its file name says, with the verdict `wantErr`. Each becomes one entry of
core/tests/vectors/log/transparency-dev/inclusion.json or consistency.json, with the hashes
in hex and the verdict of hutong's verifier (core/src/log.rs, `verify_inclusion` and
`verify_consistency` with `Sha256Log`), computed here by an implementation of RFC 9162
sections 2.1.3 and 2.1.4 and of the error order that log.rs documents, written
independently of the Rust code. core/tests/log_suites.rs checks that the library gives the
same verdicts.

Some probes hold values that are not 32-byte hashes ("" or short placeholders): hutong's
proofs hold `Hash32` values, so its decoder refuses those before verification, and the
verdict is `hash_length`. So that the probe still says something about verification, each
such value also gets a 32-byte stand-in (SHA-256 of a tag and the value, so equal values
keep equal stand-ins and none is a hash of the tree), and the entry records the verdict on
the stand-ins as well.

Where a verdict differs from the probe's, the entry carries the reason, from REASONS below;
a difference with no reason stops the conversion.

Usage:

    python3 scripts/vectors/log_suites.py --repo CLONE --commit HASH \\
        --out-dir core/tests/vectors/log/transparency-dev

Python 3.8 or later, standard library only.
"""

import argparse
import base64
import hashlib
import json
import os
import subprocess
import sys

HASH_BYTES = 32
STAND_IN_TAG = b"hutong/vectors/stand-in/v1"


def empty_root():
    return hashlib.sha256(b"").digest()


def node_hash(left, right):
    return hashlib.sha256(b"\x01" + left + right).digest()


def stand_in(value):
    return hashlib.sha256(STAND_IN_TAG + value).digest()


# ---------------------------------------------------------------------------------------
# Proof lengths, from the recursive definitions of RFC 9162 section 2.1.3.1 (PATH) and
# 2.1.4.1 (PROOF and SUBPROOF), counting hashes instead of computing them.
# ---------------------------------------------------------------------------------------


def largest_power_of_two_below(size):
    power = 1
    while power * 2 < size:
        power *= 2
    return power


def path_length(index, size):
    if size == 1:
        return 0
    split = largest_power_of_two_below(size)
    if index < split:
        return path_length(index, split) + 1
    return path_length(index - split, size - split) + 1


def subproof_length(first, second, whole):
    if first == second:
        return 0 if whole else 1
    split = largest_power_of_two_below(second)
    if first <= split:
        return subproof_length(first, split, whole) + 1
    return subproof_length(first - split, second - split, False) + 1


def consistency_length(first, second):
    if first == 0 or first == second:
        return 0
    return subproof_length(first, second, True)


def length_error(expected, actual):
    if actual > expected:
        return "proof_too_long"
    if actual < expected:
        return "proof_too_short"
    return None


# ---------------------------------------------------------------------------------------
# Verification, in the order of the checks that core/src/log.rs documents
# ---------------------------------------------------------------------------------------


def verify_inclusion(leaf_index, tree_size, leaf_hash, path, root):
    """"ok", or the LogError code of `verify_inclusion`."""
    if leaf_index >= tree_size:
        return "leaf_index_beyond_size"
    error = length_error(path_length(leaf_index, tree_size), len(path))
    if error:
        return error
    # RFC 9162 section 2.1.3.2.
    fn, sn, r = leaf_index, tree_size - 1, leaf_hash
    for p in path:
        assert sn != 0, "the length check has ruled this out"
        if fn & 1 == 1 or fn == sn:
            r = node_hash(p, r)
            if fn & 1 == 0:
                while fn & 1 == 0 and fn != 0:
                    fn >>= 1
                    sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    assert sn == 0, "the length check has ruled this out"
    return "ok" if r == root else "root_mismatch"


def verify_consistency(first_size, second_size, first_root, second_root, path):
    """"ok", or the LogError code of `verify_consistency`."""
    if first_size > second_size:
        return "first_size_greater_than_second"
    error = length_error(consistency_length(first_size, second_size), len(path))
    if error:
        return error
    if first_size == 0:
        # Every tree extends the empty tree; only the empty root is checked.
        if first_root != empty_root():
            return "first_root_mismatch"
        if second_size == 0 and second_root != empty_root():
            return "second_root_mismatch"
        return "ok"
    if first_size == second_size:
        return "ok" if first_root == second_root else "equal_sizes_different_roots"
    # RFC 9162 section 2.1.4.2.
    if first_size & (first_size - 1) == 0:
        path = [first_root] + list(path)
    fn, sn = first_size - 1, second_size - 1
    while fn & 1 == 1:
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for c in path[1:]:
        assert sn != 0, "the length check has ruled this out"
        if fn & 1 == 1 or fn == sn:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            if fn & 1 == 0:
                while fn & 1 == 0 and fn != 0:
                    fn >>= 1
                    sn >>= 1
        else:
            sr = node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    assert sn == 0, "the length check has ruled this out"
    if fr != first_root:
        return "first_root_mismatch"
    if sr != second_root:
        return "second_root_mismatch"
    return "ok"


def self_check():
    """RFC 9162 on a tree of three leaves built here; stops on any surprise."""
    leaves = [hashlib.sha256(b"\x00" + bytes([index])).digest() for index in range(3)]
    left = node_hash(leaves[0], leaves[1])
    root = node_hash(left, leaves[2])
    assert verify_inclusion(0, 3, leaves[0], [leaves[1], leaves[2]], root) == "ok"
    assert verify_inclusion(2, 3, leaves[2], [left], root) == "ok"
    assert verify_inclusion(2, 3, leaves[2], [leaves[1]], root) == "root_mismatch"
    assert verify_consistency(2, 3, left, root, [leaves[2]]) == "ok"
    assert verify_consistency(1, 3, leaves[0], root, [leaves[1], leaves[2]]) == "ok"
    assert verify_consistency(2, 3, left, root, []) == "proof_too_short"
    assert [path_length(index, 7) for index in range(7)] == [3, 3, 3, 3, 3, 3, 2]
    assert consistency_length(3, 7) == 4 and consistency_length(4, 7) == 1


# ---------------------------------------------------------------------------------------
# Reasons for the differences between a probe's verdict and hutong's
# ---------------------------------------------------------------------------------------

# Probe file -> why hutong's verdict (as given, or on stand-ins) differs from wantErr.
REASONS = {
    "inclusion/single-entry/empty-root-and-leaf.json": (
        "the leaf hash and the root are both empty, which cannot be hutong Hash32 values, "
        "so hutong's decoder refuses the probe (hash_length), as the probe expects; on "
        "stand-ins the two are equal, and a leaf hash equal to the root of a one-leaf tree "
        "is a valid proof"
    ),
    "consistency/additional/sizes-are-equal-one-and-proof-is-empty.json": (
        "the two roots are a 12-byte placeholder, which cannot be a hutong Hash32, so "
        "hutong's decoder refuses the probe (hash_length); with equal 32-byte roots in "
        "their place hutong accepts it, as the probe expects"
    ),
    "consistency/additional/size1-is-zero-and-size2-is-not-zero.json": (
        "hutong accepts a consistency proof from the empty tree when first_root is the "
        "empty-tree root, whatever the second tree (RFC 9162 section 2.1.4 defines "
        "proofs only for 0 < first_size, and every tree extends the empty one); the Go "
        "verifier refuses first_size = 0 as meaningless. As given, the second root is a "
        "placeholder, so hutong refuses it at decoding"
    ),
}


# ---------------------------------------------------------------------------------------
# Reading the probes
# ---------------------------------------------------------------------------------------


def git(repo, *arguments):
    return subprocess.run(["git", "-C", repo, *arguments], check=True,
                          capture_output=True).stdout


def decode(text):
    return base64.b64decode(text, validate=True)


def probe_files(repo, commit, kind):
    listing = git(repo, "ls-tree", "-r", "--name-only", commit, f"testdata/{kind}/")
    names = [name for name in listing.decode("utf-8").splitlines() if name.endswith(".json")]
    return sorted(names)


def finish(entry, values, verdict_of):
    """Adds hutong's verdicts, the stand-ins and the reason to `entry`."""
    wrong_length = sorted({value for value in values if len(value) != HASH_BYTES})
    if wrong_length:
        entry["hutong"] = "hash_length"
        entry["stand_ins"] = {value.hex(): stand_in(value).hex() for value in wrong_length}

        def replace(value):
            return stand_in(value) if len(value) != HASH_BYTES else value

        entry["hutong_on_stand_ins"] = verdict_of(replace)
        verdicts = [entry["hutong"], entry["hutong_on_stand_ins"]]
    else:
        entry["hutong"] = verdict_of(lambda value: value)
        verdicts = [entry["hutong"]]
    name = entry["id"]
    if any((verdict == "ok") == entry["want_err"] for verdict in verdicts):
        if name not in REASONS:
            sys.exit(f"{name}: wantErr {entry['want_err']}, hutong {verdicts}; "
                     "no reason recorded in REASONS")
        entry["reason"] = REASONS[name]
    elif name in REASONS:
        sys.exit(f"{name}: a reason is recorded but the verdicts agree")
    return entry


def inclusion_entry(name, probe):
    leaf_hash = decode(probe["leafHash"])
    root = decode(probe["root"])
    path = [decode(value) for value in probe["proof"] or []]
    entry = {
        "id": name,
        "desc": probe["desc"],
        "leaf_index": probe["leafIdx"],
        "tree_size": probe["treeSize"],
        "leaf_hash": leaf_hash.hex(),
        "path": [value.hex() for value in path],
        "root": root.hex(),
        "want_err": probe["wantErr"],
    }

    def verdict_of(replace):
        return verify_inclusion(probe["leafIdx"], probe["treeSize"], replace(leaf_hash),
                                [replace(value) for value in path], replace(root))

    return finish(entry, [leaf_hash, root, *path], verdict_of)


def consistency_entry(name, probe):
    first_root = decode(probe["root1"])
    second_root = decode(probe["root2"])
    path = [decode(value) for value in probe["proof"] or []]
    entry = {
        "id": name,
        "desc": probe["desc"],
        "first_size": probe["size1"],
        "second_size": probe["size2"],
        "first_root": first_root.hex(),
        "second_root": second_root.hex(),
        "path": [value.hex() for value in path],
        "want_err": probe["wantErr"],
    }

    def verdict_of(replace):
        return verify_consistency(probe["size1"], probe["size2"], replace(first_root),
                                  replace(second_root), [replace(value) for value in path])

    return finish(entry, [first_root, second_root, *path], verdict_of)


DESCRIPTION = (
    "transparency-dev/merkle's {kind} probes (testdata/{kind}/, every .json file), SHA-256 "
    "with RFC 6962 / RFC 9162 hashing: leaf 0x00 || data, node 0x01 || left || right, empty "
    "tree SHA-256(''). Each entry is one probe file: id is its path under testdata/, desc and "
    "want_err its own description and verdict, hashes in hex (paths from the bottom of the "
    "tree up; a null proof is empty). hutong is 'ok' or the LogError code of "
    "hutong_core::log::{function} with Sha256Log, or 'hash_length' when a value is not 32 "
    "bytes (hutong's proofs hold Hash32 values, so its decoder refuses the probe before "
    "verification); then stand_ins maps each such value to a 32-byte stand-in (SHA-256 of "
    "'hutong/vectors/stand-in/v1' and the value) and hutong_on_stand_ins is the verdict with "
    "them in place. reason is present exactly when a hutong verdict disagrees with "
    "want_err."
)


def convert(repo, commit, kind):
    entries = []
    for path in probe_files(repo, commit, kind):
        probe = json.loads(git(repo, "show", f"{commit}:{path}"))
        name = path[len("testdata/"):]
        if kind == "inclusion":
            entries.append(inclusion_entry(name, probe))
        else:
            entries.append(consistency_entry(name, probe))
    function = "verify_inclusion" if kind == "inclusion" else "verify_consistency"
    counts = {
        "probes": len(entries),
        "valid": sum(not entry["want_err"] for entry in entries),
        "hutong_ok": sum(entry["hutong"] == "ok" for entry in entries),
        "differ_from_suite": sum("reason" in entry for entry in entries),
    }
    return {
        "description": DESCRIPTION.format(kind=kind, function=function),
        "source": {
            "repository": "transparency-dev/merkle",
            "path": f"testdata/{kind}/",
            "commit": commit,
            "licence": "Apache-2.0",
        },
        "command": "python3 scripts/vectors/log_suites.py --repo <clone of "
                   f"transparency-dev/merkle> --commit {commit} "
                   "--out-dir core/tests/vectors/log/transparency-dev",
        "counts": counts,
        "probes": entries,
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
    parser.add_argument("--repo", required=True, help="a git clone of transparency-dev/merkle")
    parser.add_argument("--commit", required=True, help="the commit to read the probes at")
    parser.add_argument("--out-dir", required=True, help="the directory to write into")
    arguments = parser.parse_args()
    self_check()
    commit = git(arguments.repo, "rev-parse", "--verify",
                 f"{arguments.commit}^{{commit}}").decode("ascii").strip()
    for kind in ("inclusion", "consistency"):
        document = convert(arguments.repo, commit, kind)
        out = os.path.join(arguments.out_dir, f"{kind}.json")
        write_document(out, document, "probes")
        print(f"{out}: {document['counts']}", file=sys.stderr)


if __name__ == "__main__":
    main()
