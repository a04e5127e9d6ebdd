//! JSON-RPC 2.0 framing for MCP: the replies, the error codes, and the
//! protocol revisions this server speaks.

use serde_json::{json, Value};

use crate::service::Error;

/// Protocol revisions this server speaks, newest first.
pub const PROTOCOL_VERSIONS: [&str; 4] = ["2025-11-25", "2025-06-18", "2025-03-26", "2024-11-05"];

/// JSON-RPC: the message is not JSON.
pub const PARSE_ERROR: i64 = -32700;
/// JSON-RPC: not a valid request.
pub const INVALID_REQUEST: i64 = -32600;
/// JSON-RPC: no such method.
pub const METHOD_NOT_FOUND: i64 = -32601;
/// JSON-RPC: the parameters are wrong.
pub const INVALID_PARAMS: i64 = -32602;
/// JSON-RPC: the server failed.
pub const INTERNAL_ERROR: i64 = -32603;
/// Server-defined: the kill switch or a limit refused the call.
pub const REFUSED: i64 = -32000;
/// MCP: resource not found.
pub const RESOURCE_NOT_FOUND: i64 = -32002;

/// A JSON-RPC result.
pub fn ok(id: &Value, result: Value) -> Value {
    json!({"jsonrpc": "2.0", "id": id, "result": result})
}

/// A JSON-RPC error.
pub fn err(id: &Value, code: i64, message: impl Into<String>) -> Value {
    json!({"jsonrpc": "2.0", "id": id, "error": {"code": code, "message": message.into()}})
}

/// A use case's error as a JSON-RPC error: the code by kind, the service's
/// stable code in `data`.
pub fn service_err(id: &Value, e: &Error) -> Value {
    let code = match e {
        Error::NotFound(_) => RESOURCE_NOT_FOUND,
        Error::BadRequest(_) => INVALID_PARAMS,
        Error::Stopped(_) | Error::RateLimited { .. } | Error::Budget { .. } => REFUSED,
        _ => INTERNAL_ERROR,
    };
    json!({"jsonrpc": "2.0", "id": id,
           "error": {"code": code, "message": e.to_string(), "data": {"code": e.code()}}})
}

/// A reply to a message that could not be parsed at all.
pub fn parse_error(message: &str) -> Value {
    err(&Value::Null, PARSE_ERROR, format!("parse error: {message}"))
}
