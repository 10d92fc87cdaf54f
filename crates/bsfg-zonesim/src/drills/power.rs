//! Power-loss drills: the hosts' disks are `bsfg-powercut` volumes of one
//! power feed ([`crate::zone::power`]); a power loss stops the hosts at one
//! instant and discards what their disks had not made durable, then they
//! boot on what was. The load appends facts throughout; an uploader puts
//! artifacts (`PutObject`) until the instant. Every acknowledged fact and
//! artifact is then looked for: facts in the store buffer, artifacts on the
//! store of the host that acknowledged them (and in the zone's index).

use super::ctx::{contract, hosts};
use super::scenarios::{one_on_the_vip, roles, serves};
use super::{Ctx, PROMOTION_TIMEOUT};
use crate::zone::Zone;
use anyhow::Result;
use bsfg_client::pb;
use bsfg_core::config::TlsFiles;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// How long the hosts stay without power.
const OFF_FOR: Duration = Duration::from_secs(3);
/// Load before the power goes: longer than the kernel's writeback window
/// (30 s), so what the disks hold at the cut is what a zone that has been
/// running for a while holds (older writes written back, the last 30 s not).
const SOAK: Duration = Duration::from_secs(40);
/// Time allowed for the zone to serve again by itself after the power is back.
const RECOVERY_TIMEOUT: Duration = Duration::from_secs(150);

/// What a power-loss drill measured.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PowerReport {
    /// `standard` or `critical` (the zone's durability tier).
    pub tier: String,
    /// The file-system semantics of the disks (`journaled`: ext4, XFS).
    pub semantics: String,
    pub hosts_cut: Vec<String>,
    /// What the cut discarded: (volume, unsynced bytes, unsynced entries).
    pub discarded: Vec<(String, u64, u64)>,
    /// The zone served again, and acknowledged appends, without intervention.
    pub recovered: bool,
    /// From the power loss (one host) or the power coming back (all hosts)
    /// to the first acknowledged append.
    pub recovery_s: Option<f64>,
    pub artifacts_acked: usize,
    /// Acknowledged artifacts missing or damaged on the acknowledging host's
    /// store, or missing from the zone's index.
    pub artifacts_lost: usize,
    pub artifacts_lost_keys: Vec<String>,
}

/// An acknowledged artifact.
#[derive(Debug, Clone)]
struct Acked {
    key: String,
    digest: String,
    size: u64,
}

fn artifact_bytes(instance: &str, i: u32) -> Vec<u8> {
    // 48 KiB of content unique to the run and the artifact.
    let mut h = Sha256::new();
    h.update(format!("{instance}/{i}"));
    let seed = h.finalize();
    (0..48 * 1024)
        .map(|j| seed[j % 32] ^ (j / 32) as u8)
        .collect()
}

/// Uploads artifacts through the VIP, one after another, until stopped.
struct Uploader {
    acked: Arc<Mutex<Vec<Acked>>>,
    stop: CancellationToken,
}

impl Uploader {
    fn start(z: &Zone) -> Result<Uploader> {
        let acked = Arc::new(Mutex::new(Vec::new()));
        let stop = CancellationToken::new();
        let (endpoint, tls, instance) = (z.spec.endpoint(), z.client_tls().0, z.instance.clone());
        let (a, s) = (acked.clone(), stop.clone());
        z.runtime(crate::netns::CLIENT)?
            .spawn(move || async move { upload(endpoint, tls, instance, a, s).await })?;
        Ok(Uploader { acked, stop })
    }

    fn acked(&self) -> Vec<Acked> {
        self.acked.lock().expect("acked").clone()
    }
}

