//! `put-object` (streams the file, compares the server's digest with its own)
//! and `get-object` (verifies size and digest before the file appears).

use super::facts::{client, format_artifact_ref};
use super::print_json;
use crate::cli::{GetObjectArgs, PutObjectArgs};
use crate::exit::{self, CliError, Result};
use crate::identity::ConfigFile;
use bsfg_client::pb;
use sha2::{Digest, Sha256};
use std::io::Write;
use tokio::io::AsyncReadExt;

const CHUNK: usize = 256 * 1024;

/// `sha256:<hex>` of what the hasher saw.
pub fn digest_string(h: Sha256) -> String {
    format!("sha256:{}", hex::encode(h.finalize()))
}

/// Verification of a downloaded object: `None` when it matches everything
/// expected, else what differs.
pub fn verify(
    announced: &pb::ArtifactRef,
    received_size: u64,
    received_digest: &str,
    expect_digest: Option<&str>,
) -> Option<String> {
    let mut problems = Vec::new();
    if received_size != announced.size {
        problems.push(format!(
            "received {received_size} bytes, the server announced {}",
            announced.size
        ));
    }
    if received_digest != announced.digest {
        problems.push(format!(
            "received content has digest {received_digest}, the server announced {}",
            announced.digest
        ));
    }
    if let Some(e) = expect_digest
        && e != received_digest
    {
        problems.push(format!("expected digest {e}, received {received_digest}"));
    }
    (!problems.is_empty()).then(|| problems.join("; "))
}

pub async fn put(a: &PutObjectArgs, file: &ConfigFile, json: bool) -> Result<u8> {
    let data_source = a.file.clone();
    // Size first (the header carries it): a file's metadata, or stdin read whole.
    let (size, stdin_data) = if data_source.as_os_str() == "-" {
        let mut buf = Vec::new();
        std::io::Read::read_to_end(&mut std::io::stdin(), &mut buf)
            .map_err(|e| CliError::Usage(format!("reading standard input: {e}")))?;
        (buf.len() as u64, Some(buf))
    } else {
        let m = std::fs::metadata(&data_source)
            .map_err(|e| CliError::Usage(format!("{}: {e}", data_source.display())))?;
        if !m.is_file() {
            return Err(CliError::Usage(format!(
                "{}: not a regular file",
                data_source.display()
            )));
        }
        (m.len(), None)
    };
    let mut c = client(&a.client, file)?;
    let (tx, rx) = tokio::sync::mpsc::channel::<pb::PutObjectRequest>(4);
    let header = pb::PutObjectRequest {
        part: Some(pb::put_object_request::Part::Header(pb::ObjectHeader {
            bucket: a.bucket.clone(),
            key: a.object_key.clone(),
            media_type: a.media_type.clone(),
            size,
        })),
    };
    let path = data_source.clone();
    let reader = tokio::spawn(async move {
        let mut hasher = Sha256::new();
        if tx.send(header).await.is_err() {
            return Ok(hasher);
        }
        let chunk = |b: Vec<u8>| pb::PutObjectRequest {
            part: Some(pb::put_object_request::Part::Chunk(b)),
        };
        if let Some(data) = stdin_data {
            for piece in data.chunks(CHUNK) {
                hasher.update(piece);
                if tx.send(chunk(piece.to_vec())).await.is_err() {
                    break;
                }
            }
            return Ok(hasher);
        }
        let mut f = tokio::fs::File::open(&path)
            .await
            .map_err(|e| format!("{}: {e}", path.display()))?;
        loop {
            let mut buf = vec![0u8; CHUNK];
            let n = f
                .read(&mut buf)
                .await
                .map_err(|e| format!("{}: {e}", path.display()))?;
            if n == 0 {
                break;
            }
            buf.truncate(n);
            hasher.update(&buf);
            if tx.send(chunk(buf)).await.is_err() {
                break;
            }
        }
        Ok::<_, String>(hasher)
    });
    let resp = c
        .put_object(tokio_stream::wrappers::ReceiverStream::new(rx))
        .await
        .map_err(|s| CliError::from_status("PutObject", &s));
    let local = reader
        .await
        .map_err(|e| CliError::Failed(format!("reading the file: {e}")))?
        .map_err(CliError::Usage)?;
    let resp = resp?.into_inner();
    let local_digest = digest_string(local);
    let reference = format_artifact_ref(&resp.bucket, &resp.key, &resp.digest, resp.size);
    if json {
        print_json(&serde_json::json!({
            "bucket": resp.bucket, "key": resp.key, "digest": resp.digest, "size": resp.size,
            "artifact": reference, "local_digest": local_digest,
        }));
    } else {
        println!(
            "stored {} ({} bytes, {})",
            reference, resp.size, resp.digest
        );
    }
    if resp.digest != local_digest || resp.size != size {
        return Err(CliError::Failed(format!(
            "the server stored {} ({} bytes) but this file is {local_digest} ({size} bytes)",
            resp.digest, resp.size
        )));
    }
    Ok(exit::OK)
}

