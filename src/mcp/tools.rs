//! MCP tools: the service's guarded tools (`service::tools`) as JSON-RPC
//! `tools/list` and `tools/call`; a tool not granted is neither listed nor
//! callable.

use std::sync::Arc;

use serde_json::{json, Value};

use super::protocol::{err, ok, INTERNAL_ERROR, INVALID_PARAMS, REFUSED};
use super::Session;
use crate::service::tools::{tool_schema, Outcome, Refusal};
use crate::service::{allowed_tools, Call, Service};

/// The tools the session's principal may use, as `tools/list` shows them.
pub(super) fn list_tools(svc: &Service, session: &Session) -> Vec<Value> {
    allowed_tools(svc.config(), &session.principal.name, &session.roles)
        .into_iter()
        .map(tool_schema)
        .collect()
}

fn tool_result(id: &Value, out: &Outcome) -> Value {
    ok(
        id,
        json!({"content": [{"type": "text", "text": out.text}],
               "structuredContent": out.structured,
               "isError": out.is_error}),
    )
}

/// `tools/call`: one guarded, audited call of a tool.
pub(super) async fn call_tool(
    svc: &Arc<Service>,
    session: &Session,
    id: &Value,
    params: &Value,
) -> Value {
    let name = params.get("name").and_then(Value::as_str).unwrap_or("");
    let args = params
        .get("arguments")
        .cloned()
        .unwrap_or_else(|| json!({}));
    let call = Call::new(
        &format!("mcp-{}", session.id),
        &format!("mcp:tools/call:{name}"),
    );
    call.set_principal(&session.principal.name);
    let allowed = allowed_tools(svc.config(), &session.principal.name, &session.roles);
    match svc
        .call_tool(
            &call,
            &session.principal,
            &allowed,
            name,
            args,
            session.elapsed(),
        )
        .await
    {
        Ok(out) => tool_result(id, &out),
        Err(Refusal::Unknown(m)) | Err(Refusal::BadArguments(m)) => err(id, INVALID_PARAMS, m),
        Err(Refusal::Refused(m)) => err(id, REFUSED, m),
        Err(Refusal::Internal(m)) => err(id, INTERNAL_ERROR, m),
    }
}
