//! `append`, `fetch`, `confirm`, `tail`.

use super::print_json;
use crate::cli::{AppendArgs, ConfirmArgs, FetchArgs, TailArgs};
use crate::exit::{self, CliError, Result};
use crate::identity::{Client, ClientArgs, ConfigFile};
use crate::output;
use bsfg_client::BoundaryServiceClient;
use bsfg_client::pb;
use tonic::transport::Channel;

/// Connects (lazily) with the resolved identity; the zone file's endpoint is
/// the last fallback.
pub fn client(args: &ClientArgs, file: &ConfigFile) -> Result<BoundaryServiceClient<Channel>> {
    let fallback = crate::zone::ZoneFile::load_optional(None, file)
        .ok()
        .flatten()
        .map(|z| z.endpoint);
    let Client { endpoint, tls } = args.resolve(file, fallback.as_deref())?;
    bsfg_client::connect_grpc(&endpoint, &tls).map_err(|e| match e {
        bsfg_client::ClientError::Tls(m) => CliError::Usage(format!("TLS files: {m}")),
        other => CliError::Usage(other.to_string()),
    })
}

/// `BUCKET/KEY@sha256:HEX:SIZE` (what `put-object` prints).
pub fn parse_artifact_ref(s: &str) -> std::result::Result<pb::ArtifactRef, String> {
    let bad = || format!("artifact {s:?}: expected BUCKET/KEY@sha256:HEX:SIZE");
    let (bk, rest) = s.rsplit_once('@').ok_or_else(bad)?;
    let (bucket, key) = bk.split_once('/').ok_or_else(bad)?;
    let (digest, size) = rest.rsplit_once(':').ok_or_else(bad)?;
    if bucket.is_empty() || key.is_empty() || !digest.starts_with("sha256:") {
        return Err(bad());
    }
    Ok(pb::ArtifactRef {
        bucket: bucket.to_owned(),
        key: key.to_owned(),
        digest: digest.to_owned(),
        size: size.parse().map_err(|_| bad())?,
        media_type: String::new(),
    })
}

/// The artifact reference string `put-object` prints.
pub fn format_artifact_ref(bucket: &str, key: &str, digest: &str, size: u64) -> String {
    format!("{bucket}/{key}@{digest}:{size}")
}

fn parse_label(s: &str) -> Result<(String, String)> {
    s.split_once('=')
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .filter(|(k, _)| !k.is_empty())
        .ok_or_else(|| CliError::Usage(format!("--label {s:?}: expected KEY=VALUE")))
}

/// The fact `append` sends (pure: tested directly).
pub fn build_fact(a: &AppendArgs, from_zone: String, now_ms: i64) -> Result<pb::Fact> {
    serde_json::from_str::<serde_json::Value>(&a.object_json)
        .map_err(|e| CliError::Usage(format!("--object-json is not JSON: {e}")))?;
    let labels = a
        .labels
        .iter()
        .map(|l| parse_label(l))
        .collect::<Result<_>>()?;
    let artifact = a
        .artifact
        .as_deref()
        .map(parse_artifact_ref)
        .transpose()
        .map_err(CliError::Usage)?;
    Ok(pb::Fact {
        envelope: Some(pb::Envelope {
            message_id: a.message_id.clone(),
            to_zone: a.to_zone.clone().unwrap_or_else(|| from_zone.clone()),
            from_zone,
            produced_at_unix_ms: a.produced_at_unix_ms.unwrap_or(now_ms),
            correlation_id: a.correlation_id.clone().unwrap_or_default(),
            causation_id: a.causation_id.clone().unwrap_or_default(),
            labels,
            object_media_type: String::new(),
            object_schema: String::new(),
            artifact,
        }),
        subject: a.subject.clone(),
        predicate: a.predicate.clone(),
        object_json: a.object_json.clone(),
    })
}

pub async fn append(a: &AppendArgs, file: &ConfigFile, json: bool) -> Result<u8> {
    let from_zone = match a.from_zone.clone().or_else(|| file.from_zone.clone()) {
        Some(z) => z,
        None => crate::zone::ZoneFile::load_optional(None, file)?
            .map(|z| z.zone)
            .ok_or_else(|| {
                CliError::Usage(
                    "no zone for envelope.from_zone: pass --from-zone (or BSFG_CLI_FROM_ZONE, `from_zone` in the config file, or a zone file)".into(),
                )
            })?,
    };
    let fact = build_fact(a, from_zone, bsfg_core::clock::unix_ms())?;
    let mut c = client(&a.client, file)?;
    let resp = c
        .append_fact(pb::AppendFactRequest {
            stream_class: a.class.clone(),
            fact: Some(fact),
        })
        .await
        .map_err(|s| CliError::from_status("AppendFact", &s))?
        .into_inner();
    if json {
        print_json(&serde_json::json!({
            "offset": resp.offset, "duplicate": resp.duplicate, "message_id": a.message_id,
        }));
    } else {
        println!(
            "offset {}{} (message id {})",
            resp.offset,
            if resp.duplicate {
                " (duplicate: already stored)"
            } else {
                ""
            },
            a.message_id
        );
    }
    Ok(exit::OK)
}

/// One line per fact: offset, stored time, message id, subject, predicate, object.
pub fn facts_table(facts: &[pb::StoredFact]) -> String {
    let rows: Vec<Vec<String>> = facts
        .iter()
        .map(|f| {
            let fact = f.fact.clone().unwrap_or_default();
            let env = fact.envelope.unwrap_or_default();
            vec![
                f.offset.to_string(),
                humantime::format_rfc3339_millis(
                    std::time::UNIX_EPOCH
                        + std::time::Duration::from_millis(f.stored_at_unix_ms.max(0) as u64),
                )
                .to_string(),
                env.message_id,
                fact.subject,
                fact.predicate,
                fact.object_json,
            ]
        })
        .collect();
    output::table(
        &[
            "OFFSET",
            "STORED",
            "MESSAGE ID",
            "SUBJECT",
            "PREDICATE",
            "OBJECT",
        ],
        &rows,
    )
}

