//! Native tool calling, in both wire formats: OpenAI's `tools` /
//! `tool_calls` / `role: tool` messages and Anthropic's `tools` /
//! `tool_use` / `tool_result` blocks. The workflow runner speaks
//! [`Turn`]s; each provider turns them into its own request and its answer
//! back, so a run can mix providers.

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::provider::ProviderError;

/// One message of a tool-using conversation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "role", rename_all = "snake_case")]
pub enum Turn {
    /// The task (or a hand-off's task).
    User {
        /// The text.
        text: String,
    },
    /// The model's reply: text and the tools it asked for.
    Assistant {
        /// Text it wrote.
        text: String,
        /// The calls it asked for.
        calls: Vec<ToolCall>,
    },
    /// What a tool returned (already checked by the sanitize layer).
    Result {
        /// The call's id.
        id: String,
        /// The tool.
        name: String,
        /// The result.
        content: String,
        /// Whether it failed.
        is_error: bool,
    },
}

/// A tool the model may call.
#[derive(Debug, Clone, PartialEq)]
pub struct ToolSpec {
    /// Its name.
    pub name: String,
    /// What it does.
    pub description: String,
    /// JSON Schema of its arguments.
    pub parameters: Value,
}

/// A call the model asked for.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ToolCall {
    /// The provider's id of the call (results refer to it).
    pub id: String,
    /// The tool.
    pub name: String,
    /// Its arguments (an object; a model's unparsable arguments become a string).
    pub arguments: Value,
}

/// The model's answer to a conversation.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Reply {
    /// Text (the final answer when there are no calls).
    pub text: String,
    /// Calls asked for.
    pub calls: Vec<ToolCall>,
    /// Prompt tokens.
    pub prompt_tokens: u32,
    /// Completion tokens.
    pub completion_tokens: u32,
}

/// The body of an OpenAI chat completions request with tools.
pub fn openai_body(
    model: &str,
    system: &str,
    turns: &[Turn],
    tools: &[ToolSpec],
    max_tokens: u32,
) -> Value {
    let mut messages = vec![json!({"role": "system", "content": system})];
    for t in turns {
        messages.push(match t {
            Turn::User { text } => json!({"role": "user", "content": text}),
            Turn::Assistant { text, calls } => {
                let mut m = json!({"role": "assistant", "content": text});
                if !calls.is_empty() {
                    m["tool_calls"] = calls
                        .iter()
                        .map(|c| {
                            json!({"id": c.id, "type": "function", "function": {
                                "name": c.name, "arguments": c.arguments.to_string()}})
                        })
                        .collect();
                }
                m
            }
            Turn::Result { id, content, .. } => {
                json!({"role": "tool", "tool_call_id": id, "content": content})
            }
        });
    }
    let mut body = json!({
        "model": model,
        "messages": messages,
        "max_tokens": max_tokens,
        "temperature": 0.1,
    });
    if !tools.is_empty() {
        body["tools"] = tools
            .iter()
            .map(|t| {
                json!({"type": "function", "function": {
                    "name": t.name, "description": t.description, "parameters": t.parameters}})
            })
            .collect();
    }
    body
}

fn malformed(what: &str) -> ProviderError {
    ProviderError::Malformed(what.to_string())
}

/// Reads an OpenAI chat completion with tool calls.
pub fn openai_reply(v: &Value) -> Result<Reply, ProviderError> {
    let msg = v["choices"]
        .get(0)
        .map(|c| &c["message"])
        .ok_or_else(|| malformed("no choices in the response"))?;
    let mut calls = Vec::new();
    if let Some(tc) = msg["tool_calls"].as_array() {
        for c in tc {
            let name = c["function"]["name"]
                .as_str()
                .ok_or_else(|| malformed("a tool call without a name"))?;
            let raw = c["function"]["arguments"].as_str().unwrap_or("{}");
            calls.push(ToolCall {
                id: c["id"].as_str().unwrap_or("call").to_string(),
                name: name.to_string(),
                arguments: serde_json::from_str(raw).unwrap_or(Value::String(raw.to_string())),
            });
        }
    }
    Ok(Reply {
        text: msg["content"].as_str().unwrap_or("").to_string(),
        calls,
        prompt_tokens: v["usage"]["prompt_tokens"].as_u64().unwrap_or(0) as u32,
        completion_tokens: v["usage"]["completion_tokens"].as_u64().unwrap_or(0) as u32,
    })
}

