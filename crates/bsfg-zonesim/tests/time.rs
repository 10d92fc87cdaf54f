//! Time without upstream: the three hosts of a simulated zone run Debian's
//! chronyd with the configuration the zone library renders for them
//! (modules/lib/network.nix: the site's server, the other two hosts as
//! peers, `local stratum 10 orphan`) behind the appliance's firewall. The
//! example zone's site server (10.30.0.1) does not exist here, which is the
//! site that lost its upstream: the hosts must still agree on one time, one
//! of them the orphan root at stratum 10 and the other two synchronised to
//! a zone host. chronyd runs with `-x`: it disciplines nothing, the machine's
//! clock is left alone.
//!
//! The gate agent's time-sync probe then reads each host's chronyd and
//! finds it synchronised.
//!
//! Needs root (namespaces, nft) and chronyd (Debian package chrony).

use bsfg_zonesim::zone::{Options, Zone};
use std::collections::BTreeMap;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

struct Daemons(Vec<Child>);

impl Drop for Daemons {
    fn drop(&mut self) {
        for c in &mut self.0 {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// `chronyc tracking` of one host: (reference id line, stratum, leap status).
fn tracking(socket: &std::path::Path) -> Option<(String, u32, String)> {
    let out = Command::new("chronyc")
        .arg("-h")
        .arg(socket)
        .args(["-n", "tracking"])
        .output()
        .ok()?;
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let field = |name: &str| {
        text.lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_once(':'))
            .map(|(_, v)| v.trim().to_owned())
    };
    Some((
        field("Reference ID")?,
        field("Stratum")?.parse().ok()?,
        field("Leap status")?,
    ))
}

#[test]
fn without_upstream_the_zone_hosts_keep_one_time() {
    assert!(
        rustix::process::geteuid().is_root(),
        "needs root (namespaces, nft)"
    );
    let opts = Options::new(&format!("tm{}", std::process::id() % 100_000));
    let zone = Zone::create(&opts).expect("zone");
    let mut daemons = Daemons(Vec::new());
    let mut sockets = BTreeMap::new();
    for name in zone.spec.host_names() {
        let h = zone.spec.host(name);
        assert_eq!(h.chrony.peers.len(), 2, "{name} peers with the other two");
        assert!(h.chrony.extra_config.contains("local stratum 10 orphan"));
        let dir = zone.run_dir.join(name).join("chrony");
        std::fs::create_dir_all(&dir).unwrap();
        // chronyd refuses a command socket in a directory others can enter.
        std::fs::set_permissions(&dir, std::os::unix::fs::PermissionsExt::from_mode(0o700))
            .unwrap();
        let socket = dir.join("chronyd.sock");
        // What nixpkgs writes (one `server` line per servers entry), the
        // library's extraConfig, and this test's private state paths.
        let mut conf: String = h
            .chrony
            .servers
            .iter()
            .map(|s| format!("server {s} iburst\n"))
            .collect();
        conf += &format!(
            "driftfile {d}/drift\npidfile {d}/chronyd.pid\nbindcmdaddress {s}\ncmdport 0\n",
            d = dir.display(),
            s = socket.display()
        );
        conf += &h.chrony.extra_config;
        let file = dir.join("chrony.conf");
        std::fs::write(&file, conf).unwrap();
        let child = Command::new("ip")
            .args([
                "netns",
                "exec",
                &zone.ns(name),
                "chronyd",
                "-x",
                "-d",
                "-u",
                "root",
                "-f",
            ])
            .arg(&file)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.join("chronyd.log")).unwrap())
            .spawn()
            .expect("chronyd (apt-get install chrony)");
        daemons.0.push(child);
        sockets.insert(name.to_owned(), socket);
    }
    let addresses: Vec<String> = zone
        .spec
        .host_names()
        .iter()
        .map(|n| zone.spec.host(n).address.to_string())
        .collect();
    let deadline = Instant::now() + Duration::from_secs(240);
    let agreed = loop {
        let last = sockets
            .iter()
            .map(|(n, s)| (n.clone(), tracking(s)))
            .collect::<BTreeMap<_, _>>();
        let states: Vec<&(String, u32, String)> = last.values().flatten().collect();
        let roots = states
            .iter()
            .filter(|(_, stratum, _)| *stratum == 10)
            .count();
        let synced = states.iter().all(|(_, _, leap)| leap == "Normal");
        let followers_follow_a_host =
            states
                .iter()
                .filter(|(_, stratum, _)| *stratum > 10)
                .all(|(reference, _, _)| {
                    addresses
                        .iter()
                        .any(|a| reference.contains(&format!("({a})")))
                });
        if states.len() == 3 && roots == 1 && synced && followers_follow_a_host {
            break last;
        }
        if Instant::now() >= deadline {
            let sources: Vec<String> = sockets
                .values()
                .map(|s| {
                    let o = Command::new("chronyc")
                        .arg("-h")
                        .arg(s)
                        .args(["-n", "sources"])
                        .output()
                        .unwrap();
                    String::from_utf8_lossy(&o.stdout).into_owned()
                })
                .collect();
            panic!(
                "the zone hosts did not agree on one time without upstream within 240 s: {last:?}\n{}",
                sources.join("\n")
            );
        }
        std::thread::sleep(Duration::from_secs(2));
    };
    eprintln!("time without upstream: {agreed:?}");
    // What the gate agents report from it: each host synchronised (its
    // probe and verdict, as `time_sync` of /status and the metrics show).
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    for (name, socket) in &sockets {
        let report = rt.block_on(bsfg_gate_agent::probes::time_sync::query(
            std::path::Path::new("chronyc"),
            Some(socket),
            Duration::from_secs(5),
        ));
        let verdict = bsfg_gate_agent::gates::time_sync::assess(
            &bsfg_gate_agent::config::TimeSync::default(),
            &report,
            0,
        );
        assert!(verdict.synchronised, "{name}: {}", verdict.reason);
        eprintln!("{name}: {}", verdict.reason);
    }
}
