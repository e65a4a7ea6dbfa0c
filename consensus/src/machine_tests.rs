//! One test per rule of Algorithm 1, named after its line: exact inputs, exact actions.
//!
//! The set has four validators of power 1, ids `[1; 32]` to `[4; 32]`; the machine under
//! test is validator 1. At height 1 the proposer of round r is validator `(1 + r) % 4 + 1`:
//! round 0 is validator 2's, round 3 is ours.

use super::*;
use crate::signing::{InsecureTestSigner, InsecureTestVerifier};

type Value = [u8; 32];
type Machine = Consensus<Value, InsecureTestSigner, InsecureTestVerifier>;

const CHAIN: &str = "hutong-unit";
const H: Height = 1;

fn id(byte: u8) -> ValidatorId {
    ValidatorId([byte; 32])
}

fn value(byte: u8) -> Value {
    [byte; 32]
}

fn set() -> ValidatorSet {
    ValidatorSet::with_equal_power((1..=4).map(id)).unwrap()
}

fn config() -> Config {
    Config {
        timeout_propose_base_ms: 100,
        timeout_propose_increment_ms: 10,
        timeout_prevote_base_ms: 50,
        timeout_prevote_increment_ms: 5,
        timeout_precommit_base_ms: 60,
        timeout_precommit_increment_ms: 6,
    }
}

fn machine() -> Machine {
    Consensus::new(
        config(),
        CHAIN,
        InsecureTestSigner::new(id(1)),
        InsecureTestVerifier,
    )
    .unwrap()
}

fn started() -> Machine {
    let mut machine = machine();
    machine.handle(Input::NewHeight {
        height: H,
        validator_set: set(),
    });
    machine
}

fn proposal(
    from: u8,
    round: Round,
    value: Value,
    valid_round: Option<Round>,
) -> SignedProposal<Value> {
    let proposal = Proposal {
        height: H,
        round,
        value,
        valid_round,
        proposer: id(from),
    };
    let signature = InsecureTestSigner::new(id(from)).sign(&proposal.sign_bytes(CHAIN));
    SignedProposal {
        proposal,
        signature,
    }
}

fn vote(from: u8, vote_type: VoteType, round: Round, value: Option<Value>) -> SignedVote<Value> {
    let vote = Vote {
        vote_type,
        height: H,
        round,
        value,
        validator: id(from),
    };
    let signature = InsecureTestSigner::new(id(from)).sign(&vote.sign_bytes(CHAIN));
    SignedVote { vote, signature }
}

fn prevote(from: u8, round: Round, value: Option<Value>) -> Input<Value> {
    Input::Vote(vote(from, VoteType::Prevote, round, value))
}

fn precommit(from: u8, round: Round, value: Option<Value>) -> Input<Value> {
    Input::Vote(vote(from, VoteType::Precommit, round, value))
}

fn timeout(round: Round, step: Step) -> Input<Value> {
    Input::Timeout {
        height: H,
        round,
        step,
    }
}

/// The two actions of signing our own vote: persist, then broadcast.
fn our_vote(
    vote_type: VoteType,
    round: Round,
    value: Option<Value>,
    machine: &Machine,
) -> Vec<Action<Value>> {
    let signed = vote(1, vote_type, round, value);
    // The write-ahead log: what was signed at this height before.
    let signed_before = machine
        .signing_state()
        .filter(|previous| previous.height() == H)
        .map_or_else(Vec::new, |previous| {
            previous
                .signed_messages()
                .filter(|message| **message != SignedMessage::Vote(signed.clone()))
                .cloned()
                .collect()
        });
    let signing_state = SigningState {
        last_signed: SignedMessage::Vote(signed.clone()),
        signed_before,
        locked: machine.locked().cloned(),
        valid: machine.valid().cloned(),
        valid_round_prevotes: machine.valid().map_or_else(Vec::new, |valid| {
            let state = machine.state.as_ref().unwrap();
            state
                .votes
                .votes_for(valid.round, VoteType::Prevote, Some(&valid.value))
        }),
    };
    vec![
        Action::PersistSigningState(signing_state),
        Action::BroadcastVote(signed),
    ]
}

fn feed(
    machine: &mut Machine,
    inputs: impl IntoIterator<Item = Input<Value>>,
) -> Vec<Action<Value>> {
    inputs
        .into_iter()
        .flat_map(|input| machine.handle(input))
        .collect()
}

/// Validator 2's proposal of `v` in round 0, accepted as valid: we prevote `v`.
fn prevoted_for_proposal(machine: &mut Machine, v: Value) {
    machine.handle(Input::Proposal(proposal(2, 0, v, None)));
    machine.handle(Input::ProposalVerdict {
        height: H,
        value: v,
        valid: true,
    });
    assert_eq!(machine.position(), Some((H, 0, Step::Prevote)));
}

#[test]
fn line_11_start_round_schedules_the_propose_timeout_when_not_proposer() {
    let mut machine = machine();
    let actions = machine.handle(Input::NewHeight {
        height: H,
        validator_set: set(),
    });
    // L21: schedule OnTimeoutPropose(h, 0) after timeoutPropose(0).
    assert_eq!(
        actions,
        vec![Action::ScheduleTimeout {
            height: H,
            round: 0,
            step: Step::Propose,
            duration_ms: 100
        }]
    );
    assert_eq!(machine.position(), Some((H, 0, Step::Propose)));
}

#[test]
fn line_14_proposer_asks_for_a_value_and_proposes_it() {
    let mut machine = machine();
    // At height 4, round 0 the proposer is at position (4 + 0) % 4 = 0: us.
    let actions = machine.handle(Input::NewHeight {
        height: 4,
        validator_set: set(),
    });
    assert_eq!(
        actions,
        vec![
            Action::RequestValue {
                height: 4,
                round: 0
            },
            Action::ScheduleTimeout {
                height: 4,
                round: 0,
                step: Step::Propose,
                duration_ms: 100
            },
        ]
    );
    let actions = machine.handle(Input::ProposeValue {
        height: 4,
        round: 0,
        value: value(7),
    });
    let proposal = Proposal {
        height: 4,
        round: 0,
        value: value(7),
        valid_round: None,
        proposer: id(1),
    };
    let signature = InsecureTestSigner::new(id(1)).sign(&proposal.sign_bytes(CHAIN));
    let signed_proposal = SignedProposal {
        proposal,
        signature,
    };
    let prevote = Vote {
        vote_type: VoteType::Prevote,
        height: 4,
        round: 0,
        value: Some(value(7)),
        validator: id(1),
    };
    let prevote = SignedVote {
        signature: InsecureTestSigner::new(id(1)).sign(&prevote.sign_bytes(CHAIN)),
        vote: prevote,
    };
    // L19: broadcast the proposal; then L22 applies to our own proposal: prevote it.
    assert_eq!(
        actions,
        vec![
            Action::PersistSigningState(SigningState {
                last_signed: SignedMessage::Proposal(signed_proposal.clone()),
                signed_before: vec![],
                locked: None,
                valid: None,
                valid_round_prevotes: vec![],
            }),
            Action::BroadcastProposal(signed_proposal.clone()),
            Action::PersistSigningState(SigningState {
                last_signed: SignedMessage::Vote(prevote.clone()),
                signed_before: vec![SignedMessage::Proposal(signed_proposal.clone())],
                locked: None,
                valid: None,
                valid_round_prevotes: vec![],
            }),
            Action::BroadcastVote(prevote),
        ]
    );
    // A second value for the same round is ignored.
    assert_eq!(
        machine.handle(Input::ProposeValue {
            height: 4,
            round: 0,
            value: value(8)
        }),
        vec![]
    );
}

