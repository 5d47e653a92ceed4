//! The web page: `GET /` (the app's HTML), `GET /app.js`, `GET /app.css` and its icon
//! `GET /favicon.svg`, embedded in the binary, so `pj serve` and the `api` function serve the same bytes with no build step.
//!
//! The page is a client of the API like any other: it signs in with a bearer token kept in the
//! tab's session storage and calls the routes with it, so these three routes need no
//! authentication. Their headers are the page's defence: a Content-Security-Policy that runs
//! only these files (no inline script or style, no other origin but the log stream's), no
//! referrer, no sniffing, no framing. They are revalidated on every load (`no-cache`) against an
//! ETag of their bytes, so a new binary is picked up at once and an unchanged one costs a `304`.
//! The ETag is weak (`W/"…"`) because the router gzips them for a browser that accepts it, and a
//! strong one would have to differ between the two encodings (RFC 9110, 8.8.1).

use std::sync::{Arc, LazyLock};

use axum::Router;
use axum::extract::Extension;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use bytes::Bytes;
use http::{HeaderMap, HeaderValue, StatusCode, header};
use sha2::{Digest, Sha256};

const INDEX: &str = include_str!("web/index.html");
const APP_JS: &[u8] = include_bytes!("web/app.js");
const APP_CSS: &[u8] = include_bytes!("web/app.css");
const FAVICON: &[u8] = include_bytes!("web/favicon.svg");

/// Where the page's `<meta name="pj-log-stream-url">` is filled in.
const LOG_STREAM_META: &str = r#"<meta name="pj-log-stream-url" content="">"#;

/// How the page is served in one deployment: where it finds the log stream.
///
/// `pj serve` serves the stream on the page's own origin ([`PageConfig::same_origin`]); on AWS
/// it is the `log-stream` function's URL, another origin, which the page must be told and the
/// Content-Security-Policy must allow ([`PageConfig::with_log_stream_url`]). A router without
/// one ([`PageConfig::layer`]) serves the same-origin page.
#[derive(Debug, Clone)]
pub struct PageConfig {
    log_stream_url: Option<String>,
}

#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct PageConfigError(String);

impl PageConfig {
    /// The log stream is on the page's own origin.
    pub fn same_origin() -> PageConfig {
        PageConfig {
            log_stream_url: None,
        }
    }

    /// The log stream is at `url` (`GET {url}tasks/{id}/logs/stream`): an `https://` or
    /// `http://` URL of a host, with a path ending in `/` and no query. Only the characters a
    /// Function URL uses are taken, because the value goes into a header and an HTML attribute.
    pub fn with_log_stream_url(url: &str) -> Result<PageConfig, PageConfigError> {
        let fail = |why: &str| Err(PageConfigError(format!("log stream URL {url:?}: {why}")));
        let rest = match url.split_once("://") {
            Some(("https" | "http", rest)) => rest,
            _ => return fail("must start with https:// or http://"),
        };
        let allowed = |c: char| c.is_ascii_alphanumeric() || "-._~/:".contains(c);
        if !rest.chars().all(allowed) {
            return fail("may hold only letters, digits and -._~/:");
        }
        let host = rest.split('/').next().unwrap_or_default();
        if host.is_empty() || host.starts_with(':') {
            return fail("has no host");
        }
        let mut url = url.to_owned();
        if !url.ends_with('/') {
            url.push('/');
        }
        Ok(PageConfig {
            log_stream_url: Some(url),
        })
    }

    /// `router` serving the page with this configuration.
    pub fn layer<S: Clone + Send + Sync + 'static>(self, router: Router<S>) -> Router<S> {
        router.layer(Extension(Arc::new(Page::new(&self))))
    }

    /// The origin of the log stream when it is not the page's (`https://host[:port]`).
    fn log_stream_origin(&self) -> Option<&str> {
        let url = self.log_stream_url.as_deref()?;
        let scheme_end = url.find("://")? + 3;
        let host_end = url[scheme_end..]
            .find('/')
            .map_or(url.len(), |i| scheme_end + i);
        Some(&url[..host_end])
    }
}

/// The served bytes and headers of one configuration, made once.
struct Page {
    index: Asset,
    js: Asset,
    css: Asset,
    icon: Asset,
    csp: HeaderValue,
}

struct Asset {
    bytes: Bytes,
    content_type: &'static str,
    etag: HeaderValue,
}

impl Asset {
    fn new(bytes: Vec<u8>, content_type: &'static str) -> Asset {
        let digest = Sha256::digest(&bytes);
        let hex: String = digest[..16].iter().map(|b| format!("{b:02x}")).collect();
        Asset {
            bytes: Bytes::from(bytes),
            content_type,
            etag: HeaderValue::from_str(&format!("W/\"{hex}\""))
                .expect("a quoted hex string is a header value"),
        }
    }
}

