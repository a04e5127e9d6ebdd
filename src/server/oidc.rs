//! Signing in to the console through the configured OpenID Connect issuer:
//! the authorization code flow with PKCE, run by the server so that no
//! token endpoint has to allow the browser's origin.
//!
//! 1. `GET /console/oidc/login` makes a state, a PKCE verifier and a nonce,
//!    keeps them in a short-lived HttpOnly cookie (so any node behind a load
//!    balancer can finish the sign-in) and sends the browser to the issuer.
//! 2. The issuer sends it back to `GET /console/oidc/callback?code&state`.
//!    The state must match the cookie's (no sign-in forced on a browser by a
//!    crafted link); the code is exchanged with the verifier; the ID token is
//!    checked (signature, issuer, this client as audience, expiry, the nonce).
//! 3. The console page is returned with the bearer token in a `<meta>` tag:
//!    the script moves it to sessionStorage and drops the code from the
//!    address. The token never appears in a URL.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use serde::Deserialize;
use sha2::{Digest, Sha256};

use super::{console, AppState};
use crate::config::SignInConfig;

const COOKIE: &str = "hort_oidc";
/// How long a started sign-in may take at the issuer.
const COOKIE_MAX_AGE_S: u32 = 600;

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// 32 bytes from the system's randomness, as base64url; `None` if there is
/// none (then no sign-in starts: guessable values would defeat the checks).
fn random() -> Option<String> {
    let mut buf = [0u8; 32];
    crate::text::system_random(&mut buf).ok()?;
    Some(b64(&buf))
}

fn sign_in(st: &AppState) -> Option<&SignInConfig> {
    st.svc.config().auth.jwt.as_ref()?.sign_in.as_ref()
}

/// Where the issuer sends the browser back: configured, or this server as
/// the browser reached it (http only for a loopback host).
fn redirect_url(cfg: &SignInConfig, headers: &HeaderMap) -> Option<String> {
    if let Some(u) = &cfg.redirect_url {
        return Some(u.clone());
    }
    let host = headers.get(header::HOST)?.to_str().ok()?;
    if host.is_empty() || host.contains(['/', '\\', '@', ' ']) {
        return None;
    }
    let name = host.rsplit_once(':').map_or(host, |(h, _)| h);
    let scheme = if matches!(name, "127.0.0.1" | "localhost" | "[::1]") {
        "http"
    } else {
        "https"
    };
    Some(format!("{scheme}://{host}/console/oidc/callback"))
}

fn cookie(value: &str, max_age: u32, secure: bool) -> String {
    format!(
        "{COOKIE}={value}; Path=/console/oidc; Max-Age={max_age}; HttpOnly; SameSite=Lax{}",
        if secure { "; Secure" } else { "" }
    )
}

/// `r` with the sign-in's cookie removed: it served once, win or lose.
fn forget_sign_in(mut r: Response, secure: bool) -> Response {
    if let Ok(v) = cookie("", 0, secure).parse() {
        r.headers_mut().insert(header::SET_COOKIE, v);
    }
    r
}

