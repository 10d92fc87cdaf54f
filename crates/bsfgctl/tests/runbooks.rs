//! Every command in docs/runbooks is a real command: bsfgctl lines are
//! parsed by bsfgctl's own argument parser, bsfg-gate-agent lines by the
//! real binary (`--help` appended: exit 0 only for a valid command line),
//! systemd units are the ones the modules define, scripts exist in the
//! repository, and everything else is a program of the appliance or the
//! operator's workstation from a fixed list. (The `sh simulator` blocks also
//! run against a simulator zone: tests/simulator.rs.)

use crate::support::{blocks, words};
use clap::Parser;
use std::path::{Path, PathBuf};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

const UNITS: &[&str] = &[
    "bsfg-gate-agent.service",
    "bsfg-controller.service",
    "nats.service",
    "keepalived.service",
];

/// Programs of the appliance (NixOS) or the operator's workstation whose
/// arguments this test does not parse.
const PROGRAMS: &[&str] = &[
    "nix-instantiate",
    "nixos-rebuild",
    "nixos-generate-config",
    "nixos-install",
    "openssl",
    "dd",
    "mkfs.ext4",
    "mkfs.vfat",
    "parted",
    "mount",
    "mkdir",
    "scp",
    "install",
    "tar",
    "curl",
    "promtool",
    "head",
    "mkpasswd",
    "chmod",
    "stat",
    "ls",
    "reboot",
];

fn check(cmd: &[String]) -> Result<(), String> {
    let Some(program) = cmd.first() else {
        return Ok(());
    };
    let args = &cmd[1..];
    match program.as_str() {
        "bsfgctl" => bsfgctl::cli::Cli::try_parse_from(cmd)
            .map(|_| ())
            .map_err(|e| e.to_string()),
        "bsfg-gate-agent" => {
            let out =
                std::process::Command::new(bsfg_testkit::bins::workspace_binary("bsfg-gate-agent"))
                    .args(args)
                    .arg("--help")
                    .output()
                    .map_err(|e| e.to_string())?;
            if out.status.success() {
                Ok(())
            } else {
                Err(String::from_utf8_lossy(&out.stderr).into_owned())
            }
        }
        "ssh" => {
            let rest: Vec<String> = args
                .iter()
                .skip_while(|a| a.starts_with('-'))
                .skip(1)
                .cloned()
                .collect();
            if args
                .iter()
                .find(|a| !a.starts_with('-'))
                .is_none_or(|t| !t.starts_with("root@"))
            {
                return Err("ssh to root@<host> expected".into());
            }
            check(&rest)
        }
        "systemctl" => match args {
            [verb, unit]
                if ["restart", "start", "stop", "status"].contains(&verb.as_str())
                    && UNITS.contains(&unit.as_str()) =>
            {
                Ok(())
            }
            _ => Err(format!(
                "systemctl {args:?}: unknown verb or unit (units: {UNITS:?})"
            )),
        },
        "journalctl" => match args.iter().position(|a| a == "-u") {
            Some(i) if args.get(i + 1).is_some_and(|u| UNITS.contains(&u.as_str())) => Ok(()),
            _ => Err(format!("journalctl {args:?}: -u <known unit> expected")),
        },
        "nix" => match args {
            [a, b, ..] if a == "build" && b.starts_with(".#iso-") => Ok(()),
            [a, b, ..]
                if a == "build"
                    && b.starts_with(".#nixosConfigurations.")
                    && b.ends_with(".config.system.build.toplevel") =>
            {
                Ok(())
            }
            [a, b, c, _] if a == "copy" && b == "--to" && c.starts_with("ssh://root@") => Ok(()),
            [a, b, c, rest @ ..] if a == "shell" && b == "nixpkgs#natscli" && c == "-c" => {
                check(rest)
            }
            _ => Err(format!("nix {args:?}: not a command these runbooks know")),
        },
        "nats" => {
            let sub: Vec<&str> = args
                .iter()
                .filter(|a| !a.starts_with('-') && !a.starts_with("nats://"))
                .map(String::as_str)
                .take(2)
                .collect();
            let known = [
                ["stream", "ls"],
                ["stream", "rm"],
                ["stream", "restore"],
                ["stream", "backup"],
                ["account", "backup"],
                ["account", "restore"],
            ];
            if args.first().is_some_and(|a| a == "--server") && known.iter().any(|k| sub == k) {
                Ok(())
            } else {
                Err(format!(
                    "nats {args:?}: natscli subcommand not in {known:?}, or no --server"
                ))
            }
        }
        p if p.starts_with("scripts/") => {
            if repo().join(p).is_file() {
                Ok(())
            } else {
                Err(format!("{p} does not exist"))
            }
        }
        p if PROGRAMS.contains(&p) => Ok(()),
        p => Err(format!("unknown program {p:?}")),
    }
}

#[test]
fn every_runbook_command_exists() {
    let blocks = blocks(&repo().join("docs/runbooks"));
    let mut checked = 0;
    let mut simulator = 0;
    let mut errors = Vec::new();
    let mut files = std::collections::BTreeSet::new();
    for (file, info, lines) in &blocks {
        if !(info == "sh" || info == "sh simulator") {
            continue;
        }
        files.insert(file.clone());
        simulator += usize::from(info == "sh simulator");
        for line in lines {
            let w = words(line);
            if w.is_empty() {
                continue;
            }
            checked += 1;
            if let Err(e) = check(&w) {
                errors.push(format!("{file}: `{line}`: {e}"));
            }
        }
    }
    assert!(
        errors.is_empty(),
        "{} runbook commands do not exist:\n{}",
        errors.len(),
        errors.join("\n")
    );
    for f in [
        "deployment.md",
        "controller-failover.md",
        "certificate-rotation.md",
        "jetstream-backup-restore.md",
        "node-replacement.md",
        "zone-rebuild.md",
    ] {
        assert!(files.contains(f), "{f} has no commands");
    }
    assert!(
        checked > 40 && simulator >= 6,
        "{checked} commands, {simulator} simulator blocks"
    );
}

#[test]
fn the_checker_refuses_what_does_not_exist() {
    for bad in [
        "bsfgctl zone stats",
        "bsfgctl commission --no-such-flag",
        "bsfgctl append --class x",
        "ssh root@10.20.0.11 systemctl restart bsfg-gate-agnet.service",
        "ssh root@10.20.0.11 bsfg-gate-agent promote",
        "kubectl get pods",
        "nix shell nixpkgs#natscli -c nats --server nats://127.0.0.1:4222 stream nuke x",
        "scripts/no-such-script.sh",
    ] {
        assert!(check(&words(bad)).is_err(), "{bad} passed the checker");
    }
    assert_eq!(
        words(r#"a 'b c' "d\"e" f\ g # comment"#),
        vec!["a", "b c", "d\"e", "f g"]
    );
    assert_eq!(words("x > out.json 2>&1"), vec!["x"]);
}
