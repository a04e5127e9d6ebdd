//! One agent's connection: who it is, its roles, when it started, and the
//! protocol revision it speaks. What it may still use is counted per
//! principal by the service (a new session resets nothing).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::protocol::PROTOCOL_VERSIONS;
use crate::acl::Principal;

/// One agent's MCP session: who it acts for and what it has used.
pub struct Session {
    /// The session id (`Mcp-Session-Id`).
    pub id: String,
    /// The principal the agent acts for.
    pub principal: Principal,
    /// The principal's roles.
    pub roles: Vec<String>,
    started: Instant,
    initialized: AtomicBool,
    protocol: Mutex<String>,
}

impl Session {
    /// A new session.
    pub fn new(id: String, principal: Principal, roles: Vec<String>) -> Session {
        Session {
            id,
            principal,
            roles,
            started: Instant::now(),
            initialized: AtomicBool::new(false),
            protocol: Mutex::new(PROTOCOL_VERSIONS[0].to_string()),
        }
    }

    /// How long the session has been open.
    pub fn elapsed(&self) -> Duration {
        self.started.elapsed()
    }

    /// The revision agreed at `initialize`.
    pub fn protocol(&self) -> String {
        self.protocol
            .lock()
            .map(|p| p.clone())
            .unwrap_or_else(|_| PROTOCOL_VERSIONS[0].to_string())
    }

    pub(super) fn set_protocol(&self, version: &str) {
        if let Ok(mut p) = self.protocol.lock() {
            *p = version.to_string();
        }
    }

    pub(super) fn set_initialized(&self) {
        self.initialized.store(true, Ordering::Relaxed);
    }
}
