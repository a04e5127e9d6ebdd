//! Pending actions that wait for a person: one JSON file per action in a
//! directory, written atomically (temp file, fsync, rename) and changed only
//! under an exclusive lock, so `hort serve`, `hort mcp` and `hort approvals`
//! (separate processes) share them safely.
//!
//! An agent's call of a tool that requires approval creates a pending action
//! keyed by the SHA-256 of (principal, tool, arguments). The same call made
//! again finds it: still pending → "pending approval"; approved → it runs
//! once and the action is marked executed; rejected → refused.
//!
//! An action says what it would do (`summary`, `replaces`). A document's
//! text is shown only to viewers whose access covers the document's rule
//! (others see its path, rule, size and digest: [`Action::view_for`]), and is
//! dropped from the file once the action is rejected or executed.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use serde::{Deserialize, Serialize};

use crate::text::sha256_hex;

/// Why an approval could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum ApprovalError {
    /// The approvals directory could not be used.
    #[error("approvals: {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// No action with that id.
    #[error("no pending action {0:?}")]
    NotFound(String),
    /// The action was approved or rejected already.
    #[error("action {id} is already {status}")]
    AlreadyDecided {
        /// The action.
        id: String,
        /// How it was decided.
        status: Status,
    },
    /// A stored action cannot be read.
    #[error("approvals: {0}")]
    Corrupt(String),
    /// The principal has too many actions waiting for approval.
    #[error("{principal} already has {limit} actions waiting for approval; wait for a decision")]
    TooManyPending {
        /// The principal.
        principal: String,
        /// Actions that may wait per principal.
        limit: usize,
    },
}

/// Pending actions one principal may have at once (a runaway agent fills
/// no disk and no approver's queue beyond this).
pub const MAX_PENDING_PER_PRINCIPAL: usize = 100;

/// Argument fields that carry a document's text.
const TEXT_FIELDS: [&str; 2] = ["content", "content_base64"];

/// Where an action stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Waiting for an approver.
    Pending,
    /// Approved: the agent's next identical call runs it once.
    Approved,
    /// Rejected: it will not run.
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

/// An agent's call that waits for (or got) a human's decision.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Action {
    /// The action's id (what approvers name).
    pub id: String,
    /// SHA-256 of principal, tool and canonical arguments.
    pub key: String,
    /// The principal the agent acts for.
    pub principal: String,
    /// The tool called.
    pub tool: String,
    /// The call's arguments, with the size and SHA-256 of any document text
    /// (`content_chars` or `content_bytes`, `content_sha256`) beside it.
    pub arguments: serde_json::Value,
    /// What running it would do, in words (for the approver).
    #[serde(default)]
    pub summary: String,
    /// Whether it would replace an existing document.
    #[serde(default)]
    pub replaces: bool,
    /// Where it stands.
    pub status: Status,
    /// When it was asked for (RFC 3339).
    pub created_at: String,
    /// The approver who decided.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decided_by: Option<String>,
    /// When it was decided.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decided_at: Option<String>,
    /// The approver's reason.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// What running it did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outcome: Option<String>,
}

/// The actions waiting and decided, one file each.
pub struct Approvals {
    dir: PathBuf,
}

/// What a new action says about itself.
#[derive(Debug, Clone, Default)]
pub struct Describe {
    /// What the action would do, in words.
    pub summary: String,
    /// Whether it would replace an existing document.
    pub replaces: bool,
}

/// The arguments as stored: a document's text gets its size and digest beside it.
fn with_digests(arguments: &serde_json::Value) -> serde_json::Value {
    let mut a = arguments.clone();
    if let Some(o) = a.as_object_mut() {
        if let Some(t) = o
            .get("content")
            .and_then(|v| v.as_str())
            .map(str::to_string)
        {
            o.insert("content_chars".into(), t.chars().count().into());
            o.insert("content_sha256".into(), sha256_hex(t.as_bytes()).into());
        }
        if let Some(b) = o.get("content_base64").and_then(|v| v.as_str()) {
            use base64::Engine;
            let clean: String = b.chars().filter(|c| !c.is_ascii_whitespace()).collect();
            if let Ok(bytes) =
                base64::engine::general_purpose::STANDARD_NO_PAD.decode(clean.trim_end_matches('='))
            {
                o.insert("content_bytes".into(), bytes.len().into());
                o.insert("content_sha256".into(), sha256_hex(&bytes).into());
            }
        }
    }
    a
}

/// The arguments without a document's text (its size and digest stay).
fn without_text(arguments: &serde_json::Value) -> serde_json::Value {
    let mut a = arguments.clone();
    if let Some(o) = a.as_object_mut() {
        for f in TEXT_FIELDS {
            o.remove(f);
        }
    }
    a
}

impl Action {
    /// The action as `viewer` may see it: a document's text only if the
    /// viewer's access covers the rule the call gives the document.
    pub fn view_for(&self, viewer: &crate::acl::Principal) -> Action {
        let args = &self.arguments;
        let rule = (|| {
            let teams: Vec<String> = serde_json::from_value(args.get("teams")?.clone()).ok()?;
            let level: crate::acl::Classification =
                serde_json::from_value(args.get("classification")?.clone()).ok()?;
            crate::acl::AccessRule::new(&teams, level).ok()
        })();
        let mut a = self.clone();
        if !viewer.can_see(rule.as_ref()) {
            a.arguments = without_text(args);
        }
        a
    }