#[test]
fn line_16_proposer_proposes_its_valid_value_with_its_valid_round() {
    let mut machine = started();
    prevoted_for_proposal(&mut machine, value(5));
    // A polka for 5 in round 0: we lock and precommit (L36), so validValue = 5, validRound = 0.
    feed(
        &mut machine,
        [prevote(2, 0, Some(value(5))), prevote(3, 0, Some(value(5)))],
    );
    assert_eq!(
        machine.valid(),
        Some(&RoundValue {
            round: 0,
            value: value(5)
        })
    );
    // Rounds 1 and 2 pass by timeouts... skip straight to round 3 (ours) with f+1 messages.
    let actions = feed(&mut machine, [prevote(2, 3, None), prevote(3, 3, None)]);
    let expected = Proposal {
        height: H,
        round: 3,
        value: value(5),
        valid_round: Some(0),
        proposer: id(1),
    };
    let broadcast = actions.iter().find_map(|action| match action {
        Action::BroadcastProposal(signed) => Some(signed.proposal.clone()),
        _ => None,
    });
    assert_eq!(broadcast, Some(expected));
    assert!(
        !actions
            .iter()
            .any(|action| matches!(action, Action::RequestValue { .. }))
    );
}

#[test]
fn line_22_prevotes_a_valid_proposal() {
    let mut machine = started();
    let actions = machine.handle(Input::Proposal(proposal(2, 0, value(5), None)));
    assert_eq!(
        actions,
        vec![Action::ValidateValue {
            height: H,
            value: value(5)
        }]
    );
    assert_eq!(
        machine.position(),
        Some((H, 0, Step::Propose)),
        "waits for the verdict"
    );
    let actions = machine.handle(Input::ProposalVerdict {
        height: H,
        value: value(5),
        valid: true,
    });
    assert_eq!(
        actions,
        our_vote(VoteType::Prevote, 0, Some(value(5)), &machine)
    );
    assert_eq!(machine.position(), Some((H, 0, Step::Prevote)));
}

#[test]
fn line_26_prevotes_nil_for_an_invalid_proposal() {
    let mut machine = started();
    machine.handle(Input::Proposal(proposal(2, 0, value(5), None)));
    let actions = machine.handle(Input::ProposalVerdict {
        height: H,
        value: value(5),
        valid: false,
    });
    assert_eq!(actions, our_vote(VoteType::Prevote, 0, None, &machine));
}

#[test]
fn line_23_a_locked_validator_prevotes_nil_for_another_value() {
    let mut machine = started();
    prevoted_for_proposal(&mut machine, value(5));
    feed(
        &mut machine,
        [prevote(2, 0, Some(value(5))), prevote(3, 0, Some(value(5)))],
    );
    assert_eq!(
        machine.locked(),
        Some(&RoundValue {
            round: 0,
            value: value(5)
        })
    );
    // Round 1 (validator 3 proposes) by f+1 messages, with a new value and no valid round.
    feed(&mut machine, [precommit(3, 1, None), precommit(4, 1, None)]);
    assert_eq!(machine.position(), Some((H, 1, Step::Propose)));
    // The lock forbids 6 whatever its verdict, so the prevote does not wait for it.
    let actions = machine.handle(Input::Proposal(proposal(3, 1, value(6), None)));
    let mut expected = vec![Action::ValidateValue {
        height: H,
        value: value(6),
    }];
    expected.extend(our_vote(VoteType::Prevote, 1, None, &machine));
    assert_eq!(actions, expected);
    assert_eq!(
        machine.handle(Input::ProposalVerdict {
            height: H,
            value: value(6),
            valid: true
        }),
        vec![]
    );
}

#[test]
fn line_28_prevotes_a_reproposed_value_backed_by_a_polka_of_its_valid_round() {
    let mut machine = started();
    // Round 0: we saw no proposal; timeout, prevote nil; the others prevote 5.
    feed(&mut machine, [timeout(0, Step::Propose)]);
    let actions = feed(
        &mut machine,
        [
            prevote(2, 0, Some(value(5))),
            prevote(3, 0, Some(value(5))),
            prevote(4, 0, Some(value(5))),
        ],
    );
    // L34 fires on the prevotes (any value).
    assert_eq!(
        actions,
        vec![Action::ScheduleTimeout {
            height: H,
            round: 0,
            step: Step::Prevote,
            duration_ms: 50
        }]
    );
    feed(
        &mut machine,
        [
            timeout(0, Step::Prevote),
            precommit(2, 0, None),
            precommit(3, 0, None),
            timeout(0, Step::Precommit),
        ],
    );
    assert_eq!(machine.position(), Some((H, 1, Step::Propose)));
    assert_eq!(machine.locked(), None);
    // Round 1: validator 3 re-proposes 5 with valid round 0; the polka of round 0 backs it.
    let actions = machine.handle(Input::Proposal(proposal(3, 1, value(5), Some(0))));
    assert_eq!(
        actions,
        vec![Action::ValidateValue {
            height: H,
            value: value(5)
        }]
    );
    let actions = machine.handle(Input::ProposalVerdict {
        height: H,
        value: value(5),
        valid: true,
    });
    assert_eq!(
        actions,
        our_vote(VoteType::Prevote, 1, Some(value(5)), &machine)
    );
}

#[test]
fn line_28_without_the_polka_waits_for_the_timeout() {
    let mut machine = started();
    feed(&mut machine, [prevote(3, 1, None), prevote(4, 1, None)]);
    let actions = feed(
        &mut machine,
        [
            Input::Proposal(proposal(3, 1, value(5), Some(0))),
            Input::ProposalVerdict {
                height: H,
                value: value(5),
                valid: true,
            },
        ],
    );
    assert_eq!(
        actions,
        vec![Action::ValidateValue {
            height: H,
            value: value(5)
        }]
    );
    assert_eq!(machine.position(), Some((H, 1, Step::Propose)));
}

