//! One simulated zone: its namespaces, files, certificates and daemons, and
//! the operations drills perform on it (crash, restore, partition, kill one
//! daemon, take away a gate).

mod containers;
mod daemons;
mod faults;
mod observation;

use crate::container::Init;
use crate::netns::runtime::NetnsRuntime;
use crate::netns::{self, nft};
use crate::state::{self, State};
use crate::zone::cli_files::write_cli_files;
use crate::zone::credentials::Credentials;
use crate::zone::files::{self, HostDirs};
use crate::zone::keepalived_script::{ensure_script_user, script_path_is_usable};
use crate::zone::nats_users::ZoneNatsUsers;
use crate::zone::options::Options;
use crate::zone::progress::Progress;
use crate::zone::spec::{Binaries, ZoneSpec};
use crate::zone::tools::Tools;
use crate::zone::workload::{self, Workload};
use anyhow::{Context, Result, bail};
use bsfg_core::config::TlsFiles;
use std::collections::{BTreeMap, BTreeSet};
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

/// A running (or being built) zone instance.
pub struct Zone {
    pub instance: String,
    pub spec: ZoneSpec,
    pub workload: Workload,
    pub run_dir: PathBuf,
    pub progress: Progress,
    creds: Option<Credentials>,
    tools: Tools,
    state: Mutex<State>,
    runtimes: Mutex<BTreeMap<String, Arc<NetnsRuntime>>>,
    crashed: Mutex<BTreeSet<String>>,
    /// The systemd mode's root and container view (None: process mode).
    containers: Option<containers::Containers>,
    owned: bool,
}

pub use containers::{BOOT_TIMEOUT, unit_of};

impl std::fmt::Debug for Zone {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Zone")
            .field("instance", &self.instance)
            .field("run_dir", &self.run_dir)
            .finish_non_exhaustive()
    }
}

/// Root is needed for namespaces, keepalived and useradd.
pub fn require_root() -> Result<()> {
    if !rustix::process::geteuid().is_root() {
        bail!(
            "the zone simulator needs root (network namespaces, keepalived); \
             run it as root, or with sudo: sudo env PATH=\"$PATH\" ./scripts/zone up"
        );
    }
    Ok(())
}

impl Zone {
    /// Builds a new instance: run directory, files, certificates, namespaces
    /// and links. No daemon runs yet ([`Zone::boot`] starts them). The
    /// instance is removed again when the `Zone` is dropped, unless
    /// [`Zone::keep`] was called.
    pub fn create(opts: &Options) -> Result<Zone> {
        require_root()?;
        netns::check_instance_name(&opts.instance)?;
        let progress = Progress::new(opts.quiet);
        let run_dir = opts.run_dir();
        if let Some(s) = State::load(&run_dir)? {
            if s.anything_running() {
                bail!(
                    "instance {} is already up ({}); `status` shows it, `down` removes it",
                    opts.instance,
                    run_dir.display()
                );
            }
            progress.say(format!(
                "removing the leftovers of a previous {} run",
                opts.instance
            ));
        }
        state::teardown(&opts.instance, &run_dir)?;
        let mut tools = Tools::find(opts.bin_dir.as_deref())?;
        files::mkdir(&opts.run_root)?;
        files::mkdir(&run_dir)?;
        let st = State {
            instance: opts.instance.clone(),
            run_dir: run_dir.clone(),
            zone_file: opts.zone_file.clone(),
            created_by_pid: std::process::id(),
            created_unix_ms: bsfg_core::clock::unix_ms(),
            init: opts.init,
            ..Default::default()
        };
        st.save()?;
        // From here on a failure removes what was made.
        let mut guard = TeardownGuard {
            instance: opts.instance.clone(),
            run_dir: run_dir.clone(),
            armed: true,
        };
        if !script_path_is_usable(&tools.gate_agent) {
            // keepalived would refuse (or fail) to run the check from there.
            let bin = run_dir.join("bin");
            files::mkdir(&bin)?;
            let copy = bin.join("bsfg-gate-agent");
            std::fs::copy(&tools.gate_agent, &copy)
                .with_context(|| format!("copying {}", tools.gate_agent.display()))?;
            std::fs::set_permissions(&copy, std::fs::Permissions::from_mode(0o755))?;
            if !script_path_is_usable(&copy) {
                bail!(
                    "keepalived's script user could not run the gate agent's check from {} either: \
                     every directory above it must be root-owned, not group/other-writable and \
                     searchable by others",
                    copy.display()
                );
            }
            progress.say(format!(
                "{} is not root-owned and reachable all the way up (keepalived's script security); using a copy in {}",
                tools.gate_agent.display(),
                bin.display()
            ));
            tools.gate_agent = copy;
        }
        let bins = Binaries {
            controller: tools.controller.clone(),
            gate_agent: tools.gate_agent.clone(),
            nats_server: tools.nats_server.clone(),
        };
        // The NATS users (the controller's, the agent's and the system
        // user for the meta-leader step-down): made here, their bcrypt
        // hashes handed to the library for nats-server's configuration, the
        // passwords written where each daemon reads its own.
        let nats_users = ZoneNatsUsers::generate(&run_dir);
        progress.say(format!(
            "evaluating the zone library for {}",
            opts.zone_file.display()
        ));
        let spec = ZoneSpec::evaluate(
            &opts.repo,
            &opts.zone_file,
            &run_dir,
            &bins,
            Some(&nats_users.arg),
        )?;
        let workload = workload::derive(spec.controller_config()?)?;
        for h in spec.service_hosts() {
            if let Some(k) = &spec.host(h).keepalived {
                ensure_script_user(&k.check_script.user, &progress)?;
            }
        }
        for h in spec.host_names() {
            files::write_host(spec.host(h), &HostDirs::new(&run_dir, h))?;
        }
        let containers = match opts.init {
            Init::Process => None,
            Init::Systemd => Some(containers::Containers::prepare(
                opts,
                &run_dir,
                &bins,
                Some(&nats_users.arg),
                &|m| progress.say(m),
            )?),
        };
        nats_users.write(&spec)?;
        progress.say("making the zone CA and issuing the zone certificate plan (bsfg-pki)");
        let creds = match &containers {
            None => Credentials::create(&spec.pki, None, &workload, &run_dir)?,
            // The appliance's paths, in the tree the containers bind from.
            Some(c) => {
                for h in c.spec.hosts.values() {
                    nats_users.write_to(&h.password_files)?;
                }
                Credentials::create(&c.spec.pki, Some(&c.spec.staging), &workload, &run_dir)?
            }
        };
        write_cli_files(opts, &spec, &workload, &run_dir, &progress)?;
        guard.armed = false;
        // From here on the Zone's Drop removes the instance.
        let zone = Zone {
            instance: opts.instance.clone(),
            spec,
            workload,
            run_dir,
            progress,
            creds: Some(creds),
            tools,
            state: Mutex::new(st),
            runtimes: Mutex::new(BTreeMap::new()),
            crashed: Mutex::new(BTreeSet::new()),
            containers,
            owned: true,
        };
        zone.build_network()?;
        if zone.containers.is_some() {
            zone.write_containers()?;
        }
        Ok(zone)
    }