/// The body of an Anthropic messages request with tools.
pub fn anthropic_body(
    model: &str,
    system: &str,
    turns: &[Turn],
    tools: &[ToolSpec],
    max_tokens: u32,
) -> Value {
    let mut messages: Vec<Value> = Vec::new();
    for t in turns {
        let (role, block) = match t {
            Turn::User { text } => ("user", vec![json!({"type": "text", "text": text})]),
            Turn::Assistant { text, calls } => {
                let mut blocks = Vec::new();
                if !text.is_empty() {
                    blocks.push(json!({"type": "text", "text": text}));
                }
                for c in calls {
                    blocks.push(json!({"type": "tool_use", "id": c.id, "name": c.name, "input": c.arguments}));
                }
                ("assistant", blocks)
            }
            Turn::Result {
                id,
                content,
                is_error,
                ..
            } => (
                "user",
                vec![
                    json!({"type": "tool_result", "tool_use_id": id, "content": content, "is_error": is_error}),
                ],
            ),
        };
        // Consecutive results go into one user message, as the API wants.
        match messages.last_mut() {
            Some(last) if last["role"] == role && role == "user" => {
                if let Some(a) = last["content"].as_array_mut() {
                    a.extend(block);
                }
            }
            _ => messages.push(json!({"role": role, "content": block})),
        }
    }
    let mut body = json!({
        "model": model,
        "system": system,
        "messages": messages,
        "max_tokens": max_tokens,
        "temperature": 0.1,
    });
    if !tools.is_empty() {
        body["tools"] = tools
            .iter()
            .map(|t| json!({"name": t.name, "description": t.description, "input_schema": t.parameters}))
            .collect();
    }
    body
}

/// Reads an Anthropic messages response with `tool_use` blocks.
pub fn anthropic_reply(v: &Value) -> Result<Reply, ProviderError> {
    let blocks = v["content"]
        .as_array()
        .ok_or_else(|| malformed("no content in the response"))?;
    let mut text = String::new();
    let mut calls = Vec::new();
    for b in blocks {
        match b["type"].as_str() {
            Some("text") => text.push_str(b["text"].as_str().unwrap_or("")),
            Some("tool_use") => calls.push(ToolCall {
                id: b["id"].as_str().unwrap_or("call").to_string(),
                name: b["name"]
                    .as_str()
                    .ok_or_else(|| malformed("a tool_use block without a name"))?
                    .to_string(),
                arguments: b["input"].clone(),
            }),
            _ => {}
        }
    }
    Ok(Reply {
        text,
        calls,
        prompt_tokens: v["usage"]["input_tokens"].as_u64().unwrap_or(0) as u32,
        completion_tokens: v["usage"]["output_tokens"].as_u64().unwrap_or(0) as u32,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn convo() -> Vec<Turn> {
        vec![
            Turn::User {
                text: "Find the travel rule".into(),
            },
            Turn::Assistant {
                text: String::new(),
                calls: vec![ToolCall {
                    id: "c1".into(),
                    name: "search".into(),
                    arguments: json!({"query": "travel"}),
                }],
            },
            Turn::Result {
                id: "c1".into(),
                name: "search".into(),
                content: "[1] travel.md: the CFO approves".into(),
                is_error: false,
            },
        ]
    }

    #[test]
    fn openai_round_trip() {
        let tools = vec![ToolSpec {
            name: "search".into(),
            description: "d".into(),
            parameters: json!({"type": "object"}),
        }];
        let b = openai_body("m", "sys", &convo(), &tools, 100);
        assert_eq!(b["messages"][0]["role"], "system");
        assert_eq!(
            b["messages"][2]["tool_calls"][0]["function"]["arguments"],
            "{\"query\":\"travel\"}"
        );
        assert_eq!(b["messages"][3]["role"], "tool");
        assert_eq!(b["tools"][0]["function"]["name"], "search");
        let r = openai_reply(&json!({"choices": [{"message": {"content": null, "tool_calls": [
            {"id": "c2", "type": "function", "function": {"name": "get_document", "arguments": "{\"doc\":\"a.md\"}"}}]}}],
            "usage": {"prompt_tokens": 7, "completion_tokens": 3}}))
        .unwrap();
        assert_eq!(r.calls[0].arguments, json!({"doc": "a.md"}));
        assert_eq!((r.prompt_tokens, r.completion_tokens), (7, 3));
        assert!(openai_reply(&json!({})).is_err());
    }

    #[test]
    fn anthropic_round_trip() {
        let b = anthropic_body("m", "sys", &convo(), &[], 100);
        assert_eq!(b["system"], "sys");
        assert_eq!(b["messages"][1]["content"][0]["type"], "tool_use");
        assert_eq!(b["messages"][2]["content"][0]["tool_use_id"], "c1");
        let r = anthropic_reply(&json!({"content": [
            {"type": "text", "text": "Let me look."},
            {"type": "tool_use", "id": "t1", "name": "search", "input": {"query": "x"}}],
            "usage": {"input_tokens": 5, "output_tokens": 2}}))
        .unwrap();
        assert_eq!(r.text, "Let me look.");
        assert_eq!(r.calls[0].name, "search");
    }
}
