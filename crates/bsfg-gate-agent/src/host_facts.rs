//! What only the host can see, reported in `GET /status` as `host_facts`
//! for `bsfgctl zone status` and `bsfgctl commission`: the running NixOS
//! system (`/run/current-system`), the controller executable this host
//! would run, the mount table, the running keepalived's unicast settings,
//! the controller certificate's expiry, and this host's clock.
//!
//! Gathered at request time (cheap: a few files under `/proc` and one
//! `systemctl show`), never by the evaluation loop. Parsers are pure and
//! tested directly; failures go to `errors`, never fail the request.

use bsfg_mgmt::agent::{Certificate, HostFacts, Keepalived, Mount};
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::config::{AgentConfig, SupervisorKind};

const PSEUDO_FS: &[&str] = &[
    "proc",
    "sysfs",
    "devtmpfs",
    "devpts",
    "cgroup",
    "cgroup2",
    "mqueue",
    "debugfs",
    "tracefs",
    "securityfs",
    "pstore",
    "bpf",
    "configfs",
    "fusectl",
    "hugetlbfs",
    "autofs",
    "binfmt_misc",
    "efivarfs",
    "nsfs",
    "rpc_pipefs",
    "ramfs",
];

/// `/proc/self/mountinfo` → real mounts (octal escapes decoded).
pub fn parse_mountinfo(text: &str) -> Vec<Mount> {
    let unescape = |s: &str| -> String {
        let b = s.as_bytes();
        let mut out = Vec::with_capacity(b.len());
        let mut i = 0;
        while i < b.len() {
            if b[i] == b'\\'
                && i + 3 < b.len()
                && let Ok(v) = u8::from_str_radix(&s[i + 1..i + 4], 8)
            {
                out.push(v);
                i += 4;
                continue;
            }
            out.push(b[i]);
            i += 1;
        }
        String::from_utf8_lossy(&out).into_owned()
    };
    text.lines()
        .filter_map(|line| {
            let (left, right) = line.split_once(" - ")?;
            let l: Vec<&str> = left.split(' ').collect();
            let r: Vec<&str> = right.split(' ').collect();
            let (mount_point, options) = (l.get(4)?, l.get(5)?);
            let (fs_type, source) = (r.first()?, r.get(1).copied().unwrap_or(""));
            if PSEUDO_FS.contains(fs_type) {
                return None;
            }
            Some(Mount {
                mount_point: unescape(mount_point),
                source: unescape(source),
                fs_type: (*fs_type).to_owned(),
                read_only: options.split(',').any(|o| o == "ro"),
            })
        })
        .collect()
}

/// `interface`, `unicast_src_ip` and `unicast_peer { ... }` of the first
/// `vrrp_instance` of a keepalived.conf (comments `#`/`!` ignored).
pub fn parse_keepalived_conf(text: &str) -> (Option<String>, Option<String>, Vec<String>) {
    let tokens: Vec<String> = text
        .lines()
        .map(|l| l.split(['#', '!']).next().unwrap_or(""))
        .flat_map(|l| {
            l.replace('{', " { ")
                .replace('}', " } ")
                .split_whitespace()
                .map(str::to_owned)
                .collect::<Vec<_>>()
        })
        .collect();
    let Some(start) = tokens.iter().position(|t| t == "vrrp_instance") else {
        return (None, None, Vec::new());
    };
    let (mut interface, mut src, mut peers) = (None, None, Vec::new());
    let mut depth = 0i32;
    let mut i = start + 1;
    while i < tokens.len() {
        match tokens[i].as_str() {
            "{" => depth += 1,
            "}" => {
                depth -= 1;
                if depth <= 0 {
                    break;
                }
            }
            "interface" if depth == 1 && interface.is_none() => {
                interface = tokens.get(i + 1).cloned();
                i += 1;
            }
            "unicast_src_ip" if depth == 1 => {
                src = tokens.get(i + 1).cloned();
                i += 1;
            }
            "unicast_peer" if depth == 1 => {
                let mut j = i + 1;
                if tokens.get(j).map(String::as_str) == Some("{") {
                    j += 1;
                    while j < tokens.len() && tokens[j] != "}" {
                        peers.push(tokens[j].clone());
                        j += 1;
                    }
                }
                i = j;
            }
            _ => {}
        }
        i += 1;
    }
    (interface, src, peers)
}

/// keepalived's configuration file from its argv (`-f F`, `--use-file F`,
/// `--use-file=F`, `-fF`); the default otherwise.
pub fn keepalived_config_from_argv(argv: &[String]) -> PathBuf {
    let mut it = argv.iter().skip(1);
    while let Some(a) = it.next() {
        if a == "-f" || a == "--use-file" {
            if let Some(f) = it.next() {
                return PathBuf::from(f);
            }
        } else if let Some(f) = a.strip_prefix("--use-file=") {
            return PathBuf::from(f);
        } else if let Some(f) = a.strip_prefix("-f")
            && !f.is_empty()
            && !a.starts_with("--")
        {
            return PathBuf::from(f);
        }
    }
    PathBuf::from("/etc/keepalived/keepalived.conf")
}