pub async fn get(a: &GetObjectArgs, file: &ConfigFile, json: bool) -> Result<u8> {
    let mut c = client(&a.client, file)?;
    let mut stream = c
        .get_object(pb::GetObjectRequest {
            bucket: a.bucket.clone(),
            key: a.object_key.clone(),
        })
        .await
        .map_err(|s| CliError::from_status("GetObject", &s))?
        .into_inner();
    // To a file: a temporary file next to it, renamed only once verified.
    let mut sink = match &a.output {
        Some(p) => {
            let dir = p
                .parent()
                .filter(|d| !d.as_os_str().is_empty())
                .unwrap_or(std::path::Path::new("."));
            Sink::File(
                tempfile::NamedTempFile::new_in(dir)
                    .map_err(|e| CliError::Usage(format!("{}: {e}", dir.display())))?,
            )
        }
        None => Sink::Stdout(std::io::stdout()),
    };
    let mut announced: Option<pb::ArtifactRef> = None;
    let mut hasher = Sha256::new();
    let mut received = 0u64;
    while let Some(msg) = stream
        .message()
        .await
        .map_err(|s| CliError::from_status("GetObject", &s))?
    {
        match msg.part {
            Some(pb::get_object_response::Part::Header(h)) => announced = Some(h),
            Some(pb::get_object_response::Part::Chunk(b)) => {
                hasher.update(&b);
                received += b.len() as u64;
                sink.write_all(&b)
                    .map_err(|e| CliError::Failed(format!("writing: {e}")))?;
            }
            None => {}
        }
    }
    sink.flush()
        .map_err(|e| CliError::Failed(format!("writing: {e}")))?;
    let announced = announced
        .ok_or_else(|| CliError::Failed("GetObject: the stream carried no header".into()))?;
    let digest = digest_string(hasher);
    let problem = verify(&announced, received, &digest, a.expect_digest.as_deref());
    let summary = serde_json::json!({
        "bucket": announced.bucket, "key": announced.key, "digest": digest,
        "size": received, "media_type": announced.media_type, "verified": problem.is_none(),
        "output": a.output.as_ref().map(|p| p.display().to_string()),
    });
    if let Some(p) = &problem {
        return Err(CliError::Failed(format!(
            "object {}/{} did not verify: {p}{}",
            a.bucket,
            a.object_key,
            if a.output.is_some() {
                " (nothing written)"
            } else {
                ""
            }
        )));
    }
    if let (Some(out), Sink::File(tmp)) = (&a.output, sink) {
        tmp.persist(out)
            .map_err(|e| CliError::Failed(format!("{}: {e}", out.display())))?;
        if json {
            print_json(&summary);
        } else {
            println!("{} verified ({} bytes, {digest})", out.display(), received);
        }
    } else if json {
        eprintln!("{summary}");
    } else {
        eprintln!("verified ({received} bytes, {digest})");
    }
    Ok(exit::OK)
}

enum Sink {
    File(tempfile::NamedTempFile),
    Stdout(std::io::Stdout),
}

impl Write for Sink {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match self {
            Sink::File(f) => f.write(buf),
            Sink::Stdout(o) => o.write(buf),
        }
    }
    fn flush(&mut self) -> std::io::Result<()> {
        match self {
            Sink::File(f) => f.as_file().sync_all(),
            Sink::Stdout(o) => o.flush(),
        }
    }
}