/// `GET /console/oidc/config`: whether the console offers the issuer's
/// sign-in, and the button's text (no secrets: the page is public).
pub async fn config(State(st): State<Arc<AppState>>) -> Response {
    let body = match sign_in(&st) {
        Some(c) => serde_json::json!({"enabled": true, "label": c.label}),
        None => serde_json::json!({"enabled": false}),
    };
    (
        [
            (header::CONTENT_SECURITY_POLICY, console::CSP),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        axum::Json(body),
    )
        .into_response()
}

/// `GET /console/oidc/login`: off to the issuer.
pub async fn login(State(st): State<Arc<AppState>>, headers: HeaderMap) -> Response {
    let Some(cfg) = sign_in(&st) else {
        return console::page_with_error(StatusCode::NOT_FOUND, "no sign-in is configured");
    };
    let (Some(state), Some(verifier), Some(nonce)) = (random(), random(), random()) else {
        tracing::error!("console sign-in: no system randomness (/dev/urandom)");
        return console::page_with_error(StatusCode::INTERNAL_SERVER_ERROR, "sign-in unavailable");
    };
    let Some(redirect) = redirect_url(cfg, &headers) else {
        return console::page_with_error(StatusCode::BAD_REQUEST, "no usable Host header");
    };
    let challenge = b64(&Sha256::digest(verifier.as_bytes()));
    let mut scopes = cfg.scopes.clone();
    if !scopes.iter().any(|s| s == "openid") {
        scopes.insert(0, "openid".into());
    }
    let url = reqwest::Url::parse_with_params(
        &cfg.authorization_endpoint,
        &[
            ("response_type", "code"),
            ("client_id", cfg.client_id.as_str()),
            ("redirect_uri", redirect.as_str()),
            ("scope", scopes.join(" ").as_str()),
            ("state", state.as_str()),
            ("nonce", nonce.as_str()),
            ("code_challenge", challenge.as_str()),
            ("code_challenge_method", "S256"),
        ],
    );
    let Ok(url) = url else {
        return console::page_with_error(StatusCode::INTERNAL_SERVER_ERROR, "sign-in unavailable");
    };
    let secure = redirect.starts_with("https://");
    (
        StatusCode::SEE_OTHER,
        [
            (header::LOCATION, url.to_string()),
            (
                header::SET_COOKIE,
                cookie(
                    &format!("{state}.{verifier}.{nonce}"),
                    COOKIE_MAX_AGE_S,
                    secure,
                ),
            ),
            (header::CACHE_CONTROL, "no-store".into()),
            (header::REFERRER_POLICY, "no-referrer".into()),
        ],
    )
        .into_response()
}

/// What the issuer sends back (issuers add more; it is ignored).
#[derive(Deserialize)]
pub struct Callback {
    code: Option<String>,
    state: Option<String>,
    error: Option<String>,
}

#[derive(Deserialize)]
struct Tokens {
    id_token: Option<String>,
    access_token: Option<String>,
}

fn cookie_value(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == COOKIE)
        .map(|(_, v)| v.to_string())
}

/// `GET /console/oidc/callback`: the code for a token, the token checked,
/// the console page with it.
pub async fn callback(
    State(st): State<Arc<AppState>>,
    axum::Extension(call): axum::Extension<crate::service::Call>,
    headers: HeaderMap,
    Query(cb): Query<Callback>,
) -> Response {
    let Some(cfg) = sign_in(&st) else {
        return console::page_with_error(StatusCode::NOT_FOUND, "no sign-in is configured");
    };
    let fail = |status, shown: &str, logged: String| {
        tracing::warn!(reason = %logged, "console sign-in failed");
        forget_sign_in(console::page_with_error(status, shown), false)
    };
    if let Some(e) = cb.error {
        return fail(
            StatusCode::UNAUTHORIZED,
            "the sign-in was refused by the issuer",
            format!("issuer error {e:?}"),
        );
    }
    let saved = cookie_value(&headers).unwrap_or_default();
    let mut parts = saved.splitn(3, '.');
    let (Some(state), Some(verifier), Some(nonce)) = (parts.next(), parts.next(), parts.next())
    else {
        return fail(
            StatusCode::BAD_REQUEST,
            "the sign-in expired or was not started here: try again",
            "no sign-in cookie".into(),
        );
    };
    // Constant-time enough: both are random values of equal length.
    if cb.state.as_deref() != Some(state) || state.is_empty() {
        return fail(
            StatusCode::BAD_REQUEST,
            "the sign-in expired or was not started here: try again",
            "state does not match the cookie".into(),
        );
    }
    let Some(code) = cb.code.filter(|c| !c.is_empty() && c.len() <= 4096) else {
        return fail(
            StatusCode::BAD_REQUEST,
            "the issuer sent no code",
            "no code".into(),
        );
    };
    let Some(redirect) = redirect_url(cfg, &headers) else {
        return fail(
            StatusCode::BAD_REQUEST,
            "no usable Host header",
            "no Host".into(),
        );
    };
    let tokens = match exchange(cfg, &code, verifier, &redirect).await {
        Ok(t) => t,
        Err(e) => {
            return fail(
                StatusCode::BAD_GATEWAY,
                "the issuer could not be reached or refused the code",
                e,
            )
        }
    };
    let Some(id_token) = tokens.id_token else {
        return fail(
            StatusCode::BAD_GATEWAY,
            "the issuer sent no ID token",
            "no id_token".into(),
        );
    };
    match st.auth.sign_in_token(
        &id_token,
        tokens.access_token.as_deref(),
        &cfg.client_id,
        nonce,
    ) {
        Some((token, caller)) => {
            call.set_principal(&caller.principal.name);
            call.add_flag("console_sign_in");
            forget_sign_in(
                console::page_with_token(&token),
                redirect.starts_with("https://"),
            )
        }
        None => fail(
            StatusCode::UNAUTHORIZED,
            "the issuer's token was not accepted",
            "ID token invalid (signature, issuer, audience, expiry or nonce), \
             or neither token is accepted by [auth.jwt]"
                .into(),
        ),
    }
}

