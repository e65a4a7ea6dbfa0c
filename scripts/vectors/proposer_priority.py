#!/usr/bin/env python3
"""Computes consensus/tests/vectors/proposer_priority.json: the proposer of (height, round) for
a few validator sets, by CometBFT's proposer-priority algorithm as hutong applies it
(docs/consensus.md, "The proposer"; ADR 0025).

Written from the published algorithm (CometBFT types/validator_set.go:
IncrementProposerPriority, RescalePriorities, shiftByAvgProposerPriority,
incrementProposerPriority), not from the Rust code, with Go's integer division (truncation
towards zero). hutong's use of it:

- the powers are divided by their greatest common divisor; a total still above 2^16 is scaled
  to 2^16 (floor(power * 2^16 / total), at least 1), then divided by its own divisor again;
- a run starts with every priority at zero; each step is IncrementProposerPriority(1):
  rescale to the window 2 * total, shift by the average, add every power, pick the highest
  priority (the earlier position on a tie) and subtract the total from it;
- the proposer of (height, round) is the one picked at step (height + round) mod period, the
  period being the total of the powers used (after it every priority is back at zero).

consensus/tests/vectors.rs checks the file against the library.

Usage (Python 3.8 or later, standard library only):

    python3 scripts/vectors/proposer_priority.py > consensus/tests/vectors/proposer_priority.json
"""

import json
import math

CYCLE = 1 << 16


def go_div(numerator, denominator):
    """Go's integer division: the quotient truncated towards zero."""
    quotient = abs(numerator) // abs(denominator)
    return quotient if (numerator >= 0) == (denominator >= 0) else -quotient


def selection_powers(powers):
    divisor = 0
    for power in powers:
        divisor = math.gcd(divisor, power)
    reduced = [power // divisor for power in powers]
    total = sum(reduced)
    if total <= CYCLE:
        return reduced
    scaled = [max(1, power * CYCLE // total) for power in reduced]
    divisor = 0
    for power in scaled:
        divisor = math.gcd(divisor, power)
    return [power // divisor for power in scaled]


def step(priorities, powers, total):
    window = 2 * total
    difference = max(priorities) - min(priorities)
    if difference > window:
        ratio = go_div(difference + window - 1, window)
        priorities[:] = [go_div(priority, ratio) for priority in priorities]
    average = go_div(sum(priorities), len(priorities))
    priorities[:] = [priority - average for priority in priorities]
    priorities[:] = [priority + power for priority, power in zip(priorities, powers)]
    best = 0
    for position, priority in enumerate(priorities):
        if priority > priorities[best]:
            best = position
    priorities[best] -= total
    return best


def schedule(powers):
    used = selection_powers(powers)
    total = sum(used)
    priorities = [0] * len(used)
    picks = [step(priorities, used, total) for _ in range(total)]
    assert all(priority == 0 for priority in priorities), "no period"
    return used, picks


SETS = [
    ("equal-4", [1, 1, 1, 1]),
    ("fibonacci-7", [1, 2, 3, 5, 8, 13, 21]),
    ("tens-4", [10, 20, 30, 40]),
    ("two-thirds-heavy-4", [1, 1, 1, 10]),
    ("mixed-5", [7, 3, 7, 1, 12]),
    ("huge-4", [1 << 50, 3 << 50, 1, 7]),
]

LOOKUPS = [(0, 0), (1, 0), (1, 1), (2, 5), (52, 0), (53, 0), (1000003, 0), (7, 4096),
           (2 ** 64 - 1, 2 ** 32 - 1)]


def main():
    cases = []
    for name, powers in SETS:
        used, picks = schedule(powers)
        period = len(picks)
        cases.append({
            "name": name,
            "powers": powers,
            "selection_powers": used,
            "period": period,
            "first_steps": picks[:64],
            "lookups": [
                {"height": height, "round": round_, "proposer": picks[(height + round_) % period]}
                for height, round_ in LOOKUPS
            ],
        })
    print(json.dumps({
        "algorithm": "CometBFT proposer priorities from zero, step height + round (ADR 0025)",
        "command": "python3 scripts/vectors/proposer_priority.py",
        "cases": cases,
    }, indent=2))


if __name__ == "__main__":
    main()
