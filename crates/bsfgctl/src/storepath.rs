//! Nix store paths: what `zone status` shows as the appliance version (the
//! running NixOS system, `/run/current-system`, and the controller's
//! executable). Parsing goes through `harmonia-store-core` (the Nix store
//! semantics: nix-base32 hash of 20 bytes, name grammar); this module is the
//! only place that names it.

use harmonia_store_core::store_path::StorePath;
use serde::Serialize;

pub const STORE_DIR: &str = "/nix/store";

/// A path inside the Nix store: `/nix/store/<hash>-<name>[/<sub path>]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StoreObject {
    /// `/nix/store/<hash>-<name>`
    pub store_path: String,
    /// The 32-character nix-base32 hash part.
    pub hash: String,
    /// `nixos-system-alpha-25.05.20250101.abcdef`, `bsfg-controller-0.1.0`
    pub name: String,
    /// The package name without its version (Nix's `parseDrvName`).
    pub package: String,
    /// The version (from the first `-` followed by a digit), if any.
    pub version: Option<String>,
    /// What follows the store object, e.g. `bin/bsfg-controller`.
    pub sub_path: Option<String>,
}

impl StoreObject {
    /// The short form shown in tables: `<first 8 of hash>-<name>`.
    pub fn short(&self) -> String {
        format!("{}…-{}", &self.hash[..8.min(self.hash.len())], self.name)
    }
}

/// Parses an absolute path inside `/nix/store`.
pub fn parse(path: &str) -> Result<StoreObject, String> {
    let rest = path
        .strip_prefix(STORE_DIR)
        .and_then(|r| r.strip_prefix('/'))
        .ok_or_else(|| format!("{path} is not in {STORE_DIR}"))?;
    let (base, sub) = match rest.split_once('/') {
        Some((b, s)) => (b, Some(s.trim_end_matches('/')).filter(|s| !s.is_empty())),
        None => (rest, None),
    };
    let sp = StorePath::from_base_path(base).map_err(|e| format!("{path}: {e}"))?;
    let name = sp.name().to_string();
    let hash = sp.hash().to_string();
    let (package, version) = split_version(&name);
    Ok(StoreObject {
        store_path: format!("{STORE_DIR}/{base}"),
        hash,
        name,
        package,
        version,
        sub_path: sub.map(str::to_owned),
    })
}

/// Nix's `builtins.parseDrvName`: the version starts at the first dash
/// followed by a non-letter.
pub fn split_version(name: &str) -> (String, Option<String>) {
    let bytes = name.as_bytes();
    for i in 0..bytes.len() {
        if bytes[i] == b'-' && bytes.get(i + 1).is_some_and(|c| !c.is_ascii_alphabetic()) {
            return (name[..i].to_owned(), Some(name[i + 1..].to_owned()));
        }
    }
    (name.to_owned(), None)
}

/// The build identity of an executable for comparisons: the store path if it
/// is one (the same store path is the same build), else the path itself.
pub fn build_identity(path: &str) -> String {
    parse(path)
        .map(|o| o.store_path)
        .unwrap_or_else(|_| path.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    const SYS: &str =
        "/nix/store/0c6a8q4pq0bqsb6l7hxp8g3yq3xx3lxk-nixos-system-alpha-25.05.20250101.abcdef";

    #[test]
    fn a_system_path_parses_into_hash_name_and_version() {
        let o = parse(SYS).unwrap();
        assert_eq!(o.hash, "0c6a8q4pq0bqsb6l7hxp8g3yq3xx3lxk");
        assert_eq!(o.name, "nixos-system-alpha-25.05.20250101.abcdef");
        assert_eq!(o.package, "nixos-system-alpha");
        assert_eq!(o.version.as_deref(), Some("25.05.20250101.abcdef"));
        assert_eq!(o.sub_path, None);
        assert_eq!(o.store_path, SYS);
        assert_eq!(
            o.short(),
            "0c6a8q4p…-nixos-system-alpha-25.05.20250101.abcdef"
        );
    }

    #[test]
    fn an_executable_inside_a_store_object_keeps_its_sub_path() {
        let o = parse(
            "/nix/store/9ryh3i2k0z2wmx1rzb1mfb7s1rd8q2a1-bsfg-controller-0.1.0/bin/bsfg-controller",
        )
        .unwrap();
        assert_eq!(o.package, "bsfg-controller");
        assert_eq!(o.version.as_deref(), Some("0.1.0"));
        assert_eq!(o.sub_path.as_deref(), Some("bin/bsfg-controller"));
        assert_eq!(
            build_identity(
                "/nix/store/9ryh3i2k0z2wmx1rzb1mfb7s1rd8q2a1-bsfg-controller-0.1.0/bin/bsfg-controller"
            ),
            "/nix/store/9ryh3i2k0z2wmx1rzb1mfb7s1rd8q2a1-bsfg-controller-0.1.0"
        );
    }

    #[test]
    fn invalid_store_paths_are_refused_with_the_reason() {
        // 'e' is not in the nix-base32 alphabet; the hash is too short; outside the store.
        assert!(parse("/nix/store/eeeeeeeeeeeeeeeeeeeeeeeeeeeeeeee-x").is_err());
        assert!(parse("/nix/store/0c6a8q4p-x").is_err());
        assert!(
            parse("/usr/bin/bsfg-controller")
                .unwrap_err()
                .contains("not in /nix/store")
        );
        assert_eq!(
            build_identity("/usr/bin/bsfg-controller"),
            "/usr/bin/bsfg-controller"
        );
    }

    #[test]
    fn drv_names_split_like_nix() {
        assert_eq!(
            split_version("hello-2.12"),
            ("hello".into(), Some("2.12".into()))
        );
        assert_eq!(
            split_version("nixos-system-beta-25.05"),
            ("nixos-system-beta".into(), Some("25.05".into()))
        );
        assert_eq!(
            split_version("bsfg-controller"),
            ("bsfg-controller".into(), None)
        );
    }
}
