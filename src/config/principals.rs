//! `[[principals]]`, `[[teams]]` and `[auth]`: who may call, with which
//! teams, clearance, roles, limits and budgets.

use std::collections::HashSet;
use std::path::PathBuf;

use serde::Deserialize;

use super::{Check, ConfigError};
use crate::acl::Classification;

/// A `[[principals]]` entry: a caller with its credential, access and limits.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PrincipalConfig {
    /// The name requests are booked and audited under.
    pub name: String,
    /// SHA-256 (hex) of the API key; the key itself is never stored.
    pub api_key_sha256: Option<String>,
    /// Teams whose documents the principal may see.
    #[serde(default)]
    pub teams: Vec<String>,
    /// The highest classification the principal may see.
    pub clearance: Classification,
    /// Requests per minute (none: unlimited).
    pub requests_per_minute: Option<u32>,
    /// Spending per calendar month in USD (none: unlimited).
    pub monthly_budget_usd: Option<f64>,
    /// `admin` may upload and delete documents; `approver` decides on agent actions.
    #[serde(default)]
    pub roles: Vec<String>,
    /// A JWT whose subject (`[auth.jwt] name_claim`) is this value
    /// authenticates as this principal (its teams, clearance, roles, grants and
    /// limits from here). Without it, JWT callers are `jwt:<subject>` and never
    /// share the name, grants or approvals of an API-key principal.
    pub jwt_subject: Option<String>,
}

/// A `[[teams]]` entry: limits shared by every member's requests.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TeamConfig {
    /// The team's name, as in rule files and principals.
    pub name: String,
    /// Requests per minute of all members together.
    pub requests_per_minute: Option<u32>,
    /// Spending per calendar month of all members together, in USD.
    pub monthly_budget_usd: Option<f64>,
    /// Whether members' answers are reused from and kept in the answer cache
    /// (`false`: a member's question always reaches a provider, and its
    /// answer is never kept).
    #[serde(default = "super::default_true")]
    pub answer_cache: bool,
    /// Whether members may reuse an answer to a question that means the same
    /// (by embedding) over the identical context, among members of this team.
    #[serde(default)]
    pub semantic_cache: bool,
}

/// Bearer tokens other than API keys: JWTs from an OIDC provider, checked
/// offline against a JWKS file.
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct AuthConfig {
    /// Bearer tokens from an OpenID Connect issuer, besides API keys.
    pub jwt: Option<JwtConfig>,
}

/// How JWTs are checked and mapped to a principal.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JwtConfig {
    /// Expected `iss`.
    pub issuer: String,
    /// Expected `aud`: when set, a token must carry it.
    pub audience: Option<String>,
    /// The issuer's public keys (a JWKS document saved to disk).
    pub jwks_file: PathBuf,
    /// Claim with the principal's name.
    #[serde(default = "default_name_claim")]
    pub name_claim: String,
    /// Claim with the list of teams.
    #[serde(default = "default_teams_claim")]
    pub teams_claim: String,
    /// Claim with the clearance (public … restricted); missing means public.
    #[serde(default = "default_clearance_claim")]
    pub clearance_claim: String,
    /// Claim with roles (admin, approver).
    #[serde(default = "default_roles_claim")]
    pub roles_claim: String,
    /// Requests per minute for JWT principals (none: unlimited).
    pub requests_per_minute: Option<u32>,
    /// Signing in to the web console through this issuer (authorization
    /// code flow with PKCE); without it the console takes API keys only.
    pub sign_in: Option<SignInConfig>,
}

/// The console's sign-in through the issuer. The client secret, if the
/// client has one, comes from `HORT_OIDC_CLIENT_SECRET` (secrets are never
/// in the file).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignInConfig {
    /// Where the browser is sent to sign in.
    pub authorization_endpoint: String,
    /// Where hort exchanges the code for tokens.
    pub token_endpoint: String,
    /// hort's client id at the issuer (the ID token's audience).
    pub client_id: String,
    /// Scopes asked for (`openid` is always among them).
    #[serde(default = "default_scopes")]
    pub scopes: Vec<String>,
    /// The callback registered at the issuer
    /// (`https://hort.example.com/console/oidc/callback`). Default: built
    /// from the request's Host header — set it behind a proxy.
    pub redirect_url: Option<String>,
    /// The button's text.
    #[serde(default = "default_sign_in_label")]
    pub label: String,
}

fn default_scopes() -> Vec<String> {
    vec!["openid".into()]
}

fn default_sign_in_label() -> String {
    "Single sign-on".into()
}

/// `https://…`, or `http://` to a loopback host only (a local test issuer).
fn web_url(u: &str) -> bool {
    if u.starts_with("https://") {
        return u.len() > "https://".len();
    }
    let Some(rest) = u.strip_prefix("http://") else {
        return false;
    };
    let host = rest.split(['/', '?', '#']).next().unwrap_or("");
    let host = host.rsplit_once(':').map_or(host, |(h, _)| h);
    matches!(host, "127.0.0.1" | "localhost" | "[::1]")
}

