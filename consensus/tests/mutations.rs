//! Mutation testing: each seeded bug of `hutong_consensus::Mutant` must be caught by the
//! simulation within the default seed budget, or the simulation is not checking what it
//! claims. Needs the `mutants` feature (test-only): `scripts/mutations`, or
//! `cargo test -p hutong-consensus --release --features mutants --test mutations -- --nocapture`.
//!
//! `HUTONG_MUTANT=<name>` runs one mutant; `HUTONG_MUTANTS_SKIP=<name>,<name>` leaves some out;
//! `HUTONG_MUTATION_SEEDS` sets the budget (seeds per scenario, `SEEDS` by default).

use std::time::Instant;

use hutong_consensus::Mutant;
use hutong_consensus::sim::{self, Failure, Scenario};

/// Seeds per scenario a mutant may survive before the test fails: the default simulation
/// budget of `tests/simulation.rs`.
const SEEDS: u64 = 300;

fn env_number(name: &str) -> Option<u64> {
    std::env::var(name)
        .ok()
        .and_then(|text| text.trim().parse().ok())
}

/// Runs every scenario (the default ones and the adversaries) seed by seed with `mutant`
/// until one fails; returns the failure and how many runs it took.
fn hunt(mutant: Mutant, seeds: u64) -> Option<(Failure, u64)> {
    let scenarios: Vec<Scenario> = Scenario::adversaries()
        .into_iter()
        .chain(Scenario::all())
        .collect();
    let mut runs = 0;
    for seed in 0..seeds {
        for scenario in &scenarios {
            runs += 1;
            let mut simulation = sim::Simulation::new(scenario.clone(), seed, sim::InsecureKeys)
                .expect("the scenario sets up");
            simulation.set_mutant(mutant);
            if let Err(failure) = simulation.run() {
                return Some((failure, runs));
            }
        }
    }
    None
}

#[test]
fn every_mutant_is_caught() {
    let seeds = env_number("HUTONG_MUTATION_SEEDS").unwrap_or(SEEDS);
    let only = std::env::var("HUTONG_MUTANT").ok();
    let skipped = std::env::var("HUTONG_MUTANTS_SKIP").unwrap_or_default();
    let skipped: Vec<&str> = skipped
        .split(',')
        .map(str::trim)
        .filter(|name| !name.is_empty())
        .collect();
    for name in &skipped {
        assert!(Mutant::named(name).is_some(), "no mutant called {name}");
    }
    let mut survivors = Vec::new();
    for mutant in Mutant::ALL {
        if only.as_deref().is_some_and(|name| name != mutant.name()) {
            continue;
        }
        if skipped.contains(&mutant.name()) {
            eprintln!("{}: skipped", mutant.name());
            continue;
        }
        let started = Instant::now();
        match hunt(mutant, seeds) {
            Some((failure, runs)) => eprintln!(
                "{}: caught after {runs} runs ({:.1} s) by {} seed {}: {}",
                mutant.name(),
                started.elapsed().as_secs_f64(),
                failure.scenario,
                failure.seed,
                failure.violation.lines().next().unwrap_or_default()
            ),
            None => {
                eprintln!(
                    "{}: SURVIVED {seeds} seeds of every scenario",
                    mutant.name()
                );
                survivors.push(mutant.name());
            }
        }
    }
    assert!(
        only.as_deref()
            .is_none_or(|name| Mutant::named(name).is_some()),
        "no mutant called {only:?}"
    );
    assert!(survivors.is_empty(), "mutants survived: {survivors:?}");
}
