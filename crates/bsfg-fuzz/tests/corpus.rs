//! The committed corpus and every minimised crash, replayed on each test run:
//! a crash `scripts/fuzz` found stays fixed.
//!
//! `corpus/<target>/`: the seeds (both accepted and rejected inputs);
//! `regressions/<target>/`: minimised crashes, each a test case forever.
//! `BSFG_FUZZ_BLESS=1` rewrites the seeds (needs nix-instantiate; run this
//! test alone: `-E 'test(seeds_are_in_the_corpus)'`).

use bsfg_fuzz::{Outcome, TARGETS, check, seeds};
use std::path::{Path, PathBuf};

fn crate_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn files(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|d| d.map(|e| e.unwrap().path()).collect())
        .unwrap_or_default();
    v.retain(|p| p.is_file());
    v.sort();
    v
}

#[test]
fn seeds_are_in_the_corpus() {
    let mut all = seeds::static_seeds();
    if std::env::var_os("BSFG_FUZZ_BLESS").is_some() {
        let repo = crate_dir().join("../..");
        all.extend(seeds::zone_library_seeds(&repo).expect("the zone library renders"));
        for s in &all {
            let dir = crate_dir().join("corpus").join(s.target);
            std::fs::create_dir_all(&dir).unwrap();
            std::fs::write(dir.join(&s.name), &s.bytes).unwrap();
        }
    }
    for s in &all {
        let path = crate_dir().join("corpus").join(s.target).join(&s.name);
        // Present, not byte-equal: protobuf maps encode in hash order.
        assert!(
            path.is_file(),
            "{} is missing; run with BSFG_FUZZ_BLESS=1",
            path.display()
        );
    }
}

#[test]
fn every_target_corpus_reaches_acceptance_and_rejection() {
    for t in TARGETS {
        let corpus = files(&crate_dir().join("corpus").join(t.name));
        assert!(!corpus.is_empty(), "target {} has no corpus", t.name);
        let outcomes: Vec<Outcome> = corpus
            .iter()
            .map(|p| check(t, &std::fs::read(p).unwrap()))
            .collect();
        for want in [Outcome::Accepted, Outcome::Rejected] {
            assert!(
                outcomes.contains(&want),
                "no input of corpus/{} is {want:?}",
                t.name
            );
        }
    }
}

#[test]
fn minimised_crashes_stay_fixed() {
    let mut replayed = 0;
    for t in TARGETS {
        for p in files(&crate_dir().join("regressions").join(t.name)) {
            let input = std::fs::read(&p).unwrap();
            let outcome = std::panic::catch_unwind(|| check(t, &input));
            assert!(outcome.is_ok(), "{} fails again", p.display());
            replayed += 1;
        }
    }
    eprintln!("{replayed} regression inputs replayed");
}
