//! Who is calling: a bearer API key (stored as SHA-256, compared in constant
//! time against every configured key) or, if configured, a JWT from an OIDC
//! provider, checked offline against a JWKS file (issuer, audience when one
//! is configured, expiry, not-before, asymmetric signatures only), with
//! teams, clearance and roles from claims.
//!
//! JWT callers live in their own namespace: a token for subject `bob` is the
//! principal `jwt:bob`, never the API-key principal `bob` (whose grants,
//! approvals, budgets and limits are keyed by that name), unless the
//! configuration maps the subject onto a principal (`jwt_subject`); then the
//! token *is* that principal, with its configured teams, clearance and roles.

use std::path::Path;

use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use sha2::{Digest, Sha256};

use crate::acl::{Classification, Principal};
use crate::config::{Config, JwtConfig};

/// An authenticated caller.
#[derive(Clone, Debug)]
pub struct Caller {
    /// Who is calling, with teams and clearance.
    pub principal: Principal,
    /// The caller's roles (`admin`, `approver`, or roles named by MCP grants).
    pub roles: Vec<String>,
    /// Requests per minute for callers not in the config (JWT).
    pub rpm: Option<u32>,
}

impl Caller {
    /// Whether the caller has `role`.
    pub fn has_role(&self, role: &str) -> bool {
        self.roles.iter().any(|r| r == role)
    }
}

struct KeyEntry {
    hash: [u8; 32],
    caller: Caller,
}

struct Jwt {
    cfg: JwtConfig,
    keys: JwkSet,
    /// Subjects mapped onto configured principals (`jwt_subject`).
    mapped: Vec<(String, Caller)>,
}

/// Checks credentials: API keys (hashed) and, if configured, JWTs from an issuer's JWKS.
pub struct Authenticator {
    keys: Vec<KeyEntry>,
    jwt: Option<Jwt>,
}

/// Why the authenticator could not be set up (an unreadable JWKS file, say).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct AuthSetupError(pub String);

