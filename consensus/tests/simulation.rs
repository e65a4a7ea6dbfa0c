//! The deterministic simulation: every scenario of `Scenario::all()` over many seeds, each
//! run checking agreement, validity, that no correct validator signs conflicting messages,
//! and liveness after GST (see `hutong_consensus::sim`).
//!
//! `cargo test` runs `DEFAULT_SEEDS` seeds per scenario. For more:
//! `HUTONG_SIM_SEEDS=10000 cargo test -p hutong-consensus --release --test simulation`
//! (per scenario; `HUTONG_SIM_BASE_SEED` starts elsewhere), or the ignored `many_seeds`
//! test. A failure prints its seed and the command that replays it (the `replay` test).

use std::time::Instant;

use hutong_consensus::sim::{self, Failure, Report, Scenario};

/// Seeds per scenario in a plain `cargo test`.
const DEFAULT_SEEDS: u64 = 300;

/// Seeds per scenario in the ignored `many_seeds` test.
const MANY_SEEDS: u64 = 10_000;

fn env_number(name: &str) -> Option<u64> {
    std::env::var(name)
        .ok()
        .and_then(|text| text.trim().parse().ok())
}

fn run_seeds(scenario: &Scenario, first_seed: u64, count: u64) -> Result<Report, Failure> {
    let mut summary = Report::default();
    for seed in first_seed..first_seed + count {
        let report = sim::run(scenario, seed)?;
        summary.max_decision_round = summary.max_decision_round.max(report.max_decision_round);
        summary.max_decision_round_after_gst = summary
            .max_decision_round_after_gst
            .max(report.max_decision_round_after_gst);
        summary.heights_decided += report.heights_decided;
        summary.messages_delivered += report.messages_delivered;
        summary.evidence_recorded += report.evidence_recorded;
        summary.crashes += report.crashes;
        summary.events += report.events;
        summary.revived_polkas += report.revived_polkas;
        summary.decisions_on_later_proposal += report.decisions_on_later_proposal;
        for (total, count) in summary
            .site_crashes_by_step
            .iter_mut()
            .zip(report.site_crashes_by_step)
        {
            *total += count;
        }
    }
    Ok(summary)
}

fn check_scenario(name: &str, default_seeds: u64) -> Report {
    let scenario = Scenario::named(name).unwrap_or_else(|| panic!("no scenario called {name}"));
    let count = env_number("HUTONG_SIM_SEEDS").unwrap_or(default_seeds);
    let first_seed = env_number("HUTONG_SIM_BASE_SEED").unwrap_or(0);
    let started = Instant::now();
    match run_seeds(&scenario, first_seed, count) {
        Ok(summary) => {
            eprintln!(
                "{name}: seeds {first_seed}..{} passed in {:.2} s: {} heights decided, {} messages delivered, \
                 {} evidence, {} crashes, site-wide crashes by step (propose, prevote, precommit) {:?}, \
                 highest decision round {}, most rounds after GST {}, decisions on a later proposal {}",
                first_seed + count,
                started.elapsed().as_secs_f64(),
                summary.heights_decided,
                summary.messages_delivered,
                summary.evidence_recorded,
                summary.crashes,
                summary.site_crashes_by_step,
                summary.max_decision_round,
                summary.max_decision_round_after_gst,
                summary.decisions_on_later_proposal
            );
            summary
        }
        Err(failure) => panic!("{failure}"),
    }
}

macro_rules! scenario_tests {
    ($($test:ident => $name:literal),* $(,)?) => {
        $(
            #[test]
            fn $test() {
                check_scenario($name, DEFAULT_SEEDS);
            }
        )*

        #[test]
        fn every_scenario_has_a_test() {
            let tested = [$($name),*];
            for scenario in Scenario::all().into_iter().chain(Scenario::adversaries()) {
                assert!(tested.contains(&scenario.name), "scenario {} has no test", scenario.name);
            }
        }
    };
}

scenario_tests! {
    healthy_4 => "healthy-4",
    healthy_10 => "healthy-10",
    lossy_7 => "lossy-7",
    partitions_7 => "partitions-7",
    crashes_4 => "crashes-4",
    crashes_partitions_7 => "crashes-partitions-7",
    equivocators_4 => "equivocators-4",
    equivocators_7 => "equivocators-7",
    equivocators_10 => "equivocators-10",
    silent_7 => "silent-7",
    invalid_values_10 => "invalid-values-10",
    everything_10 => "everything-10",
    weighted_7 => "weighted-7",
    site_restarts_4 => "site-restarts-4",
    site_restarts_7 => "site-restarts-7",
    split_votes_4 => "split-votes-4",
    split_votes_7 => "split-votes-7",
    split_votes_weighted_7 => "split-votes-weighted-7",
    hidden_lock_4 => "hidden-lock-4",
    hidden_lock_7 => "hidden-lock-7",
    amnesia_4 => "amnesia-4",
    forged_valid_round_4 => "forged-valid-round-4",
    forged_valid_round_7 => "forged-valid-round-7",
    future_rounds_weighted_7 => "future-rounds-weighted-7",
    equivocating_proposer_4 => "equivocating-proposer-4",
    outsiders_4 => "outsiders-4",
    split_votes_restarts_4 => "split-votes-restarts-4",
    revived_polka_4 => "revived-polka-4",
    revived_polka_7 => "revived-polka-7",
}