impl Page {
    fn new(config: &PageConfig) -> Page {
        let stream = config.log_stream_url.as_deref().unwrap_or_default();
        let meta = format!(r#"<meta name="pj-log-stream-url" content="{stream}">"#);
        let index = INDEX.replacen(LOG_STREAM_META, &meta, 1);
        let connect = match config.log_stream_origin() {
            Some(origin) => format!("'self' {origin}"),
            None => "'self'".to_owned(),
        };
        let csp = format!(
            "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' blob:; \
             connect-src {connect}; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
        );
        Page {
            index: Asset::new(index.into_bytes(), "text/html; charset=utf-8"),
            js: Asset::new(APP_JS.to_vec(), "text/javascript; charset=utf-8"),
            css: Asset::new(APP_CSS.to_vec(), "text/css; charset=utf-8"),
            icon: Asset::new(FAVICON.to_vec(), "image/svg+xml"),
            csp: HeaderValue::from_str(&csp).expect("the checked URL is a header value"),
        }
    }

    fn asset(&self, which: Which) -> &Asset {
        match which {
            Which::Index => &self.index,
            Which::Js => &self.js,
            Which::Css => &self.css,
            Which::Icon => &self.icon,
        }
    }
}

#[derive(Clone, Copy)]
enum Which {
    Index,
    Js,
    Css,
    Icon,
}

/// The page of a router that was given no [`PageConfig`].
static SAME_ORIGIN: LazyLock<Arc<Page>> =
    LazyLock::new(|| Arc::new(Page::new(&PageConfig::same_origin())));

/// `GET /`, `GET /app.js`, `GET /app.css`, `GET /favicon.svg` (and `HEAD`, which axum answers
/// from `GET`). The icon is there so that the browser's own request for one finds it.
pub(crate) fn routes<S: Clone + Send + Sync + 'static>() -> Router<S> {
    Router::new()
        .route("/", get(index))
        .route("/app.js", get(app_js))
        .route("/app.css", get(app_css))
        .route("/favicon.svg", get(favicon))
}

type Configured = Option<Extension<Arc<Page>>>;

async fn index(page: Configured, request: HeaderMap) -> Response {
    serve(page, &request, Which::Index)
}

async fn app_js(page: Configured, request: HeaderMap) -> Response {
    serve(page, &request, Which::Js)
}

async fn app_css(page: Configured, request: HeaderMap) -> Response {
    serve(page, &request, Which::Css)
}

async fn favicon(page: Configured, request: HeaderMap) -> Response {
    serve(page, &request, Which::Icon)
}

fn serve(page: Configured, request: &HeaderMap, which: Which) -> Response {
    let page = page.map_or_else(|| SAME_ORIGIN.clone(), |Extension(p)| p);
    let asset = page.asset(which);
    let mut headers = HeaderMap::new();
    headers.insert(header::ETAG, asset.etag.clone());
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    headers.insert(header::CONTENT_SECURITY_POLICY, page.csp.clone());
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    if not_modified(request, &asset.etag) {
        return (StatusCode::NOT_MODIFIED, headers).into_response();
    }
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(asset.content_type),
    );
    (headers, asset.bytes.clone()).into_response()
}

/// Whether `If-None-Match` names `etag` (or is `*`), compared weakly as RFC 9110 says.
fn not_modified(request: &HeaderMap, etag: &HeaderValue) -> bool {
    let ours = etag.to_str().unwrap_or_default().trim_start_matches("W/");
    request
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|tag| tag.trim())
        .any(|tag| tag == "*" || tag.trim_start_matches("W/") == ours)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_log_stream_url_must_be_a_plain_http_url() {
        for bad in [
            "ftp://x/",
            "https://",
            "https://a b/",
            "https://x/\"><script>",
            "https://x/;script-src *",
            "javascript:alert(1)",
        ] {
            assert!(PageConfig::with_log_stream_url(bad).is_err(), "{bad}");
        }
        let config =
            PageConfig::with_log_stream_url("https://abc.lambda-url.us-east-1.on.aws").unwrap();
        assert_eq!(
            config.log_stream_url.as_deref(),
            Some("https://abc.lambda-url.us-east-1.on.aws/")
        );
        assert_eq!(
            config.log_stream_origin(),
            Some("https://abc.lambda-url.us-east-1.on.aws")
        );
    }

    #[test]
    fn the_page_has_the_meta_the_log_stream_url_fills_in() {
        assert!(INDEX.contains(LOG_STREAM_META));
        let config = PageConfig::with_log_stream_url("http://127.0.0.1:9000/s/").unwrap();
        let page = Page::new(&config);
        let html = std::str::from_utf8(&page.index.bytes).unwrap();
        assert!(
            html.contains(r#"content="http://127.0.0.1:9000/s/""#),
            "{html}"
        );
        let csp = page.csp.to_str().unwrap();
        assert!(
            csp.contains("connect-src 'self' http://127.0.0.1:9000;"),
            "{csp}"
        );
    }

    #[test]
    fn if_none_match_is_compared_weakly_and_in_lists() {
        let etag = HeaderValue::from_static("W/\"abc\"");
        let with = |v: &'static str| {
            let mut h = HeaderMap::new();
            h.insert(header::IF_NONE_MATCH, HeaderValue::from_static(v));
            not_modified(&h, &etag)
        };
        assert!(with("\"abc\""));
        assert!(with("W/\"abc\""));
        assert!(with("\"x\", \"abc\""));
        assert!(with("*"));
        assert!(!with("\"abcd\""));
        assert!(!not_modified(&HeaderMap::new(), &etag));
    }
}
