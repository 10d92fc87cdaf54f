//! The zone as the pure zone library (`modules/lib/simulator.nix`) computes
//! it: every address, port, VRRP setting and daemon configuration the
//! simulator uses comes from here, so a drill runs exactly what the NixOS
//! modules deploy. Only the fields the simulator reads are typed; the daemon
//! configurations arrive as the library's rendered text (`configText`),
//! written out byte for byte, and daemons start with the argv of the
//! library's unit definitions (`units`).

use anyhow::{Context, Result, bail};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::Command;

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ZoneSpec {
    pub zone: String,
    pub tier: String,
    pub vip: Vip,
    pub vrrp: Vrrp,
    pub ports: Ports,
    pub management_network: String,
    pub lease: Lease,
    pub by_role: ByRole,
    /// Every certificate the zone needs and where each host reads it
    /// (modules/lib/pki.nix), issued by [`super::credentials`].
    pub pki: bsfg_pki::Plan,
    pub hosts: BTreeMap<String, HostSpec>,
    /// Prometheus' scrape job of gamma's service probe
    /// (modules/lib/probe.nix `scrapeConfig`); `None`: the zone has no probe.
    pub probe_scrape_config: Option<serde_json::Value>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Vip {
    pub address: Ipv4Addr,
    pub prefix_length: u8,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Vrrp {
    pub advert_interval_ms: u64,
    pub version: u8,
    pub router_id: u8,
}

#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Ports {
    pub agent_management: u16,
    pub controller: u16,
    pub controller_management: u16,
    pub nats_client: u16,
    pub nats_cluster: u16,
    pub nats_monitor: u16,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Lease {
    pub bucket: String,
    pub ttl: String,
    pub renew_interval: String,
    pub safety_margin: String,
}

#[derive(Debug, Clone, Deserialize)]
pub struct ByRole {
    pub alpha: String,
    pub beta: String,
    pub gamma: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HostSpec {
    pub name: String,
    pub role: String,
    pub address: Ipv4Addr,
    pub prefix_length: u8,
    pub interface: String,
    pub management_address: Ipv4Addr,
    pub management_interface: String,
    pub runs: Runs,
    pub paths: Paths,
    pub ports: Ports,
    pub nats: Nats,
    pub keepalived: Option<Keepalived>,
    pub controller: Option<Configured>,
    pub gate_agent: Option<Configured>,
    pub units: Units,
    pub firewall: Firewall,
    pub chrony: Chrony,
    /// gamma's service probe (modules/lib/probe.nix); `None` elsewhere.
    pub probe: Option<Probe>,
    /// The host's node exporter (modules/lib/node-exporter.nix).
    pub node_exporter: NodeExporter,
}

/// The node exporter every host runs: where it listens and the arguments
/// nixpkgs' unit passes it (`--collector.<each>`, `--web.listen-address`,
/// the flags), which the simulator hands Debian's node exporter.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NodeExporter {
    pub listen: ProbeListen,
    pub enabled_collectors: Vec<String>,
    pub extra_flags: Vec<String>,
    pub args: Vec<String>,
}

/// The blackbox exporter gamma runs: where it listens and the rendered
/// configuration (its client certificate at `paths.probe`).
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Probe {
    pub identity: String,
    pub listen: ProbeListen,
    pub config_text: String,
    /// What each check dials: `grpc` (host:port), `connect` (a URL).
    pub targets: BTreeMap<String, String>,
    /// Each check's module (the `module` parameter of `/probe`).
    pub modules: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct ProbeListen {
    pub address: Ipv4Addr,
    pub port: u16,
}

/// chrony as the host runs it (modules/lib/network.nix): the site's
/// servers, the other two hosts as peers, orphan mode (`extraConfig`).
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Chrony {
    pub servers: Vec<String>,
    pub peers: Vec<Ipv4Addr>,
    pub extra_config: String,
}

/// The host's nftables rules (modules/lib/firewall.nix): the NixOS
/// firewall's table with the zone's rules in it, loaded into the host's
/// namespace.
#[derive(Debug, Clone, Deserialize)]
pub struct Firewall {
    pub ruleset: String,
}

/// The library's systemd unit definitions (modules/lib/units.nix); the
/// simulator starts its daemons with their ExecStart argv.
#[derive(Debug, Clone, Deserialize)]
pub struct Units {
    pub nats: Unit,
    #[serde(rename = "bsfg-gate-agent")]
    pub gate_agent: Option<Unit>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Unit {
    pub argv: Vec<String>,
    /// The unit's `[Service]` directives (the gate agent's restart policy
    /// is read from here).
    #[serde(default)]
    pub service_config: serde_json::Value,
}

/// How the gate agent's unit restarts it (systemd `Restart=always` with
/// `RestartSec=`, `RestartSteps=`, `RestartMaxDelaySec=`), in seconds.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AgentUnit {
    pub restart_sec: f64,
    pub restart_steps: u32,
    pub restart_max_delay_sec: Option<f64>,
}

impl AgentUnit {
    /// From a unit's `serviceConfig`; systemd's defaults (100 ms, no
    /// steps) where a directive is absent.
    pub fn from_service_config(sc: &serde_json::Value) -> AgentUnit {
        let seconds = |key: &str| {
            sc.get(key).and_then(|v| match v {
                serde_json::Value::Number(n) => n.as_f64(),
                serde_json::Value::String(t) => humantime::parse_duration(t)
                    .ok()
                    .map(|d| d.as_secs_f64())
                    .or_else(|| t.parse().ok()),
                _ => None,
            })
        };
        AgentUnit {
            restart_sec: seconds("RestartSec").unwrap_or(0.1),
            restart_steps: sc
                .get("RestartSteps")
                .and_then(|v| v.as_u64().or_else(|| v.as_str()?.parse().ok()))
                .unwrap_or(0) as u32,
            restart_max_delay_sec: seconds("RestartMaxDelaySec"),
        }
    }
}

impl HostSpec {
    /// The gate agent unit's restart policy, as the library renders it.
    pub fn agent_unit(&self) -> AgentUnit {
        AgentUnit::from_service_config(
            self.units
                .gate_agent
                .as_ref()
                .map_or(&serde_json::Value::Null, |u| &u.service_config),
        )
    }
}

#[derive(Debug, Clone, Copy, Deserialize)]
pub struct Runs {
    pub nats: bool,
    pub keepalived: bool,
    #[serde(rename = "gateAgent")]
    pub gate_agent: bool,
    pub controller: bool,
    pub artifacts: bool,
    #[serde(default)]
    pub probe: bool,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Paths {
    pub agent_config: PathBuf,
    pub agent_runtime: PathBuf,
    pub artifacts: PathBuf,
    pub controller_config: PathBuf,
    pub jetstream: PathBuf,
    pub opt: PathBuf,
    pub tls: TlsPaths,
    /// nats-server's route certificate, key and the zone CA (cluster.tls).
    pub nats_route: TlsPaths,
    /// The service probe's client certificate, key and the zone CA.
    pub probe: Option<TlsPaths>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TlsPaths {
    pub ca: PathBuf,
    pub certificate: PathBuf,
    pub private_key: PathBuf,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Nats {
    /// nats-server configuration, as data.
    pub settings: serde_json::Value,
    /// The same as the file the appliance runs (nats-server reads JSON).
    pub config_text: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Keepalived {
    pub config_text: String,
    pub instance: String,
    pub interface: String,
    pub priority: u8,
    pub advert_interval_ms: u64,
    pub notify_fifo: PathBuf,
    pub track_file: TrackFile,
    pub check_script: CheckScript,
    pub unicast_src_ip: Ipv4Addr,
    pub unicast_peers: Vec<Ipv4Addr>,
    /// Seconds after boot before keepalived starts (the appliance's
    /// keepalived-boot-delay timer).
    pub boot_delay_seconds: u64,
}

#[derive(Debug, Clone, Deserialize)]
pub struct TrackFile {
    pub path: PathBuf,
}

#[derive(Debug, Clone, Deserialize)]
pub struct CheckScript {
    pub argv: Vec<String>,
    pub user: String,
}

/// A daemon configuration computed by the library (controller, gate agent).
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Configured {
    pub config: serde_json::Value,
    /// The TOML file, rendered by the library (the appliance's bytes).
    pub config_text: String,
}

/// Absolute paths of our binaries, passed to the library as `binaries`.
#[derive(Debug, Clone)]
pub struct Binaries {
    pub controller: PathBuf,
    pub gate_agent: PathBuf,
    pub nats_server: PathBuf,
}

/// The NATS system user the simulator makes for an instance and passes to
/// the library (`natsSystemUser` of modules/lib/simulator.nix): it replaces
/// the zone description's, whose password only the zone's operator knows.
#[derive(Debug, Clone)]
pub struct NatsSystemUser {
    /// The zone-wide copy of the password (the operator's file on NixOS).
    pub password_file: PathBuf,
    /// bcrypt of the password: what nats-server's configuration holds.
    pub password_hash: String,
}

/// The NATS users handed to the library (`natsSystemUser`, `natsUsers`).
#[derive(Debug, Clone)]
pub struct NatsUsers {
    pub system: NatsSystemUser,
    pub controller: NatsSystemUser,
    pub gate_agent: NatsSystemUser,
    /// The snapshots' user (`nats.users.backup`); its password stays in
    /// the zone-wide file, read by the drills' `bsfgctl backup`/`restore`.
    pub backup: NatsSystemUser,
}

/// Where one host's daemons read their NATS passwords.
#[derive(Debug, Default)]
pub struct PasswordFiles {
    pub system: Option<PathBuf>,
    pub controller: Option<PathBuf>,
    pub gate_agent: Option<PathBuf>,
}

/// A Nix string literal for `s` (JSON escapes are Nix escapes; `${` must not
/// start an interpolation).
pub fn nix_string(s: &str) -> String {
    serde_json::to_string(s)
        .expect("a string serialises")
        .replace("${", "\\${")
}

/// Evaluates `expr` with `nix-instantiate --eval --strict --json` (the zone
/// library's entry points); `what` names it when it is rejected.
pub fn eval_json(expr: &str, what: &str) -> Result<Vec<u8>> {
    let out = Command::new("nix-instantiate")
        .args(["--eval", "--strict", "--json", "-E", expr])
        .output()
        .context("running nix-instantiate (Debian package nix-bin; scripts/zone installs it)")?;
    if !out.status.success() {
        bail!("{what}: {}", String::from_utf8_lossy(&out.stderr).trim());
    }
    Ok(out.stdout)
}

/// ` natsSystemUser = {...}; natsUsers = {...};` (or nothing): the users'
/// arguments of modules/lib/simulator.nix and container.nix.
pub fn users_arguments(users: Option<&NatsUsers>) -> String {
    let user = |u: &NatsSystemUser| {
        format!(
            "{{ passwordFile = {}; passwordHash = {}; }}",
            nix_string(&u.password_file.display().to_string()),
            nix_string(&u.password_hash)
        )
    };
    users
        .map(|u| {
            format!(
                " natsSystemUser = {}; natsUsers = {{ controller = {}; gateAgent = {}; backup = {}; }};",
                user(&u.system),
                user(&u.controller),
                user(&u.gate_agent),
                user(&u.backup)
            )
        })
        .unwrap_or_default()
}

/// The expression the simulator evaluates (exactly the entry point of
/// modules/lib/README.md, with our absolute paths).
pub fn expression(
    repo: &Path,
    zone_file: &Path,
    run_dir: &Path,
    bins: &Binaries,
    users: Option<&NatsUsers>,
) -> String {
    let p = |p: &Path| nix_string(&p.display().to_string());
    let system_user = users_arguments(users);
    format!(
        "import {lib} {{ zoneFile = {zone}; runDir = {run}; binaries = {{ controller = {c}; gateAgent = {g}; natsServer = {n}; }};{system_user} }}",
        lib = p(&repo.join("modules/lib/simulator.nix")),
        zone = p(zone_file),
        run = p(run_dir),
        c = p(&bins.controller),
        g = p(&bins.gate_agent),
        n = p(&bins.nats_server),
    )
}

impl ZoneSpec {
    /// Evaluates the zone library with `nix-instantiate --eval --strict --json`.
    pub fn evaluate(
        repo: &Path,
        zone_file: &Path,
        run_dir: &Path,
        bins: &Binaries,
        users: Option<&NatsUsers>,
    ) -> Result<ZoneSpec> {
        let expr = expression(repo, zone_file, run_dir, bins, users);
        let json = eval_json(
            &expr,
            &format!("the zone library rejected {}", zone_file.display()),
        )?;
        ZoneSpec::from_json(&json)
    }

    /// Parses and checks the zone library's JSON output.
    pub fn from_json(json: &[u8]) -> Result<ZoneSpec> {
        let spec: ZoneSpec = serde_json::from_slice(json)
            .context("the zone library's output does not have the documented shape")?;
        spec.check()?;
        Ok(spec)
    }

    fn check(&self) -> Result<()> {
        for name in [&self.by_role.alpha, &self.by_role.beta, &self.by_role.gamma] {
            let h = self
                .hosts
                .get(name)
                .with_context(|| format!("byRole names host {name}, which is not in hosts"))?;
            if h.runs.keepalived != h.keepalived.is_some()
                || h.runs.gate_agent != h.gate_agent.is_some()
                || h.runs.gate_agent != h.units.gate_agent.is_some()
                || h.runs.controller != h.controller.is_some()
            {
                bail!("host {name}: `runs` does not match the configurations present");
            }
        }
        Ok(())
    }

    pub fn alpha(&self) -> &HostSpec {
        &self.hosts[&self.by_role.alpha]
    }

    /// Alpha's controller configuration: what the zone's controllers serve.
    pub fn controller_config(&self) -> Result<&serde_json::Value> {
        self.alpha()
            .controller
            .as_ref()
            .map(|c| &c.config)
            .context("alpha has no controller configuration")
    }

    pub fn beta(&self) -> &HostSpec {
        &self.hosts[&self.by_role.beta]
    }

    pub fn gamma(&self) -> &HostSpec {
        &self.hosts[&self.by_role.gamma]
    }

    pub fn host(&self, name: &str) -> &HostSpec {
        &self.hosts[name]
    }

    /// Alpha and Beta: the hosts that run keepalived, the agent and the controller.
    pub fn service_hosts(&self) -> [&str; 2] {
        [&self.by_role.alpha, &self.by_role.beta]
    }

    /// Every host, in role order alpha, beta, gamma.
    pub fn host_names(&self) -> [&str; 3] {
        [&self.by_role.alpha, &self.by_role.beta, &self.by_role.gamma]
    }

    /// The address the client namespace takes: the highest free host address
    /// of alpha's subnet (not a zone host, not the VIP).
    pub fn client_address(&self) -> Result<Ipv4Addr> {
        self.free_service_addresses()?
            .next()
            .context("no free address for the client namespace in alpha's subnet")
    }

    /// The operator's address on the service network (the management
    /// namespace is an operator's workstation: on both networks): the
    /// next free address below the client's.
    pub fn operator_service_address(&self) -> Result<Ipv4Addr> {
        self.free_service_addresses()?
            .nth(1)
            .context("no free address for the management namespace in alpha's subnet")
    }

    /// Free host addresses of alpha's subnet (not a zone host, not the
    /// VIP), highest first.
    fn free_service_addresses(&self) -> Result<impl Iterator<Item = Ipv4Addr>> {
        let a = self.alpha();
        let prefix = u32::from(a.prefix_length);
        if !(8..=30).contains(&prefix) {
            bail!("alpha's prefix length /{prefix} leaves no room for a client address");
        }
        let mask = u32::MAX << (32 - prefix);
        let network = u32::from(a.address) & mask;
        let broadcast = network | !mask;
        let taken: Vec<u32> = self
            .hosts
            .values()
            .flat_map(|h| [u32::from(h.address), u32::from(h.management_address)])
            .chain([u32::from(self.vip.address)])
            .collect();
        Ok((network + 1..broadcast)
            .rev()
            .filter(move |c| !taken.contains(c))
            .map(Ipv4Addr::from))
    }

    /// The management network (`managementNetwork`) as address and prefix.
    pub fn management_subnet(&self) -> Result<(Ipv4Addr, u8)> {
        let (a, p) = self
            .management_network
            .split_once('/')
            .context("managementNetwork is not a CIDR")?;
        Ok((a.parse()?, p.parse()?))
    }

    /// Whether the management network is a segment of its own (hosts'
    /// management addresses outside the service subnet).
    pub fn separate_management(&self) -> bool {
        let a = self.alpha();
        let mask = u32::MAX << (32 - u32::from(a.prefix_length));
        self.hosts
            .values()
            .any(|h| u32::from(h.management_address) & mask != u32::from(a.address) & mask)
    }

    /// The operators' and Prometheus' address on a separate management
    /// network: its highest free host address.
    pub fn operator_address(&self) -> Result<(Ipv4Addr, u8)> {
        let (net, prefix) = self.management_subnet()?;
        let mask = u32::MAX << (32 - u32::from(prefix));
        let network = u32::from(net) & mask;
        let taken: Vec<u32> = self
            .hosts
            .values()
            .map(|h| u32::from(h.management_address))
            .collect();
        (network + 1..(network | !mask))
            .rev()
            .find(|c| !taken.contains(c))
            .map(|a| (Ipv4Addr::from(a), prefix))
            .context("no free address for the management namespace")
    }

    /// Where the controller of `host` reads the NATS system user's password
    /// (`nats.system_user_password_file` of its configuration), if it does.
    pub fn system_password_file(&self, host: &str) -> Option<PathBuf> {
        self.password_files(host).system
    }

    /// Where `host`'s controller and gate agent read their NATS passwords.
    pub fn password_files(&self, host: &str) -> PasswordFiles {
        let h = self.host(host);
        let at = |config: Option<&serde_json::Value>, pointer: &str| {
            config?.pointer(pointer)?.as_str().map(PathBuf::from)
        };
        let controller = h.controller.as_ref().map(|c| &c.config);
        let agent = h.gate_agent.as_ref().map(|a| &a.config);
        PasswordFiles {
            system: at(controller, "/nats/system_user_password_file"),
            controller: at(controller, "/nats/password_file"),
            gate_agent: at(agent, "/nats/password_file"),
        }
    }

    /// The controller endpoint producers use: `https://<VIP>:<port>`.
    pub fn endpoint(&self) -> String {
        format!("https://{}:{}", self.vip.address, self.ports.controller)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nix_strings_escape_quotes_and_interpolation() {
        assert_eq!(nix_string("/run/x"), "\"/run/x\"");
        assert_eq!(nix_string("a\"b"), "\"a\\\"b\"");
        assert_eq!(nix_string("${x}"), "\"\\${x}\"");
    }

    #[test]
    fn the_expression_names_the_entry_point_and_every_argument() {
        let e = expression(
            Path::new("/repo"),
            Path::new("/repo/hosts/zone.nix"),
            Path::new("/run/z"),
            &Binaries {
                controller: "/bin/c".into(),
                gate_agent: "/bin/g".into(),
                nats_server: "/bin/n".into(),
            },
            None,
        );
        assert_eq!(
            e,
            "import \"/repo/modules/lib/simulator.nix\" { zoneFile = \"/repo/hosts/zone.nix\"; \
             runDir = \"/run/z\"; binaries = { controller = \"/bin/c\"; gateAgent = \"/bin/g\"; \
             natsServer = \"/bin/n\"; }; }"
        );
        let e = expression(
            Path::new("/repo"),
            Path::new("/repo/hosts/zone.nix"),
            Path::new("/run/z"),
            &Binaries {
                controller: "/bin/c".into(),
                gate_agent: "/bin/g".into(),
                nats_server: "/bin/n".into(),
            },
            Some(&NatsUsers {
                system: NatsSystemUser {
                    password_file: "/run/z/nats-system-password".into(),
                    password_hash: "$2b$11$x".into(),
                },
                controller: NatsSystemUser {
                    password_file: "/run/z/c".into(),
                    password_hash: "$2b$11$c".into(),
                },
                gate_agent: NatsSystemUser {
                    password_file: "/run/z/g".into(),
                    password_hash: "$2b$11$g".into(),
                },
                backup: NatsSystemUser {
                    password_file: "/run/z/b".into(),
                    password_hash: "$2b$11$b".into(),
                },
            }),
        );
        assert!(
            e.ends_with(
                "natsSystemUser = { passwordFile = \"/run/z/nats-system-password\"; passwordHash = \"$2b$11$x\"; }; \
                 natsUsers = { controller = { passwordFile = \"/run/z/c\"; passwordHash = \"$2b$11$c\"; }; \
                 gateAgent = { passwordFile = \"/run/z/g\"; passwordHash = \"$2b$11$g\"; }; \
                 backup = { passwordFile = \"/run/z/b\"; passwordHash = \"$2b$11$b\"; }; }; }"
            ),
            "{e}"
        );
    }
}
