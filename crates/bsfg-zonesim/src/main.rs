//! `bsfg-zonesim`: see the crate documentation and docs/zone-simulator.md.

use anyhow::{Context, Result, bail};
use bsfg_client::{connect_grpc, pb};
use bsfg_zonesim::container::Init;
use bsfg_zonesim::drills::{self, Drill, DrillOptions};
use bsfg_zonesim::load::{self, LoadConfig};
use bsfg_zonesim::netns;
use bsfg_zonesim::observe::zone_status;
use bsfg_zonesim::report::{self, DrillReport};
use bsfg_zonesim::state;
use bsfg_zonesim::zone::{Options, Zone};
use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

/// The zone simulator: a real Triad-HA zone on this machine, in network
/// namespaces (alpha, beta, gamma, a client namespace, a switch), running
/// nats-server (3-node JetStream), keepalived and the gate agents, which
/// start the controllers. Every address, port and daemon configuration comes
/// from the pure zone library (modules/lib) evaluated for the zone file.
///
/// Needs root. Nothing is created outside the instance's namespaces and run
/// directory (/run/bsfg-zonesim/<instance>); `down` removes all of it, also
/// after this program crashed.
#[derive(Parser, Debug)]
#[command(version, about, long_about)]
struct Cli {
    /// Instance name (a-z, 0-9): prefixes the namespaces (<instance>-alpha)
    /// and names the run directory. Default: "triad"; drills use a fresh
    /// "d<pid>" instance each unless given.
    #[arg(long, global = true, env = "BSFG_ZONESIM_INSTANCE")]
    instance: Option<String>,

    /// The zone description (default: hosts/zone.nix of the repository).
    #[arg(long, global = true)]
    zone: Option<PathBuf>,

    /// The repository (for modules/lib/simulator.nix).
    #[arg(long, global = true, env = "BSFG_REPO")]
    repo: Option<PathBuf>,

    /// Where run directories live.
    #[arg(long, global = true, default_value = state::DEFAULT_RUN_ROOT)]
    run_root: PathBuf,

    /// Directory with bsfg-controller and bsfg-gate-agent (default:
    /// $BSFG_BIN_DIR, else next to this program).
    #[arg(long, global = true)]
    bin_dir: Option<PathBuf>,

    /// No progress lines on stderr.
    #[arg(long, short, global = true)]
    quiet: bool,

    /// What runs each host's daemons (`up`, `drill`): `process` (the
    /// simulator starts them itself; fast) or `systemd` (each host a
    /// systemd-nspawn container booting systemd 252 from a cached Debian
    /// root, running the appliance's own units from modules/lib; needs
    /// debootstrap and systemd-container, and builds the root once).
    #[arg(long, global = true, value_enum, default_value_t = Init::Process, env = "BSFG_ZONESIM_INIT")]
    init: Init,

    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Bring a zone up and print how to use it (does nothing if it is up).
    Up,
    /// Remove the instance: processes, namespaces, run directory.
    Down,
    /// VIP holder, VRRP states, gates, controllers, lease, JetStream leaders.
    Status {
        /// One JSON document instead of the table.
        #[arg(long)]
        json: bool,
    },
    /// Append one fact through the VIP (from the client namespace), retrying
    /// with the same message id until it is acknowledged.
    Append {
        #[arg(long)]
        message_id: String,
        /// Subject `kind:id` or `kind:scope/id` (default: <consumer kind>:zonesim/<message id>).
        #[arg(long)]
        subject: Option<String>,
        #[arg(long, default_value = "created")]
        predicate: String,
        #[arg(long, default_value = "{}")]
        object_json: String,
        /// Stream class (default: the class the zone's reading consumer reads).
        #[arg(long)]
        class: Option<String>,
    },
    /// Print facts from the zone's reading consumer (as its reader identity).
    Tail {
        #[arg(long, default_value_t = 20)]
        limit: u32,
        /// Confirm what was printed (advances the consumer's cursor).
        #[arg(long)]
        confirm: bool,
    },
    /// Print how to reach the zone (endpoint, certificates, commands).
    Usage,
    /// `systemd-analyze security` of every unit on every host (an
    /// instance started with `up --init systemd`).
    Security,
    /// Run a failure drill (or `all`) on a fresh instance and report.
    Drill {
        /// A drill name or `all`; `--list` shows them.
        name: Option<String>,
        /// One JSON object per run (a JSON array with --repeat or all).
        #[arg(long)]
        json: bool,
        /// Run each drill N times (soak, timing medians).
        #[arg(long, default_value_t = 1)]
        repeat: usize,
        /// List the drills.
        #[arg(long)]
        list: bool,
        /// Copy every host's logs into DIR/<instance>-<drill>/ before teardown.
        #[arg(long)]
        keep_logs: Option<PathBuf>,
        /// Concurrent producers of the load generator.
        #[arg(long, default_value_t = 6)]
        producers: usize,
        /// Run on the zone file with this durability tier instead of its
        /// own: standard (server default sync) or critical (sync_interval:
        /// always). The power-loss drills measure what each loses.
        #[arg(long, value_parser = ["standard", "critical"])]
        tier: Option<String>,
    },
}

