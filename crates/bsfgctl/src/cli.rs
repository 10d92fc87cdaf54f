//! The command tree. `bsfgctl completions <shell>` and `bsfgctl man` are
//! generated from it, so they never drift from the real flags.

use crate::identity::ClientArgs;
use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;
use std::time::Duration;

#[derive(Debug, Parser)]
#[command(
    name = "bsfgctl",
    version,
    about = "Operate a BSFG zone: facts, objects, zone status and commissioning",
    long_about = "Operate a BSFG zone: append, fetch and confirm facts, move objects, \
        see the whole zone at a glance (`zone status`) and run the commissioning checklist \
        (`commission`).\n\nExit codes: 0 ok; 1 a failure was found (a check failed, the \
        server refused, a digest did not verify); 2 usage or configuration error; 3 the \
        endpoint or zone is unreachable or not serving (retry; appends with the same \
        --message-id are idempotent).",
    after_help = "Identity and endpoint come from flags, then BSFG_CLI_* variables, then the \
        config file (--config, BSFG_CLI_CONFIG, ~/.config/bsfgctl/config.toml, /etc/bsfg/bsfgctl.toml)."
)]
pub struct Cli {
    /// Machine-readable JSON instead of tables (one JSON document; `tail`: one per line).
    #[arg(long, global = true)]
    pub json: bool,
    /// Config file (TOML: endpoint, cert, key, ca, from_zone, zone_file).
    #[arg(long, global = true, env = "BSFG_CLI_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Append one fact to a stream class (idempotent per --message-id).
    Append(AppendArgs),
    /// Fetch the next page of a consumer, from its confirmed position (does not confirm).
    Fetch(FetchArgs),
    /// Confirm receipt up to an offset: advances the consumer's durable cursor.
    Confirm(ConfirmArgs),
    /// Print a consumer's facts, optionally following (-f) and confirming (--confirm).
    Tail(TailArgs),
    /// Upload an immutable object (artifact) to a bucket.
    PutObject(PutObjectArgs),
    /// Download an object and verify its digest and size.
    GetObject(GetObjectArgs),
    /// Zone-wide views.
    #[command(subcommand)]
    Zone(ZoneCommand),
    /// Run the commissioning checklist against a live zone.
    Commission(CommissionArgs),
    /// The zone PKI: create the zone CA, issue, renew and check every certificate the zone needs.
    #[command(subcommand)]
    Pki(crate::pki::PkiCommand),
    /// Installing a host from the ISO: check its declared disks before anything is written.
    #[command(subcommand)]
    Install(crate::install::InstallCommand),
    /// Snapshot every JetStream stream of the zone and read it back.
    Backup(crate::backup::BackupArgs),
    /// Restore streams from a snapshot (offsets and cursors as they were).
    Restore(crate::backup::RestoreArgs),
    /// Snapshot this host's artifact store (blobs verified, unchanged ones hard-linked).
    BackupArtifacts(crate::backup::artifacts::BackupArtifactsArgs),
    /// Restore an artifact snapshot into an artifact store (verified before anything is written).
    RestoreArtifacts(crate::backup::artifacts::RestoreArtifactsArgs),
    /// Rolling upgrade: the order and command per host, and whether the next step is safe now.
    #[command(subcommand)]
    Upgrade(UpgradeCommand),
    /// Print a shell completion script.
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Write the man pages (bsfgctl.1 and one per subcommand) into a directory.
    Man {
        /// Output directory.
        #[arg(long, default_value = ".", value_name = "DIR")]
        out: PathBuf,
    },
}

#[derive(Debug, Args)]
pub struct AppendArgs {
    #[command(flatten)]
    pub client: ClientArgs,
    /// Stream class (store buffer), e.g. `operational`.
    #[arg(long = "class", value_name = "CLASS")]
    pub class: String,
    /// The producer's idempotency key: retry with the same id and payload.
    #[arg(long, value_name = "ID")]
    pub message_id: String,
    /// `kind:id` or `kind:scope/id`.
    #[arg(long)]
    pub subject: String,
    #[arg(long)]
    pub predicate: String,
    /// The fact's object, a JSON document.
    #[arg(long, value_name = "JSON")]
    pub object_json: String,
    /// `envelope.from_zone`; default: `from_zone` in the config file, else the zone file's zone.
    #[arg(long, env = "BSFG_CLI_FROM_ZONE", value_name = "ZONE")]
    pub from_zone: Option<String>,
    /// `envelope.to_zone`; default: the from zone (a fact for this zone).
    #[arg(long, value_name = "ZONE")]
    pub to_zone: Option<String>,
    #[arg(long, value_name = "ID")]
    pub correlation_id: Option<String>,
    #[arg(long, value_name = "ID")]
    pub causation_id: Option<String>,
    /// A label `KEY=VALUE` (repeatable).
    #[arg(long = "label", value_name = "KEY=VALUE")]
    pub labels: Vec<String>,
    /// Referenced artifact, as printed by `put-object`: `BUCKET/KEY@sha256:HEX:SIZE`.
    #[arg(long, value_name = "REF")]
    pub artifact: Option<String>,
    /// `envelope.produced_at_unix_ms`; default: now.
    #[arg(long, value_name = "MS")]
    pub produced_at_unix_ms: Option<i64>,
}

#[derive(Debug, Args)]
pub struct FetchArgs {
    #[command(flatten)]
    pub client: ClientArgs,
    #[arg(long, value_name = "NAME")]
    pub consumer: String,
    /// Page size (0: the server's default; capped by the server).
    #[arg(long, default_value_t = 0)]
    pub limit: u32,
}

