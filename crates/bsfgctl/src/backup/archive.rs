//! Reading a stream snapshot back: the file's digest, then the whole
//! archive decompressed (S2 checks a CRC per chunk) and walked entry by
//! entry, so a truncated, corrupted or server-side failed snapshot
//! is found when it is taken, not when it is needed.

use super::manifest::ArchiveSummary;
use sha2::{Digest, Sha256};
use std::io::{self, Read};

/// Why an archive does not read back.
#[derive(Debug, thiserror::Error)]
pub enum ArchiveError {
    #[error("reading: {0}")]
    Io(#[from] io::Error),
    #[error("digest is {actual}, the manifest says {expected}")]
    Digest { expected: String, actual: String },
    #[error("the server reported a failure inside the snapshot: {0}")]
    ServerError(String),
    #[error("no stream metadata (state.json or meta.inf) before the messages")]
    NoMeta,
    #[error("not a valid stream archive: {0}")]
    Invalid(String),
}

/// Entry nats-server writes instead of the rest when a snapshot fails.
const SERVER_ERROR_ENTRY: &str = "errors.txt";

/// `sha256:<hex>` of everything `r` yields.
pub fn digest(mut r: impl Read) -> io::Result<(String, u64)> {
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 256 * 1024];
    let mut n = 0u64;
    loop {
        let k = r.read(&mut buf)?;
        if k == 0 {
            break;
        }
        h.update(&buf[..k]);
        n += k as u64;
    }
    Ok((format!("sha256:{}", hex::encode(h.finalize())), n))
}

/// The first bytes of the message archive nats-server 2.12+ writes (older
/// servers write a tar of the stream's store directory).
const MESSAGE_ARCHIVE_MAGIC: &[u8; 8] = b"NATSARC1";

/// Decompresses and walks the archive in `r`, reading every entry to its
/// end. A message archive must start with the stream's state, hold each
/// message once in ascending sequence order, as many as the state says; a
/// tar archive must hold the stream's metadata. Neither may hold a server
/// error entry.
pub fn read_back(r: impl Read) -> Result<ArchiveSummary, ArchiveError> {
    let mut counted = Counting {
        inner: minlz::Reader::new(r),
        n: 0,
    };
    let mut magic = [0u8; 8];
    counted.read_exact(&mut magic)?;
    let mut summary = if &magic == MESSAGE_ARCHIVE_MAGIC {
        read_messages(&mut counted)?
    } else {
        let mut chained = io::Read::chain(&magic[..], &mut counted);
        read_tar(&mut chained)?
    };
    // The compressed stream must end cleanly too.
    io::copy(&mut counted, &mut io::sink())?;
    summary.uncompressed_bytes = counted.n;
    summary.consumers.sort();
    Ok(summary)
}

fn read_tar(r: impl Read) -> Result<ArchiveSummary, ArchiveError> {
    let mut summary = ArchiveSummary {
        format: "tar".into(),
        ..Default::default()
    };
    let mut meta = false;
    let mut tar = tar::Archive::new(r);
    for entry in tar.entries()? {
        let mut entry = entry?;
        let path = entry.path()?.to_string_lossy().into_owned();
        let mut body = Vec::new();
        entry.read_to_end(&mut body)?;
        match path.split('/').collect::<Vec<_>>().as_slice() {
            ["meta.inf"] => meta = true,
            [SERVER_ERROR_ENTRY] => {
                return Err(ArchiveError::ServerError(
                    String::from_utf8_lossy(&body).into_owned(),
                ));
            }
            ["msgs", f] if f.ends_with(".blk") => summary.message_blocks += 1,
            ["obs", name, "meta.inf"] => summary.consumers.push((*name).to_owned()),
            _ => {}
        }
    }
    if !meta {
        return Err(ArchiveError::NoMeta);
    }
    Ok(summary)
}