    /// Whether the stored arguments still hold a document's text.
    pub fn holds_text(&self) -> bool {
        TEXT_FIELDS.iter().any(|f| self.arguments.get(f).is_some())
    }
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
    /// Opens (and creates) the approvals directory.
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

    /// The action with that id.
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
        describe: impl FnOnce() -> Describe,
    ) -> Result<(Action, bool), ApprovalError> {
        let key = call_key(principal, tool, arguments);
        let _l = self.lock()?;
        let all = self.list()?;
        if let Some(a) = all
            .iter()
            .rev()
            .find(|a| a.key == key && a.status != Status::Executed)
        {
            return Ok((a.clone(), false));
        }
        let pending = all
            .iter()
            .filter(|a| a.principal == principal && a.status == Status::Pending)
            .count();
        if pending >= MAX_PENDING_PER_PRINCIPAL {
            return Err(ApprovalError::TooManyPending {
                principal: principal.to_string(),
                limit: MAX_PENDING_PER_PRINCIPAL,
            });
        }
        let d = describe();
        let a = Action {
            id: new_id(),
            key,
            principal: principal.to_string(),
            tool: tool.to_string(),
            arguments: with_digests(arguments),
            summary: d.summary,
            replaces: d.replaces,
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
        if !approve {
            // Refused: the text has no further use here.
            a.arguments = without_text(&a.arguments);
        }
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
        // The run uses the agent's own call: the stored text is done with.
        a.arguments = without_text(&a.arguments);
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
        let (a, created) = s
            .find_or_create("bob", "delete_document", &args, Describe::default)
            .unwrap();
        assert!(created && a.status == Status::Pending);
        // The same call again finds the same action; key order does not matter.
        let same = json!({"teams": ["x"], "path": "a.md"});
        let (b, created) = s
            .find_or_create("bob", "delete_document", &same, Describe::default)
            .unwrap();
        assert!(!created && b.id == a.id);
        // Another principal's identical call is a different action.
        let (c, created) = s
            .find_or_create("eve", "delete_document", &args, Describe::default)
            .unwrap();
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
        let (fresh, created) = s
            .find_or_create("bob", "delete_document", &args, Describe::default)
            .unwrap();
        assert!(created && fresh.id != a.id, "an executed approval is spent");
        s.decide(&c.id, "carol", false, Some("no".into())).unwrap();
        let (r, created) = s
            .find_or_create("eve", "delete_document", &args, Describe::default)
            .unwrap();
        assert!(!created && r.status == Status::Rejected);
        assert_eq!(s.list().unwrap().len(), 3);
        assert!(matches!(
            s.get("../../etc/passwd"),
            Err(ApprovalError::NotFound(_))
        ));
    }

    #[test]
    fn text_is_shown_to_cleared_viewers_only_and_dropped_when_decided() {
        use crate::acl::{Classification, Principal};
        let d = tempfile::tempdir().unwrap();
        let s = Approvals::open(d.path()).unwrap();
        let args = json!({"path": "n.md", "content": "Geheim: 42", "teams": ["hr"],
                          "classification": "confidential"});
        let (a, _) = s
            .find_or_create("agent", "ingest_document", &args, Describe::default)
            .unwrap();
        assert_eq!(a.arguments["content_chars"], 10);
        assert_eq!(a.arguments["content_sha256"], sha256_hex(b"Geheim: 42"));
        let cleared = Principal::new("c", &["hr"], Classification::Confidential);
        let other_team = Principal::new("o", &["it"], Classification::Restricted);
        let low = Principal::new("l", &["hr"], Classification::Internal);
        assert_eq!(a.view_for(&cleared).arguments["content"], "Geheim: 42");
        for v in [&other_team, &low] {
            let seen = a.view_for(v);
            assert!(seen.arguments.get("content").is_none());
            assert_eq!(seen.arguments["path"], "n.md");
            assert_eq!(seen.arguments["content_chars"], 10);
        }
        let r = s.decide(&a.id, "c", false, None).unwrap();
        assert!(!r.holds_text());
        assert!(
            !std::fs::read_to_string(d.path().join(format!("{}.json", a.id)))
                .unwrap()
                .contains("Geheim")
        );
        // The call is still recognised after its text is gone.
        let (again, created) = s
            .find_or_create("agent", "ingest_document", &args, Describe::default)
            .unwrap();
        assert!(!created && again.status == Status::Rejected);
    }

    #[test]
    fn a_principal_has_a_bounded_number_of_pending_actions() {
        let d = tempfile::tempdir().unwrap();
        let s = Approvals::open(d.path()).unwrap();
        for i in 0..MAX_PENDING_PER_PRINCIPAL {
            s.find_or_create(
                "a",
                "delete_document",
                &json!({"path": format!("{i}.md")}),
                Describe::default,
            )
            .unwrap();
        }
        assert!(matches!(
            s.find_or_create(
                "a",
                "delete_document",
                &json!({"path": "x.md"}),
                Describe::default
            ),
            Err(ApprovalError::TooManyPending { .. })
        ));
        assert!(s
            .find_or_create(
                "b",
                "delete_document",
                &json!({"path": "x.md"}),
                Describe::default
            )
            .is_ok());
    }
}
