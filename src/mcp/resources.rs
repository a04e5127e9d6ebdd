//! MCP resources: `hort://documents/<path>`, one per document the principal
//! may see. Reading a whole document is what `get_document` does, so the
//! methods exist only for principals granted it, count against the same
//! limits, stop with the kill switch, and are audited.

use std::sync::Arc;

use serde_json::{json, Value};

use super::protocol::{err, ok, service_err, METHOD_NOT_FOUND, REFUSED};
use super::Session;
use crate::config::Tool;
use crate::service::{allowed_tools, Call, Error, Service};

const PAGE: usize = 100;
const URI_PREFIX: &str = "hort://documents/";

/// The two resource methods.
#[derive(Clone, Copy)]
pub(super) enum Op {
    List,
    Read,
}

impl Op {
    fn method(self) -> &'static str {
        match self {
            Op::List => "resources/list",
            Op::Read => "resources/read",
        }
    }
}

/// Whether the session may read whole documents.
pub(super) fn granted(svc: &Service, session: &Session) -> bool {
    allowed_tools(svc.config(), &session.principal.name, &session.roles)
        .contains(&Tool::GetDocument)
}

fn tokens(s: &str) -> u64 {
    (s.len() as u64).div_ceil(4)
}

/// `resources/list` or `resources/read`, guarded and audited.
pub(super) async fn handle(
    svc: &Arc<Service>,
    session: &Session,
    id: &Value,
    op: Op,
    params: &Value,
) -> Value {
    let method = op.method();
    let call = Call::new(&format!("mcp-{}", session.id), &format!("mcp:{method}"));
    call.set_principal(&session.principal.name);
    // Without get_document the methods do not exist for this principal.
    if !granted(svc, session) {
        call.finish(svc, 404, Some("not granted".into()));
        return err(id, METHOD_NOT_FOUND, format!("method not found: {method}"));
    }
    if let Err(e) = svc.admit_agent(&session.principal, session.elapsed()) {
        svc.metrics().observe_mcp(method, "refused");
        call.add_flag("refused");
        call.finish(svc, 429, Some(e.to_string()));
        return err(id, REFUSED, e.to_string());
    }
    let reply = match op {
        Op::List => list(svc, session, params).await,
        Op::Read => read(svc, &call, session, params).await,
    };
    match reply {
        Ok((result, shown)) => {
            let used = tokens(&result.to_string());
            svc.agent_tokens(&session.principal, used);
            svc.metrics().observe_mcp(method, "ok");
            call.set_docs(shown);
            call.set_tokens(used);
            call.finish(svc, 200, None);
            ok(id, result)
        }
        Err(e) => {
            svc.metrics().observe_mcp(method, "error");
            let status = if matches!(e, Error::NotFound(_)) {
                404
            } else {
                400
            };
            call.finish(svc, status, Some(e.to_string()));
            service_err(id, &e)
        }
    }
}

async fn list(
    svc: &Arc<Service>,
    session: &Session,
    params: &Value,
) -> Result<(Value, Vec<String>), Error> {
    let start: usize = match params.get("cursor").and_then(Value::as_str) {
        None => 0,
        Some(c) => c
            .parse()
            .map_err(|_| Error::BadRequest("invalid cursor".into()))?,
    };
    let docs = svc.documents(&session.principal).await?;
    let page: Vec<_> = docs.iter().skip(start).take(PAGE).collect();
    let shown = page.iter().map(|d| d.path.clone()).collect();
    let items: Vec<Value> = page
        .iter()
        .map(|d| {
            json!({
                "uri": format!("{URI_PREFIX}{}", d.path),
                "name": d.path,
                "mimeType": "text/plain",
                "description": format!("{} {}, {} page(s)", d.classification, d.kind, d.n_pages),
            })
        })
        .collect();
    let mut r = json!({ "resources": items });
    if start + PAGE < docs.len() {
        r["nextCursor"] = Value::String((start + PAGE).to_string());
    }
    Ok((r, shown))
}

async fn read(
    svc: &Arc<Service>,
    call: &Call,
    session: &Session,
    params: &Value,
) -> Result<(Value, Vec<String>), Error> {
    let uri = params
        .get("uri")
        .and_then(Value::as_str)
        .ok_or_else(|| Error::BadRequest("uri is required".into()))?;
    let not_found = || Error::NotFound(format!("resource not found: {uri}"));
    let path = uri.strip_prefix(URI_PREFIX).ok_or_else(not_found)?;
    let doc = svc
        .document(call, &session.principal, path)
        .await
        .map_err(|e| match e {
            Error::NotFound(_) => not_found(),
            other => other,
        })?;
    let text = if doc.withheld {
        "[withheld: this document looks like a prompt injection; use search to read its clean passages]".to_string()
    } else {
        let mut text = String::new();
        for (i, t) in doc.pages.iter().enumerate() {
            if doc.paged {
                text.push_str(&format!("--- page {} ---\n", i + 1));
            }
            text.push_str(t);
            text.push('\n');
        }
        text
    };
    Ok((
        json!({"contents": [{"uri": uri, "mimeType": "text/plain", "text": text}]}),
        vec![path.to_string()],
    ))
}