fn read_messages(r: &mut impl Read) -> Result<ArchiveSummary, ArchiveError> {
    let mut summary = ArchiveSummary {
        format: "messages".into(),
        ..Default::default()
    };
    let mut state: Option<super::manifest::StreamState> = None;
    let mut last = 0u64;
    let invalid = |why: String| ArchiveError::Invalid(why);
    loop {
        let name_len = match uvarint(r)? {
            None => break,
            Some(n) => n,
        };
        let _timestamp = uvarint(r)?.ok_or_else(|| invalid("cut inside an entry".into()))?;
        let seq = uvarint(r)?.ok_or_else(|| invalid("cut inside an entry".into()))?;
        let hdr = uvarint(r)?.ok_or_else(|| invalid("cut inside an entry".into()))?;
        let payload = uvarint(r)?.ok_or_else(|| invalid("cut inside an entry".into()))?;
        if name_len > 1 << 20 {
            return Err(invalid(format!("entry name of {name_len} bytes")));
        }
        let mut name = vec![0u8; name_len as usize];
        r.read_exact(&mut name)?;
        let name = String::from_utf8_lossy(&name).into_owned();
        let size = hdr
            .checked_add(payload)
            .ok_or_else(|| invalid("entry size overflows".into()))?;
        if seq == 0 {
            // Metadata: state.json, consumers/<name>, errors.
            let mut body = Vec::new();
            r.take(size).read_to_end(&mut body)?;
            if body.len() as u64 != size {
                return Err(invalid(format!("{name} cut short")));
            }
            match name.split_once('/') {
                _ if name == "state.json" => {
                    state = Some(
                        serde_json::from_slice(&body)
                            .map_err(|e| invalid(format!("state.json: {e}")))?,
                    );
                }
                Some(("consumers", c)) => summary.consumers.push(c.to_owned()),
                _ if name == SERVER_ERROR_ENTRY => {
                    return Err(ArchiveError::ServerError(
                        String::from_utf8_lossy(&body).into_owned(),
                    ));
                }
                _ => {}
            }
            continue;
        }
        let Some(st) = &state else {
            return Err(ArchiveError::NoMeta);
        };
        if seq <= last || seq < st.first_seq || seq > st.last_seq {
            return Err(invalid(format!(
                "message {seq} after {last}, outside {}..{}",
                st.first_seq, st.last_seq
            )));
        }
        let copied = io::copy(&mut r.take(size), &mut io::sink())?;
        if copied != size {
            return Err(invalid(format!("message {seq} cut short")));
        }
        if summary.messages == 0 {
            summary.first_seq = seq;
        }
        summary.messages += 1;
        summary.last_seq = seq;
        last = seq;
    }
    let st = state.ok_or(ArchiveError::NoMeta)?;
    if summary.messages != st.messages {
        return Err(invalid(format!(
            "{} messages, the stream's state says {}",
            summary.messages, st.messages
        )));
    }
    Ok(summary)
}

/// A LEB128 unsigned varint (Go's `binary.Uvarint`); `None` at a clean end.
fn uvarint(r: &mut impl Read) -> Result<Option<u64>, ArchiveError> {
    let mut v = 0u64;
    for i in 0..10 {
        let mut b = [0u8; 1];
        if r.read(&mut b)? == 0 {
            return if i == 0 {
                Ok(None)
            } else {
                Err(ArchiveError::Invalid("cut inside a number".into()))
            };
        }
        v |= u64::from(b[0] & 0x7f) << (7 * i);
        if b[0] < 0x80 {
            return Ok(Some(v));
        }
    }
    Err(ArchiveError::Invalid("number longer than 10 bytes".into()))
}

/// Checks the file against its manifest digest, then reads it back.
pub fn verify_file(
    path: &std::path::Path,
    expected_digest: &str,
) -> Result<ArchiveSummary, ArchiveError> {
    let (actual, _) = digest(std::fs::File::open(path)?)?;
    if actual != expected_digest {
        return Err(ArchiveError::Digest {
            expected: expected_digest.to_owned(),
            actual,
        });
    }
    read_back(io::BufReader::new(std::fs::File::open(path)?))
}

struct Counting<R> {
    inner: R,
    n: u64,
}

