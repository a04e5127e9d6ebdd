//! The web console: three static files compiled into the binary and served
//! at `/` — no build step, no third-party code, no request to anyone but
//! this server. A strict Content-Security-Policy allows scripts, styles and
//! connections to this origin only, and no framing; the page talks to the
//! same `/v1` API as every other client, with the caller's key.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

const INDEX: &str = include_str!("console/index.html");
const SCRIPT: &str = include_str!("console/app.js");
const STYLE: &str = include_str!("console/app.css");

/// The policy every console response carries.
pub const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
    img-src 'self'; connect-src 'self'; form-action 'none'; frame-ancestors 'none'; \
    base-uri 'none'";

fn asset(body: &'static str, kind: &'static str) -> Response {
    asset_owned(body.to_string(), kind)
}

fn asset_owned(body: String, kind: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, kind),
            (header::CONTENT_SECURITY_POLICY, CSP),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
            (header::REFERRER_POLICY, "no-referrer"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        body,
    )
        .into_response()
}

/// `GET /`: the console.
pub async fn index() -> Response {
    asset(INDEX, "text/html; charset=utf-8")
}

fn escape_attr(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('"', "&quot;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// The console page carrying `name = value` in a `<meta>` tag, for the
/// script to read (the CSP allows no inline script); never cached.
fn page_with(status: StatusCode, name: &str, value: &str) -> Response {
    let meta = format!(
        "<head>\n<meta name=\"{name}\" content=\"{}\">",
        escape_attr(value)
    );
    let mut r = asset_owned(
        INDEX.replacen("<head>", &meta, 1),
        "text/html; charset=utf-8",
    );
    *r.status_mut() = status;
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

/// The console after a sign-in: the bearer token for the script to keep.
pub fn page_with_token(token: &str) -> Response {
    page_with(StatusCode::OK, "hort-token", token)
}

/// The console with a sign-in error to show.
pub fn page_with_error(status: StatusCode, message: &str) -> Response {
    page_with(status, "hort-signin-error", message)
}

/// `GET /favicon.ico`: nothing (browsers ask; a 404 would be logged as an error).
pub async fn favicon() -> Response {
    (
        axum::http::StatusCode::NO_CONTENT,
        [(header::CONTENT_SECURITY_POLICY, CSP)],
    )
        .into_response()
}

/// `GET /console/app.js`.
pub async fn script() -> Response {
    asset(SCRIPT, "text/javascript; charset=utf-8")
}

/// `GET /console/app.css`.
pub async fn style() -> Response {
    asset(STYLE, "text/css; charset=utf-8")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_console_names_no_other_origin_and_sets_no_html_from_data() {
        for (name, text) in [
            ("index.html", INDEX),
            ("app.js", SCRIPT),
            ("app.css", STYLE),
        ] {
            assert!(
                !text.contains("http://") && !text.contains("https://"),
                "{name} names another origin"
            );
            assert!(
                !text.contains("innerHTML")
                    && !text.contains("outerHTML")
                    && !text.contains("insertAdjacentHTML"),
                "{name} builds HTML from strings"
            );
            assert!(
                !text.contains("eval(") && !text.contains("new Function"),
                "{name} evaluates code"
            );
        }
        // The key is kept for the tab only and sent in a header, never in a URL.
        assert!(SCRIPT.contains("sessionStorage") && !SCRIPT.contains("localStorage"));
        assert!(!SCRIPT.contains("?key=") && !SCRIPT.contains("api_key="));
        // Every data-i18n key of the page has an English and a German text.
        for k in INDEX
            .split("data-i18n=\"")
            .skip(1)
            .filter_map(|r| r.split('"').next())
        {
            assert!(
                SCRIPT.matches(&format!("{k}:")).count() >= 2,
                "no translation for {k}"
            );
        }
    }
}