/// The revived-polka adversary reaches its third step in most runs: a correct validator has
/// decided v and the others, locked on v, are offered the round-0 value with its polka. A
/// run where it never gets there would pass without testing line 29.
#[test]
fn the_revived_polka_is_offered_to_locked_validators() {
    for name in ["revived-polka-4", "revived-polka-7"] {
        let scenario = Scenario::named(name).expect("the scenario exists");
        let seeds = 50;
        let offered = (0..seeds)
            .filter(|seed| {
                sim::run(&scenario, *seed)
                    .unwrap_or_else(|failure| panic!("{failure}"))
                    .revived_polkas
                    > 0
            })
            .count();
        eprintln!("{name}: the revived polka offered in {offered} of {seeds} seeds");
        assert!(
            offered * 2 > seeds as usize,
            "{name}: offered in {offered} of {seeds} seeds"
        );
    }
}

/// Seeds a negative control may take to show its violation.
const CONTROL_SEEDS: u64 = 300;

/// The checks are not blind: each adversary with f + 1 Byzantine of 3f + 1 breaks safety or
/// liveness in some seed, and the simulation reports it.
#[test]
fn negative_controls_find_violations() {
    let mut blind = Vec::new();
    for scenario in Scenario::controls() {
        match (0..CONTROL_SEEDS).find_map(|seed| sim::run(&scenario, seed).err()) {
            Some(failure) => eprintln!(
                "{}: violation found at seed {}, as it should be: {}",
                scenario.name,
                failure.seed,
                failure.violation.lines().next().unwrap_or_default()
            ),
            None => {
                eprintln!(
                    "{}: no violation in {CONTROL_SEEDS} seeds with f + 1 Byzantine",
                    scenario.name
                );
                blind.push(scenario.name);
            }
        }
    }
    assert!(blind.is_empty(), "the checks miss: {blind:?}");
}

/// Site-wide restarts catch validators at every step.
#[test]
fn site_restarts_hit_every_step() {
    let summary = check_scenario("site-restarts-4", 100);
    assert!(
        summary.site_crashes_by_step.iter().all(|count| *count > 0),
        "site-wide crashes by step: {:?}",
        summary.site_crashes_by_step
    );
}

/// The larger networks of `Scenario::scale()` (7, 16, 31, 64 validators), for the figures
/// in docs/consensus.md: `cargo test -p hutong-consensus --release --test simulation scale
/// -- --ignored --nocapture` (`HUTONG_SIM_SEEDS` sets the seeds per size, 20 by default).
#[test]
#[ignore]
fn scale() {
    for scenario in Scenario::scale() {
        check_scenario(scenario.name, 20);
    }
}

/// Thousands of seeds per scenario:
/// `cargo test -p hutong-consensus --release --test simulation many_seeds -- --ignored`.
#[test]
#[ignore]
fn many_seeds() {
    for scenario in Scenario::all().into_iter().chain(Scenario::adversaries()) {
        check_scenario(scenario.name, MANY_SEEDS);
    }
}

/// Replays one seed: `HUTONG_SIM_SCENARIO=<name> HUTONG_SIM_SEED=<seed>`, and with
/// `HUTONG_SIM_TRACE=1` prints every input and the actions it caused. Without them it does
/// nothing.
#[test]
fn replay() {
    let (Ok(name), Some(seed)) = (
        std::env::var("HUTONG_SIM_SCENARIO"),
        env_number("HUTONG_SIM_SEED"),
    ) else {
        return;
    };
    let scenario = Scenario::named(&name).unwrap_or_else(|| panic!("no scenario called {name}"));
    let mut simulation = sim::Simulation::new(scenario, seed, sim::InsecureKeys).unwrap();
    simulation.set_trace(env_number("HUTONG_SIM_TRACE").is_some_and(|trace| trace > 0));
    match simulation.run() {
        Ok(report) => eprintln!("{name} seed {seed} passed: {report:?}"),
        Err(failure) => panic!("{failure}"),
    }
}

/// The checks can fail: with every correct validator ignoring its lock, some seed forks,
/// and the simulation reports the agreement violation with its seed.
#[test]
fn a_validator_that_ignores_its_lock_is_caught_forking() {
    let scenario = Scenario::broken_lock();
    let found = (0..400).find_map(|seed| sim::run(&scenario, seed).err());
    let failure = found.expect("no fork in 400 seeds of a protocol without locks");
    eprintln!("caught, as it should be:\n{failure}");
    assert!(
        failure.violation.starts_with("agreement violated"),
        "{failure}"
    );
    assert!(
        failure
            .to_string()
            .contains("HUTONG_SIM_SCENARIO=broken-lock-4")
    );
    // The same seed fails the same way: the run is deterministic.
    assert_eq!(sim::run(&scenario, failure.seed).err(), Some(failure));
}

#[test]
fn runs_are_deterministic() {
    let scenario = Scenario::named("everything-10").unwrap();
    for seed in [3, 17] {
        assert_eq!(sim::run(&scenario, seed), sim::run(&scenario, seed));
    }
}

/// Line 49 for any proposal: an equivocating proposer's proposal that a correct validator
/// received after another one of the same round gets the precommit quorum, and that validator
/// decides it by its own rules (not by block sync). With only the first proposal of a round
/// kept, no seed would show this.
#[test]
fn a_later_conflicting_proposal_with_the_precommits_is_decided() {
    let scenario = Scenario::named("equivocating-proposer-4").expect("the scenario exists");
    let found = (0..300).find(|seed| {
        sim::run(&scenario, *seed)
            .unwrap_or_else(|failure| panic!("{failure}"))
            .decisions_on_later_proposal
            > 0
    });
    let seed = found.expect("no decision on a later proposal in 300 seeds");
    eprintln!("equivocating-proposer-4 seed {seed}: a later proposal decided by line 49");
}