#[test]
fn line_29_a_validator_locked_after_the_valid_round_prevotes_nil() {
    let mut machine = started();
    // Round 0: polka for 5 without our seeing the proposal (prevote nil on timeout).
    feed(&mut machine, [timeout(0, Step::Propose)]);
    feed(
        &mut machine,
        [
            prevote(2, 0, Some(value(5))),
            prevote(3, 0, Some(value(5))),
            prevote(4, 0, Some(value(5))),
        ],
    );
    feed(
        &mut machine,
        [
            timeout(0, Step::Prevote),
            precommit(2, 0, None),
            precommit(3, 0, None),
            timeout(0, Step::Precommit),
        ],
    );
    // Round 1: we lock on 6.
    feed(
        &mut machine,
        [
            Input::Proposal(proposal(3, 1, value(6), None)),
            Input::ProposalVerdict {
                height: H,
                value: value(6),
                valid: true,
            },
        ],
    );
    feed(
        &mut machine,
        [prevote(2, 1, Some(value(6))), prevote(3, 1, Some(value(6)))],
    );
    assert_eq!(
        machine.locked(),
        Some(&RoundValue {
            round: 1,
            value: value(6)
        })
    );
    // Round 2: validator 4 re-proposes 5 with valid round 0 < our locked round 1.
    feed(&mut machine, [precommit(4, 2, None), precommit(2, 2, None)]);
    assert_eq!(machine.position(), Some((H, 2, Step::Propose)));
    let actions = machine.handle(Input::Proposal(proposal(4, 2, value(5), Some(0))));
    let mut expected = vec![Action::ValidateValue {
        height: H,
        value: value(5),
    }];
    expected.extend(our_vote(VoteType::Prevote, 2, None, &machine));
    assert_eq!(actions, expected);
}

#[test]
fn line_34_schedules_the_prevote_timeout_once_on_a_quorum_of_any_prevotes() {
    let mut machine = started();
    feed(&mut machine, [timeout(0, Step::Propose)]);
    assert_eq!(machine.handle(prevote(2, 0, Some(value(5)))), vec![]);
    let actions = machine.handle(prevote(3, 0, None));
    assert_eq!(
        actions,
        vec![Action::ScheduleTimeout {
            height: H,
            round: 0,
            step: Step::Prevote,
            duration_ms: 50
        }]
    );
    assert_eq!(
        machine.handle(prevote(4, 0, Some(value(6)))),
        vec![],
        "only the first time"
    );
}

#[test]
fn line_36_locks_and_precommits_on_a_polka_for_the_proposal() {
    let mut machine = started();
    prevoted_for_proposal(&mut machine, value(5));
    assert_eq!(machine.handle(prevote(2, 0, Some(value(5)))), vec![]);
    let actions = machine.handle(prevote(3, 0, Some(value(5))));
    let mut expected = vec![Action::ScheduleTimeout {
        height: H,
        round: 0,
        step: Step::Prevote,
        duration_ms: 50,
    }];
    expected.extend(our_vote(VoteType::Precommit, 0, Some(value(5)), &machine));
    assert_eq!(actions, expected);
    assert_eq!(
        machine.locked(),
        Some(&RoundValue {
            round: 0,
            value: value(5)
        })
    );
    assert_eq!(
        machine.valid(),
        Some(&RoundValue {
            round: 0,
            value: value(5)
        })
    );
    assert_eq!(machine.position(), Some((H, 0, Step::Precommit)));
    // The persisted signing state carries the lock.
    let signing_state = machine.signing_state().unwrap();
    assert_eq!(
        signing_state.locked,
        Some(RoundValue {
            round: 0,
            value: value(5)
        })
    );
}

#[test]
fn line_42_after_precommitting_nil_a_late_polka_updates_only_the_valid_value() {
    let mut machine = started();
    feed(
        &mut machine,
        [
            timeout(0, Step::Propose),
            prevote(2, 0, None),
            prevote(3, 0, Some(value(5))),
        ],
    );
    feed(&mut machine, [timeout(0, Step::Prevote)]);
    assert_eq!(machine.position(), Some((H, 0, Step::Precommit)));
    feed(
        &mut machine,
        [
            Input::Proposal(proposal(2, 0, value(5), None)),
            Input::ProposalVerdict {
                height: H,
                value: value(5),
                valid: true,
            },
        ],
    );
    let actions = machine.handle(prevote(4, 0, Some(value(5))));
    assert_eq!(actions, vec![]);
    let actions = machine.handle(prevote(2, 0, Some(value(5))));
    // Validator 2 already prevoted nil: this conflicting prevote is evidence, and, like any
    // message, it counts for its value: with 3 and 4 it makes a polka for 5.
    assert!(matches!(
        actions.as_slice(),
        [
            Action::Evidence(Evidence::ConflictingVotes { .. }),
            Action::PersistSigningState(_)
        ]
    ));
    assert_eq!(
        machine.valid(),
        Some(&RoundValue {
            round: 0,
            value: value(5)
        })
    );
    assert_eq!(machine.locked(), None);
    // The same with honest validators only.
    let mut machine = started();
    feed(
        &mut machine,
        [
            timeout(0, Step::Propose),
            prevote(2, 0, Some(value(5))),
            prevote(3, 0, Some(value(5))),
        ],
    );
    feed(&mut machine, [timeout(0, Step::Prevote)]);
    feed(
        &mut machine,
        [
            Input::Proposal(proposal(2, 0, value(5), None)),
            Input::ProposalVerdict {
                height: H,
                value: value(5),
                valid: true,
            },
        ],
    );
    let actions = machine.handle(prevote(4, 0, Some(value(5))));
    assert!(
        matches!(actions.as_slice(), [Action::PersistSigningState(_)]),
        "no precommit, step is already precommit: {actions:?}"
    );
    assert_eq!(
        machine.valid(),
        Some(&RoundValue {
            round: 0,
            value: value(5)
        })
    );
    assert_eq!(machine.locked(), None);
}

#[test]
fn line_44_precommits_nil_on_a_quorum_of_nil_prevotes() {
    let mut machine = started();
    feed(
        &mut machine,
        [timeout(0, Step::Propose), prevote(2, 0, None)],
    );
    let actions = machine.handle(prevote(3, 0, None));
    let mut expected = vec![Action::ScheduleTimeout {
        height: H,
        round: 0,
        step: Step::Prevote,
        duration_ms: 50,
    }];
    expected.extend(our_vote(VoteType::Precommit, 0, None, &machine));
    assert_eq!(actions, expected);
    assert_eq!(machine.position(), Some((H, 0, Step::Precommit)));
}

#[test]
fn line_47_schedules_the_precommit_timeout_once_on_a_quorum_of_any_precommits() {
    let mut machine = started();
    assert_eq!(
        feed(
            &mut machine,
            [precommit(2, 0, None), precommit(3, 0, Some(value(5)))]
        ),
        vec![]
    );
    let actions = machine.handle(precommit(4, 0, None));
    assert_eq!(
        actions,
        vec![Action::ScheduleTimeout {
            height: H,
            round: 0,
            step: Step::Precommit,
            duration_ms: 60
        }]
    );
    assert_eq!(
        machine.position(),
        Some((H, 0, Step::Propose)),
        "line 47 does not depend on the step"
    );
}