fn options(cli: &Cli, default_instance: &str) -> Options {
    let mut o = Options::new(cli.instance.as_deref().unwrap_or(default_instance));
    if let Some(r) = &cli.repo {
        o.repo = r.clone();
        o.zone_file = r.join("hosts/zone.nix");
    }
    if let Some(z) = &cli.zone {
        o.zone_file = std::path::absolute(z).unwrap_or_else(|_| z.clone());
    }
    o.run_root = cli.run_root.clone();
    o.bin_dir = cli.bin_dir.clone();
    o.quiet = cli.quiet;
    o.init = cli.init;
    o
}

const DEFAULT_INSTANCE: &str = "triad";

fn main() -> ExitCode {
    let cli = Cli::parse();
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("bsfg-zonesim: {e}");
            return ExitCode::from(70);
        }
    };
    // Ctrl-C or SIGTERM drops the running command: a drill's or a booting
    // `up`'s instance is then removed by its Drop (an instance that is up
    // stays up).
    let interruptible = async {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
        tokio::select! {
            r = real_main(&cli) => r,
            _ = tokio::signal::ctrl_c() => bail!("interrupted"),
            _ = term.recv() => bail!("terminated"),
        }
    };
    match rt.block_on(interruptible) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("bsfg-zonesim: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn real_main(cli: &Cli) -> Result<ExitCode> {
    match &cli.command {
        Command::Up => up(cli).await,
        Command::Down => {
            let o = options(cli, DEFAULT_INSTANCE);
            bsfg_zonesim::zone::instance::require_root()?;
            netns::check_instance_name(&o.instance)?;
            let removed = state::teardown(&o.instance, &o.run_dir())?;
            if removed.namespaces.is_empty() && removed.run_dir.is_none() {
                println!("instance {} is not up; nothing to remove", o.instance);
            } else {
                println!(
                    "instance {} removed: {} processes, namespaces {}, {}",
                    o.instance,
                    removed.processes,
                    removed.namespaces.join(" "),
                    removed
                        .run_dir
                        .map(|d| d.display().to_string())
                        .unwrap_or_else(|| "no run directory".into())
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Status { json } => {
            let z = Zone::attach(&options(cli, DEFAULT_INSTANCE))?;
            let s = zone_status::collect(&z).await;
            if *json {
                println!("{}", serde_json::to_string_pretty(&s)?);
            } else {
                print!("{}", zone_status::render(&s));
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Security => {
            let z = Zone::attach(&options(cli, DEFAULT_INSTANCE))?;
            if z.init() != Init::Systemd {
                bail!(
                    "instance {} runs in the process mode; start it with `up --init systemd`",
                    z.instance
                );
            }
            for h in z.spec.host_names() {
                for (unit, report) in z.security(h)? {
                    let exposure = report
                        .lines()
                        .find(|l| l.contains("Overall exposure level"))
                        .unwrap_or("(no overall exposure line)")
                        .trim()
                        .to_owned();
                    println!("== {h} {unit}: {exposure}");
                    print!("{report}");
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Usage => {
            let z = Zone::attach(&options(cli, DEFAULT_INSTANCE))?;
            print!("{}", usage(&z));
            Ok(ExitCode::SUCCESS)
        }
        Command::Append {
            message_id,
            subject,
            predicate,
            object_json,
            class,
        } => {
            let z = Zone::attach(&options(cli, DEFAULT_INSTANCE))?;
            let mut req = load::fact_request(
                &z.workload,
                "cli",
                message_id,
                0,
                bsfg_core::clock::unix_ms(),
            );
            if let Some(c) = class {
                req.stream_class = c.clone();
            }
            if let Some(f) = req.fact.as_mut() {
                if let Some(s) = subject {
                    f.subject = s.clone();
                }
                f.predicate = predicate.clone();
                f.object_json = object_json.clone();
            }
            let (producer, _) = z.client_tls();
            let endpoint = z.spec.endpoint();
            let r = z
                .in_ns(netns::CLIENT, move || async move {
                    load::append_one(&endpoint, &producer, req, Duration::from_secs(30)).await
                })
                .await??;
            println!(
                "acknowledged: offset {}{}",
                r.offset,
                if r.duplicate {
                    " (duplicate: this message id was already stored)"
                } else {
                    ""
                }
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Tail { limit, confirm } => {
            let z = Zone::attach(&options(cli, DEFAULT_INSTANCE))?;
            let (_, reader) = z.client_tls();
            let endpoint = z.spec.endpoint();
            let consumer = z.workload.consumer.clone();
            let (limit, confirm) = (*limit, *confirm);
            let facts = z
                .in_ns(netns::CLIENT, move || async move {
                    let mut c = connect_grpc(&endpoint, &reader)?;
                    let facts = c
                        .fetch_facts(pb::FetchFactsRequest {
                            consumer_name: consumer.clone(),
                            limit,
                        })
                        .await?
                        .into_inner()
                        .facts;
                    if confirm && let Some(last) = facts.last() {
                        c.confirm_receipt(pb::ConfirmReceiptRequest {
                            consumer_name: consumer,
                            offset: last.offset,
                        })
                        .await?;
                    }
                    anyhow::Ok(facts)
                })
                .await??;
            for f in &facts {
                let fact = f.fact.clone().unwrap_or_default();
                let env = fact.envelope.unwrap_or_default();
                println!(
                    "{:>8}  {}  {}  {}  {}",
                    f.offset, env.message_id, fact.subject, fact.predicate, fact.object_json
                );
            }
            if facts.is_empty() {
                println!("(no facts after the consumer's cursor)");
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Drill {
            name,
            json,
            repeat,
            list,
            keep_logs,
            producers,
            tier,
        } => {
            if *list {
                for d in Drill::ALL {
                    println!("{:<24} {}", d.name(), d.about());
                }
                return Ok(ExitCode::SUCCESS);
            }
            let Some(name) = name else {
                bail!("which drill? `drill --list` shows them, `drill all` runs them all");
            };
            let selected: Vec<Drill> = if name == "all" {
                Drill::ALL
                    .into_iter()
                    .filter(|d| d.runs_under(cli.init))
                    .collect()
            } else {
                vec![Drill::parse(name)?]
            };
            let default = format!("d{}", std::process::id());
            let mut load = LoadConfig::new("drill");
            load.producers = *producers;
            let opts = DrillOptions {
                zone: options(cli, &default),
                load,
                keep_logs: keep_logs.clone(),
                keep_logs_on_failure_only: false,
                tier: tier.clone(),
            };
            let mut reports: Vec<DrillReport> = Vec::new();
            for round in 0..*repeat {
                for d in &selected {
                    if *repeat > 1 {
                        eprintln!("=== {} (run {} of {repeat})", d.name(), round + 1);
                    }
                    let r = drills::run(*d, &opts)
                        .await
                        .with_context(|| format!("drill {}", d.name()))?;
                    if !*json {
                        println!("{}", r.summary());
                    }
                    reports.push(r);
                }
            }
            if *json {
                if reports.len() == 1 {
                    println!("{}", serde_json::to_string_pretty(&reports[0])?);
                } else {
                    println!("{}", serde_json::to_string_pretty(&reports)?);
                }
            } else if reports.len() > 1 {
                println!("{}", report::table(&reports));
                if *repeat > 1 {
                    println!("{}", report::aggregate_table(&report::aggregate(&reports)));
                }
            }
            Ok(if reports.iter().all(|r| r.passed) {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            })
        }
    }
}

async fn up(cli: &Cli) -> Result<ExitCode> {
    let o = options(cli, DEFAULT_INSTANCE);
    bsfg_zonesim::zone::instance::require_root()?;
    if let Some(s) = state::State::load(&o.run_dir())?
        && s.anything_running()
    {
        let z = Zone::attach(&o)?;
        println!("instance {} is already up\n", o.instance);
        print!("{}", zone_status::render(&zone_status::collect(&z).await));
        println!();
        print!("{}", usage(&z));
        return Ok(ExitCode::SUCCESS);
    }
    let mut z = tokio::task::block_in_place(|| Zone::create(&o))?;
    z.boot(drills::BOOT_TIMEOUT).await?;
    z.keep();
    println!();
    print!("{}", zone_status::render(&zone_status::collect(&z).await));
    println!();
    print!("{}", usage(&z));
    Ok(ExitCode::SUCCESS)
}

/// `bsfgctl` next to the zone's other binaries, else from PATH.
fn bsfgctl_path(z: &Zone) -> String {
    z.tools()
        .controller
        .parent()
        .map(|d| d.join("bsfgctl"))
        .filter(|p| p.is_file())
        .map(|p| p.display().to_string())
        .unwrap_or_else(|| "bsfgctl".into())
}

fn usage(z: &Zone) -> String {
    let (producer, reader) = z.client_tls();
    let client = z.ns(netns::CLIENT);
    let mgmt = if z.spec.separate_management() {
        z.ns(netns::MGMT)
    } else {
        client.clone()
    };
    let w = &z.workload;
    let me = std::env::current_exe()
        .map(|p| p.display().to_string())
        .unwrap_or_else(|_| "bsfg-zonesim".into());
    let inst = if z.instance == DEFAULT_INSTANCE {
        String::new()
    } else {
        format!(" --instance {}", z.instance)
    };
    let endpoint = z.spec.endpoint();
    let [a, b, g] = z.spec.host_names();
    format!(
        "Zone {zone} is up: instance {inst_name}, run directory {run} (logs: <host>/logs/).\n\
         \n\
         endpoint   {endpoint}  (the VIP; reachable from namespace {client})\n\
         producer   {pid}: {pc} {pk}\n\
         reader     {rid} through consumer {consumer}: {rc} {rk}\n\
         zone CA    {ca}\n\
         \n\
         The commands run as root (prefix sudo env PATH=\"$PATH\" when you are not).\n\
         \n\
         Append and read (through the VIP, from the client namespace):\n\
         \x20 {me}{inst} append --message-id order-1 --object-json '{{\"qty\": 3}}'\n\
         \x20 {me}{inst} tail\n\
         With curl (Connect protocol, JSON):\n\
         \x20 ip netns exec {client} curl -sS --cacert {ca} --cert {pc} --key {pk} \\\n\
         \x20   -H 'Content-Type: application/json' {endpoint}/bsfg.v1.BoundaryService/AppendFact \\\n\
         \x20   -d '{{\"streamClass\":\"{class}\",\"fact\":{{\"envelope\":{{\"messageId\":\"order-2\",\"fromZone\":\"{zone}\",\"toZone\":\"{zone}\",\"producedAtUnixMs\":\"1780000000000\"}},\"subject\":\"{kind}:line-1/order-2\",\"predicate\":\"created\",\"objectJson\":\"{{}}\"}}}}'\n\
         With bsfgctl (configuration files in {cdir}):\n\
         \x20 ip netns exec {client} {bsfgctl} --config {cdir}/bsfgctl-{pid}.toml append --class {class} \\\n\
         \x20   --message-id order-3 --subject {kind}:line-1/order-3 --predicate created --object-json '{{}}'\n\
         \x20 ip netns exec {client} {bsfgctl} --config {cdir}/bsfgctl-{rid}.toml tail --consumer {consumer}\n\
         Zone status and commissioning from the management namespace {mgmt} (an operator\n\
         workstation on the management and service networks; the client namespace reaches\n\
         the VIP's BoundaryService and nothing else, behind each host's firewall):\n\
         \x20 ip netns exec {mgmt} {bsfgctl} --config {cdir}/bsfgctl-{pid}.toml zone status\n\
         \n\
         Look and fail over:\n\
         \x20 {me}{inst} status                       # VIP, VRRP, gates, lease, JetStream leaders\n\
         \x20 ip netns exec {ns_a} {agent} --config {acfg} status\n\
         \x20 ip -n {switch} link set {a} down        # pull alpha's cable: the VIP moves to {b}\n\
         \x20 ip -n {switch} link set {a} up\n\
         \x20 {me} drill alpha-crash                  # drills run on a fresh instance of their own\n\
         \n\
         Remove everything:  ./scripts/zone down   (or: {me}{inst} down)\n\
         Hosts: {a} {aa}, {b} {ba}, {g} {ga}; VRRPv{ver} adverts every {adv} ms.\n",
        zone = z.spec.zone,
        inst_name = z.instance,
        run = z.run_dir.display(),
        pid = w.producer,
        pc = producer.certificate.display(),
        pk = producer.private_key.display(),
        rid = w.reader,
        consumer = w.consumer,
        rc = reader.certificate.display(),
        rk = reader.private_key.display(),
        ca = producer.ca.display(),
        cdir = z.run_dir.join("client").display(),
        bsfgctl = bsfgctl_path(z),
        class = w.class,
        kind = w.kind,
        ns_a = z.ns(a),
        acfg = z.spec.host(a).paths.agent_config.display(),
        agent = z.tools().gate_agent.display(),
        switch = z.ns(netns::SWITCH),
        aa = z.spec.host(a).address,
        ba = z.spec.host(b).address,
        ga = z.spec.host(g).address,
        ver = z.spec.vrrp.version,
        adv = z.spec.vrrp.advert_interval_ms,
    )
}
