//! What keeps agents in check, for every front end that serves them: the
//! tools a principal is granted, the global kill switch, the per-principal
//! limits, and the approvals a person decides on.

use std::collections::BTreeSet;
use std::path::PathBuf;

use serde_json::json;

use super::approvals::{Action, ApprovalError, Approvals, Status};
use super::{Call, Error, Service};
use crate::acl::Principal;
use crate::config::{Config, Tool};

/// The global stop: a file, so that one `hort agents stop` (or one
/// `POST /v1/agents/stop`) stops the sessions of every process at once.
pub struct KillSwitch {
    path: PathBuf,
}

impl KillSwitch {
    /// The kill switch of the configuration (`[mcp] stop_file`).
    pub fn new(cfg: &Config) -> KillSwitch {
        KillSwitch {
            path: cfg.resolve(&cfg.mcp.stop_file),
        }
    }

    /// Whether agents are stopped (the stop file exists).
    pub fn is_stopped(&self) -> bool {
        self.path.exists()
    }

    /// Stops every agent (writes the stop file, naming who stopped them).
    pub fn stop(&self, by: &str) -> std::io::Result<()> {
        if let Some(d) = self.path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(d)?;
        }
        let body = json!({"stopped_by": by, "at": crate::gateway::rfc3339_now()}).to_string();
        let tmp = self.path.with_extension("tmp");
        std::fs::write(&tmp, body)?;
        std::fs::rename(&tmp, &self.path)
    }

    /// Lets agents work again; `false` if they were not stopped.
    pub fn resume(&self) -> std::io::Result<bool> {
        match std::fs::remove_file(&self.path) {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(e),
        }
    }
}

/// The tools a principal may use: its grants and its roles' grants, or the
/// read tools when the configuration grants nothing to it.
pub fn allowed_tools(cfg: &Config, principal: &str, roles: &[String]) -> BTreeSet<Tool> {
    let mut out = BTreeSet::new();
    let mut granted = false;
    for g in &cfg.mcp.grants {
        let applies = g.principal.as_deref() == Some(principal)
            || g.role.as_ref().is_some_and(|r| roles.contains(r));
        if applies {
            granted = true;
            out.extend(g.granted());
        }
    }
    if !granted && cfg.mcp.default_read_tools {
        out.extend(Tool::READ);
    }
    out
}

fn map_approval(e: ApprovalError) -> Error {
    match e {
        ApprovalError::NotFound(id) => Error::NotFound(format!("no pending action {id:?}")),
        e @ ApprovalError::AlreadyDecided { .. } => Error::BadRequest(e.to_string()),
        e @ ApprovalError::TooManyPending { .. } => Error::Stopped(e.to_string()),
        e => Error::Internal(e.to_string()),
    }
}

fn has(roles: &[String], role: &str) -> bool {
    roles.iter().any(|r| r == role)
}

impl Service {
    /// The approvals store (files shared by every hort process).
    pub fn approvals(&self) -> Result<Approvals, Error> {
        Approvals::open(&self.config.resolve(&self.config.mcp.approvals_dir)).map_err(map_approval)
    }

    /// Refuses an agent's call if the agents are stopped, its session is too
    /// old, or its principal's calls or tokens are spent; else counts it.
    pub fn admit_agent(
        &self,
        who: &Principal,
        session_age: std::time::Duration,
    ) -> Result<(), Error> {
        let m = &self.config.mcp;
        if self.kill_switch.is_stopped() {
            return Err(Error::Stopped(
                "agents are stopped by an operator (hort agents resume to allow calls again)"
                    .into(),
            ));
        }
        if session_age.as_secs() >= m.max_session_s {
            return Err(Error::Stopped(format!(
                "session limit reached: {} seconds",
                m.max_session_s
            )));
        }
        self.agent_ledger
            .take_call(m, &who.name)
            .map_err(Error::Stopped)
    }