fn parse_hex32(s: &str) -> Option<[u8; 32]> {
    if s.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, b) in out.iter_mut().enumerate() {
        *b = u8::from_str_radix(s.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(out)
}

/// SHA-256 of an API key, in hex (what `hort.toml` stores).
pub fn key_hash_hex(key: &str) -> String {
    Sha256::digest(key.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

const ASYMMETRIC: [Algorithm; 9] = [
    Algorithm::RS256,
    Algorithm::RS384,
    Algorithm::RS512,
    Algorithm::PS256,
    Algorithm::PS384,
    Algorithm::PS512,
    Algorithm::ES256,
    Algorithm::ES384,
    Algorithm::EdDSA,
];

impl Authenticator {
    /// The authenticator of the configuration's principals and `[auth]`.
    pub fn new(cfg: &Config) -> Result<Authenticator, AuthSetupError> {
        let keys = cfg
            .principals
            .iter()
            .filter_map(|p| {
                let hash = parse_hex32(&p.api_key_sha256.as_deref()?.to_ascii_lowercase())?;
                Some(KeyEntry {
                    hash,
                    caller: Caller {
                        principal: Principal::new(&p.name, &p.teams, p.clearance),
                        roles: p.roles.clone(),
                        rpm: None,
                    },
                })
            })
            .collect();
        let jwt = match &cfg.auth.jwt {
            None => None,
            Some(j) => {
                let path = cfg.resolve(&j.jwks_file);
                let mapped = cfg
                    .principals
                    .iter()
                    .filter_map(|p| {
                        Some((
                            p.jwt_subject.clone()?,
                            Caller {
                                principal: Principal::new(&p.name, &p.teams, p.clearance),
                                roles: p.roles.clone(),
                                rpm: None,
                            },
                        ))
                    })
                    .collect();
                Some(Jwt {
                    keys: load_jwks(&path)?,
                    cfg: j.clone(),
                    mapped,
                })
            }
        };
        Ok(Authenticator { keys, jwt })
    }

    /// The caller a bearer token belongs to, or `None` (the same answer for
    /// a missing, malformed, unknown or expired credential).
    pub fn authenticate(&self, authorization: Option<&str>) -> Option<Caller> {
        // The scheme's name is case-insensitive (RFC 9110 §11.1).
        let (scheme, token) = authorization?.trim_start().split_once(' ')?;
        if !scheme.eq_ignore_ascii_case("bearer") {
            return None;
        }
        let token = token.trim();
        if token.is_empty() || token.len() > 8192 {
            return None;
        }
        if let Some(j) = &self.jwt {
            if token.matches('.').count() == 2 {
                return j.verify(token);
            }
        }
        let digest: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        let mut found: Option<&Caller> = None;
        for k in &self.keys {
            // Every key is compared in full: the time taken does not depend on which matched.
            let diff = k
                .hash
                .iter()
                .zip(digest.iter())
                .fold(0u8, |acc, (a, b)| acc | (a ^ b));
            if diff == 0 {
                found = Some(&k.caller);
            }
        }
        found.cloned()
    }
}

fn load_jwks(path: &Path) -> Result<JwkSet, AuthSetupError> {
    let bytes =
        std::fs::read(path).map_err(|e| AuthSetupError(format!("{}: {e}", path.display())))?;
    serde_json::from_slice(&bytes)
        .map_err(|e| AuthSetupError(format!("{}: not a JWKS document: {e}", path.display())))
}

fn strings(v: &serde_json::Value) -> Vec<String> {
    match v {
        serde_json::Value::Array(a) => a
            .iter()
            .filter_map(|x| x.as_str().map(str::trim).filter(|x| !x.is_empty()))
            .map(str::to_string)
            .collect(),
        serde_json::Value::String(s) => s
            .split([',', ' '])
            .filter(|x| !x.is_empty())
            .map(str::to_string)
            .collect(),
        _ => Vec::new(),
    }
}

impl Authenticator {
    /// The console's sign-in: checks the issuer's ID token (this client as
    /// its audience, the sign-in's nonce) and picks the token the browser
    /// will send — the access token if hort accepts it as a bearer token,
    /// else the ID token if hort accepts that. `None`: nothing usable.
    pub fn sign_in_token(
        &self,
        id_token: &str,
        access_token: Option<&str>,
        client_id: &str,
        nonce: &str,
    ) -> Option<(String, Caller)> {
        let j = self.jwt.as_ref()?;
        let claims = j.claims(id_token, Some(client_id))?;
        if claims.get("nonce").and_then(|n| n.as_str()) != Some(nonce) {
            return None;
        }
        for t in access_token.into_iter().chain([id_token]) {
            if let Some(c) = j.verify(t) {
                return Some((t.to_string(), c));
            }
        }
        None
    }
}

impl Jwt {
    /// The claims of a token signed by the issuer, checked for issuer,
    /// expiry and `audience` (default: the configured one).
    fn claims(&self, token: &str, audience: Option<&str>) -> Option<serde_json::Value> {
        let header = jsonwebtoken::decode_header(token).ok()?;
        if !ASYMMETRIC.contains(&header.alg) {
            // An HMAC token could be forged with a public key as the secret.
            return None;
        }
        let jwk = match &header.kid {
            Some(kid) => self.keys.find(kid)?,
            None if self.keys.keys.len() == 1 => &self.keys.keys[0],
            None => return None,
        };
        let key = DecodingKey::from_jwk(jwk).ok()?;
        let mut v = Validation::new(header.alg);
        v.set_issuer(&[self.cfg.issuer.as_str()]);
        v.validate_nbf = true;
        match audience.or(self.cfg.audience.as_deref()) {
            Some(a) => {
                v.set_audience(&[a]);
                // A configured audience is required, not only checked when present.
                v.set_required_spec_claims(&["exp", "iss", "aud"]);
            }
            None => {
                v.validate_aud = false;
                v.set_required_spec_claims(&["exp", "iss"]);
            }
        }
        Some(
            jsonwebtoken::decode::<serde_json::Value>(token, &key, &v)
                .ok()?
                .claims,
        )
    }

    fn verify(&self, token: &str) -> Option<Caller> {
        let claims = self.claims(token, None)?;
        let c = &claims;
        let subject = c.get(&self.cfg.name_claim)?.as_str()?.trim();
        if subject.is_empty() {
            return None;
        }
        if let Some((_, caller)) = self.mapped.iter().find(|(s, _)| s == subject) {
            return Some(caller.clone());
        }
        let name = format!("jwt:{subject}");
        let teams = c
            .get(&self.cfg.teams_claim)
            .map(strings)
            .unwrap_or_default();
        let clearance = c
            .get(&self.cfg.clearance_claim)
            .and_then(|x| x.as_str())
            .and_then(|s| s.parse::<Classification>().ok())
            .unwrap_or(Classification::Public);
        let roles = c
            .get(&self.cfg.roles_claim)
            .map(strings)
            .unwrap_or_default();
        Some(Caller {
            principal: Principal::new(&name, &teams, clearance),
            roles,
            rpm: self.cfg.requests_per_minute,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    #[test]
    fn bearer_in_any_case_and_nothing_else() {
        let key = "k-1234";
        let toml = format!(
            "[[principals]]\nname = \"a\"\napi_key_sha256 = \"{}\"\nteams = [\"t\"]\nclearance = \"public\"\n",
            key_hash_hex(key)
        );
        let cfg = Config::parse(&toml, Path::new("hort.toml"), PathBuf::from(".")).unwrap();
        let auth = Authenticator::new(&cfg).unwrap();
        for ok in ["Bearer k-1234", "bearer k-1234", "BEARER  k-1234 "] {
            assert_eq!(
                auth.authenticate(Some(ok)).map(|c| c.principal.name),
                Some("a".to_string()),
                "{ok}"
            );
        }
        for bad in [
            "Basic k-1234",
            "Bearerk-1234",
            "k-1234",
            "Bearer k-12345",
            "Bearer ",
            "",
        ] {
            assert!(auth.authenticate(Some(bad)).is_none(), "{bad}");
        }
        assert!(auth.authenticate(None).is_none());
    }
}
