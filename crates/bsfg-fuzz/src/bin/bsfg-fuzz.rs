//! `bsfg-fuzz <target>`: one target under AFL++ (built by `cargo afl build`,
//! run by `scripts/fuzz`).

fn main() {
    let name = std::env::args().nth(1).unwrap_or_default();
    let Some(target) = bsfg_fuzz::target(&name) else {
        let names: Vec<_> = bsfg_fuzz::TARGETS.iter().map(|t| t.name).collect();
        eprintln!("usage: bsfg-fuzz <target>; targets: {}", names.join(", "));
        std::process::exit(64);
    };
    afl::fuzz!(|data: &[u8]| {
        bsfg_fuzz::check(target, data);
    });
}
