//! Pending actions that wait for a person: one JSON file per action in a
//! directory, written atomically (temp file, fsync, rename) and changed only
//! under an exclusive lock, so `hort serve`, `hort mcp` and `hort approvals`
//! (separate processes) share them safely.
//!
//! An agent's call of a tool that requires approval creates a pending action
//! keyed by the SHA-256 of (principal, tool, arguments). The same call made
//! again finds it: still pending → "pending approval"; approved → it runs
//! once and the action is marked executed; rejected → refused.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use serde::{Deserialize, Serialize};

use crate::gateway::audit::sha256_hex;

#[derive(Debug, thiserror::Error)]
pub enum ApprovalError {
    #[error("approvals: {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("no pending action {0:?}")]
    NotFound(String),
    #[error("action {id} is already {status}")]
    AlreadyDecided { id: String, status: Status },
    #[error("approvals: {0}")]
    Corrupt(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Pending,
    Approved,
    Rejected,
    /// Approved and run (once).
    Executed,
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Status::Pending => "pending",
            Status::Approved => "approved",
            Status::Rejected => "rejected",
            Status::Executed => "executed",
        })
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Action {
    pub id: String,
    /// SHA-256 of principal, tool and canonical arguments.
    pub key: String,
    pub principal: String,
    pub tool: String,
    pub arguments: serde_json::Value,
    pub status: Status,
    pub created_at: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decided_by: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decided_at: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outcome: Option<String>,
}

pub struct Approvals {
    dir: PathBuf,
}

/// The key of a call: the same principal making the same call (arguments
/// compared as canonical JSON: object keys sorted) gets the same key.
pub fn call_key(principal: &str, tool: &str, arguments: &serde_json::Value) -> String {
    sha256_hex(format!("{principal}\n{tool}\n{arguments}").as_bytes())
}

fn new_id() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    let seed = format!(
        "{nanos}-{}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    );
    sha256_hex(seed.as_bytes())[..16].to_string()
}

fn valid_id(id: &str) -> bool {
    id.len() == 16 && id.bytes().all(|b| b.is_ascii_hexdigit())
}

/// Holds the directory's lock file exclusively while alive.
struct DirLock(std::fs::File);

impl Drop for DirLock {
    fn drop(&mut self) {
        use std::os::fd::AsRawFd;
        // SAFETY: unlocking a descriptor this struct owns.
        unsafe { libc::flock(self.0.as_raw_fd(), libc::LOCK_UN) };
    }
}

impl Approvals {
    pub fn open(dir: &Path) -> Result<Approvals, ApprovalError> {
        std::fs::create_dir_all(dir).map_err(|source| ApprovalError::Io {
            path: dir.to_path_buf(),
            source,
        })?;
        Ok(Approvals {
            dir: dir.to_path_buf(),
        })
    }

    fn io(&self, source: std::io::Error) -> ApprovalError {
        ApprovalError::Io {
            path: self.dir.clone(),
            source,
        }
    }

