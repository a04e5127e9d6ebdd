//! Anthropic Messages API (`POST {base_url}/v1/messages`).

use std::time::Duration;

use async_trait::async_trait;
use futures_util::StreamExt;
use serde_json::{json, Value};
use tokio::sync::mpsc::UnboundedSender;

use super::http::{self, SseParser};
use super::openai::key_from_env;
use super::provider::{estimate_tokens, ChatRequest, Completion, Provider, ProviderError};
use crate::config::{Locality, ProviderConfig};

/// A provider speaking Anthropic's messages API.
pub struct Anthropic {
    name: String,
    url: String,
    model: String,
    api_key: Result<Option<String>, String>,
    locality: Locality,
    prices: (f64, f64),
    client: Result<reqwest::Client, ProviderError>,
}

impl Anthropic {
    /// The provider of a `[[providers]]` entry (the key is read from `api_key_env` at use).
    pub fn new(cfg: &ProviderConfig) -> Anthropic {
        let base = cfg
            .base_url
            .clone()
            .unwrap_or_else(|| "https://api.anthropic.com".into());
        let base = base.trim_end_matches('/');
        let url = if base.ends_with("/v1") {
            format!("{base}/messages")
        } else {
            format!("{base}/v1/messages")
        };
        Anthropic {
            name: cfg.name.clone(),
            url,
            model: cfg
                .model
                .clone()
                .unwrap_or_else(|| "claude-3-5-haiku-latest".into()),
            api_key: key_from_env(&cfg.api_key_env),
            locality: cfg.locality,
            prices: (cfg.usd_per_1k_input, cfg.usd_per_1k_output),
            client: http::client(Duration::from_secs(cfg.timeout_s.clamp(1, 30))),
        }
    }
}

impl Anthropic {
    /// The authenticated POST of `body` to the messages URL (the client and
    /// the key checked: both calls start here).
    fn post(&self, body: &Value) -> Result<reqwest::RequestBuilder, ProviderError> {
        let (rb, key) = http::json_post(&self.client, &self.api_key, &self.url, body)?;
        let rb = rb.header("anthropic-version", "2023-06-01");
        Ok(match key {
            Some(k) => rb.header("x-api-key", k),
            None => rb,
        })
    }
}

#[async_trait]
impl Provider for Anthropic {
    fn model(&self) -> &str {
        &self.model
    }

    fn name(&self) -> &str {
        &self.name
    }
    fn locality(&self) -> Locality {
        self.locality
    }
    fn prices(&self) -> (f64, f64) {
        self.prices
    }

    async fn chat_tools(
        &self,
        system: &str,
        turns: &[super::tools::Turn],
        tools: &[super::tools::ToolSpec],
        max_tokens: u32,
    ) -> Result<super::tools::Reply, ProviderError> {
        let body = super::tools::anthropic_body(&self.model, system, turns, tools, max_tokens);
        super::tools::anthropic_reply(&http::send_json(self.post(&body)?).await?)
    }

    async fn complete(
        &self,
        req: &ChatRequest,
        deltas: Option<&UnboundedSender<String>>,
    ) -> Result<Completion, ProviderError> {
        let body = json!({
            "model": self.model,
            "max_tokens": req.max_tokens,
            "temperature": req.temperature,
            "system": req.system,
            "messages": [{"role": "user", "content": req.user}],
            "stream": deltas.is_some(),
        });
        let rb = self.post(&body)?;
        let resp = http::check(rb.send().await.map_err(http::transport)?).await?;
        let mut out = Completion {
            model: self.model.clone(),
            ..Completion::default()
        };
        let (mut input, mut output): (Option<u64>, Option<u64>) = (None, None);
        match deltas {
            None => {
                let bytes = resp.bytes().await.map_err(http::transport)?;
                let v: Value = serde_json::from_slice(&bytes)
                    .map_err(|e| ProviderError::Malformed(format!("not JSON: {e}")))?;
                let parts = v["content"]
                    .as_array()
                    .ok_or_else(|| ProviderError::Malformed("no content".into()))?;
                out.text = parts
                    .iter()
                    .filter(|p| p["type"] == "text")
                    .filter_map(|p| p["text"].as_str())
                    .collect();
                input = v["usage"]["input_tokens"].as_u64();
                output = v["usage"]["output_tokens"].as_u64();
            }
            Some(tx) => {
                let mut parser = SseParser::default();
                let mut stream = resp.bytes_stream();
                let mut stopped = false;
                let mut events = Vec::new();
                while let Some(chunk) = stream.next().await {
                    events.extend(parser.push(&chunk.map_err(http::transport)?));
                    for ev in events.drain(..) {
                        let v: Value = serde_json::from_str(&ev.data)
                            .map_err(|e| ProviderError::Malformed(format!("stream event: {e}")))?;
                        match v["type"].as_str().or(ev.event.as_deref()) {
                            Some("message_start") => {
                                input = v["message"]["usage"]["input_tokens"].as_u64();
                            }
                            Some("content_block_delta") => {
                                if let Some(d) = v["delta"]["text"].as_str() {
                                    out.text.push_str(d);
                                    let _ = tx.send(d.to_string());
                                }
                            }
                            Some("message_delta") => {
                                output = v["usage"]["output_tokens"].as_u64().or(output);
                            }
                            Some("message_stop") => stopped = true,
                            Some("error") => {
                                let kind = v["error"]["type"].as_str().unwrap_or("error");
                                let status = if kind == "overloaded_error" { 529 } else { 500 };
                                return Err(ProviderError::Http {
                                    status,
                                    retry_after: None,
                                    message: v["error"]["message"]
                                        .as_str()
                                        .unwrap_or(kind)
                                        .to_string(),
                                });
                            }
                            _ => {}
                        }
                    }
                }
                parser.finish();
                if !stopped && out.text.is_empty() {
                    return Err(ProviderError::Malformed(
                        "stream ended without content".into(),
                    ));
                }
            }
        }
        match (input, output) {
            (Some(i), Some(o)) => {
                out.prompt_tokens = i as u32;
                out.completion_tokens = o as u32;
                out.usage_reported = true;
            }
            _ => {
                out.prompt_tokens = estimate_tokens(&req.system) + estimate_tokens(&req.user);
                out.completion_tokens = estimate_tokens(&out.text);
            }
        }
        Ok(out)
    }
}
