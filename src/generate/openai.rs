//! OpenAI-compatible chat completions (`POST {base_url}/chat/completions`),
//! which vLLM, llama.cpp's server, Ollama, LiteLLM and Azure OpenAI all speak.

use std::time::Duration;

use async_trait::async_trait;
use futures_util::StreamExt;
use serde_json::{json, Value};
use tokio::sync::mpsc::UnboundedSender;

use super::http::{self, SseParser};
use super::provider::{estimate_tokens, ChatRequest, Completion, Provider, ProviderError};
use crate::config::{Locality, ProviderConfig};

/// A provider speaking the OpenAI chat completions API (OpenAI, and local servers like llama.cpp or vLLM).
pub struct OpenAi {
    name: String,
    url: String,
    model: String,
    api_key: Result<Option<String>, String>,
    locality: Locality,
    prices: (f64, f64),
    client: Result<reqwest::Client, ProviderError>,
}

/// Reads the provider's key from the environment variable the config names.
pub fn key_from_env(var: &Option<String>) -> Result<Option<String>, String> {
    match var {
        None => Ok(None),
        Some(v) => match std::env::var(v) {
            Ok(k) if !k.trim().is_empty() => Ok(Some(k.trim().to_string())),
            _ => Err(format!("environment variable {v} (api_key_env) is not set")),
        },
    }
}

impl OpenAi {
    /// The provider of a `[[providers]]` entry (the key is read from `api_key_env` at use).
    pub fn new(cfg: &ProviderConfig) -> OpenAi {
        let base = cfg
            .base_url
            .clone()
            .unwrap_or_else(|| "https://api.openai.com/v1".into());
        OpenAi {
            name: cfg.name.clone(),
            url: format!("{}/chat/completions", base.trim_end_matches('/')),
            model: cfg.model.clone().unwrap_or_else(|| "gpt-4o-mini".into()),
            api_key: key_from_env(&cfg.api_key_env),
            locality: cfg.locality,
            prices: (cfg.usd_per_1k_input, cfg.usd_per_1k_output),
            client: http::client(Duration::from_secs(cfg.timeout_s.clamp(1, 30))),
        }
    }

    /// The authenticated POST of `body` to the chat completions URL (the
    /// client and the key checked: both calls start here).
    fn post(&self, body: &Value) -> Result<reqwest::RequestBuilder, ProviderError> {
        let (rb, key) = http::json_post(&self.client, &self.api_key, &self.url, body)?;
        Ok(match key {
            Some(k) => rb.bearer_auth(k),
            None => rb,
        })
    }

    fn content(v: &Value) -> Option<String> {
        v["choices"][0]["message"]["content"]
            .as_str()
            .map(str::to_string)
    }
}

#[async_trait]
impl Provider for OpenAi {
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
        let body = super::tools::openai_body(&self.model, system, turns, tools, max_tokens);
        super::tools::openai_reply(&http::send_json(self.post(&body)?).await?)
    }

    async fn complete(
        &self,
        req: &ChatRequest,
        deltas: Option<&UnboundedSender<String>>,
    ) -> Result<Completion, ProviderError> {
        let stream = deltas.is_some();
        let mut body = json!({
            "model": self.model,
            "messages": [
                {"role": "system", "content": req.system},
                {"role": "user", "content": req.user},
            ],
            "max_tokens": req.max_tokens,
            "temperature": req.temperature,
            "stream": stream,
        });
        if stream {
            body["stream_options"] = json!({"include_usage": true});
        }
        let rb = self.post(&body)?;
        let resp = http::check(rb.send().await.map_err(http::transport)?).await?;
        let mut out = Completion {
            model: self.model.clone(),
            ..Completion::default()
        };
        let mut usage: Option<Value> = None;
        match deltas {
            None => {
                let bytes = resp.bytes().await.map_err(http::transport)?;
                let v: Value = serde_json::from_slice(&bytes)
                    .map_err(|e| ProviderError::Malformed(format!("not JSON: {e}")))?;
                out.text = Self::content(&v).ok_or_else(|| {
                    ProviderError::Malformed("no choices[0].message.content".into())
                })?;
                usage = v.get("usage").cloned();
            }
            Some(tx) => {
                let mut parser = SseParser::default();
                let mut stream = resp.bytes_stream();
                let mut done = false;
                while let Some(chunk) = stream.next().await {
                    let chunk = chunk.map_err(http::transport)?;
                    for ev in parser.push(&chunk) {
                        if ev.data.trim() == "[DONE]" {
                            done = true;
                            continue;
                        }
                        let v: Value = serde_json::from_str(&ev.data)
                            .map_err(|e| ProviderError::Malformed(format!("stream event: {e}")))?;
                        if let Some(err) = v.get("error") {
                            return Err(ProviderError::Malformed(format!("stream error: {err}")));
                        }
                        if let Some(d) = v["choices"][0]["delta"]["content"].as_str() {
                            if !d.is_empty() {
                                out.text.push_str(d);
                                let _ = tx.send(d.to_string());
                            }
                        }
                        if v.get("usage").is_some_and(|u| !u.is_null()) {
                            usage = v.get("usage").cloned();
                        }
                    }
                }
                parser.finish();
                if !done && out.text.is_empty() {
                    return Err(ProviderError::Malformed(
                        "stream ended without content".into(),
                    ));
                }
            }
        }
        match usage {
            Some(u) if u["prompt_tokens"].is_u64() => {
                out.prompt_tokens = u["prompt_tokens"].as_u64().unwrap_or(0) as u32;
                out.completion_tokens = u["completion_tokens"].as_u64().unwrap_or(0) as u32;
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