fn default_name_claim() -> String {
    "sub".into()
}
fn default_teams_claim() -> String {
    "teams".into()
}
fn default_clearance_claim() -> String {
    "clearance".into()
}
fn default_roles_claim() -> String {
    "roles".into()
}

/// Checks the principals; `roles` are the roles besides the built-in ones
/// (those an MCP grant names).
pub(super) fn validate_principals(
    principals: &[PrincipalConfig],
    roles: &[&str],
    c: &Check,
) -> Result<(), ConfigError> {
    let mut names = HashSet::new();
    let mut subjects = HashSet::new();
    for (i, p) in principals.iter().enumerate() {
        let f = |name: &str| format!("principals[{i}].{name}");
        if p.name.trim().is_empty() {
            return Err(c.invalid(f("name"), "must not be empty"));
        }
        if !names.insert(p.name.as_str()) {
            return Err(c.invalid(f("name"), format!("duplicate principal {:?}", p.name)));
        }
        if p.name.starts_with("jwt:") {
            return Err(c.invalid(
                f("name"),
                "names starting with `jwt:` are reserved for JWT callers (map a token with jwt_subject)",
            ));
        }
        if let Some(h) = &p.api_key_sha256 {
            if h.len() != 64 || !h.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(c.invalid(
                    f("api_key_sha256"),
                    "must be 64 hex digits (the SHA-256 of the key; see `hort keygen`)",
                ));
            }
        }
        if p.teams.iter().any(|t| t.trim().is_empty()) {
            return Err(c.invalid(f("teams"), "team names must not be empty"));
        }
        if let Some(b) = p.monthly_budget_usd {
            c.amount(f("monthly_budget_usd"), b)?;
        }
        for r in &p.roles {
            if r != "admin" && r != "approver" && !roles.contains(&r.as_str()) {
                return Err(c.invalid(
                    f("roles"),
                    format!(
                        "unknown role {r:?} (admin, approver, or a role named in [[mcp.grants]])"
                    ),
                ));
            }
        }
        if p.requests_per_minute == Some(0) {
            return Err(c.invalid(f("requests_per_minute"), "must be at least 1"));
        }
        if let Some(sub) = &p.jwt_subject {
            if sub.trim().is_empty() {
                return Err(c.invalid(f("jwt_subject"), "must not be empty"));
            }
            if !subjects.insert(sub.as_str()) {
                return Err(c.invalid(
                    f("jwt_subject"),
                    format!("{sub:?} is mapped to two principals"),
                ));
            }
        }
    }
    Ok(())
}

/// Checks the teams' limits and budgets.
pub(super) fn validate_teams(teams: &[TeamConfig], c: &Check) -> Result<(), ConfigError> {
    let mut names = HashSet::new();
    for (i, t) in teams.iter().enumerate() {
        let f = |name: &str| format!("teams[{i}].{name}");
        if !names.insert(t.name.as_str()) {
            return Err(c.invalid(f("name"), format!("duplicate team {:?}", t.name)));
        }
        if t.requests_per_minute == Some(0) {
            return Err(c.invalid(f("requests_per_minute"), "must be at least 1"));
        }
        if let Some(b) = t.monthly_budget_usd {
            c.amount(f("monthly_budget_usd"), b)?;
        }
    }
    Ok(())
}

impl AuthConfig {
    pub(super) fn validate(&self, c: &Check) -> Result<(), ConfigError> {
        if let Some(j) = &self.jwt {
            if let Some(r) = j.requests_per_minute {
                c.range("auth.jwt.requests_per_minute", r, 1, u32::MAX)?;
            }
            if j.issuer.trim().is_empty() {
                return Err(c.invalid("auth.jwt.issuer", "must not be empty"));
            }
            if let Some(s) = &j.sign_in {
                for (field, u) in [
                    (
                        "auth.jwt.sign_in.authorization_endpoint",
                        &s.authorization_endpoint,
                    ),
                    ("auth.jwt.sign_in.token_endpoint", &s.token_endpoint),
                ] {
                    if !web_url(u) {
                        return Err(c.invalid(
                            field,
                            "must be an https:// URL (http:// only to a loopback host)",
                        ));
                    }
                }
                if let Some(u) = &s.redirect_url {
                    if !web_url(u) || !u.ends_with("/console/oidc/callback") {
                        return Err(c.invalid(
                            "auth.jwt.sign_in.redirect_url",
                            "must be this server's https://…/console/oidc/callback",
                        ));
                    }
                }
                if s.client_id.trim().is_empty() {
                    return Err(c.invalid("auth.jwt.sign_in.client_id", "must not be empty"));
                }
            }
        }
        Ok(())
    }
}