async fn upload(
    endpoint: String,
    tls: TlsFiles,
    instance: String,
    acked: Arc<Mutex<Vec<Acked>>>,
    stop: CancellationToken,
) {
    let mut i = 0u32;
    while !stop.is_cancelled() {
        i += 1;
        let data = artifact_bytes(&instance, i);
        let key = format!("power/{instance}/{i}.bin");
        let put = crate::load::put_object(
            &endpoint,
            &tls,
            crate::load::ARTIFACT_BUCKET,
            &key,
            &data,
            Duration::from_secs(5),
        );
        match put.await {
            Ok(r) => {
                acked.lock().expect("acked").push(Acked {
                    key,
                    digest: r.digest,
                    size: r.size,
                });
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            _ => tokio::time::sleep(Duration::from_millis(300)).await,
        }
    }
}

/// Each acknowledged artifact on the store of the host that acknowledged
/// it (bytes and digest; alpha, or beta for an upload the failover answered)
/// and in the zone's index (through the VIP: served, or known and being
/// fetched back).
async fn check_artifacts(z: &Zone, acked: &[Acked]) -> Vec<String> {
    let stores: Vec<std::path::PathBuf> = z
        .spec
        .service_hosts()
        .into_iter()
        .map(|h| z.spec.host(h).paths.artifacts.join("blobs/sha256"))
        .collect();
    let mut lost = Vec::new();
    for a in acked {
        let hex = a.digest.trim_start_matches("sha256:");
        let on_disk = stores.iter().any(|store| {
            std::fs::read(store.join(hex))
                .ok()
                .is_some_and(|b| b.len() as u64 == a.size && hex::encode(Sha256::digest(&b)) == hex)
        });
        let (endpoint, tls, key) = (z.spec.endpoint(), z.client_tls().1, a.key.clone());
        let indexed = z
            .in_ns(crate::netns::CLIENT, move || async move {
                let mut c = bsfg_client::connect_grpc(&endpoint, &tls).ok()?;
                let r = c
                    .get_object(pb::GetObjectRequest {
                        bucket: crate::load::ARTIFACT_BUCKET.into(),
                        key,
                    })
                    .await;
                use tonic_types::StatusExt;
                Some(match r {
                    Ok(_) => true,
                    // Known to the index, its blob not on the serving host.
                    Err(s) => s
                        .get_details_error_info()
                        .is_some_and(|i| i.reason == "artifact_rehydrating"),
                })
            })
            .await
            .ok()
            .flatten()
            .unwrap_or(false);
        if !on_disk || !indexed {
            lost.push(format!(
                "{} ({}{})",
                a.key,
                if on_disk { "" } else { "not on disk " },
                if indexed { "" } else { "not indexed" }
            ));
        }
    }
    lost
}

fn record_cut(c: &mut Ctx, hosts_cut: &[&str], report: &bsfg_powercut::domain::CutReport) {
    let p = c.power.get_or_insert_with(PowerReport::default);
    p.hosts_cut = hosts_cut.iter().map(|h| (*h).to_owned()).collect();
    p.discarded = report
        .volumes
        .iter()
        .map(|(v, d)| (v.clone(), d.unsynced_bytes, d.unsynced_entries))
        .collect();
    let what: Vec<String> = report
        .volumes
        .iter()
        .map(|(v, d)| {
            format!(
                "{v}: {} KiB, {} entries",
                d.unsynced_bytes / 1024,
                d.unsynced_entries
            )
        })
        .collect();
    c.event(format!("the cut discarded {}", what.join("; ")));
}

/// Waits until `n` appends sent after `from` are acknowledged; the time of the first one.
async fn first_ack_after(c: &mut Ctx, from: Duration, timeout: Duration) -> Option<f64> {
    let loads = c.loads();
    let deadline = std::time::Instant::now() + timeout;
    loop {
        if loads.acked_after(from) > 0 {
            return Some((c.elapsed() - from).as_secs_f64());
        }
        if std::time::Instant::now() > deadline {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn finish_artifacts(z: &Zone, c: &mut Ctx, up: Uploader) {
    let acked = up.acked();
    let lost = check_artifacts(z, &acked).await;
    if c.loss_tolerated {
        // The standard tier: the index (JetStream) may lose an entry as it
        // may lose a fact; the figure is the result.
        c.event(format!(
            "artifacts: {} of {} on the store of the host that acknowledged them and in the index (standard tier: reported, not asserted)",
            acked.len() - lost.len(),
            acked.len()
        ));
    } else {
        c.check(
            "every acknowledged artifact is on the store of the host that acknowledged it and in the index",
            lost.is_empty(),
            format!(
                "{} of {} artifacts{}",
                acked.len() - lost.len(),
                acked.len(),
                if lost.is_empty() {
                    String::new()
                } else {
                    format!("; lost {:?}", &lost[..lost.len().min(5)])
                }
            ),
        );
    }
    let p = c.power.get_or_insert_with(PowerReport::default);
    p.artifacts_acked = acked.len();
    p.artifacts_lost = lost.len();
    p.artifacts_lost_keys = lost.into_iter().take(20).collect();
}

/// Uploads artifacts until `n` are acknowledged (or 30 s pass).
async fn uploading(z: &Zone, c: &mut Ctx, n: usize) -> Result<Uploader> {
    let up = Uploader::start(z)?;
    let acked = up.acked.clone();
    c.wait_for(
        "artifacts acknowledged before the power loss",
        Duration::from_secs(30),
        || {
            let acked = acked.clone();
            async move {
                let got = acked.lock().expect("acked").len();
                (got >= n).then(|| format!("{got} artifacts acknowledged"))
            }
        },
    )
    .await;
    Ok(up)
}

fn begin(z: &Zone, c: &mut Ctx) {
    let p = c.power.get_or_insert_with(PowerReport::default);
    p.tier = z.spec.tier.clone();
    p.semantics = "journaled".into();
}

pub(super) async fn power_loss_all(z: &Zone, c: &mut Ctx) -> Result<()> {
    let (a, b, g) = roles(z);
    begin(z, c);
    let v = c.samples();
    c.expected = crate::drills::outcome::Outcome {
        summary: contract(
            "all hosts lose power at once → the zone boots and serves again by itself, one controller on the VIP \
             (either service host, as after any simultaneous boot); critical tier: no acknowledged write lost",
        ),
        vip: None,
        serving: None,
    };
    // The standard tier may lose what it acknowledged since the last sync:
    // that figure is the drill's result, not a failure.
    c.loss_tolerated = z.spec.tier != "critical";
    c.event(format!("load for {SOAK:?} before the power loss"));
    tokio::time::sleep(SOAK).await;
    let up = uploading(z, c, 3).await?;
    c.fault(format!("{a}, {b} and {g} lose power at one instant"));
    let report = z.power_loss(&[&a, &b, &g])?;
    up.stop.cancel();
    record_cut(c, &[&a, &b, &g], &report);
    tokio::time::sleep(OFF_FOR).await;
    c.event("power back: the three hosts boot");
    let on = c.elapsed();
    z.power_on(&[&a, &b, &g])?;
    let served = c
        .wait_for(
            "the zone serves again by itself: one controller, on the only VIP holder",
            RECOVERY_TIMEOUT,
            || one_on_the_vip(&v),
        )
        .await;
    let first = first_ack_after(c, on, RECOVERY_TIMEOUT).await;
    c.check(
        "appends acknowledged again after the boot",
        first.is_some(),
        first.map_or("none".into(), |s| format!("first after {s:.2} s")),
    );
    let p = c.power.get_or_insert_with(PowerReport::default);
    p.recovered = served && first.is_some();
    p.recovery_s = first.map(super::metrics::ms);
    c.wait_acks("appends keep flowing", 20, PROMOTION_TIMEOUT)
        .await;
    finish_artifacts(z, c, up).await;
    Ok(())
}

pub(super) async fn power_loss_one(z: &Zone, c: &mut Ctx) -> Result<()> {
    let (a, b, _) = roles(z);
    begin(z, c);
    let v = c.samples();
    c.target = Some(b.clone());
    c.expected = crate::drills::outcome::Outcome {
        summary: contract(
            "the active host loses power → beta serves; nothing acknowledged lost (the replicas are on other disks)",
        ),
        vip: hosts(&[&b]),
        serving: hosts(&[&b]),
    };
    c.event(format!("load for {SOAK:?} before the power loss"));
    tokio::time::sleep(SOAK).await;
    let up = uploading(z, c, 3).await?;
    c.fault(format!("{a} loses power"));
    let cut_at = c.elapsed();
    let report = z.power_loss(&[&a])?;
    up.stop.cancel();
    record_cut(c, &[&a], &report);
    let served = c
        .wait_for("beta serves", PROMOTION_TIMEOUT, || serves(&v, &b))
        .await;
    let first = first_ack_after(c, cut_at, PROMOTION_TIMEOUT).await;
    c.check(
        "appends acknowledged again after the power loss",
        first.is_some(),
        first.map_or("none".into(), |s| format!("first after {s:.2} s")),
    );
    let p = c.power.get_or_insert_with(PowerReport::default);
    p.recovered = served && first.is_some();
    p.recovery_s = first.map(super::metrics::ms);
    c.event(format!("power back on {a}: it boots"));
    z.power_on(&[&a])?;
    z.wait_formed(&[&a], PROMOTION_TIMEOUT).await?;
    c.wait_acks(
        "appends keep flowing with alpha back",
        20,
        PROMOTION_TIMEOUT,
    )
    .await;
    finish_artifacts(z, c, up).await;
    Ok(())
}
