//! One host's container: `systemd-nspawn --boot` of the cached root in the
//! host's network namespace, the library's `/etc` directories and the
//! host's state bound in, and commands run inside it (`nsenter` into the
//! container's namespaces: there is no systemd on the machine running the
//! simulator, hence no machinectl).

use super::spec::HostContainer;
use crate::netns;
use crate::processes;
use anyhow::{Context, Result, bail};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

/// Where a host's run directory is visible inside its container (the
/// artifact storage is mounted again from here after a drill unmounted it).
pub const SIM_STATE: &str = "/var/lib/bsfg-zonesim";

/// What the container's OS runs besides the appliance's units (`comm`).
pub const OS_PROCESSES: &[&str] = &[
    "systemd",
    "systemd-journal",
    "systemd-logind",
    "systemd-udevd",
    "systemd-userdbd",
    "systemd-userwor",
    "(sd-pam)",
    "dbus-daemon",
    "polkitd",
];

/// Everything `systemd-nspawn` is told about one host.
#[derive(Debug, Clone)]
pub struct MachineSpec<'a> {
    pub root: &'a Path,
    /// `<instance>-<host>`: unique per instance, hence per run.
    pub name: String,
    pub host: String,
    pub netns: String,
    /// `<run_dir>/<host>`.
    pub state: PathBuf,
    pub container: &'a HostContainer,
}

impl MachineSpec<'_> {
    /// The library's `/etc` directories, written by the simulator.
    pub fn etc_root(&self) -> PathBuf {
        self.state.join("root")
    }

    pub fn journal_dir(&self) -> PathBuf {
        self.state.join("journal")
    }

    /// A machine id of the name's hash: the journal of one host keeps one
    /// directory across reboots.
    pub fn machine_id(&self) -> String {
        use sha2::{Digest, Sha256};
        Sha256::digest(self.name.as_bytes())
            .iter()
            .take(16)
            .map(|b| format!("{b:02x}"))
            .collect()
    }

    /// The command line (pure: tested).
    pub fn argv(&self) -> Vec<String> {
        let mut a: Vec<String> = vec![
            // No image lock: the root is shared read-only by design (its
            // only writer, debootstrap, runs under root::ensure's lock into
            // another directory). nspawn's lock is shared while a container
            // runs, but an exiting nspawn upgrades it to exclusive for a
            // moment to delete the lock file, and a container booting in
            // that moment fails ("Directory tree ... is currently busy"):
            // a host rebooting right after the others crashed hit it.
            // (`env` execs in place: the pid stays nspawn's.)
            "env".into(),
            "SYSTEMD_NSPAWN_LOCK=0".into(),
            "systemd-nspawn".into(),
            "--quiet".into(),
            "--boot".into(),
            // No machined on this machine (PID 1 is not systemd).
            "--register=no".into(),
            // ...nor a host systemd to make a scope unit for the container.
            "--keep-unit".into(),
            format!("--directory={}", self.root.display()),
            // The root stays read-only and shared by every host; each boot
            // starts from it with a fresh tmpfs on top (a reboot forgets
            // everything that is not bound in, as /run and /etc on NixOS).
            "--volatile=overlay".into(),
            format!("--machine={}", self.name),
            format!("--hostname={}", self.host),
            format!("--uuid={}", self.machine_id()),
            format!("--network-namespace-path=/run/netns/{}", self.netns),
            // keepalived adds the VIP and sends VRRP (raw sockets).
            "--capability=CAP_NET_ADMIN,CAP_NET_RAW".into(),
            "--link-journal=no".into(),
            "--resolv-conf=off".into(),
            "--timezone=off".into(),
            "--console=pipe".into(),
            format!("--bind={}:/var/log/journal", self.journal_dir().display()),
            format!("--bind={}:{SIM_STATE}", self.state.display()),
        ];
        for d in &self.container.etc_dirs {
            let rel = d.strip_prefix("/").unwrap_or(d);
            a.push(format!(
                "--bind-ro={}:{}",
                self.etc_root().join(rel).display(),
                d.display()
            ));
        }
        for b in &self.container.binds {
            let flag = if b.read_only { "--bind-ro" } else { "--bind" };
            a.push(format!(
                "{flag}={}:{}",
                b.source.display(),
                b.target.display()
            ));
        }
        a
    }
}

/// The container's PID 1 (systemd), found through the network namespace:
/// the process there whose pid in its own pid namespace is 1.
pub fn leader(ns: &str) -> Option<u32> {
    netns::pids(ns).into_iter().map(|p| p as u32).find(|&p| {
        std::fs::read_to_string(format!("/proc/{p}/status"))
            .ok()
            .and_then(|s| {
                s.lines().find_map(|l| l.strip_prefix("NSpid:")).map(|v| {
                    v.split_whitespace().last() == Some("1") && v.split_whitespace().count() > 1
                })
            })
            .unwrap_or(false)
            && processes::comm(p).as_deref() == Some("systemd")
    })
}

