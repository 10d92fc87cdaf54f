//! The lease state machine against a timeline model: two controllers and
//! one compare-and-swap key, with writes that are delayed, lost, or land
//! while their acknowledgement is lost, and reads at arbitrary moments.
//! Whatever the schedule, at no instant do both serve, and whoever serves
//! holds the key.

use bsfg_core::lease::{LeaseAction, LeaseRecord, LeaseState, LeaseTiming, Observation};
use proptest::prelude::*;
use std::time::Duration;

const T: LeaseTiming = LeaseTiming {
    ttl: Duration::from_millis(1000),
    renew_interval: Duration::from_millis(200),
    safety_margin: Duration::from_millis(250),
};

/// The KV key: its revision and the record under it (`None`: deleted or never written).
#[derive(Debug, Default)]
struct Key {
    revision: u64,
    record: Option<LeaseRecord>,
}

impl Key {
    fn observe(&self) -> Observation {
        match &self.record {
            Some(r) => Observation::Held {
                record: r.clone(),
                revision: self.revision,
            },
            None => Observation::Vacant {
                revision: (self.revision > 0).then_some(self.revision),
            },
        }
    }

    /// `expected`: `None` is create (only if the key was never written or is deleted
    /// with no revision, as JetStream's create), else CAS on that revision.
    fn write(&mut self, expected: Option<u64>, record: LeaseRecord) -> Option<u64> {
        let ok = match expected {
            None => self.revision == 0,
            Some(r) => r == self.revision,
        };
        ok.then(|| {
            self.revision += 1;
            self.record = Some(record);
            self.revision
        })
    }

    fn delete(&mut self, expected: u64) {
        if expected == self.revision {
            self.revision += 1;
            self.record = None;
        }
    }
}

/// How the network treats one write.
#[derive(Debug, Clone, Copy)]
enum Fate {
    /// Lands, and the writer hears so.
    Acknowledged,
    /// Lands, but the writer hears nothing (timeout).
    AckLost,
    /// Never lands; the writer hears nothing.
    Dropped,
}

#[derive(Debug)]
struct InFlight {
    sent_at: Duration,
    lands_at: Duration,
    expected: Option<u64>,
    fate: Fate,
}

#[derive(Debug, Clone, Copy)]
enum Step {
    /// Time passes.
    Wait(u64),
    /// Node reads the key.
    Observe(usize),
    /// Node acts on its `next_action`; a write takes `delay` ms and meets `fate`.
    Act { node: usize, delay: u64, fate: u8 },
    /// Node releases the lease (planned switchover).
    Release(usize),
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        3 => (1u64..400).prop_map(Step::Wait),
        3 => (0usize..2).prop_map(Step::Observe),
        4 => (0usize..2, 0u64..600, 0u8..6).prop_map(|(node, delay, fate)| Step::Act { node, delay, fate }),
        1 => (0usize..2).prop_map(Step::Release),
    ]
}

struct World {
    now: Duration,
    key: Key,
    nodes: [LeaseState; 2],
    in_flight: [Option<InFlight>; 2],
}

impl World {
    /// Lands every write due by `self.now`, in landing order.
    fn land(&mut self) {
        loop {
            let due = (0..2)
                .filter(|&i| {
                    self.in_flight[i]
                        .as_ref()
                        .is_some_and(|w| w.lands_at <= self.now)
                })
                .min_by_key(|&i| self.in_flight[i].as_ref().map(|w| w.lands_at));
            let Some(i) = due else { return };
            let w = self.in_flight[i].take().expect("due");
            if matches!(w.fate, Fate::Dropped) {
                self.nodes[i].write_failed();
                continue;
            }
            let record = self.nodes[i].record(0);
            match (self.key.write(w.expected, record), w.fate) {
                (Some(rev), Fate::Acknowledged) => self.nodes[i].write_succeeded(w.sent_at, rev),
                (None, Fate::Acknowledged) => self.nodes[i].write_conflicted(),
                _ => self.nodes[i].write_failed(),
            }
        }
    }

    fn check(&self) -> Result<(), TestCaseError> {
        let serving: Vec<usize> = (0..2)
            .filter(|&i| self.nodes[i].is_serving(self.now))
            .collect();
        prop_assert!(
            serving.len() <= 1,
            "both serve at {:?}: {:?}",
            self.now,
            self.key
        );
        for i in serving {
            let holder = self.key.record.as_ref().map(|r| (&r.host, &r.instance));
            prop_assert_eq!(
                holder,
                Some((
                    &self.nodes[i].host().to_owned(),
                    &self.nodes[i].instance().to_owned()
                )),
                "node {} serves without holding the key at {:?}",
                i,
                self.now
            );
        }
        Ok(())
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn never_two_writers_and_the_writer_holds_the_key(steps in prop::collection::vec(step(), 1..200)) {
        let mut w = World {
            now: Duration::ZERO,
            key: Key::default(),
            nodes: [
                LeaseState::new("alpha", "a-1", T),
                LeaseState::new("beta", "b-1", T),
            ],
            in_flight: [None, None],
        };
        for s in steps {
            match s {
                Step::Wait(ms) => {
                    // Land and check at every millisecond boundary a write or a fence may fall on.
                    for _ in 0..ms {
                        w.now += Duration::from_millis(1);
                        w.land();
                        w.check()?;
                    }
                }
                Step::Observe(i) => {
                    let obs = w.key.observe();
                    w.nodes[i].observe(w.now, obs);
                }
                Step::Act { node, delay, fate } => {
                    if w.in_flight[node].is_some() {
                        continue;
                    }
                    let expected = match w.nodes[node].next_action(w.now) {
                        LeaseAction::Acquire { expected_revision } => expected_revision,
                        LeaseAction::Renew { revision } => Some(revision),
                        LeaseAction::Wait { .. } | LeaseAction::Hold => continue,
                    };
                    w.nodes[node].write_sent(w.now);
                    w.in_flight[node] = Some(InFlight {
                        sent_at: w.now,
                        lands_at: w.now + Duration::from_millis(delay),
                        expected,
                        fate: match fate {
                            0..=3 => Fate::Acknowledged,
                            4 => Fate::AckLost,
                            _ => Fate::Dropped,
                        },
                    });
                }
                Step::Release(i) => {
                    if let Some(rev) = w.nodes[i].release() {
                        w.key.delete(rev);
                    }
                }
            }
            w.land();
            w.check()?;
        }
    }
}