#[test]
fn line_49_decides_on_a_quorum_of_precommits_for_a_valid_proposal() {
    let mut machine = started();
    prevoted_for_proposal(&mut machine, value(5));
    feed(
        &mut machine,
        [
            precommit(2, 0, Some(value(5))),
            precommit(3, 0, Some(value(5))),
        ],
    );
    assert_eq!(machine.decision(), None);
    let actions = machine.handle(precommit(4, 0, Some(value(5))));
    let certificate = CommitCertificate {
        height: H,
        round: 0,
        value: value(5),
        signatures: [2u8, 3, 4]
            .iter()
            .map(|from| {
                let signed = vote(*from, VoteType::Precommit, 0, Some(value(5)));
                crate::CommitSignature {
                    validator: id(*from),
                    signature: signed.signature,
                }
            })
            .collect(),
    };
    assert_eq!(
        actions,
        vec![Action::Decide {
            certificate: certificate.clone()
        }]
    );
    assert_eq!(
        verify_commit_certificate(&certificate, &set(), CHAIN, &InsecureTestVerifier),
        Ok(())
    );
    assert_eq!(machine.decision(), Some(&certificate));
    // After the decision, the height's messages and timeouts change nothing.
    assert_eq!(
        feed(
            &mut machine,
            [prevote(2, 0, None), timeout(0, Step::Prevote)]
        ),
        vec![]
    );
}

#[test]
fn line_49_decides_in_an_earlier_round_and_waits_for_the_verdict() {
    let mut machine = started();
    // We are in round 2 already when round 0's precommits and proposal arrive.
    feed(&mut machine, [prevote(3, 2, None), prevote(4, 2, None)]);
    assert_eq!(machine.position(), Some((H, 2, Step::Propose)));
    feed(
        &mut machine,
        [
            precommit(2, 0, Some(value(5))),
            precommit(3, 0, Some(value(5))),
            precommit(4, 0, Some(value(5))),
        ],
    );
    let actions = machine.handle(Input::Proposal(proposal(2, 0, value(5), None)));
    assert_eq!(
        actions,
        vec![Action::ValidateValue {
            height: H,
            value: value(5)
        }],
        "L50: valid(v) first"
    );
    let actions = machine.handle(Input::ProposalVerdict {
        height: H,
        value: value(5),
        valid: true,
    });
    assert!(
        matches!(actions.as_slice(), [Action::Decide { certificate }] if certificate.round == 0)
    );
}

#[test]
fn line_50_never_decides_an_invalid_value() {
    let mut machine = started();
    feed(
        &mut machine,
        [
            Input::Proposal(proposal(2, 0, value(5), None)),
            Input::ProposalVerdict {
                height: H,
                value: value(5),
                valid: false,
            },
        ],
    );
    let actions = feed(
        &mut machine,
        [
            precommit(2, 0, Some(value(5))),
            precommit(3, 0, Some(value(5))),
            precommit(4, 0, Some(value(5))),
        ],
    );
    assert!(
        !actions
            .iter()
            .any(|action| matches!(action, Action::Decide { .. }))
    );
    assert_eq!(machine.decision(), None);
}

#[test]
fn line_55_skips_to_a_round_where_more_than_a_third_participate() {
    let mut machine = started();
    assert_eq!(
        machine.handle(prevote(3, 5, None)),
        vec![],
        "one validator is not f+1"
    );
    let actions = machine.handle(precommit(4, 5, None));
    // Round 5's proposer is validator (1 + 5) % 4 + 1 = 3: we schedule the propose timeout.
    assert_eq!(
        actions,
        vec![Action::ScheduleTimeout {
            height: H,
            round: 5,
            step: Step::Propose,
            duration_ms: 150
        }]
    );
    assert_eq!(machine.position(), Some((H, 5, Step::Propose)));
}

#[test]
fn line_57_propose_timeout_prevotes_nil() {
    let mut machine = started();
    let actions = machine.handle(timeout(0, Step::Propose));
    assert_eq!(actions, our_vote(VoteType::Prevote, 0, None, &machine));
    assert_eq!(machine.position(), Some((H, 0, Step::Prevote)));
    assert_eq!(
        machine.handle(timeout(0, Step::Propose)),
        vec![],
        "step is no longer propose"
    );
}

#[test]
fn line_61_prevote_timeout_precommits_nil() {
    let mut machine = started();
    feed(&mut machine, [timeout(0, Step::Propose)]);
    let actions = machine.handle(timeout(0, Step::Prevote));
    assert_eq!(actions, our_vote(VoteType::Precommit, 0, None, &machine));
    assert_eq!(machine.position(), Some((H, 0, Step::Precommit)));
}

#[test]
fn line_65_precommit_timeout_starts_the_next_round() {
    let mut machine = started();
    let actions = machine.handle(timeout(0, Step::Precommit));
    assert_eq!(
        actions,
        vec![Action::ScheduleTimeout {
            height: H,
            round: 1,
            step: Step::Propose,
            duration_ms: 110
        }]
    );
    assert_eq!(machine.position(), Some((H, 1, Step::Propose)));
    assert_eq!(
        machine.handle(timeout(0, Step::Precommit)),
        vec![],
        "a stale timeout is ignored"
    );
    assert_eq!(
        machine.handle(Input::Timeout {
            height: 9,
            round: 1,
            step: Step::Precommit
        }),
        vec![]
    );
}

#[test]
fn timeouts_grow_with_the_round_and_are_capped() {
    let config = config();
    assert_eq!(config.timeout_ms(Step::Propose, 0), 100);
    assert_eq!(config.timeout_ms(Step::Propose, 3), 130);
    assert_eq!(config.timeout_ms(Step::Prevote, 2), 60);
    assert_eq!(config.timeout_ms(Step::Precommit, 1), 66);
    assert_eq!(config.timeout_ms(Step::Precommit, 1000), 6060);
    assert_eq!(config.timeout_ms(Step::Precommit, u32::MAX), MAX_TIMEOUT_MS);
    assert_eq!(
        Config::default().timeout_ms(Step::Propose, u32::MAX),
        MAX_TIMEOUT_MS
    );
}

#[test]
fn construction_checks_the_chain_id_and_timeouts() {
    let signer = InsecureTestSigner::new(id(1));
    assert!(matches!(
        Machine::new(config(), "", signer, InsecureTestVerifier),
        Err(ConfigError::ChainIdLength {
            length_bytes: 0,
            ..
        })
    ));
    assert!(matches!(
        Machine::new(
            config(),
            "x".repeat(MAX_CHAIN_ID_BYTES + 1),
            signer,
            InsecureTestVerifier
        ),
        Err(ConfigError::ChainIdLength { .. })
    ));
    let zero = Config {
        timeout_prevote_base_ms: 0,
        ..config()
    };
    assert_eq!(
        Machine::new(zero, CHAIN, signer, InsecureTestVerifier).err(),
        Some(ConfigError::ZeroTimeout { step: "prevote" })
    );
}