    /// The zone-wide copy of the backup user's password
    /// (`nats.users.backup`, [`ZoneNatsUsers`]).
    pub fn backup_password_file(&self) -> PathBuf {
        self.run_dir.join("nats-backup-password")
    }

    /// Attaches to an instance that is up (status, append, down).
    pub fn attach(opts: &Options) -> Result<Zone> {
        require_root()?;
        netns::check_instance_name(&opts.instance)?;
        let run_dir = opts.run_dir();
        let st = State::load(&run_dir)?.with_context(|| {
            format!(
                "instance {} is not up (no {}); start it with `up`",
                opts.instance,
                State::path(&run_dir).display()
            )
        })?;
        let tools = Tools::find(opts.bin_dir.as_deref())?;
        let gate_agent = {
            let copy = run_dir.join("bin/bsfg-gate-agent");
            if copy.is_file() {
                copy
            } else {
                tools.gate_agent.clone()
            }
        };
        let bins = Binaries {
            controller: tools.controller.clone(),
            gate_agent,
            nats_server: tools.nats_server.clone(),
        };
        // Without the system user: attaching writes no configuration, and
        // the addresses, ports and paths do not depend on it.
        let spec = ZoneSpec::evaluate(&opts.repo, &st.zone_file, &run_dir, &bins, None)?;
        let workload = workload::derive(spec.controller_config()?)?;
        let containers = match st.init {
            Init::Process => None,
            Init::Systemd => {
                let o = Options {
                    zone_file: st.zone_file.clone(),
                    ..opts.clone()
                };
                Some(containers::Containers::prepare(
                    &o,
                    &run_dir,
                    &bins,
                    None,
                    &|_| {},
                )?)
            }
        };
        Ok(Zone {
            instance: opts.instance.clone(),
            spec,
            workload,
            run_dir,
            progress: Progress::new(opts.quiet),
            creds: None,
            tools,
            state: Mutex::new(st),
            runtimes: Mutex::new(BTreeMap::new()),
            crashed: Mutex::new(BTreeSet::new()),
            containers,
            owned: false,
        })
    }

    /// Leaves the instance running when this `Zone` is dropped (`up`).
    pub fn keep(&mut self) {
        self.owned = false;
    }

    pub fn ns(&self, what: &str) -> String {
        netns::ns_name(&self.instance, what)
    }

    pub(crate) fn record_ns(&self, ns: &str) -> Result<()> {
        self.state.lock().expect("state").add_namespace(ns)
    }

