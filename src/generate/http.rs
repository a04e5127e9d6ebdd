//! What the HTTP providers share: the client, status handling (with
//! Retry-After), and a Server-Sent Events parser that copes with events and
//! UTF-8 characters split across network chunks.

use std::time::Duration;

use reqwest::header::HeaderMap;

use super::provider::ProviderError;

/// A client with a connect timeout; the whole call is bounded by the router.
pub fn client(connect_timeout: Duration) -> Result<reqwest::Client, ProviderError> {
    reqwest::Client::builder()
        .connect_timeout(connect_timeout)
        .pool_idle_timeout(Duration::from_secs(30))
        .build()
        .map_err(|e| ProviderError::Config(format!("HTTP client: {e}")))
}

/// A JSON POST of `body` to `url` with the provider's client, and its key to
/// attach in the provider's own scheme: set-up errors (no client, a key
/// variable that cannot be read) surface here, on every call.
pub fn json_post<'k>(
    client: &Result<reqwest::Client, ProviderError>,
    key: &'k Result<Option<String>, String>,
    url: &str,
    body: &serde_json::Value,
) -> Result<(reqwest::RequestBuilder, Option<&'k str>), ProviderError> {
    let client = client.as_ref().map_err(Clone::clone)?;
    let key = key.as_ref().map_err(|e| ProviderError::Config(e.clone()))?;
    Ok((client.post(url).json(body), key.as_deref()))
}

/// `Retry-After` as seconds or an HTTP date.
pub fn retry_after(h: &HeaderMap) -> Option<Duration> {
    let v = h.get(reqwest::header::RETRY_AFTER)?.to_str().ok()?.trim();
    if let Ok(secs) = v.parse::<f64>() {
        return (secs.is_finite() && secs >= 0.0)
            .then(|| Duration::from_secs_f64(secs.min(3600.0)));
    }
    httpdate_secs(v).map(|t| {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        Duration::from_secs(t.saturating_sub(now).min(3600))
    })
}

/// Parses an IMF-fixdate ("Wed, 21 Oct 2015 07:28:00 GMT") to Unix seconds.
fn httpdate_secs(s: &str) -> Option<u64> {
    let parts: Vec<&str> = s.split_whitespace().collect();
    if parts.len() != 6 {
        return None;
    }
    let day: i64 = parts[1].parse().ok()?;
    let month = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ]
    .iter()
    .position(|m| *m == parts[2])? as i64
        + 1;
    let year: i64 = parts[3].parse().ok()?;
    let hms: Vec<i64> = parts[4].split(':').filter_map(|x| x.parse().ok()).collect();
    if hms.len() != 3 {
        return None;
    }
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    u64::try_from(days * 86_400 + hms[0] * 3600 + hms[1] * 60 + hms[2]).ok()
}

/// Turns a non-success response into an error (body shortened; it is the
/// provider's message, never our request, so no secrets are echoed).
pub async fn check(resp: reqwest::Response) -> Result<reqwest::Response, ProviderError> {
    let status = resp.status();
    if status.is_success() {
        return Ok(resp);
    }
    let retry = retry_after(resp.headers());
    let body = resp.text().await.unwrap_or_default();
    let message: String = body.chars().take(300).collect();
    Err(ProviderError::Http {
        status: status.as_u16(),
        retry_after: retry,
        message: message.trim().to_string(),
    })
}

pub fn transport(e: reqwest::Error) -> ProviderError {
    if e.is_timeout() {
        ProviderError::Timeout(Duration::ZERO)
    } else if e.is_connect() {
        ProviderError::Connect(e.to_string())
    } else if e.is_decode() {
        ProviderError::Malformed(e.to_string())
    } else {
        ProviderError::Connect(e.to_string())
    }
}

/// One Server-Sent Event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SseEvent {
    pub event: Option<String>,
    pub data: String,
}

/// Incremental SSE parser.
#[derive(Default)]
pub struct SseParser {
    buf: Vec<u8>,
    event: Option<String>,
    data: Vec<String>,
}

impl SseParser {
    pub fn push(&mut self, chunk: &[u8]) -> Vec<SseEvent> {
        self.buf.extend_from_slice(chunk);
        let mut out = Vec::new();
        while let Some(nl) = self.buf.iter().position(|&b| b == b'\n') {
            let line_bytes: Vec<u8> = self.buf.drain(..=nl).collect();
            let line = String::from_utf8_lossy(&line_bytes);
            let line = line.trim_end_matches(['\n', '\r']);
            if line.is_empty() {
                if !self.data.is_empty() || self.event.is_some() {
                    out.push(SseEvent {
                        event: self.event.take(),
                        data: std::mem::take(&mut self.data).join("\n"),
                    });
                }
                continue;
            }
            if line.starts_with(':') {
                continue;
            }
            let (field, value) = match line.split_once(':') {
                Some((f, v)) => (f, v.strip_prefix(' ').unwrap_or(v)),
                None => (line, ""),
            };
            match field {
                "event" => self.event = Some(value.to_string()),
                "data" => self.data.push(value.to_string()),
                _ => {}
            }
        }
        out
    }

    /// Events left without their terminating blank line at end of stream.
    pub fn finish(&mut self) -> Vec<SseEvent> {
        self.push(b"\n\n")
    }
}

/// Sends a request, checks its status (as [`check`]) and reads a JSON body.
pub async fn send_json(rb: reqwest::RequestBuilder) -> Result<serde_json::Value, ProviderError> {
    let resp = check(rb.send().await.map_err(transport)?).await?;
    let bytes = resp.bytes().await.map_err(transport)?;
    serde_json::from_slice(&bytes).map_err(|e| ProviderError::Malformed(format!("not JSON: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sse_across_chunk_boundaries() {
        let mut p = SseParser::default();
        let text = "event: a\ndata: {\"x\":\"Grü\u{00df}e\"}\n\n: comment\ndata: 1\ndata: 2\n\ndata: [DONE]\n\n";
        let bytes = text.as_bytes();
        let mut events = Vec::new();
        for chunk in bytes.chunks(3) {
            events.extend(p.push(chunk));
        }
        assert_eq!(events.len(), 3);
        assert_eq!(events[0].event.as_deref(), Some("a"));
        assert!(events[0].data.contains("Grüße"));
        assert_eq!(events[1].data, "1\n2");
        assert_eq!(events[2].data, "[DONE]");
    }

    #[test]
    fn retry_after_forms() {
        let mut h = HeaderMap::new();
        h.insert("retry-after", "2".parse().unwrap());
        assert_eq!(retry_after(&h), Some(Duration::from_secs(2)));
        h.insert(
            "retry-after",
            "Wed, 21 Oct 2015 07:28:00 GMT".parse().unwrap(),
        );
        assert_eq!(retry_after(&h), Some(Duration::ZERO), "a date in the past");
        assert_eq!(
            httpdate_secs("Wed, 21 Oct 2015 07:28:00 GMT"),
            Some(1_445_412_480)
        );
    }
}