/// systemd `ExecStart` (`systemctl show -p ExecStart --value`) → `path=`.
pub fn exec_start_path(show: &str) -> Option<String> {
    show.split([';', '{', '}'])
        .map(str::trim)
        .find_map(|f| f.strip_prefix("path="))
        .map(|p| p.trim().to_owned())
        .filter(|p| !p.is_empty())
}

fn resolve_program(program: &str) -> Option<PathBuf> {
    if program.contains('/') {
        return std::fs::canonicalize(program).ok();
    }
    std::env::var_os("PATH")?
        .to_str()?
        .split(':')
        .map(|d| Path::new(d).join(program))
        .find(|p| p.is_file())
        .and_then(|p| std::fs::canonicalize(p).ok())
}

fn net_ns(pid: &str) -> Option<PathBuf> {
    std::fs::read_link(format!("/proc/{pid}/ns/net")).ok()
}

/// A killed process its parent has not reaped yet: gone, though `/proc` still lists it.
pub(crate) fn is_zombie(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|stat| {
            stat.rsplit_once(')')
                .map(|(_, rest)| rest.trim_start().starts_with('Z'))
        })
        .unwrap_or(false)
}

/// The keepalived parent process in this network namespace (lowest pid).
/// Where other users' namespaces cannot be read (the agent is not root),
/// a single keepalived on the machine is taken as this host's.
pub(crate) fn find_keepalived() -> Result<Option<(u32, Vec<String>)>, String> {
    let own = net_ns("self");
    let mut found: Vec<(u32, Vec<String>, Option<bool>)> = Vec::new();
    let dir = std::fs::read_dir("/proc").map_err(|e| format!("/proc: {e}"))?;
    for e in dir.flatten() {
        let name = e.file_name();
        let Some(pid) = name.to_str().and_then(|s| s.parse::<u32>().ok()) else {
            continue;
        };
        let Ok(comm) = std::fs::read_to_string(format!("/proc/{pid}/comm")) else {
            continue;
        };
        if comm.trim() != "keepalived" || is_zombie(pid) {
            continue;
        }
        let argv: Vec<String> = std::fs::read(format!("/proc/{pid}/cmdline"))
            .unwrap_or_default()
            .split(|b| *b == 0)
            .filter(|a| !a.is_empty())
            .map(|a| String::from_utf8_lossy(a).into_owned())
            .collect();
        let same = match (&own, net_ns(&pid.to_string())) {
            (Some(a), Some(b)) => Some(*a == b),
            _ => None,
        };
        found.push((pid, argv, same));
    }
    found.sort_by_key(|f| f.0);
    if let Some(f) = found.iter().find(|f| f.2 == Some(true)) {
        return Ok(Some((f.0, f.1.clone())));
    }
    let unknown: Vec<_> = found.iter().filter(|f| f.2.is_none()).collect();
    // keepalived forks children with the same argv: one config = one instance.
    let configs: std::collections::BTreeSet<PathBuf> = unknown
        .iter()
        .map(|f| keepalived_config_from_argv(&f.1))
        .collect();
    match configs.len() {
        0 => Ok(None),
        1 => Ok(unknown.first().map(|f| (f.0, f.1.clone()))),
        n => Err(format!(
            "{n} keepalived instances whose network namespace this user cannot read"
        )),
    }
}

async fn controller_executable(config: &AgentConfig) -> Result<Option<String>, String> {
    let c = &config.controller;
    let path = match c.supervisor {
        SupervisorKind::Process => match c.command.first() {
            Some(p) => {
                resolve_program(p).ok_or_else(|| format!("controller.command {p}: not found"))?
            }
            None => return Ok(None),
        },
        SupervisorKind::Systemd => {
            let out = tokio::time::timeout(
                Duration::from_secs(2),
                tokio::process::Command::new("systemctl")
                    .args(["show", "--property=ExecStart", "--value", &c.unit])
                    .output(),
            )
            .await
            .map_err(|_| "systemctl show: no answer within 2s".to_owned())?
            .map_err(|e| format!("systemctl show: {e}"))?;
            let text = String::from_utf8_lossy(&out.stdout);
            let p = exec_start_path(&text)
                .ok_or_else(|| format!("systemctl show {}: no ExecStart path", c.unit))?;
            std::fs::canonicalize(&p).unwrap_or_else(|_| PathBuf::from(p))
        }
    };
    Ok(Some(path.display().to_string()))
}

