//! The controller's credentials: does each file exist and hold something?
//! Only metadata is read (the agent never reads a secret); a file the agent
//! may not even look at is reported as such, not as missing.

use crate::gates::certificate::CredentialFacts;
use std::collections::BTreeMap;
use std::path::PathBuf;

pub fn observe(credentials: &BTreeMap<String, PathBuf>) -> Vec<CredentialFacts> {
    credentials
        .iter()
        .map(|(name, path)| CredentialFacts {
            name: name.clone(),
            path: path.clone(),
            problem: match std::fs::metadata(path) {
                Ok(m) if !m.is_file() => Some("not a regular file".into()),
                Ok(m) if m.len() == 0 => Some("empty".into()),
                Ok(_) => None,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Some("no such file".into()),
                Err(e) => Some(format!("cannot look at it: {e}")),
            },
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn present_missing_empty_and_directories() {
        let dir = tempfile::tempdir().unwrap();
        let present = dir.path().join("key.pem");
        std::fs::write(&present, "secret").unwrap();
        let empty = dir.path().join("password");
        std::fs::write(&empty, "").unwrap();
        let creds = BTreeMap::from([
            ("a_present".to_owned(), present),
            ("b_missing".to_owned(), dir.path().join("nope")),
            ("c_empty".to_owned(), empty),
            ("d_directory".to_owned(), dir.path().to_owned()),
        ]);
        let problems: Vec<Option<String>> =
            observe(&creds).into_iter().map(|c| c.problem).collect();
        assert_eq!(
            problems,
            vec![
                None,
                Some("no such file".into()),
                Some("empty".into()),
                Some("not a regular file".into())
            ]
        );
    }
}
