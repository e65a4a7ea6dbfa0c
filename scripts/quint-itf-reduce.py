#!/usr/bin/env python3
"""Reduce an ITF trace of the Quint Tendermint model (`statemachineAsync`) to what the replay
in consensus/tests/quint.rs needs, so that the committed vectors stay small.

A full trace holds every variable of every process at every state (hundreds of kilobytes for
four processes). The reduced trace keeps, for each driver step of one process (a state whose
`_hist` changed, or whose moving process lost an incoming message, a timeout or a value
request, or whose driver state changed), one state with:

- `_hist`: the model's own record of the step (process, driver input, consensus output);
- `process`: the process that moved;
- `kind`: `step` (a driver step), `start` (the step that starts a height: the model's
  new-height logic took the buffered votes of that height at once) or `newHeight` (the
  environment moved the process to its next height);
- `cs`: the process's consensus state after the step (height, round, step, lock, valid);
- `settled`: true when the process has no internal work left (no pending step change, no
  pending input) and every message it sent at its current height has been delivered to it
  and consumed by it, so that the replayed machine (which acts on everything at once and
  counts its own messages when it sends them) must be in exactly the same state;
- `preload` (on `start` states only): the votes of that height the new-height logic took
  (certificates flattened into their votes) and the proposals of that height it could see.

`#meta.index` of each reduced state is the index of the state in the full trace. The first
state keeps every process's initial consensus state in `initial`. Values stay in ITF
encoding (`#bigint`, `#set`, `#tup`, `#map`, tagged unions).

Usage: quint-itf-reduce.py FULL.itf.json REDUCED.itf.json
"""

import json
import sys


def strip(name):
    return name.rsplit("::", 1)[-1]


def as_map(itf_map):
    return {key: value for key, value in itf_map["#map"]}


def items(itf_set):
    return itf_set["#set"]


def key(value):
    return json.dumps(value, sort_keys=True)


def project(cs):
    return {field: cs[field] for field in sorted(cs) if field != "p"}


def height_of(message):
    return int(message["height"]["#bigint"])


def own_unconsumed(process, node, buffers, height):
    """Messages `process` sent at `height` that it has not consumed itself yet."""
    pending = 0
    for name in ("propBuffer", "voteBuffer"):
        for message in items(buffers[name].get(process, {"#set": []})):
            if message["srcAddress"] == process and height_of(message) == height:
                pending += 1
    for name in ("incomingProposals", "incomingVotes"):
        for message in items(node[name]):
            if message["srcAddress"] == process and height_of(message) == height:
                pending += 1
    return pending


def settled(process, node, buffers):
    driver = node["es"]
    if driver["pendingStepChange"]["tag"] != "NoStep":
        return False
    if items(driver["pendingInputs"]):
        return False
    if not driver["started"]:
        return False
    height = int(driver["cs"]["height"]["#bigint"])
    return own_unconsumed(process, node, buffers, height) == 0


def lost_something(before, after):
    for name in (
        "incomingVotes",
        "incomingProposals",
        "incomingCertificates",
        "timeouts",
        "getValueRequests",
    ):
        after_keys = {key(item) for item in items(after[name])}
        if any(key(item) not in after_keys for item in items(before[name])):
            return True
    return False


def reduce(full):
    states = [{strip(name): value for name, value in state.items()} for state in full["states"]]
    first = states[0]
    system = as_map(first["system"])
    any_node = next(iter(system.values()))
    validators = sorted(key_ for key_, _ in any_node["es"]["valset"]["#map"])
    correct = sorted(system)
    reduced = [
        {
            "#meta": {"index": 0},
            "kind": "init",
            "initial": {"#map": [[p, project(system[p]["es"]["cs"])] for p in correct]},
        }
    ]
    for index in range(1, len(states)):
        previous, current = states[index - 1], states[index]
        before, after = as_map(previous["system"]), as_map(current["system"])
        buffers = {
            name: as_map(current[name]) for name in ("propBuffer", "voteBuffer")
        }
        hist_changed = key(previous["_hist"]) != key(current["_hist"])
        moved = [p for p in correct if key(before[p]) != key(after[p])]
        if hist_changed:
            process = current["_hist"]["validator"]
        else:
            # Only the driver state, the incoming sets, the timeouts and the value requests
            # tell a repeated driver step from a delivery (which only adds to incoming sets).
            candidates = [
                p
                for p in moved
                if key(before[p]["es"]) != key(after[p]["es"]) or lost_something(before[p], after[p])
            ]
            if not candidates:
                continue
            if len(candidates) != 1:
                raise SystemExit(f"state {index}: more than one process moved: {candidates}")
            process = candidates[0]
        node_before, node_after = before[process], after[process]
        kind = "step"
        if not hist_changed and node_after["es"]["started"] is False:
            kind = "newHeight"
        elif node_before["es"]["started"] is False and node_after["es"]["started"] is True:
            kind = "start"
        state = {
            "#meta": {"index": index},
            "_hist": current["_hist"],
            "process": process,
            "kind": kind,
            "cs": project(node_after["es"]["cs"]),
            "settled": settled(process, node_after, buffers),
        }
        if kind == "start":
            height = int(node_after["es"]["cs"]["height"]["#bigint"])
            after_votes = {key(vote) for vote in items(node_after["incomingVotes"])}
            votes = [
                vote
                for vote in items(node_before["incomingVotes"])
                if height_of(vote) == height and key(vote) not in after_votes
            ]
            for certificate in items(node_before["incomingCertificates"]):
                if all(height_of(vote) == height for vote in items(certificate)):
                    votes.extend(items(certificate))
            proposals = [
                proposal
                for proposal in items(node_before["incomingProposals"])
                if height_of(proposal) == height
            ]
            state["preload"] = {"votes": votes, "proposals": proposals}
        reduced.append(state)
    meta = dict(full["#meta"])
    meta.pop("timestamp", None)
    meta.pop("description", None)
    meta["reduced"] = "scripts/quint-itf-reduce.py"
    meta["validators"] = validators
    meta["correct"] = correct
    meta["full_states"] = len(states)
    return {
        "#meta": meta,
        "vars": ["_hist", "process", "kind", "cs", "settled"],
        "states": reduced,
    }


def main():
    if len(sys.argv) != 3:
        raise SystemExit(__doc__)
    with open(sys.argv[1], encoding="utf-8") as source:
        full = json.load(source)
    result = reduce(full)
    with open(sys.argv[2], "w", encoding="utf-8") as target:
        json.dump(result, target, separators=(",", ":"), sort_keys=True)
        target.write("\n")


if __name__ == "__main__":
    main()