/// Reads every fact; never fails (what cannot be read is in `errors`).
pub async fn gather(config: &AgentConfig) -> HostFacts {
    let mut f = HostFacts {
        now_unix_ms: bsfg_core::clock::unix_ms(),
        system: std::fs::canonicalize("/run/current-system")
            .ok()
            .map(|p| p.display().to_string()),
        ..Default::default()
    };
    match controller_executable(config).await {
        Ok(p) => f.controller_executable = p,
        Err(e) => f.errors.push(e),
    }
    match std::fs::read_to_string("/proc/self/mountinfo") {
        Ok(t) => f.mounts = parse_mountinfo(&t),
        Err(e) => f.errors.push(format!("/proc/self/mountinfo: {e}")),
    }
    match find_keepalived() {
        Ok(Some((pid, argv))) => {
            let conf = keepalived_config_from_argv(&argv);
            match std::fs::read_to_string(&conf) {
                Ok(text) => {
                    let (interface, unicast_src_ip, unicast_peers) = parse_keepalived_conf(&text);
                    f.keepalived = Some(Keepalived {
                        pid,
                        config: conf.display().to_string(),
                        interface,
                        unicast_src_ip,
                        unicast_peers,
                    });
                }
                Err(e) => f.errors.push(format!(
                    "keepalived (pid {pid}) config {}: {e}",
                    conf.display()
                )),
            }
        }
        Ok(None) => {}
        Err(e) => f.errors.push(e),
    }
    match crate::probes::certificate::observe(&config.certificate.path) {
        Ok(c) => {
            f.certificate = Some(Certificate {
                path: config.certificate.path.display().to_string(),
                subject: c.subject,
                not_after_unix_ms: c.not_after * 1000,
            })
        }
        Err(e) => f.errors.push(e),
    }
    f
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mountinfo_keeps_real_file_systems_and_decodes_escapes() {
        let t = "22 1 259:2 / / rw,relatime shared:1 - ext4 /dev/nvme0n1p2 rw\n\
                 23 22 0:21 / /proc rw,nosuid shared:5 - proc proc rw\n\
                 40 22 259:3 / /data/jetstream rw,noatime shared:20 - xfs /dev/nvme1n1 rw\n\
                 41 22 8:17 / /artifacts ro,noatime shared:21 - ext4 /dev/sdb1 rw\n\
                 42 22 0:40 / /opt/my\\040dir rw - tmpfs tmpfs rw\n";
        let m = parse_mountinfo(t);
        let points: Vec<&str> = m.iter().map(|m| m.mount_point.as_str()).collect();
        assert_eq!(
            points,
            vec!["/", "/data/jetstream", "/artifacts", "/opt/my dir"]
        );
        assert!(m[2].read_only && !m[1].read_only);
        assert_eq!(
            (m[1].fs_type.as_str(), m[1].source.as_str()),
            ("xfs", "/dev/nvme1n1")
        );
    }

    #[test]
    fn keepalived_conf_unicast_settings_of_the_first_instance() {
        let conf = "global_defs {\n  notify_fifo /run/x.fifo\n}\n\
            vrrp_script bsfg_jetstream_ok {\n  script \"/bin/check\"\n  interval 1\n}\n\
            vrrp_instance bsfg_plant-a {\n  interface eno1\n  state BACKUP\n  # unicast_peer { 1.1.1.1 }\n\
              unicast_src_ip 10.20.0.11\n  unicast_peer {\n    10.20.0.12\n  }\n\
              virtual_ipaddress {\n    10.20.0.100/24 dev eno1\n  }\n  track_script {\n    bsfg_jetstream_ok\n  }\n}\n";
        let (i, s, p) = parse_keepalived_conf(conf);
        assert_eq!(i.as_deref(), Some("eno1"));
        assert_eq!(s.as_deref(), Some("10.20.0.11"));
        assert_eq!(p, vec!["10.20.0.12"]);
        assert_eq!(
            parse_keepalived_conf("vrrp_instance x { interface e0 }\n").2,
            Vec::<String>::new()
        );
    }

    #[test]
    fn keepalived_config_file_from_its_arguments() {
        let argv = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(
            keepalived_config_from_argv(&argv(&["keepalived", "-n", "-f", "/run/a.conf"])),
            PathBuf::from("/run/a.conf")
        );
        assert_eq!(
            keepalived_config_from_argv(&argv(&["keepalived", "--use-file=/b.conf"])),
            PathBuf::from("/b.conf")
        );
        assert_eq!(
            keepalived_config_from_argv(&argv(&["keepalived", "-f/c.conf"])),
            PathBuf::from("/c.conf")
        );
        assert_eq!(
            keepalived_config_from_argv(&argv(&["keepalived", "--dont-fork"])),
            PathBuf::from("/etc/keepalived/keepalived.conf")
        );
    }

    #[test]
    fn systemd_exec_start_path() {
        let show = "{ path=/nix/store/9ryh3i2k0z2wmx1rzb1mfb7s1rd8q2a1-bsfg-controller-0.1.0/bin/bsfg-controller ; argv[]=/nix/store/9ryh3i2k0z2wmx1rzb1mfb7s1rd8q2a1-bsfg-controller-0.1.0/bin/bsfg-controller --config /etc/bsfg/controller.toml ; ignore_errors=no ; start_time=[n/a] ; stop_time=[n/a] ; pid=0 ; code=(null) ; status=0/0 }\n";
        assert_eq!(
            exec_start_path(show).as_deref(),
            Some(
                "/nix/store/9ryh3i2k0z2wmx1rzb1mfb7s1rd8q2a1-bsfg-controller-0.1.0/bin/bsfg-controller"
            )
        );
        assert_eq!(exec_start_path(""), None);
    }
}