    fn lock(&self) -> Result<DirLock, ApprovalError> {
        use std::os::fd::AsRawFd;
        let f = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(self.dir.join(".lock"))
            .map_err(|e| self.io(e))?;
        // SAFETY: flock on a descriptor we own; released in Drop.
        if unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX) } != 0 {
            return Err(self.io(std::io::Error::last_os_error()));
        }
        Ok(DirLock(f))
    }

    fn path(&self, id: &str) -> PathBuf {
        self.dir.join(format!("{id}.json"))
    }

    fn write(&self, a: &Action) -> Result<(), ApprovalError> {
        use std::io::Write;
        let tmp = self.dir.join(format!(".{}.tmp", a.id));
        let body =
            serde_json::to_vec_pretty(a).map_err(|e| ApprovalError::Corrupt(e.to_string()))?;
        let mut f = std::fs::File::create(&tmp).map_err(|e| self.io(e))?;
        f.write_all(&body).map_err(|e| self.io(e))?;
        f.sync_all().map_err(|e| self.io(e))?;
        std::fs::rename(&tmp, self.path(&a.id)).map_err(|e| self.io(e))
    }

    pub fn get(&self, id: &str) -> Result<Action, ApprovalError> {
        if !valid_id(id) {
            return Err(ApprovalError::NotFound(id.to_string()));
        }
        let bytes = match std::fs::read(self.path(id)) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(ApprovalError::NotFound(id.to_string()))
            }
            Err(e) => return Err(self.io(e)),
        };
        serde_json::from_slice(&bytes).map_err(|e| ApprovalError::Corrupt(format!("{id}: {e}")))
    }

    /// Every action, oldest first.
    pub fn list(&self) -> Result<Vec<Action>, ApprovalError> {
        let mut out = Vec::new();
        for e in std::fs::read_dir(&self.dir)
            .map_err(|e| self.io(e))?
            .flatten()
        {
            let name = e.file_name().to_string_lossy().to_string();
            if let Some(id) = name.strip_suffix(".json").filter(|id| valid_id(id)) {
                match self.get(id) {
                    Ok(a) => out.push(a),
                    Err(err) => tracing::warn!("skipping an unreadable approval: {err}"),
                }
            }
        }
        out.sort_by(|a, b| a.created_at.cmp(&b.created_at).then(a.id.cmp(&b.id)));
        Ok(out)
    }

    /// The action for this call, creating a pending one if there is none
    /// that is pending, approved or rejected (executed ones are spent: the
    /// same call again needs a new approval).
    pub fn find_or_create(
        &self,
        principal: &str,
        tool: &str,
        arguments: &serde_json::Value,
    ) -> Result<(Action, bool), ApprovalError> {
        let key = call_key(principal, tool, arguments);
        let _l = self.lock()?;
        if let Some(a) = self
            .list()?
            .into_iter()
            .rev()
            .find(|a| a.key == key && a.status != Status::Executed)
        {
            return Ok((a, false));
        }
        let a = Action {
            id: new_id(),
            key,
            principal: principal.to_string(),
            tool: tool.to_string(),
            arguments: arguments.clone(),
            status: Status::Pending,
            created_at: crate::gateway::rfc3339_now(),
            decided_by: None,
            decided_at: None,
            reason: None,
            outcome: None,
        };
        self.write(&a)?;
        Ok((a, true))
    }

    /// Approves or rejects a pending action.
    pub fn decide(
        &self,
        id: &str,
        approver: &str,
        approve: bool,
        reason: Option<String>,
    ) -> Result<Action, ApprovalError> {
        let _l = self.lock()?;
        let mut a = self.get(id)?;
        if a.status != Status::Pending {
            return Err(ApprovalError::AlreadyDecided {
                id: id.to_string(),
                status: a.status,
            });
        }
        a.status = if approve {
            Status::Approved
        } else {
            Status::Rejected
        };
        a.decided_by = Some(approver.to_string());
        a.decided_at = Some(crate::gateway::rfc3339_now());
        a.reason = reason;
        self.write(&a)?;
        Ok(a)
    }

    /// Claims an approved action for running: marks it executed first, so
    /// that two concurrent calls cannot both run it.
    pub fn claim(&self, id: &str) -> Result<bool, ApprovalError> {
        let _l = self.lock()?;
        let mut a = self.get(id)?;
        if a.status != Status::Approved {
            return Ok(false);
        }
        a.status = Status::Executed;
        self.write(&a)?;
        Ok(true)
    }

    /// Records how the run went.
    pub fn set_outcome(&self, id: &str, outcome: String) -> Result<(), ApprovalError> {
        let _l = self.lock()?;
        let mut a = self.get(id)?;
        a.outcome = Some(outcome);
        self.write(&a)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_call_waits_runs_once_after_approval_and_is_then_spent() {
        let d = tempfile::tempdir().unwrap();
        let s = Approvals::open(d.path()).unwrap();
        let args = json!({"path": "a.md", "teams": ["x"]});
        let (a, created) = s.find_or_create("bob", "delete_document", &args).unwrap();
        assert!(created && a.status == Status::Pending);
        // The same call again finds the same action; key order does not matter.
        let same = json!({"teams": ["x"], "path": "a.md"});
        let (b, created) = s.find_or_create("bob", "delete_document", &same).unwrap();
        assert!(!created && b.id == a.id);
        // Another principal's identical call is a different action.
        let (c, created) = s.find_or_create("eve", "delete_document", &args).unwrap();
        assert!(created && c.id != a.id);
        assert!(!s.claim(&a.id).unwrap(), "pending cannot run");
        let d1 = s.decide(&a.id, "carol", true, None).unwrap();
        assert_eq!(d1.status, Status::Approved);
        assert!(matches!(
            s.decide(&a.id, "carol", false, None),
            Err(ApprovalError::AlreadyDecided { .. })
        ));
        assert!(s.claim(&a.id).unwrap());
        assert!(!s.claim(&a.id).unwrap(), "runs once");
        let (fresh, created) = s.find_or_create("bob", "delete_document", &args).unwrap();
        assert!(created && fresh.id != a.id, "an executed approval is spent");
        s.decide(&c.id, "carol", false, Some("no".into())).unwrap();
        let (r, created) = s.find_or_create("eve", "delete_document", &args).unwrap();
        assert!(!created && r.status == Status::Rejected);
        assert_eq!(s.list().unwrap().len(), 3);
        assert!(matches!(
            s.get("../../etc/passwd"),
            Err(ApprovalError::NotFound(_))
        ));
    }
}
