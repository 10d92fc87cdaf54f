//! The checker: every ~50 ms it asks every host, from inside that host's
//! namespace, whether it holds the VIP and (Alpha, Beta) whether its
//! controller serves (`/readyz` 200). One sample holds all hosts' answers
//! to the same tick, so two controllers serving at once show up in one
//! sample. Probing from inside each host keeps a partition from hiding a
//! controller that still serves on the wrong side of it. Drills about the
//! lease also read the lease key at each tick ([`LeaseWatch`]), so a sample
//! shows who holds it next to who holds the VIP.

use crate::netns::runtime::NetnsRuntime;
use crate::observe::lease::{LeaseSample, LeaseWatch};
use crate::observe::{self, Readiness};
use crate::zone::Zone;
use anyhow::Result;
use serde::Serialize;
use std::collections::BTreeMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

pub const INTERVAL: Duration = Duration::from_millis(50);
/// A `/readyz` that does not answer within this is recorded as unknown.
pub const PROBE_TIMEOUT: Duration = Duration::from_millis(800);

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct HostSample {
    pub vip: bool,
    /// `None`: the controller did not answer in time (cannot tell).
    pub serving: Option<bool>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Sample {
    /// Since the drill's epoch.
    pub at: Duration,
    pub hosts: BTreeMap<String, HostSample>,
    /// The lease key at the same tick, when the drill watches it and the
    /// read answered in time.
    pub lease: Option<LeaseSample>,
}

impl Sample {
    pub fn serving(&self) -> Vec<&str> {
        self.hosts
            .iter()
            .filter(|(_, s)| s.serving == Some(true))
            .map(|(h, _)| h.as_str())
            .collect()
    }

    pub fn vip_holders(&self) -> Vec<&str> {
        self.hosts
            .iter()
            .filter(|(_, s)| s.vip)
            .map(|(h, _)| h.as_str())
            .collect()
    }

    /// The host the lease key names, if it does not hold the VIP.
    pub fn lease_without_vip(&self) -> Option<&str> {
        let holder = self.lease.as_ref()?.holder.as_deref()?;
        (!self.host(holder).vip).then_some(holder)
    }

    pub fn host(&self, h: &str) -> HostSample {
        self.hosts.get(h).copied().unwrap_or(HostSample {
            vip: false,
            serving: Some(false),
        })
    }
}

struct Target {
    host: String,
    rt: Arc<NetnsRuntime>,
    readyz: Option<SocketAddr>,
}

/// A shared read view of the samples, for conditions drills poll.
#[derive(Debug, Clone)]
pub struct SampleView(Arc<Mutex<Vec<Sample>>>);

impl SampleView {
    pub fn last(&self) -> Option<Sample> {
        self.0.lock().expect("samples").last().cloned()
    }

    /// `host` holds the VIP and its controller serves, in the latest sample.
    pub fn serving_on(&self, host: &str) -> bool {
        self.last().is_some_and(|s| {
            let h = s.host(host);
            h.vip && h.serving == Some(true)
        })
    }

    /// Hosts serving in the latest sample.
    pub fn serving(&self) -> Vec<String> {
        self.last()
            .map(|s| s.serving().into_iter().map(str::to_owned).collect())
            .unwrap_or_default()
    }

    /// Hosts holding the VIP in the latest sample.
    pub fn vip(&self) -> Vec<String> {
        self.last()
            .map(|s| s.vip_holders().into_iter().map(str::to_owned).collect())
            .unwrap_or_default()
    }

    /// Samples taken after `t`.
    pub fn since(&self, t: Duration) -> Vec<Sample> {
        self.0
            .lock()
            .expect("samples")
            .iter()
            .filter(|s| s.at >= t)
            .cloned()
            .collect()
    }
}

#[derive(Debug)]
pub struct Checker {
    samples: Arc<Mutex<Vec<Sample>>>,
    stop: CancellationToken,
    task: tokio::task::JoinHandle<()>,
}

async fn probe(t: &Target, vip: Ipv4Addr) -> (String, HostSample) {
    let readyz = t.readyz;
    let r =
        t.rt.run(move || async move {
            let vip = observe::holds_vip(vip);
            let serving = match readyz {
                Some(addr) => observe::readiness(addr, PROBE_TIMEOUT).await,
                None => Readiness::NotServing("runs no controller".into()),
            };
            (vip, serving)
        })
        .await;
    let sample = match r {
        Ok((vip, serving)) => HostSample {
            vip,
            serving: serving.serving(),
        },
        Err(_) => HostSample {
            vip: false,
            serving: None,
        },
    };
    (t.host.clone(), sample)
}

impl Checker {
    /// Samples VIP and readiness; with `lease`, the lease key too.
    pub fn start(zone: &Zone, epoch: Instant, lease: Option<LeaseWatch>) -> Result<Checker> {
        let mut targets = Vec::new();
        for h in zone.spec.host_names() {
            targets.push(Target {
                host: h.to_owned(),
                rt: zone.runtime(h)?,
                readyz: zone
                    .spec
                    .host(h)
                    .runs
                    .controller
                    .then(|| zone.controller_mgmt(h)),
            });
        }
        let vip = zone.spec.vip.address;
        let samples = Arc::new(Mutex::new(Vec::new()));
        let stop = CancellationToken::new();
        let (out, halt) = (samples.clone(), stop.clone());
        let task = tokio::spawn(async move {
            let mut tick = tokio::time::interval(INTERVAL);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    _ = halt.cancelled() => return,
                    _ = tick.tick() => {}
                }
                let at = epoch.elapsed();
                let probes = targets.iter().map(|t| probe(t, vip));
                let read_lease = async {
                    match &lease {
                        Some(w) => w.read(PROBE_TIMEOUT).await,
                        None => None,
                    }
                };
                let (hosts, lease) =
                    futures::future::join(futures::future::join_all(probes), read_lease).await;
                let hosts: BTreeMap<String, HostSample> = hosts.into_iter().collect();
                out.lock()
                    .expect("samples")
                    .push(Sample { at, hosts, lease });
            }
        });
        Ok(Checker {
            samples,
            stop,
            task,
        })
    }

    pub fn view(&self) -> SampleView {
        SampleView(self.samples.clone())
    }

    pub fn samples(&self) -> Vec<Sample> {
        self.samples.lock().expect("samples").clone()
    }

    /// The latest sample, if any.
    pub fn last(&self) -> Option<Sample> {
        self.samples.lock().expect("samples").last().cloned()
    }

    pub async fn stop(self) -> Vec<Sample> {
        self.stop.cancel();
        let _ = self.task.await;
        self.samples.lock().expect("samples").clone()
    }
}
