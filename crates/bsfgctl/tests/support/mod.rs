//! Shared by the integration tests: the fenced shell blocks of
//! docs/runbooks, a small shell-word splitter, and the verdicts of a
//! `commission --json` report read back as bsfgctl's own type.

use bsfgctl::commission::checklist::Verdict;
use std::path::{Path, PathBuf};

/// The verdict of item `id` in a `commission --json` report.
pub fn verdict(report: &serde_json::Value, id: &str) -> Verdict {
    let item = report["items"]
        .as_array()
        .expect("a commission report has items")
        .iter()
        .find(|i| i["id"] == id)
        .unwrap_or_else(|| panic!("no item {id} in {report:#}"));
    serde_json::from_value(item["verdict"].clone())
        .unwrap_or_else(|e| panic!("item {id}: {e}: {item}"))
}

/// A fenced block: (file, info string, lines with continuations joined).
pub fn blocks(dir: &Path) -> Vec<(String, String, Vec<String>)> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "md"))
        .collect();
    files.sort();
    let mut out = Vec::new();
    for f in files {
        let text = std::fs::read_to_string(&f).unwrap();
        let mut current: Option<(String, Vec<String>)> = None;
        for line in text.lines() {
            if let Some(info) = line.strip_prefix("```") {
                match current.take() {
                    Some((info, lines)) => out.push((
                        f.file_name().unwrap().to_string_lossy().into_owned(),
                        info,
                        lines,
                    )),
                    None => current = Some((info.trim().to_owned(), Vec::new())),
                }
                continue;
            }
            if let Some((_, lines)) = current.as_mut() {
                match lines.last_mut() {
                    Some(prev) if prev.ends_with('\\') => {
                        prev.pop();
                        prev.push_str(line.trim_start());
                    }
                    _ => lines.push(line.to_owned()),
                }
            }
        }
        assert!(current.is_none(), "{}: unclosed code fence", f.display());
    }
    out
}

/// Shell words (single and double quotes, backslash escapes), without a
/// trailing `# comment` and without redirections.
pub fn words(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut has = false;
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\'' => {
                has = true;
                for d in chars.by_ref() {
                    if d == '\'' {
                        break;
                    }
                    cur.push(d);
                }
            }
            '"' => {
                has = true;
                while let Some(d) = chars.next() {
                    match d {
                        '"' => break,
                        '\\' => cur.extend(chars.next()),
                        d => cur.push(d),
                    }
                }
            }
            '\\' => {
                has = true;
                cur.extend(chars.next());
            }
            '#' if !has => break,
            c if c.is_whitespace() => {
                if has {
                    out.push(std::mem::take(&mut cur));
                    has = false;
                }
            }
            c => {
                has = true;
                cur.push(c);
            }
        }
    }
    if has {
        out.push(cur);
    }
    // Drop redirections: `> file`, `2>&1`.
    let mut v = Vec::new();
    let mut skip = false;
    for w in out {
        if skip {
            skip = false;
            continue;
        }
        if w == ">" || w == ">>" || w == "<" {
            skip = true;
            continue;
        }
        if w.starts_with('>') || w.contains(">&") {
            continue;
        }
        v.push(w);
    }
    v
}

/// `nix-instantiate --eval --strict --json -E <expr>` (the zone library's
/// operator view, as the operator computes zone.json): its JSON.
pub fn nix_eval_json(expr: &str) -> Vec<u8> {
    let out = std::process::Command::new("nix-instantiate")
        .args(["--eval", "--strict", "--json", "-E", expr])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}