impl<R: Read> Read for Counting<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let k = self.inner.read(buf)?;
        self.n += k as u64;
        Ok(k)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An archive laid out as nats-server lays out a stream snapshot.
    fn archive(entries: &[(&str, &[u8])]) -> Vec<u8> {
        let mut out = Vec::new();
        {
            let mut w = minlz::Writer::new(&mut out);
            {
                let mut t = tar::Builder::new(&mut w);
                for (name, body) in entries {
                    let mut h = tar::Header::new_gnu();
                    h.set_size(body.len() as u64);
                    h.set_mode(0o600);
                    h.set_cksum();
                    t.append_data(&mut h, name, *body).unwrap();
                }
                t.finish().unwrap();
            }
            std::io::Write::flush(&mut w).unwrap();
        }
        out
    }

    fn put_uvarint(out: &mut Vec<u8>, mut v: u64) {
        while v >= 0x80 {
            out.push((v as u8) | 0x80);
            v >>= 7;
        }
        out.push(v as u8);
    }

    /// A message archive as nats-server 2.12+ writes it: (name, sequence, body).
    fn messages(entries: &[(&str, u64, &[u8])]) -> Vec<u8> {
        let mut raw = MESSAGE_ARCHIVE_MAGIC.to_vec();
        for (name, seq, body) in entries {
            put_uvarint(&mut raw, name.len() as u64);
            put_uvarint(&mut raw, 3_400_000_000_000_000_000); // zigzag timestamp
            put_uvarint(&mut raw, *seq);
            put_uvarint(&mut raw, 0);
            put_uvarint(&mut raw, body.len() as u64);
            raw.extend_from_slice(name.as_bytes());
            raw.extend_from_slice(body);
        }
        let mut out = Vec::new();
        {
            let mut w = minlz::Writer::new(&mut out);
            std::io::Write::write_all(&mut w, &raw).unwrap();
            std::io::Write::flush(&mut w).unwrap();
        }
        out
    }

    const STATE: &[u8] =
        br#"{"messages":3,"bytes":9,"first_seq":1,"last_seq":4,"consumer_count":1}"#;

    #[test]
    fn a_message_archive_reads_back_with_its_sequences_and_consumers() {
        let a = messages(&[
            ("state.json", 0, STATE),
            ("consumers/reader", 0, b"{}"),
            ("facts.a.1", 1, b"one"),
            ("facts.a.2", 2, &[9u8; 100_000]),
            ("facts.a.4", 4, b"four"),
        ]);
        let s = read_back(&a[..]).unwrap();
        assert_eq!(s.format, "messages");
        assert_eq!((s.messages, s.first_seq, s.last_seq), (3, 1, 4));
        assert_eq!(s.consumers, vec!["reader".to_string()]);
    }

    #[test]
    fn a_message_archive_out_of_order_short_or_cut_is_refused() {
        let reordered = messages(&[
            ("state.json", 0, STATE),
            ("s", 2, b"x"),
            ("s", 1, b"x"),
            ("s", 4, b"x"),
        ]);
        assert!(matches!(
            read_back(&reordered[..]),
            Err(ArchiveError::Invalid(_))
        ));
        let missing = messages(&[("state.json", 0, STATE), ("s", 1, b"x"), ("s", 4, b"x")]);
        assert!(matches!(
            read_back(&missing[..]),
            Err(ArchiveError::Invalid(_))
        ));
        let stateless = messages(&[("s", 1, b"x")]);
        assert!(matches!(
            read_back(&stateless[..]),
            Err(ArchiveError::NoMeta)
        ));
        let whole = messages(&[
            ("state.json", 0, STATE),
            ("s", 1, b"x"),
            ("s", 2, &[3u8; 200_000]),
            ("s", 4, b"x"),
        ]);
        assert!(read_back(&whole[..]).is_ok());
        assert!(read_back(&whole[..whole.len() - 10]).is_err(), "cut");
    }

    #[test]
    fn a_complete_archive_reads_back_with_its_blocks_and_consumers() {
        let a = archive(&[
            ("meta.inf", b"{}"),
            ("meta.sum", b"x"),
            ("msgs/1.blk", &[7u8; 5000]),
            ("msgs/2.blk", &[8u8; 10]),
            ("msgs/index.db", b"i"),
            ("obs/reader/meta.inf", b"{}"),
            ("obs/reader/o.dat", b"s"),
        ]);
        let s = read_back(&a[..]).unwrap();
        assert_eq!(s.format, "tar");
        assert_eq!(s.message_blocks, 2);
        assert_eq!(s.consumers, vec!["reader".to_string()]);
        assert!(s.uncompressed_bytes > 5000);
    }

    #[test]
    fn truncation_corruption_and_server_errors_are_found() {
        let a = archive(&[("meta.inf", b"{}"), ("msgs/1.blk", &[1u8; 70_000])]);
        assert!(read_back(&a[..a.len() / 2]).is_err(), "truncated");
        let mut bad = a.clone();
        let i = bad.len() - 20;
        bad[i] ^= 0xff;
        assert!(read_back(&bad[..]).is_err(), "corrupted");
        let e = archive(&[("meta.inf", b"{}"), ("errors.txt", b"disk gone")]);
        assert!(matches!(read_back(&e[..]), Err(ArchiveError::ServerError(m)) if m == "disk gone"));
        let n = archive(&[("msgs/1.blk", b"x")]);
        assert!(matches!(read_back(&n[..]), Err(ArchiveError::NoMeta)));
    }

    #[test]
    fn a_changed_file_fails_its_digest() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("s.tar.s2");
        let a = archive(&[("meta.inf", b"{}")]);
        std::fs::write(&p, &a).unwrap();
        let (d, n) = digest(&a[..]).unwrap();
        assert_eq!(n, a.len() as u64);
        assert!(verify_file(&p, &d).is_ok());
        assert!(matches!(
            verify_file(&p, "sha256:00"),
            Err(ArchiveError::Digest { .. })
        ));
    }
}
