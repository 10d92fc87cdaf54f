//! The contract's promise: `curl` speaks to the controller (Connect, JSON).

use crate::common::*;
use std::process::Command;

fn curl(
    zone: &Zone,
    who: &bsfg_core::config::TlsFiles,
    method: &str,
    json: &str,
) -> (u16, serde_json::Value) {
    curl_with(zone, who, method, json, &[])
}

/// `curl` with extra `-H` headers.
fn curl_with(
    zone: &Zone,
    who: &bsfg_core::config::TlsFiles,
    method: &str,
    json: &str,
    headers: &[&str],
) -> (u16, serde_json::Value) {
    let url = format!(
        "{}/bsfg.v1.BoundaryService/{method}",
        zone.controller.endpoint()
    );
    let extra: Vec<&str> = headers.iter().flat_map(|h| ["-H", *h]).collect();
    let (code, body) = run_curl(who, &extra, json, &url);
    (
        code,
        serde_json::from_str(&body).unwrap_or(serde_json::Value::Null),
    )
}

/// POSTs (or `-X`s) `json` to `url` as `who`; the HTTP status and the body.
fn run_curl(
    who: &bsfg_core::config::TlsFiles,
    extra: &[&str],
    json: &str,
    url: &str,
) -> (u16, String) {
    let out = Command::new(bsfg_testkit::bins::system_program("curl", "curl"))
        .args([
            "--silent",
            "--show-error",
            "--write-out",
            "\n%{http_code}",
            "--cacert",
        ])
        .arg(&who.ca)
        .arg("--cert")
        .arg(&who.certificate)
        .arg("--key")
        .arg(&who.private_key)
        .args(extra)
        .args(["-H", "content-type: application/json", "--data", json, url])
        .output()
        .expect("run curl");
    assert!(
        out.status.success(),
        "curl {url} failed ({}): {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    let (body, code) = text.rsplit_once('\n').unwrap();
    (code.parse().unwrap(), body.to_owned())
}

#[tokio::test]
async fn curl_appends_fetches_and_confirms_with_connect_json() {
    let zone = Zone::start1_with(|_| {}).await;
    let append = r#"{"streamClass":"operational","fact":{"envelope":{"messageId":"curl-1","fromZone":"plant-a","toZone":"enterprise","producedAtUnixMs":"1780000000000"},"subject":"order:4711","predicate":"has_status","objectJson":"{\"status\":\"released\"}"}}"#;
    let (code, body) = curl(&zone, &zone.producer, "AppendFact", append);
    assert_eq!(
        (code, &body["offset"]),
        (200, &serde_json::json!("1")),
        "{body}"
    );
    let (code, body) = curl(&zone, &zone.producer, "AppendFact", append);
    assert_eq!(
        (code, &body["duplicate"]),
        (200, &serde_json::json!(true)),
        "{body}"
    );

    let (code, body) = curl(
        &zone,
        &zone.reader,
        "FetchFacts",
        r#"{"consumerName":"erp-orders","limit":10}"#,
    );
    assert_eq!(code, 200, "{body}");
    assert_eq!(body["facts"][0]["offset"], "1");
    assert_eq!(body["facts"][0]["fact"]["envelope"]["messageId"], "curl-1");
    assert_eq!(
        body["facts"][0]["fact"]["objectJson"],
        r#"{"status":"released"}"#
    );

    let (code, body) = curl(
        &zone,
        &zone.reader,
        "ConfirmReceipt",
        r#"{"consumerName":"erp-orders","offset":"1"}"#,
    );
    assert_eq!(
        (code, &body["cursorAdvancedTo"]),
        (200, &serde_json::json!("1")),
        "{body}"
    );

    let (code, body) = curl(&zone, &zone.reader, "AppendFact", append);
    assert_eq!(
        (code, &body["code"]),
        (403, &serde_json::json!("permission_denied")),
        "{body}"
    );
}

#[tokio::test]
async fn the_connect_protocol_version_is_optional_but_must_be_one() {
    let zone = Zone::start1_with(|_| {}).await;
    let fetch = r#"{"consumerName":"erp-orders","limit":1}"#;
    let (code, body) = curl_with(
        &zone,
        &zone.reader,
        "FetchFacts",
        fetch,
        &["connect-protocol-version: 1"],
    );
    assert_eq!(code, 200, "{body}");
    let (code, body) = curl(&zone, &zone.reader, "FetchFacts", fetch);
    assert_eq!(code, 200, "without the header: {body}");
    let (code, body) = curl_with(
        &zone,
        &zone.reader,
        "FetchFacts",
        fetch,
        &["connect-protocol-version: 2"],
    );
    assert_eq!(code, 400, "{body}");
    assert_eq!(
        body["details"][0]["debug"]["reason"], "invalid_request",
        "{body}"
    );
    // Not POST, and a path that is not UTF-8: the contract's error document too.
    let url = format!(
        "{}/bsfg.v1.BoundaryService/FetchFacts",
        zone.controller.endpoint()
    );
    for (method, url) in [("GET", url.clone()), ("POST", format!("{url}%FF"))] {
        let (code, body) = run_curl(&zone.reader, &["-X", method], fetch, &url);
        let doc: serde_json::Value = serde_json::from_str(&body)
            .unwrap_or_else(|e| panic!("{method} {url}: {e}: {body:?} ({code})"));
        assert!(
            doc["details"][0]["debug"]["reason"].is_string(),
            "{method} {url}: {doc}"
        );
    }
}