    fn build_network(&self) -> Result<()> {
        let switch = self.ns(netns::SWITCH);
        self.progress.say(format!(
            "creating namespaces {0}-alpha, {0}-beta, {0}-gamma, {0}-client and the switch {switch}",
            self.instance
        ));
        self.record_ns(&switch)?;
        netns::create_switch(&switch)?;
        if self.spec.separate_management() {
            netns::add_bridge(&switch, netns::MGMT_BRIDGE)?;
        }
        for h in self.spec.host_names() {
            let host = self.spec.host(h);
            let ns = self.ns(h);
            self.record_ns(&ns)?;
            netns::create(&ns)?;
            netns::plug(
                &ns,
                &host.interface,
                &format!("{}/{}", host.address, host.prefix_length),
                &switch,
                h,
            )?;
            if self.spec.separate_management() {
                // The management network: its own segment (bridge br1), its
                // own interface in the host.
                let (_, prefix) = self.spec.management_subnet()?;
                netns::plug_into(
                    &ns,
                    &host.management_interface,
                    &format!("{}/{prefix}", host.management_address),
                    &switch,
                    &format!("m-{h}"),
                    netns::MGMT_BRIDGE,
                )?;
            } else if host.management_address != host.address {
                netns::ip_in(
                    &ns,
                    &[
                        "addr",
                        "add",
                        &format!("{}/32", host.management_address),
                        "dev",
                        &host.interface,
                    ],
                )?;
            }
            // The appliance's firewall (modules/lib/firewall.nix), as the
            // NixOS nftables firewall would install it.
            nft::apply(&ns, &host.firewall.ruleset)
                .with_context(|| format!("loading {h}'s firewall"))?;
        }
        let client = self.ns(netns::CLIENT);
        self.record_ns(&client)?;
        netns::create(&client)?;
        netns::plug(
            &client,
            netns::CLIENT_IF,
            &format!(
                "{}/{}",
                self.spec.client_address()?,
                self.spec.alpha().prefix_length
            ),
            &switch,
            netns::CLIENT,
        )?;
        if self.spec.separate_management() {
            let mgmt = self.ns(netns::MGMT);
            self.record_ns(&mgmt)?;
            netns::create(&mgmt)?;
            let (addr, prefix) = self.spec.operator_address()?;
            netns::plug_into(
                &mgmt,
                netns::MGMT_IF,
                &format!("{addr}/{prefix}"),
                &switch,
                netns::MGMT,
                netns::MGMT_BRIDGE,
            )?;
            // An operator's workstation: also on the service network, for
            // the commissioning round trip through the VIP.
            netns::plug(
                &mgmt,
                netns::MGMT_SERVICE_IF,
                &format!(
                    "{}/{}",
                    self.spec.operator_service_address()?,
                    self.spec.alpha().prefix_length
                ),
                &switch,
                "m-operator",
            )?;
        }
        Ok(())
    }

    /// A thread running inside the namespace of `what` (a host or `client`).
    pub fn runtime(&self, what: &str) -> Result<Arc<NetnsRuntime>> {
        let mut map = self.runtimes.lock().expect("runtimes");
        if let Some(rt) = map.get(what) {
            return Ok(rt.clone());
        }
        let rt = Arc::new(NetnsRuntime::start(&self.ns(what))?);
        map.insert(what.to_owned(), rt.clone());
        Ok(rt)
    }

    pub fn host_dirs(&self, host: &str) -> HostDirs {
        HostDirs::new(&self.run_dir, host)
    }

    pub fn tools(&self) -> &Tools {
        &self.tools
    }

    pub fn credentials(&self) -> Option<&Credentials> {
        self.creds.as_ref()
    }

    /// The producer's and the reader's TLS files (written by `create`).
    pub fn client_tls(&self) -> (TlsFiles, TlsFiles) {
        let dir = self.run_dir.join("client");
        let files = |id: &str| TlsFiles {
            certificate: dir.join(format!("{id}.pem")),
            private_key: dir.join(format!("{id}.key")),
            ca: dir.join("ca.pem"),
        };
        (files(&self.workload.producer), files(&self.workload.reader))
    }

    pub fn state(&self) -> State {
        self.state.lock().expect("state").clone()
    }

    // ------------------------------------------------------------ teardown

    /// Removes the instance (processes, namespaces, run directory).
    pub fn teardown(&mut self) -> Result<state::Removed> {
        self.runtimes.lock().expect("runtimes").clear();
        self.owned = false;
        state::teardown(&self.instance, &self.run_dir)
    }
}

/// Removes a half-built instance when `create` fails before the `Zone` exists.
struct TeardownGuard {
    instance: String,
    run_dir: PathBuf,
    armed: bool,
}

impl Drop for TeardownGuard {
    fn drop(&mut self) {
        if self.armed
            && let Err(e) = state::teardown(&self.instance, &self.run_dir)
        {
            eprintln!("zonesim: removing instance {}: {e:#}", self.instance);
        }
    }
}

impl Drop for Zone {
    fn drop(&mut self) {
        if self.owned
            && let Err(e) = self.teardown()
        {
            eprintln!("zonesim: removing instance {}: {e:#}", self.instance);
        }
    }
}