#[test]
fn conflicting_votes_are_reported_once_as_evidence() {
    let mut machine = started();
    machine.handle(prevote(2, 0, Some(value(5))));
    let actions = machine.handle(prevote(2, 0, Some(value(6))));
    assert_eq!(
        actions,
        vec![Action::Evidence(Evidence::ConflictingVotes {
            first: vote(2, VoteType::Prevote, 0, Some(value(5))),
            second: vote(2, VoteType::Prevote, 0, Some(value(6))),
        })]
    );
    assert_eq!(machine.handle(prevote(2, 0, None)), vec![]);
    assert_eq!(machine.counters().equivocations, 1);
}

#[test]
fn conflicting_proposals_are_reported_once_as_evidence() {
    let mut machine = started();
    machine.handle(Input::Proposal(proposal(2, 0, value(5), None)));
    let actions = machine.handle(Input::Proposal(proposal(2, 0, value(6), None)));
    // Evidence, and the second value is a candidate too: it is checked.
    assert_eq!(
        actions,
        vec![
            Action::Evidence(Evidence::ConflictingProposals {
                first: proposal(2, 0, value(5), None),
                second: proposal(2, 0, value(6), None),
            }),
            Action::ValidateValue {
                height: H,
                value: value(6)
            },
        ]
    );
    // A third is kept as a candidate with no second evidence; a copy is a duplicate.
    assert_eq!(
        machine.handle(Input::Proposal(proposal(2, 0, value(7), None))),
        vec![Action::ValidateValue {
            height: H,
            value: value(7)
        }]
    );
    assert_eq!(
        machine.handle(Input::Proposal(proposal(2, 0, value(6), None))),
        vec![]
    );
    assert_eq!(machine.counters().equivocations, 1);
    assert_eq!(machine.counters().duplicate, 1);
}

#[test]
fn proposals_of_a_round_beyond_the_bound_are_dropped_and_counted() {
    let mut machine = started();
    for byte in 0..MAX_PROPOSALS_PER_ROUND as u8 {
        machine.handle(Input::Proposal(proposal(2, 0, value(10 + byte), None)));
    }
    assert_eq!(machine.counters().excess_proposals, 0);
    let beyond = value(10 + MAX_PROPOSALS_PER_ROUND as u8);
    assert_eq!(
        machine.handle(Input::Proposal(proposal(2, 0, beyond, None))),
        vec![]
    );
    assert_eq!(machine.counters().excess_proposals, 1);
    // The dropped one is no candidate: its precommit quorum decides nothing.
    machine.handle(Input::ProposalVerdict {
        height: H,
        value: beyond,
        valid: true,
    });
    let actions = feed(
        &mut machine,
        [2u8, 3, 4].map(|from| precommit(from, 0, Some(beyond))),
    );
    assert!(
        !actions
            .iter()
            .any(|action| matches!(action, Action::Decide { .. })),
        "{actions:?}"
    );
    assert_eq!(machine.decision(), None);
}

/// Validator 2 proposes 5 and then 6 in round 0; we receive both, 5 first, and prevote 5.
fn shown_two_proposals(machine: &mut Machine) {
    prevoted_for_proposal(machine, value(5));
    machine.handle(Input::Proposal(proposal(2, 0, value(6), None)));
    machine.handle(Input::ProposalVerdict {
        height: H,
        value: value(6),
        valid: true,
    });
}

#[test]
fn line_49_decides_the_second_proposal_of_a_round_on_its_precommits() {
    let mut machine = started();
    shown_two_proposals(&mut machine);
    feed(
        &mut machine,
        [
            precommit(2, 0, Some(value(6))),
            precommit(3, 0, Some(value(6))),
        ],
    );
    assert_eq!(machine.decision(), None);
    let actions = machine.handle(precommit(4, 0, Some(value(6))));
    let certificate = CommitCertificate {
        height: H,
        round: 0,
        value: value(6),
        signatures: [2u8, 3, 4]
            .iter()
            .map(|from| crate::CommitSignature {
                validator: id(*from),
                signature: vote(*from, VoteType::Precommit, 0, Some(value(6))).signature,
            })
            .collect(),
    };
    assert_eq!(actions, vec![Action::Decide { certificate }]);
}

#[test]
fn line_36_locks_on_the_second_proposal_of_a_round_with_the_polka() {
    let mut machine = started();
    shown_two_proposals(&mut machine);
    // Our prevote was for 5; the polka is for 6 (validators 2, 3, 4).
    feed(
        &mut machine,
        [prevote(2, 0, Some(value(6))), prevote(3, 0, Some(value(6)))],
    );
    // (The prevote timeout was scheduled on the earlier quorum of any prevotes.)
    let actions = machine.handle(prevote(4, 0, Some(value(6))));
    machine_locked_on(&machine, 0, value(6));
    assert_eq!(
        actions,
        our_vote(VoteType::Precommit, 0, Some(value(6)), &machine)
    );
    assert_eq!(machine.position(), Some((H, 0, Step::Precommit)));
}

#[test]
fn line_22_prevotes_a_later_valid_proposal_when_the_first_awaits_its_verdict() {
    let mut machine = started();
    machine.handle(Input::Proposal(proposal(2, 0, value(5), None)));
    machine.handle(Input::Proposal(proposal(2, 0, value(6), None)));
    // 5's verdict is still awaited; 6 is valid: the rule fires on 6.
    let actions = machine.handle(Input::ProposalVerdict {
        height: H,
        value: value(6),
        valid: true,
    });
    assert_eq!(
        actions,
        our_vote(VoteType::Prevote, 0, Some(value(6)), &machine)
    );
}

fn machine_locked_on(machine: &Machine, round: Round, v: Value) {
    assert_eq!(machine.locked(), Some(&RoundValue { round, value: v }));
    assert_eq!(machine.valid(), Some(&RoundValue { round, value: v }));
}

#[test]
fn bad_unknown_misplaced_and_far_messages_are_dropped_and_counted() {
    let mut machine = started();
    let mut forged = vote(2, VoteType::Prevote, 0, None);
    forged.signature.0[0] ^= 1;
    assert_eq!(machine.handle(Input::Vote(forged)), vec![]);
    assert_eq!(machine.handle(prevote(9, 0, None)), vec![]);
    assert_eq!(
        machine.handle(Input::Proposal(proposal(3, 0, value(1), None))),
        vec![]
    );
    assert_eq!(
        machine.handle(Input::Proposal(proposal(2, 0, value(1), Some(0)))),
        vec![]
    );
    assert_eq!(
        machine.handle(prevote(2, MAX_ROUND_LOOKAHEAD + 1, None)),
        vec![]
    );
    let far_height = Vote {
        vote_type: VoteType::Prevote,
        height: H + MAX_HEIGHT_LOOKAHEAD + 1,
        round: 0,
        value: None,
        validator: id(2),
    };
    let far_height = SignedVote {
        signature: InsecureTestSigner::new(id(2)).sign(&far_height.sign_bytes(CHAIN)),
        vote: far_height,
    };
    assert_eq!(machine.handle(Input::Vote(far_height)), vec![]);
    let counters = *machine.counters();
    assert_eq!(counters.bad_signature, 1);
    assert_eq!(counters.unknown_validator, 1);
    assert_eq!(counters.wrong_proposer, 1);
    assert_eq!(counters.malformed, 1);
    assert_eq!(counters.far_ahead, 2);
    assert_eq!(counters.beyond_round_window, 1);
    assert_eq!(machine.position(), Some((H, 0, Step::Propose)));
    let mut before = self::machine();
    assert_eq!(before.handle(prevote(2, 0, None)), vec![]);
    assert_eq!(before.counters().before_start, 1);
}