/// Runs `argv` inside the container whose PID 1 is `leader`, as root.
pub fn exec(leader: u32, argv: &[&str]) -> Result<Output> {
    Command::new("nsenter")
        .args([
            "-t",
            &leader.to_string(),
            "-m",
            "-u",
            "-i",
            "-n",
            "-p",
            "-C",
            "--",
        ])
        .args(argv)
        .env_clear()
        .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
        .env("SYSTEMD_COLORS", "0")
        .env("SYSTEMD_PAGER", "")
        .output()
        .with_context(|| {
            format!(
                "nsenter into the container (pid {leader}): {}",
                argv.join(" ")
            )
        })
}

/// Like [`exec`], failing with the command's stderr unless it succeeds.
pub fn exec_ok(leader: u32, argv: &[&str]) -> Result<String> {
    let out = exec(leader, argv)?;
    if !out.status.success() {
        bail!(
            "{} in the container: {}{}",
            argv.join(" "),
            String::from_utf8_lossy(&out.stderr).trim(),
            String::from_utf8_lossy(&out.stdout).trim()
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Waits until systemd in `ns`'s container finished booting: `running`, or
/// `degraded` when none of `units` (the appliance's) failed; a failed unit
/// of the appliance is an error naming it.
pub fn wait_booted(
    ns: &str,
    units: &[String],
    nspawn: &processes::DaemonRecord,
    timeout: Duration,
) -> Result<u32> {
    let deadline = Instant::now() + timeout;
    loop {
        if !nspawn.alive() {
            bail!("systemd-nspawn for {ns} exited before the container booted");
        }
        if let Some(pid) = leader(ns) {
            let out = exec(pid, &["systemctl", "is-system-running"])?;
            let state = String::from_utf8_lossy(&out.stdout).trim().to_owned();
            match state.as_str() {
                "running" => return Ok(pid),
                "degraded" => {
                    let failed = exec(pid, &["systemctl", "--failed", "--no-legend", "--plain"])
                        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
                        .unwrap_or_default();
                    let ours: Vec<&str> = failed
                        .lines()
                        .filter(|l| units.iter().any(|u| l.split_whitespace().next() == Some(u)))
                        .collect();
                    if ours.is_empty() {
                        return Ok(pid);
                    }
                    // The failed units' last lines: why, without opening the journal.
                    let mut why = String::new();
                    for l in &ours {
                        let unit = l.split_whitespace().next().unwrap_or_default();
                        if let Ok(o) =
                            exec(pid, &["journalctl", "--no-pager", "-n", "12", "-u", unit])
                        {
                            why.push_str(&String::from_utf8_lossy(&o.stdout));
                        }
                    }
                    bail!(
                        "the container in {ns} booted with failed units:\n{}\n{why}",
                        ours.join("\n")
                    );
                }
                _ => {}
            }
        }
        if Instant::now() > deadline {
            bail!("the container in {ns} did not finish booting within {timeout:?}");
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// `journalctl -o OUTPUT` of one unit, read on this machine from the
/// host's bound journal directory (`cat`: the daemon's own lines).
pub fn journal(dir: &Path, units: &[&str], output: &str) -> Result<String> {
    let args: Vec<String> = units
        .iter()
        .flat_map(|u| ["-u".into(), u.to_string()])
        .collect();
    journalctl(dir, output, &args)
}

/// The entries of the journal in `dir` that match `matches` (journalctl's
/// match syntax: `FIELD=value`, `+` between alternatives), in order.
pub fn journal_entries(dir: &Path, matches: &[&str]) -> Result<Vec<JournalEntry>> {
    let args: Vec<String> = matches.iter().map(|m| m.to_string()).collect();
    parse_json_entries(&journalctl(dir, "json", &args)?)
        .with_context(|| format!("journalctl --directory={} -o json", dir.display()))
}

/// journalctl's stdout; its failure (exit status, stderr) is an error, not
/// an empty journal.
fn journalctl(dir: &Path, output: &str, args: &[String]) -> Result<String> {
    let out = Command::new("journalctl")
        .arg(format!("--directory={}", dir.display()))
        .args(["--no-pager", "-o", output])
        .args(args)
        .output()
        .context("running journalctl (Debian package systemd)")?;
    if !out.status.success() {
        bail!(
            "journalctl --directory={} -o {output} {}: {}: {}",
            dir.display(),
            args.join(" "),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// One journal entry: the fields a check classifies by.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JournalEntry {
    pub message: String,
    /// `_SYSTEMD_UNIT`: journald's attribution by the sender's cgroup.
    pub unit: Option<String>,
    /// `SYSLOG_IDENTIFIER`: for a unit's stdout, its program's name.
    pub identifier: Option<String>,
}

/// `journalctl -o json` output, one object a line (pure: tested). A field
/// that is not valid UTF-8 comes as an array of bytes, one logged more
/// than once as an array of values (the first counts).
pub fn parse_json_entries(text: &str) -> Result<Vec<JournalEntry>> {
    fn field(v: &serde_json::Value) -> Option<String> {
        match v {
            serde_json::Value::String(s) => Some(s.clone()),
            serde_json::Value::Array(a) if a.iter().all(|b| b.is_u64()) => Some(
                String::from_utf8_lossy(
                    &a.iter()
                        .filter_map(|b| b.as_u64().and_then(|b| u8::try_from(b).ok()))
                        .collect::<Vec<u8>>(),
                )
                .into_owned(),
            ),
            serde_json::Value::Array(a) => a.first().and_then(field),
            _ => None,
        }
    }
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let v: serde_json::Value =
                serde_json::from_str(l).with_context(|| format!("a journal entry: {l}"))?;
            let get = |k: &str| v.get(k).and_then(field);
            Ok(JournalEntry {
                message: get("MESSAGE").unwrap_or_default(),
                unit: get("_SYSTEMD_UNIT"),
                identifier: get("SYSLOG_IDENTIFIER"),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_journal_json_entries() {
        // journalctl -o json: a string, a byte array (not UTF-8 safe), a
        // field given twice, an entry with no unit (its sender was gone).
        let text = concat!(
            r#"{"MESSAGE":"[1] Entering lame duck mode, stop accepting new clients","_SYSTEMD_UNIT":"nats.service","SYSLOG_IDENTIFIER":"nats-server"}"#,
            "\n",
            r#"{"MESSAGE":[104,105],"_SYSTEMD_UNIT":["a.service","b.service"]}"#,
            "\n\n",
            r#"{"MESSAGE":null,"SYSLOG_IDENTIFIER":"nats-server"}"#,
            "\n",
        );
        let e = parse_json_entries(text).unwrap();
        assert_eq!(
            e,
            vec![
                JournalEntry {
                    message: "[1] Entering lame duck mode, stop accepting new clients".into(),
                    unit: Some("nats.service".into()),
                    identifier: Some("nats-server".into()),
                },
                JournalEntry {
                    message: "hi".into(),
                    unit: Some("a.service".into()),
                    identifier: None,
                },
                JournalEntry {
                    message: String::new(),
                    unit: None,
                    identifier: Some("nats-server".into()),
                },
            ]
        );
        assert!(parse_json_entries("-- No entries --").is_err());
    }

    #[test]
    fn a_journalctl_failure_is_an_error() {
        let e = journal(Path::new("/nonexistent/journal"), &["nats.service"], "cat")
            .unwrap_err()
            .to_string();
        assert!(e.contains("exit status: 1"), "{e}");
        assert!(e.contains("/nonexistent/journal"), "{e}");
    }
    use crate::container::spec::Bind;
    use std::collections::BTreeMap;

    #[test]
    fn binds_the_library_dirs_and_the_state() {
        let c = HostContainer {
            files: BTreeMap::new(),
            links: BTreeMap::new(),
            etc_dirs: vec!["/etc/bsfg".into()],
            binds: vec![Bind {
                source: "/r/alpha/jetstream".into(),
                target: "/data/jetstream".into(),
                read_only: false,
            }],
            password_files: Default::default(),
            units: vec![],
            restart_if_changed: BTreeMap::new(),
        };
        let m = MachineSpec {
            root: Path::new("/cache/root"),
            name: "z1-alpha".into(),
            host: "alpha".into(),
            netns: "z1-alpha".into(),
            state: "/r/alpha".into(),
            container: &c,
        };
        let a = m.argv();
        assert_eq!(a[..3], ["env", "SYSTEMD_NSPAWN_LOCK=0", "systemd-nspawn"]);
        assert!(a.contains(&"--bind-ro=/r/alpha/root/etc/bsfg:/etc/bsfg".to_string()));
        assert!(a.contains(&"--bind=/r/alpha/jetstream:/data/jetstream".to_string()));
        assert!(a.contains(&"--network-namespace-path=/run/netns/z1-alpha".to_string()));
        assert_eq!(m.machine_id().len(), 32);
    }
}