    /// Books the tokens an agent's call used.
    pub fn agent_tokens(&self, who: &Principal, tokens: u64) {
        self.agent_ledger
            .add_tokens(&self.config.mcp, &who.name, tokens);
    }

    /// Whether the agents are stopped.
    pub fn agents_stopped(&self) -> bool {
        self.kill_switch.is_stopped()
    }

    /// Stops every agent session of every process (admins).
    pub fn stop_agents(&self, call: &Call, who: &str, roles: &[String]) -> Result<(), Error> {
        if !has(roles, "admin") {
            return Err(Error::Forbidden(
                "the kill switch needs the admin role".into(),
            ));
        }
        self.kill_switch
            .stop(who)
            .map_err(|e| Error::Internal(format!("writing the stop file: {e}")))?;
        call.add_flag("agents_stopped");
        tracing::warn!(by = %who, "agents stopped");
        Ok(())
    }

    /// Lets agents call again (admins).
    pub fn resume_agents(&self, call: &Call, who: &str, roles: &[String]) -> Result<(), Error> {
        if !has(roles, "admin") {
            return Err(Error::Forbidden(
                "the kill switch needs the admin role".into(),
            ));
        }
        self.kill_switch
            .resume()
            .map_err(|e| Error::Internal(format!("removing the stop file: {e}")))?;
        call.add_flag("agents_resumed");
        tracing::warn!(by = %who, "agents resumed");
        Ok(())
    }

    /// Actions waiting for a person, as `who` may see them: approvers see
    /// every action, others their own; a document's text only where `who`'s
    /// access covers its rule.
    pub fn list_approvals(
        &self,
        who: &Principal,
        roles: &[String],
        status: Option<&str>,
    ) -> Result<Vec<Action>, Error> {
        let approver = has(roles, "approver");
        Ok(self
            .approvals()?
            .list()
            .map_err(map_approval)?
            .into_iter()
            .filter(|a| approver || a.principal == who.name)
            .filter(|a| status.is_none_or(|s| a.status.to_string() == s))
            .map(|a| a.view_for(who))
            .collect())
    }

    /// One action, as `who` may see it.
    pub fn get_approval(
        &self,
        who: &Principal,
        roles: &[String],
        id: &str,
    ) -> Result<Action, Error> {
        let a = self.approvals()?.get(id).map_err(map_approval)?;
        if !has(roles, "approver") && a.principal != who.name {
            return Err(Error::NotFound(format!("no pending action {id:?}")));
        }
        Ok(a.view_for(who))
    }

    /// Approves or rejects an action: approvers only, never their own (four eyes).
    pub fn decide_approval(
        &self,
        call: &Call,
        who: &Principal,
        roles: &[String],
        id: &str,
        approve: bool,
        reason: Option<String>,
    ) -> Result<Action, Error> {
        let a = decide(&self.approvals()?, call, who, roles, id, approve, reason)?;
        self.metrics()
            .observe_approval(if a.status == Status::Approved {
                "approved"
            } else {
                "rejected"
            });
        Ok(a.view_for(who))
    }
}

/// The decision itself (also for `hort approvals`, which needs no index):
/// approvers only, never on their own action; recorded in `call`.
pub fn decide(
    store: &Approvals,
    call: &Call,
    who: &Principal,
    roles: &[String],
    id: &str,
    approve: bool,
    reason: Option<String>,
) -> Result<Action, Error> {
    if !has(roles, "approver") {
        return Err(Error::Forbidden(format!(
            "{} does not have the approver role",
            who.name
        )));
    }
    let a = store.get(id).map_err(map_approval)?;
    if a.principal == who.name {
        return Err(Error::Forbidden(
            "you cannot decide on your own action".into(),
        ));
    }
    let a = store
        .decide(id, &who.name, approve, reason)
        .map_err(map_approval)?;
    let word = if a.status == Status::Approved {
        "approved"
    } else {
        "rejected"
    };
    call.add_flag(format!("approval_{word}:{id}"));
    call.set_docs(vec![format!("{}:{}", a.principal, a.tool)]);
    Ok(a)
}