#[test]
fn a_duplicate_is_not_verified_again() {
    struct CountingVerifier(std::cell::Cell<u32>);
    impl SignatureVerifier for CountingVerifier {
        fn verify(&self, id: &ValidatorId, message: &[u8], signature: &crate::Signature) -> bool {
            self.0.set(self.0.get() + 1);
            InsecureTestVerifier.verify(id, message, signature)
        }
    }
    let verifier = CountingVerifier(std::cell::Cell::new(0));
    let mut machine =
        Consensus::new(config(), CHAIN, InsecureTestSigner::new(id(1)), &verifier).unwrap();
    machine.handle(Input::NewHeight {
        height: H,
        validator_set: set(),
    });
    for _ in 0..3 {
        machine.handle(prevote(2, 0, None));
    }
    assert_eq!(verifier.0.get(), 1);
    assert_eq!(machine.counters().duplicate, 2);
}

#[test]
fn future_height_messages_are_buffered_and_replayed_without_a_second_check() {
    let mut machine = started();
    let next = |from: u8, vote_type: VoteType| {
        let vote = Vote {
            vote_type,
            height: H + 1,
            round: 0,
            value: None,
            validator: id(from),
        };
        Input::Vote(SignedVote {
            signature: InsecureTestSigner::new(id(from)).sign(&vote.sign_bytes(CHAIN)),
            vote,
        })
    };
    assert_eq!(
        feed(
            &mut machine,
            [
                next(2, VoteType::Prevote),
                next(3, VoteType::Prevote),
                next(4, VoteType::Prevote)
            ]
        ),
        vec![]
    );
    // Height H+1: after our own propose timeout the buffered nil prevotes make a polka.
    let actions = machine.handle(Input::NewHeight {
        height: H + 1,
        validator_set: set(),
    });
    assert_eq!(
        actions,
        vec![Action::ScheduleTimeout {
            height: H + 1,
            round: 0,
            step: Step::Propose,
            duration_ms: 100
        }]
    );
    let actions = machine.handle(Input::Timeout {
        height: H + 1,
        round: 0,
        step: Step::Propose,
    });
    // Prevote nil, then L44 precommits nil at once.
    let broadcasts = actions
        .iter()
        .filter(|action| matches!(action, Action::BroadcastVote(_)))
        .count();
    assert_eq!(broadcasts, 2);
}

#[test]
fn the_future_buffer_is_bounded_per_validator() {
    let mut machine = started();
    let mut accepted = 0;
    for round in 0..=MAX_ROUND_LOOKAHEAD {
        for height in H + 1..=H + MAX_HEIGHT_LOOKAHEAD {
            for value_byte in 0..4u8 {
                let vote = Vote {
                    vote_type: VoteType::Prevote,
                    height,
                    round,
                    value: Some(value(value_byte)),
                    validator: id(2),
                };
                let signed = SignedVote {
                    signature: InsecureTestSigner::new(id(2)).sign(&vote.sign_bytes(CHAIN)),
                    vote,
                };
                machine.handle(Input::Vote(signed));
                accepted += 1;
            }
        }
    }
    assert!(accepted > MAX_BUFFERED_MESSAGES_PER_VALIDATOR);
    assert_eq!(
        machine.counters().buffer_full as usize,
        accepted - MAX_BUFFERED_MESSAGES_PER_VALIDATOR
    );
}

#[test]
fn a_restarted_validator_resends_its_last_vote_and_never_signs_a_conflicting_one() {
    let mut machine = started();
    prevoted_for_proposal(&mut machine, value(5));
    let persisted = machine.signing_state().cloned().unwrap();
    let mut restarted = Machine::restore(
        config(),
        CHAIN,
        InsecureTestSigner::new(id(1)),
        InsecureTestVerifier,
        persisted,
    )
    .unwrap();
    let actions = restarted.handle(Input::NewHeight {
        height: H,
        validator_set: set(),
    });
    assert_eq!(
        actions,
        vec![
            Action::ScheduleTimeout {
                height: H,
                round: 0,
                step: Step::Propose,
                duration_ms: 100
            },
            Action::BroadcastVote(vote(1, VoteType::Prevote, 0, Some(value(5)))),
        ]
    );
    assert_eq!(restarted.position(), Some((H, 0, Step::Prevote)));
    // The propose timeout would prevote nil; the step is already prevote, so nothing.
    assert_eq!(restarted.handle(timeout(0, Step::Propose)), vec![]);
    // The messages arrive again and the validator carries on where it was.
    let actions = feed(
        &mut restarted,
        [
            Input::Proposal(proposal(2, 0, value(5), None)),
            Input::ProposalVerdict {
                height: H,
                value: value(5),
                valid: true,
            },
            prevote(2, 0, Some(value(5))),
            prevote(3, 0, Some(value(5))),
        ],
    );
    assert!(actions.contains(&Action::BroadcastVote(vote(
        1,
        VoteType::Precommit,
        0,
        Some(value(5))
    ))));
}

#[test]
fn the_signing_state_logs_every_message_of_the_height() {
    let mut machine = started();
    prevoted_for_proposal(&mut machine, value(5));
    feed(
        &mut machine,
        [prevote(2, 0, Some(value(5))), prevote(3, 0, Some(value(5)))],
    );
    let persisted = machine.signing_state().cloned().unwrap();
    assert_eq!(
        persisted.signed_messages().cloned().collect::<Vec<_>>(),
        vec![
            SignedMessage::Vote(vote(1, VoteType::Prevote, 0, Some(value(5)))),
            SignedMessage::Vote(vote(1, VoteType::Precommit, 0, Some(value(5)))),
        ]
    );
    // A new height starts a new log.
    feed(
        &mut machine,
        [
            precommit(2, 0, Some(value(5))),
            precommit(3, 0, Some(value(5))),
        ],
    );
    machine.handle(Input::NewHeight {
        height: H + 1,
        validator_set: set(),
    });
    machine.handle(Input::Timeout {
        height: H + 1,
        round: 0,
        step: Step::Propose,
    });
    let persisted = machine.signing_state().cloned().unwrap();
    assert_eq!(persisted.height(), H + 1);
    assert!(persisted.signed_before.is_empty());
}