#[derive(Debug, Args)]
pub struct ConfirmArgs {
    #[command(flatten)]
    pub client: ClientArgs,
    #[arg(long, value_name = "NAME")]
    pub consumer: String,
    /// Highest offset received; the cursor moves to the highest contiguous confirmed offset.
    #[arg(long, value_name = "N")]
    pub offset: u64,
}

#[derive(Debug, Args)]
pub struct TailArgs {
    #[command(flatten)]
    pub client: ClientArgs,
    #[arg(long, value_name = "NAME")]
    pub consumer: String,
    /// Keep following: poll for new facts until interrupted (or --count).
    #[arg(short = 'f', long)]
    pub follow: bool,
    /// Confirm each page after printing it (at-least-once; advances the
    /// consumer's cursor for everyone using it). Without it nothing is
    /// confirmed and only the unconfirmed window (one page) can be seen.
    #[arg(long)]
    pub confirm: bool,
    /// Page size per fetch (0: the server's default).
    #[arg(long, default_value_t = 0)]
    pub limit: u32,
    /// Poll interval while following.
    #[arg(long, default_value = "500ms", value_parser = humantime::parse_duration)]
    pub interval: Duration,
    /// Stop after printing this many facts.
    #[arg(long, value_name = "N")]
    pub count: Option<u64>,
}

#[derive(Debug, Args)]
pub struct PutObjectArgs {
    #[command(flatten)]
    pub client: ClientArgs,
    #[arg(long)]
    pub bucket: String,
    /// The object's key in the bucket (`--key` is the private key).
    #[arg(long = "object-key", value_name = "KEY")]
    pub object_key: String,
    #[arg(long, default_value = "application/octet-stream")]
    pub media_type: String,
    /// The file to upload (`-`: standard input).
    #[arg(value_name = "FILE")]
    pub file: PathBuf,
}

#[derive(Debug, Args)]
pub struct GetObjectArgs {
    #[command(flatten)]
    pub client: ClientArgs,
    #[arg(long)]
    pub bucket: String,
    /// The object's key in the bucket (`--key` is the private key).
    #[arg(long = "object-key", value_name = "KEY")]
    pub object_key: String,
    /// Write here (only after the digest verified); default: standard output.
    #[arg(short, long, value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Also require this digest (`sha256:<hex>`), e.g. from the fact that references it.
    #[arg(long, value_name = "DIGEST")]
    pub expect_digest: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum ZoneCommand {
    /// Every host: reachable, VRRP, VIP, gates, controller, lease, JetStream, certificates, versions.
    Status(ZoneArgs),
}

#[derive(Debug, Clone, Args)]
pub struct ZoneArgs {
    /// The zone description (JSON from modules/lib/operator.nix; /etc/bsfg/zone.json on the appliance).
    #[arg(long, env = "BSFG_CLI_ZONE_FILE", value_name = "FILE")]
    pub zone_file: Option<PathBuf>,
    /// Deadline of each request to a host.
    #[arg(long, default_value = "2s", value_parser = humantime::parse_duration)]
    pub timeout: Duration,
    /// Identity for the TLS check of the VIP (and the round trip of `commission`).
    #[command(flatten)]
    pub client: ClientArgs,
}

#[derive(Debug, Subcommand)]
pub enum UpgradeCommand {
    /// Print the rolling order (gamma, standby, planned handover, old active) with the command per host.
    Plan(ZoneArgs),
    /// Exit 0 if the next step may run now (quorum, every replica current, standby ready), else 1 with the reasons.
    Check(ZoneArgs),
}

#[derive(Debug, Args)]
pub struct CommissionArgs {
    #[command(flatten)]
    pub zone: ZoneArgs,
    /// Certificates must stay valid at least this long (default: the zone's certificate policy).
    #[arg(long, value_parser = humantime::parse_duration, value_name = "DURATION")]
    pub cert_threshold: Option<Duration>,
    /// Largest clock offset allowed between hosts.
    #[arg(long, default_value = "100ms", value_parser = humantime::parse_duration)]
    pub max_clock_offset: Duration,
    /// Class of the round-trip fact (default: the zone file's commissioning class).
    #[arg(long = "class", value_name = "CLASS")]
    pub class: Option<String>,
    /// Consumer that reads it back (default: the zone file's commissioning consumer).
    #[arg(long, value_name = "NAME")]
    pub consumer: Option<String>,
    /// Skip the append/fetch round trip (it needs an identity allowed on the commissioning class).
    #[arg(long)]
    pub no_round_trip: bool,
    /// Also run a controlled failover to the standby and a failback.
    #[arg(long)]
    pub drill: bool,
    /// Command that makes a service host hand the VIP over (run by `sh -c`;
    /// `{host}`, `{address}`, `{management}` are replaced). Restarting the
    /// gate agent stops the controller and releases the VIP; the agent then
    /// rejoins as standby after its hold-down.
    #[arg(
        long,
        env = "BSFG_CLI_HANDOVER_COMMAND",
        value_name = "TEMPLATE",
        default_value = "ssh root@{management} systemctl restart bsfg-gate-agent.service"
    )]
    pub handover_command: String,
    /// How long a failover or failback may take before the drill fails.
    #[arg(long, default_value = "60s", value_parser = humantime::parse_duration)]
    pub drill_timeout: Duration,
    /// How long a failing streams-r3 is re-checked (every 500 ms) before it
    /// counts: a follower catching up after a failover is briefly not
    /// current. 0s decides on the first observation.
    #[arg(long, default_value = "5s", value_parser = humantime::parse_duration)]
    pub stream_settle: Duration,
}
