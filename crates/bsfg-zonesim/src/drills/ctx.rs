//! What a running drill has at hand: its clock, events and checks, the
//! expected outcome, the load and the checker, and the ways to wait.

use super::checker::{self, Checker, Sample};
use super::metrics;
use super::outcome::{Check, Outcome};
use super::{power, replication};
use crate::load::{self, Load, LoadLog};
use crate::observe::jsz::Placement;
use crate::report::Event;
use crate::zone::peer::PeerNode;
use std::time::{Duration, Instant};

/// What a running drill has at hand.
pub struct Ctx {
    pub epoch: Instant,
    pub events: Vec<Event>,
    pub checks: Vec<Check>,
    pub fault_at: Option<Duration>,
    pub fault_unix_ms: Option<i64>,
    /// When the (last) fault ended: the recovery time counts from here.
    pub fault_end: Option<Duration>,
    /// From when no sample may show the lease held by a host without the VIP.
    pub lease_watch_from: Option<Duration>,
    /// Where the VIP and the controller should go (for the timing metrics).
    pub target: Option<String>,
    pub expected: Outcome,
    /// Ids acknowledged outside the load generator (the drill's own appends).
    pub extra_acked: Vec<String>,
    pub placement_before: Option<Placement>,
    /// The peer zone node of a replication drill.
    pub peer: Option<PeerNode>,
    /// What a replication drill saw in the controllers' `/status`.
    pub replication: replication::Observed,
    /// What a power-loss drill measured.
    pub power: Option<power::PowerReport>,
    /// Lost acknowledged appends are the drill's figure, not a failure
    /// (the standard tier's correlated power loss).
    pub loss_tolerated: bool,
    /// `zone-restore`: the snapshot and the offsets before the destruction.
    pub restore: Option<super::restore::RestoreRecord>,
    pub(super) checker: Option<Checker>,
    pub(super) load: Option<Load>,
    /// The load's log once a drill stopped it itself ([`Ctx::stop_load`]).
    pub(super) load_log: Option<LoadLog>,
}

impl Ctx {
    /// A drill about to start: nothing recorded, no load or checker yet.
    pub fn new(epoch: Instant) -> Ctx {
        Ctx {
            epoch,
            events: Vec::new(),
            checks: Vec::new(),
            fault_at: None,
            fault_unix_ms: None,
            fault_end: None,
            lease_watch_from: None,
            target: None,
            expected: Outcome::default(),
            extra_acked: Vec::new(),
            placement_before: None,
            peer: None,
            replication: Default::default(),
            power: None,
            loss_tolerated: false,
            restore: None,
            checker: None,
            load: None,
            load_log: None,
        }
    }

    pub(super) fn now(&self) -> Duration {
        self.epoch.elapsed()
    }

    pub fn event(&mut self, what: impl Into<String>) {
        self.events.push(Event {
            at_s: metrics::ms(self.now().as_secs_f64()),
            what: what.into(),
        });
    }

    /// Marks the fault (the first one counts for the timing metrics).
    pub fn fault(&mut self, what: impl Into<String>) {
        if self.fault_at.is_none() {
            self.fault_at = Some(self.now());
            self.fault_unix_ms = Some(bsfg_core::clock::unix_ms());
        }
        self.event(what);
    }

    /// Marks the end of the fault (the latest call counts): the report's
    /// recovery time runs from here to the first acknowledgement after it.
    pub fn fault_ended(&mut self, what: impl Into<String>) {
        self.fault_end = Some(self.now());
        self.event(what);
    }

    pub fn check(&mut self, name: &str, passed: bool, detail: impl Into<String>) -> bool {
        self.checks.push(Check {
            name: name.to_owned(),
            passed,
            detail: detail.into(),
        });
        passed
    }

    /// The checker's latest sample.
    pub fn sample(&self) -> Option<Sample> {
        self.checker.as_ref().and_then(Checker::last)
    }

    /// The checker's samples, for conditions.
    pub fn samples(&self) -> checker::SampleView {
        self.checker.as_ref().expect("the checker runs").view()
    }

    /// The load's log, for conditions.
    pub fn loads(&self) -> load::LoadView {
        self.load.as_ref().expect("the load runs").view()
    }

    pub fn elapsed(&self) -> Duration {
        self.now()
    }

    /// Stops the producers before the drill ends (in-flight facts get 30 s
    /// to be acknowledged, as at the end of any drill); the report uses
    /// this log. The checker keeps running.
    pub async fn stop_load(&mut self) {
        if let Some(load) = self.load.take() {
            self.load_log = Some(load.stop(Duration::from_secs(30)).await);
        }
    }

    pub fn acked(&self) -> usize {
        self.load.as_ref().map_or(0, Load::acked)
    }

    /// Acknowledgements whose attempt was sent after `t`.
    pub fn acked_after(&self, t: Duration) -> usize {
        self.load.as_ref().map_or(0, |l| {
            l.snapshot().acks.iter().filter(|a| a.last_try >= t).count()
        })
    }

    /// Polls `cond` (every 100 ms) until it yields a detail; records a check.
    pub async fn wait_for<F, Fut>(&mut self, name: &str, timeout: Duration, mut cond: F) -> bool
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Option<String>>,
    {
        let start = self.now();
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(detail) = cond().await {
                let took = (self.now() - start).as_secs_f64();
                return self.check(name, true, format!("{detail} (after {took:.1} s)"));
            }
            if Instant::now() > deadline {
                return self.check(name, false, format!("not within {timeout:?}"));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// `cond` must hold at every poll (every 200 ms) for `duration`; it
    /// returns `Err(what is wrong)` to break. Records a check.
    pub async fn hold<F, Fut>(&mut self, name: &str, duration: Duration, mut cond: F) -> bool
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Result<(), String>>,
    {
        let deadline = Instant::now() + duration;
        let mut polls = 0;
        while Instant::now() < deadline {
            if let Err(why) = cond().await {
                return self.check(name, false, why);
            }
            polls += 1;
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        self.check(name, true, format!("held for {duration:?} ({polls} polls)"))
    }

    /// Waits until `n` appends sent after now are acknowledged.
    pub async fn wait_acks(&mut self, name: &str, n: usize, timeout: Duration) -> bool {
        let from = self.now();
        let deadline = Instant::now() + timeout;
        loop {
            let got = self.acked_after(from);
            if got >= n {
                return self.check(name, true, format!("{got} appends acknowledged"));
            }
            if Instant::now() > deadline {
                return self.check(
                    name,
                    false,
                    format!("only {got} of {n} appends acknowledged within {timeout:?}"),
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

pub(super) fn contract(row: &str) -> String {
    format!("contract section 8: {row}")
}

pub(super) fn hosts(v: &[&str]) -> Option<Vec<String>> {
    Some(v.iter().map(|s| (*s).to_owned()).collect())
}