#[test]
fn the_log_keeps_a_bounded_window_of_rounds() {
    let mut machine = started();
    // Round after round of nil votes, far more rounds than the log keeps.
    let rounds = MAX_LOGGED_ROUNDS_PER_HEIGHT + 5;
    for round in 0..rounds {
        feed(
            &mut machine,
            [
                timeout(round, Step::Propose),
                prevote(2, round, None),
                prevote(3, round, None),
                precommit(2, round, None),
                precommit(3, round, None),
                timeout(round, Step::Precommit),
            ],
        );
    }
    let persisted = machine.signing_state().cloned().unwrap();
    let logged: Vec<_> = persisted.signed_messages().collect();
    assert!(logged.len() <= MAX_LOGGED_MESSAGES_PER_HEIGHT);
    let oldest = logged.iter().map(|message| message.round()).min().unwrap();
    assert_eq!(oldest, persisted.round() + 1 - MAX_LOGGED_ROUNDS_PER_HEIGHT);
}

#[test]
fn a_restart_after_a_precommit_resends_the_prevote_of_the_round_too() {
    // The stall that a log of only the last message allowed: all validators restart after
    // precommitting, and the prevotes that others need for the quorum are gone.
    let mut machine = started();
    prevoted_for_proposal(&mut machine, value(5));
    feed(
        &mut machine,
        [prevote(2, 0, Some(value(5))), prevote(3, 0, Some(value(5)))],
    );
    let persisted = machine.signing_state().cloned().unwrap();
    let mut restarted = Machine::restore(
        config(),
        CHAIN,
        InsecureTestSigner::new(id(1)),
        InsecureTestVerifier,
        persisted,
    )
    .unwrap();
    let actions = restarted.handle(Input::NewHeight {
        height: H,
        validator_set: set(),
    });
    let resent: Vec<_> = actions
        .iter()
        .filter_map(|action| match action {
            Action::BroadcastVote(vote) => Some(vote.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(
        resent,
        vec![
            vote(1, VoteType::Prevote, 0, Some(value(5))),
            vote(1, VoteType::Precommit, 0, Some(value(5))),
        ]
    );
    assert!(
        !actions
            .iter()
            .any(|action| matches!(action, Action::PersistSigningState(_)))
    );
    assert_eq!(restarted.position(), Some((H, 0, Step::Precommit)));
}

#[test]
fn a_malformed_log_is_refused_at_restore() {
    let mut machine = started();
    prevoted_for_proposal(&mut machine, value(5));
    feed(
        &mut machine,
        [prevote(2, 0, Some(value(5))), prevote(3, 0, Some(value(5)))],
    );
    let good = machine.signing_state().cloned().unwrap();
    let restore = |state: SigningState<Value>| {
        Machine::restore(
            config(),
            CHAIN,
            InsecureTestSigner::new(id(1)),
            InsecureTestVerifier,
            state,
        )
        .err()
    };
    assert_eq!(restore(good.clone()), None);
    let mut foreign = good.clone();
    foreign.signed_before = vec![SignedMessage::Vote(vote(2, VoteType::Prevote, 0, None))];
    let mut other_height = good.clone();
    let mut earlier_height = vote(1, VoteType::Prevote, 0, None);
    earlier_height.vote.height = H - 1;
    other_height.signed_before = vec![SignedMessage::Vote(earlier_height)];
    let mut out_of_order = good.clone();
    out_of_order.signed_before = vec![SignedMessage::Vote(vote(1, VoteType::Prevote, 3, None))];
    let mut too_long = good.clone();
    too_long.signed_before = (0..MAX_LOGGED_MESSAGES_PER_HEIGHT as Round)
        .map(|round| SignedMessage::Vote(vote(1, VoteType::Prevote, round, None)))
        .collect();
    for (state, expected) in [
        (foreign, "the log holds messages of another signer"),
        (other_height, "the log holds messages of another height"),
        (
            out_of_order,
            "the log's messages are not in the order they were signed",
        ),
        (
            too_long,
            "the log holds more messages than a height may keep",
        ),
    ] {
        assert_eq!(
            restore(state),
            Some(ConfigError::MalformedSigningState { reason: expected })
        );
    }
}

#[test]
fn a_restarted_validator_keeps_its_lock() {
    let mut machine = started();
    prevoted_for_proposal(&mut machine, value(5));
    feed(
        &mut machine,
        [prevote(2, 0, Some(value(5))), prevote(3, 0, Some(value(5)))],
    );
    let persisted = machine.signing_state().cloned().unwrap();
    assert_eq!(persisted.step(), Step::Precommit);
    let mut restarted = Machine::restore(
        config(),
        CHAIN,
        InsecureTestSigner::new(id(1)),
        InsecureTestVerifier,
        persisted,
    )
    .unwrap();
    restarted.handle(Input::NewHeight {
        height: H,
        validator_set: set(),
    });
    assert_eq!(
        restarted.locked(),
        Some(&RoundValue {
            round: 0,
            value: value(5)
        })
    );
    // Round 1 with another value: the lock makes it prevote nil.
    feed(&mut restarted, [prevote(3, 1, None), prevote(4, 1, None)]);
    let actions = feed(
        &mut restarted,
        [
            Input::Proposal(proposal(3, 1, value(6), None)),
            Input::ProposalVerdict {
                height: H,
                value: value(6),
                valid: true,
            },
        ],
    );
    assert!(actions.contains(&Action::BroadcastVote(vote(1, VoteType::Prevote, 1, None))));
}

#[test]
fn a_restarted_validator_keeps_the_prevotes_that_justify_its_valid_value() {
    let mut machine = started();
    prevoted_for_proposal(&mut machine, value(5));
    feed(
        &mut machine,
        [prevote(2, 0, Some(value(5))), prevote(3, 0, Some(value(5)))],
    );
    let persisted = machine.signing_state().cloned().unwrap();
    assert_eq!(persisted.valid_round_prevotes.len(), 3);
    let mut restarted = Machine::restore(
        config(),
        CHAIN,
        InsecureTestSigner::new(id(1)),
        InsecureTestVerifier,
        persisted,
    )
    .unwrap();
    restarted.handle(Input::NewHeight {
        height: H,
        validator_set: set(),
    });
    // Round 3 is ours: we re-propose 5 with valid round 0, and our own L28 finds the polka.
    let actions = feed(
        &mut restarted,
        [precommit(2, 3, None), precommit(3, 3, None)],
    );
    assert!(actions.iter().any(|action| matches!(action,
        Action::BroadcastProposal(signed) if signed.proposal.valid_round == Some(0))));
    assert!(actions.contains(&Action::BroadcastVote(vote(
        1,
        VoteType::Prevote,
        3,
        Some(value(5))
    ))));
    // And others get the polka through gossip.
    let gossip = restarted.gossip_messages();
    let polka = gossip
        .iter()
        .filter(|message| {
            matches!(message, SignedMessage::Vote(vote)
                if vote.vote.round == 0 && vote.vote.vote_type == VoteType::Prevote)
        })
        .count();
    assert_eq!(polka, 3);
}

#[test]
fn a_late_valid_value_is_persisted_without_a_new_signature() {
    let mut machine = started();
    feed(
        &mut machine,
        [
            timeout(0, Step::Propose),
            prevote(2, 0, Some(value(5))),
            prevote(3, 0, Some(value(5))),
        ],
    );
    feed(&mut machine, [timeout(0, Step::Prevote)]);
    feed(
        &mut machine,
        [
            Input::Proposal(proposal(2, 0, value(5), None)),
            Input::ProposalVerdict {
                height: H,
                value: value(5),
                valid: true,
            },
        ],
    );
    let actions = machine.handle(prevote(4, 0, Some(value(5))));
    let [Action::PersistSigningState(persisted)] = actions.as_slice() else {
        panic!("expected one persist: {actions:?}");
    };
    assert_eq!(
        persisted.valid,
        Some(RoundValue {
            round: 0,
            value: value(5)
        })
    );
    assert_eq!(persisted.valid_round_prevotes.len(), 3);
    assert_eq!(
        persisted.last_signed,
        SignedMessage::Vote(vote(1, VoteType::Precommit, 0, None))
    );
}

#[test]
fn a_restarted_proposer_sends_the_same_proposal_again() {
    let mut machine = machine();
    machine.handle(Input::NewHeight {
        height: 4,
        validator_set: set(),
    });
    let actions = machine.handle(Input::ProposeValue {
        height: 4,
        round: 0,
        value: value(7),
    });
    let Some(Action::PersistSigningState(persisted)) = actions.first().cloned() else {
        panic!("the proposal is persisted first: {actions:?}");
    };
    let mut restarted = Machine::restore(
        config(),
        CHAIN,
        InsecureTestSigner::new(id(1)),
        InsecureTestVerifier,
        persisted,
    )
    .unwrap();
    let actions = restarted.handle(Input::NewHeight {
        height: 4,
        validator_set: set(),
    });
    assert!(
        matches!(actions.first(), Some(Action::BroadcastProposal(signed)) if signed.proposal.value == value(7))
    );
    assert!(
        !actions
            .iter()
            .any(|action| matches!(action, Action::RequestValue { .. }))
    );
}

#[test]
fn a_validator_ahead_of_its_ledger_signs_nothing_for_older_slots() {
    let mut machine = started();
    prevoted_for_proposal(&mut machine, value(5));
    let mut persisted = machine.signing_state().cloned().unwrap();
    if let SignedMessage::Vote(vote) = &mut persisted.last_signed {
        vote.vote.round = 7;
    }
    let mut restarted = Machine::restore(
        config(),
        CHAIN,
        InsecureTestSigner::new(id(1)),
        InsecureTestVerifier,
        persisted,
    )
    .unwrap();
    restarted.handle(Input::NewHeight {
        height: H,
        validator_set: set(),
    });
    assert_eq!(restarted.position().map(|(_, round, _)| round), Some(7));
    let other = Machine::restore(
        config(),
        CHAIN,
        InsecureTestSigner::new(id(2)),
        InsecureTestVerifier,
        machine.signing_state().cloned().unwrap(),
    );
    assert!(matches!(
        other,
        Err(ConfigError::ForeignSigningState { .. })
    ));
}

#[test]
fn a_commit_certificate_from_block_sync_decides_the_height() {
    let mut machine = started();
    let signatures = [2u8, 3, 4]
        .iter()
        .map(|from| crate::CommitSignature {
            validator: id(*from),
            signature: vote(*from, VoteType::Precommit, 3, Some(value(9))).signature,
        })
        .collect::<Vec<_>>();
    let certificate = CommitCertificate {
        height: H,
        round: 3,
        value: value(9),
        signatures,
    };
    let mut bad = certificate.clone();
    bad.signatures.truncate(2);
    assert_eq!(machine.handle(Input::CommitCertificate(bad)), vec![]);
    assert_eq!(machine.counters().bad_certificates, 1);
    assert_eq!(
        machine.handle(Input::CommitCertificate(certificate.clone())),
        vec![Action::Decide {
            certificate: certificate.clone()
        }]
    );
    assert_eq!(machine.decision(), Some(&certificate));
}

#[test]
fn an_observer_follows_without_signing() {
    let mut observer: Machine = Consensus::new(
        config(),
        CHAIN,
        InsecureTestSigner::new(id(9)),
        InsecureTestVerifier,
    )
    .unwrap();
    observer.handle(Input::NewHeight {
        height: H,
        validator_set: set(),
    });
    let actions = feed(
        &mut observer,
        [
            Input::Proposal(proposal(2, 0, value(5), None)),
            Input::ProposalVerdict {
                height: H,
                value: value(5),
                valid: true,
            },
            precommit(2, 0, Some(value(5))),
            precommit(3, 0, Some(value(5))),
            precommit(4, 0, Some(value(5))),
        ],
    );
    assert!(actions.iter().all(|action| !matches!(
        action,
        Action::BroadcastVote(_) | Action::PersistSigningState(_)
    )));
    assert!(observer.decision().is_some());
}

#[test]
fn gossip_messages_cover_the_current_and_previous_round() {
    let mut machine = started();
    feed(
        &mut machine,
        [
            prevote(2, 0, None),
            Input::Proposal(proposal(2, 0, value(5), None)),
        ],
    );
    assert_eq!(machine.gossip_messages().len(), 2);
    feed(
        &mut machine,
        [timeout(0, Step::Precommit), prevote(3, 1, None)],
    );
    assert_eq!(machine.gossip_messages().len(), 3);
}

#[test]
fn an_equivocator_beyond_the_vote_limit_costs_no_signature_check() {
    struct CountingVerifier(std::cell::Cell<u32>);
    impl SignatureVerifier for CountingVerifier {
        fn verify(&self, id: &ValidatorId, message: &[u8], signature: &crate::Signature) -> bool {
            self.0.set(self.0.get() + 1);
            InsecureTestVerifier.verify(id, message, signature)
        }
    }
    let verifier = CountingVerifier(std::cell::Cell::new(0));
    let mut machine: Consensus<Value, _, _> =
        Consensus::new(config(), CHAIN, InsecureTestSigner::new(id(1)), &verifier).unwrap();
    machine.handle(Input::NewHeight {
        height: H,
        validator_set: set(),
    });
    let votes = (0..MAX_VOTES_PER_VALIDATOR_PER_STEP as u8 + 3)
        .map(|byte| prevote(2, 0, Some(value(byte))));
    let actions: Vec<Action<Value>> = votes.flat_map(|input| machine.handle(input)).collect();
    assert_eq!(
        actions
            .iter()
            .filter(|action| matches!(action, Action::Evidence(_)))
            .count(),
        1
    );
    assert_eq!(verifier.0.get() as usize, MAX_VOTES_PER_VALIDATOR_PER_STEP);
    assert_eq!(machine.counters().duplicate, 3);
}