async fn fetch_page(
    c: &mut BoundaryServiceClient<Channel>,
    consumer: &str,
    limit: u32,
) -> Result<Vec<pb::StoredFact>> {
    Ok(c.fetch_facts(pb::FetchFactsRequest {
        consumer_name: consumer.to_owned(),
        limit,
    })
    .await
    .map_err(|s| CliError::from_status("FetchFacts", &s))?
    .into_inner()
    .facts)
}

async fn confirm_offset(
    c: &mut BoundaryServiceClient<Channel>,
    consumer: &str,
    offset: u64,
) -> Result<u64> {
    Ok(c.confirm_receipt(pb::ConfirmReceiptRequest {
        consumer_name: consumer.to_owned(),
        offset,
    })
    .await
    .map_err(|s| CliError::from_status("ConfirmReceipt", &s))?
    .into_inner()
    .cursor_advanced_to)
}

pub async fn fetch(a: &FetchArgs, file: &ConfigFile, json: bool) -> Result<u8> {
    let mut c = client(&a.client, file)?;
    let facts = fetch_page(&mut c, &a.consumer, a.limit).await?;
    if json {
        print_json(&serde_json::json!({ "consumer": a.consumer, "facts": facts }));
    } else if facts.is_empty() {
        println!("no facts waiting for consumer {}", a.consumer);
    } else {
        print!("{}", facts_table(&facts));
    }
    Ok(exit::OK)
}

pub async fn confirm(a: &ConfirmArgs, file: &ConfigFile, json: bool) -> Result<u8> {
    let mut c = client(&a.client, file)?;
    let to = confirm_offset(&mut c, &a.consumer, a.offset).await?;
    if json {
        print_json(&serde_json::json!({ "consumer": a.consumer, "cursor_advanced_to": to }));
    } else {
        println!("consumer {} confirmed through offset {to}", a.consumer);
    }
    Ok(exit::OK)
}

/// Which facts of a page are new to a tail that printed up to `printed`.
pub fn unseen(page: &[pb::StoredFact], printed: Option<u64>) -> Vec<pb::StoredFact> {
    page.iter()
        .filter(|f| printed.is_none_or(|p| f.offset > p))
        .cloned()
        .collect()
}

pub async fn tail(a: &TailArgs, file: &ConfigFile, json: bool) -> Result<u8> {
    use std::io::Write;
    let mut c = client(&a.client, file)?;
    let mut printed: Option<u64> = None;
    let mut total = 0u64;
    let mut header = !json;
    let mut warned_full = false;
    loop {
        let page = fetch_page(&mut c, &a.consumer, a.limit).await?;
        let mut new = unseen(&page, printed);
        if let Some(max) = a.count {
            new.truncate((max - total) as usize);
        }
        if !new.is_empty() {
            let mut out = std::io::stdout().lock();
            if json {
                for f in &new {
                    let _ = writeln!(out, "{}", serde_json::to_string(f).unwrap_or_default());
                }
            } else {
                let t = facts_table(&new);
                let body = if header {
                    t.as_str()
                } else {
                    t.split_once('\n').map_or("", |x| x.1)
                };
                let _ = write!(out, "{body}");
                header = false;
            }
            let _ = out.flush();
            total += new.len() as u64;
            let last = new.last().map(|f| f.offset).unwrap_or_default();
            printed = Some(last);
            if a.confirm {
                confirm_offset(&mut c, &a.consumer, last).await?;
            }
        } else if !a.confirm && !page.is_empty() && !warned_full && a.follow {
            // Without confirming, FetchFacts keeps answering the same first page.
            if a.limit == 0 || page.len() as u32 >= a.limit {
                eprintln!(
                    "bsfgctl: {} unconfirmed facts fill the page; newer facts show only with --confirm",
                    page.len()
                );
                warned_full = true;
            }
        }
        if a.count.is_some_and(|m| total >= m) {
            break;
        }
        if new.is_empty() && !a.follow {
            break;
        }
        if new.is_empty() {
            tokio::time::sleep(a.interval).await;
        }
    }
    Ok(exit::OK)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn artifact_refs_round_trip_and_bad_ones_are_refused() {
        let r = parse_artifact_ref("drawings/line-1/a.pdf@sha256:abcd:1234").unwrap();
        assert_eq!(
            (r.bucket.as_str(), r.key.as_str()),
            ("drawings", "line-1/a.pdf")
        );
        assert_eq!((r.digest.as_str(), r.size), ("sha256:abcd", 1234));
        assert_eq!(
            format_artifact_ref(&r.bucket, &r.key, &r.digest, r.size),
            "drawings/line-1/a.pdf@sha256:abcd:1234"
        );
        for bad in [
            "drawings@sha256:ab:1",
            "d/k@md5:ab:1",
            "d/k@sha256:ab",
            "d/k@sha256:ab:x",
        ] {
            assert!(parse_artifact_ref(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_tail_prints_only_offsets_beyond_what_it_printed() {
        let page: Vec<pb::StoredFact> = [3u64, 4, 5]
            .into_iter()
            .map(|offset| pb::StoredFact {
                offset,
                ..Default::default()
            })
            .collect();
        assert_eq!(unseen(&page, None).len(), 3);
        let v: Vec<u64> = unseen(&page, Some(4)).iter().map(|f| f.offset).collect();
        assert_eq!(v, vec![5]);
        assert!(unseen(&page, Some(5)).is_empty());
    }
}
