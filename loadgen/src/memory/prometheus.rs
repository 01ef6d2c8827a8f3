//! `--prometheus-url` with `--memory-query` / `--limit-query`: the
//! service's memory as a Prometheus server sees it, by one instant query
//! of its HTTP API (`GET /api/v1/query?query=...`) per sample, for
//! services only Prometheus can reach.
//!
//! The value is as fresh as the server's last scrape of the service (its
//! `scrape_interval`), so a curve from here lags one read directly.

use std::time::Duration;

use serde::Deserialize;

use super::sampler::scrape::{ScrapeError, Scraper};
use super::selector::aggregate;
use crate::memory::MemoryAggregate;
use crate::target::Target;

/// Why a query gave no figure.
#[derive(Debug, Clone, thiserror::Error)]
pub(crate) enum QueryError {
    #[error("Prometheus at {url}: {source}")]
    Http { url: String, source: ScrapeError },
    #[error("Prometheus at {url} refused `{query}`: {kind}: {message}")]
    Refused {
        url: String,
        query: String,
        kind: String,
        message: String,
    },
    #[error(
        "`{query}` returned no series from Prometheus at {url} (does it scrape the service yet?)"
    )]
    Empty { url: String, query: String },
    #[error("Prometheus at {url}: unexpected answer to `{query}`: {reason}")]
    Unexpected {
        url: String,
        query: String,
        reason: String,
    },
}

/// One PromQL expression, queried again at every sample.
pub(crate) struct PromQuery {
    url: String,
    query: String,
    scraper: Scraper,
}

impl PromQuery {
    pub(crate) fn new(server: &Target, query: &str, timeout: Duration) -> PromQuery {
        let encoded: String = form_urlencoded::byte_serialize(query.as_bytes()).collect();
        let path = format!("{}/api/v1/query?query={encoded}", server.base_path);
        PromQuery {
            url: server.url.clone(),
            query: query.to_string(),
            scraper: Scraper::with_path(server.clone(), path, timeout),
        }
    }

    pub(crate) fn query(&self) -> &str {
        &self.query
    }

    /// The query's value now, several series combined by `how`.
    pub(crate) async fn value(&mut self, how: MemoryAggregate) -> Result<f64, QueryError> {
        let body = self
            .scraper
            .get()
            .await
            .map_err(|source| QueryError::Http {
                url: self.url.clone(),
                source,
            })?;
        parse_answer(body, how).map_err(|answer| match answer {
            Answer::Refused { kind, message } => QueryError::Refused {
                url: self.url.clone(),
                query: self.query.clone(),
                kind,
                message,
            },
            Answer::Empty => QueryError::Empty {
                url: self.url.clone(),
                query: self.query.clone(),
            },
            Answer::Unexpected(reason) => QueryError::Unexpected {
                url: self.url.clone(),
                query: self.query.clone(),
                reason,
            },
        })
    }
}

/// The API's envelope (prometheus.io/docs/prometheus/latest/querying/api).
#[derive(Deserialize)]
struct Envelope {
    status: String,
    #[serde(default)]
    data: Option<Data>,
    #[serde(default, rename = "errorType")]
    error_type: String,
    #[serde(default)]
    error: String,
}

#[derive(Deserialize)]
struct Data {
    #[serde(rename = "resultType")]
    result_type: String,
    result: serde_json::Value,
}

/// `[unix_time, "value"]`: the value is a string ("NaN", "+Inf" possible).
#[derive(Deserialize)]
struct Point(#[allow(dead_code)] f64, String);

#[derive(Deserialize)]
struct VectorItem {
    value: Point,
}

#[derive(Debug, PartialEq)]
enum Answer {
    Refused { kind: String, message: String },
    Empty,
    Unexpected(String),
}

/// A vector (several series combined by `how`) or a scalar; NaN and
/// infinite values are left out.
fn parse_answer(body: &[u8], how: MemoryAggregate) -> Result<f64, Answer> {
    let envelope: Envelope =
        serde_json::from_slice(body).map_err(|e| Answer::Unexpected(e.to_string()))?;
    if envelope.status != "success" {
        return Err(Answer::Refused {
            kind: envelope.error_type,
            message: envelope.error,
        });
    }
    let data = envelope
        .data
        .ok_or_else(|| Answer::Unexpected("no `data`".into()))?;
    let points: Vec<Point> =
        match data.result_type.as_str() {
            "vector" => serde_json::from_value::<Vec<VectorItem>>(data.result)
                .map_err(|e| Answer::Unexpected(e.to_string()))?
                .into_iter()
                .map(|item| item.value)
                .collect(),
            "scalar" => vec![serde_json::from_value(data.result)
                .map_err(|e| Answer::Unexpected(e.to_string()))?],
            other => {
                return Err(Answer::Unexpected(format!(
                    "a {other}, not an instant vector or scalar"
                )))
            }
        };
    let values = points
        .iter()
        .filter_map(|Point(_, v)| v.parse::<f64>().ok())
        .filter(|v| v.is_finite());
    aggregate(values, how).ok_or(Answer::Empty)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vectors_scalars_errors_and_empty_answers() {
        let vector = br#"{"status":"success","data":{"resultType":"vector","result":[
            {"metric":{"pod":"auth-a"},"value":[1700000000.1,"200"]},
            {"metric":{"pod":"auth-b"},"value":[1700000000.1,"150"]},
            {"metric":{"pod":"auth-c"},"value":[1700000000.1,"NaN"]}]}}"#;
        assert_eq!(parse_answer(vector, MemoryAggregate::Max), Ok(200.0));
        assert_eq!(parse_answer(vector, MemoryAggregate::Sum), Ok(350.0));
        let scalar = br#"{"status":"success","data":{"resultType":"scalar","result":[1.5,"42"]}}"#;
        assert_eq!(parse_answer(scalar, MemoryAggregate::Max), Ok(42.0));
        let empty = br#"{"status":"success","data":{"resultType":"vector","result":[]}}"#;
        assert_eq!(
            parse_answer(empty, MemoryAggregate::Max),
            Err(Answer::Empty)
        );
        let refused = br#"{"status":"error","errorType":"bad_data","error":"parse error"}"#;
        assert_eq!(
            parse_answer(refused, MemoryAggregate::Max),
            Err(Answer::Refused {
                kind: "bad_data".into(),
                message: "parse error".into()
            })
        );
        let matrix = br#"{"status":"success","data":{"resultType":"matrix","result":[]}}"#;
        assert!(matches!(
            parse_answer(matrix, MemoryAggregate::Max),
            Err(Answer::Unexpected(r)) if r.contains("matrix")
        ));
        assert!(parse_answer(b"<html>", MemoryAggregate::Max).is_err());
    }

    #[test]
    fn the_query_is_url_encoded_under_the_servers_path() {
        let server = Target::parse("http://127.0.0.1:9090/prom").unwrap();
        let q = PromQuery::new(
            &server,
            r#"sum(x{pod=~"auth-.*"}) + 1"#,
            Duration::from_secs(1),
        );
        assert_eq!(
            q.scraper.path(),
            "/prom/api/v1/query?query=sum%28x%7Bpod%3D%7E%22auth-.*%22%7D%29+%2B+1"
        );
    }
}