/// The token request (`client_secret_basic` when a secret is set).
async fn exchange(
    cfg: &SignInConfig,
    code: &str,
    verifier: &str,
    redirect: &str,
) -> Result<Tokens, String> {
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(15))
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .map_err(|e| e.to_string())?;
    let mut form = vec![
        ("grant_type", "authorization_code"),
        ("code", code),
        ("redirect_uri", redirect),
        ("code_verifier", verifier),
    ];
    let mut req = client.post(&cfg.token_endpoint);
    match std::env::var("HORT_OIDC_CLIENT_SECRET") {
        Ok(secret) if !secret.is_empty() => {
            req = req.basic_auth(&cfg.client_id, Some(secret));
        }
        _ => form.push(("client_id", cfg.client_id.as_str())),
    }
    let resp = req
        .header(header::ACCEPT, "application/json")
        .form(&form)
        .send()
        .await
        .map_err(|e| format!("token endpoint: {e}"))?;
    let status = resp.status();
    let body = resp.bytes().await.map_err(|e| e.to_string())?;
    if !status.is_success() {
        return Err(format!(
            "token endpoint answered {status}: {}",
            String::from_utf8_lossy(&body[..body.len().min(300)])
        ));
    }
    serde_json::from_slice(&body).map_err(|e| format!("token endpoint: not a token response: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_callback_address_is_https_except_on_loopback() {
        let cfg = SignInConfig {
            authorization_endpoint: "https://idp/authorize".into(),
            token_endpoint: "https://idp/token".into(),
            client_id: "hort".into(),
            scopes: vec!["openid".into()],
            redirect_url: None,
            label: "SSO".into(),
        };
        let h = |host: &str| {
            let mut m = HeaderMap::new();
            m.insert(header::HOST, host.parse().unwrap());
            redirect_url(&cfg, &m)
        };
        assert_eq!(
            h("127.0.0.1:8080").as_deref(),
            Some("http://127.0.0.1:8080/console/oidc/callback")
        );
        assert_eq!(
            h("hort.example.com").as_deref(),
            Some("https://hort.example.com/console/oidc/callback")
        );
        assert_eq!(h("evil.example/x"), None);
        assert_eq!(h("a@b"), None);
        let fixed = SignInConfig {
            redirect_url: Some("https://hort.corp/console/oidc/callback".into()),
            ..cfg.clone()
        };
        assert_eq!(
            redirect_url(&fixed, &HeaderMap::new()).as_deref(),
            Some("https://hort.corp/console/oidc/callback")
        );
    }

    #[test]
    fn the_sign_in_cookie_is_read_among_others() {
        let mut m = HeaderMap::new();
        m.insert(header::COOKIE, "a=1; hort_oidc=s.v.n; b=2".parse().unwrap());
        assert_eq!(cookie_value(&m).as_deref(), Some("s.v.n"));
        assert!(cookie("x", 600, true).contains("HttpOnly"));
        assert!(cookie("x", 600, true).contains("Secure"));
        assert!(random().unwrap() != random().unwrap());
    }
}
