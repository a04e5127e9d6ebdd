//! The Model Context Protocol server: hort's use cases as tools and
//! resources for agents, with the caller's access filter on every call,
//! tools granted per principal or role (a tool not granted is neither
//! listed nor callable), human approval for the tools that change things,
//! and a kill switch (limits per principal, plus a global stop shared by
//! every process through a file) — all through the service layer, never
//! around it.
//!
//! The protocol core is transport-free: [`handle`] takes one JSON-RPC
//! message and returns the reply (none for notifications). `hort mcp --as
//! NAME` speaks it over stdio ([`serve_stdio`]); `hort serve` mounts it at
//! `/mcp` (streamable HTTP).
//!
//! Files: [`protocol`] (JSON-RPC framing), [`session`], `tools`,
//! `resources`, and the stdio transport here.

pub mod protocol;
mod resources;
pub mod session;
mod tools;

use std::sync::Arc;

use serde_json::{json, Value};

use crate::service::Service;
use protocol::{err, ok, INVALID_PARAMS, INVALID_REQUEST, METHOD_NOT_FOUND, PROTOCOL_VERSIONS};
pub use protocol::{parse_error, REFUSED};
pub use session::Session;

/// Handles one JSON-RPC message of `session`. Returns the reply, or `None`
/// for notifications and for responses sent by the client.
pub async fn handle(svc: &Arc<Service>, session: &Session, msg: Value) -> Option<Value> {
    let Value::Object(obj) = &msg else {
        return Some(err(
            &Value::Null,
            INVALID_REQUEST,
            "expected one JSON-RPC message object (batches are not supported)",
        ));
    };
    let id = obj.get("id").cloned();
    let Some(method) = obj.get("method").and_then(Value::as_str) else {
        // A response or garbage: responses need no reply; anything else with an id is invalid.
        if obj.contains_key("result") || obj.contains_key("error") {
            return None;
        }
        return Some(err(
            &id.unwrap_or(Value::Null),
            INVALID_REQUEST,
            "missing method",
        ));
    };
    if obj.get("jsonrpc").and_then(Value::as_str) != Some("2.0") {
        return id.map(|id| err(&id, INVALID_REQUEST, "jsonrpc must be \"2.0\""));
    }
    let params = obj.get("params").cloned().unwrap_or(Value::Null);
    let Some(id) = id else {
        if method == "notifications/initialized" {
            session.set_initialized();
        }
        return None;
    };
    let reply = match method {
        "initialize" => initialize(svc, session, &params),
        "ping" => Ok(json!({})),
        "tools/list" => Ok(json!({"tools": tools::list_tools(svc, session)})),
        "tools/call" => return Some(tools::call_tool(svc, session, &id, &params).await),
        "resources/list" => {
            return Some(resources::handle(svc, session, &id, resources::Op::List, &params).await)
        }
        "resources/read" => {
            return Some(resources::handle(svc, session, &id, resources::Op::Read, &params).await)
        }
        "resources/templates/list" if resources::granted(svc, session) => {
            Ok(json!({"resourceTemplates": []}))
        }
        other => Err((METHOD_NOT_FOUND, format!("method not found: {other}"))),
    };
    Some(match reply {
        Ok(r) => ok(&id, r),
        Err((code, m)) => err(&id, code, m),
    })
}

fn initialize(svc: &Service, session: &Session, params: &Value) -> Result<Value, (i64, String)> {
    let asked = params
        .get("protocolVersion")
        .and_then(Value::as_str)
        .ok_or((INVALID_PARAMS, "protocolVersion is required".to_string()))?;
    // Echo the client's revision if we speak it, else offer our newest.
    let version = PROTOCOL_VERSIONS
        .iter()
        .find(|v| **v == asked)
        .copied()
        .unwrap_or(PROTOCOL_VERSIONS[0]);
    session.set_protocol(version);
    let mut capabilities = json!({"tools": {"listChanged": false}});
    if resources::granted(svc, session) {
        capabilities["resources"] = json!({"listChanged": false, "subscribe": false});
    }
    Ok(json!({
        "protocolVersion": version,
        "capabilities": capabilities,
        "serverInfo": {"name": "hort", "version": env!("CARGO_PKG_VERSION")},
        "instructions": format!(
            "Documents of this organisation, filtered to what {} may see. Cite sources as returned.",
            session.principal.name
        ),
    }))
}

/// The stdio transport: one JSON-RPC message per line in, one per line out.
/// Logs go to stderr (stdout belongs to the protocol).
pub async fn serve_stdio(svc: Arc<Service>, session: Session) -> std::io::Result<()> {
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
    svc.warm_up();
    let mut lines = BufReader::new(tokio::io::stdin()).lines();
    let mut out = tokio::io::stdout();
    while let Some(line) = lines.next_line().await? {
        if line.trim().is_empty() {
            continue;
        }
        let reply = match serde_json::from_str::<Value>(&line) {
            Ok(msg) => handle(&svc, &session, msg).await,
            Err(e) => Some(parse_error(&e.to_string())),
        };
        if let Some(r) = reply {
            out.write_all(format!("{r}\n").as_bytes()).await?;
            out.flush().await?;
        }
    }
    svc.flush();
    Ok(())
}

#[cfg(test)]
mod tests {
    use crate::config::{Config, Tool};
    use crate::service::allowed_tools;
    use std::path::PathBuf;

    fn cfg(text: &str) -> Config {
        Config::parse(text, std::path::Path::new("hort.toml"), PathBuf::from(".")).unwrap()
    }

    #[test]
    fn tools_are_granted_by_principal_and_role_with_read_tools_as_default() {
        let c = cfg(r#"
[[principals]]
name = "a"
teams = ["x"]
clearance = "public"
roles = ["admin"]

[[principals]]
name = "b"
teams = ["x"]
clearance = "public"

[[mcp.grants]]
role = "admin"
tools = ["search", "ingest_document"]
"#);
        let a = allowed_tools(&c, "a", &["admin".into()]);
        assert_eq!(
            a.into_iter().collect::<Vec<_>>(),
            [Tool::IngestDocument, Tool::Search]
        );
        let b = allowed_tools(&c, "b", &[]);
        assert_eq!(
            b.into_iter().collect::<Vec<_>>(),
            [Tool::Ask, Tool::GetDocument, Tool::Search]
        );
        let strict = cfg("[mcp]\ndefault_read_tools = false\n");
        assert!(allowed_tools(&strict, "b", &[]).is_empty());
    }

    #[test]
    fn unknown_tools_in_the_config_are_errors_naming_the_field() {
        let e = Config::parse(
            "[[mcp.grants]]\nprincipal = \"a\"\ntools = [\"rm_rf\"]\n",
            std::path::Path::new("hort.toml"),
            PathBuf::from("."),
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("mcp.grants[0].tools") && e.contains("rm_rf"),
            "{e}"
        );
    }
}
