//! The HTTP side shared by both emulators: a request as they route it, and their replies.

use std::io::Cursor;

use serde_json::Value;

use super::LoggedRequest;

/// One request, read whole.
pub(super) struct Call {
    pub method: String,
    /// Path and query as sent.
    pub target: String,
    /// The path alone.
    pub path: String,
    /// The path's segments, percent-decoded.
    segments: Vec<String>,
    query: Vec<(String, String)>,
    /// The `Authorization` header, "" without one.
    pub auth: String,
    pub body: Vec<u8>,
}

impl Call {
    pub fn read(req: &mut tiny_http::Request) -> Call {
        let mut body = Vec::new();
        let _ = req.as_reader().read_to_end(&mut body);
        let target = req.url().to_string();
        let (path, query) = match target.split_once('?') {
            Some((p, q)) => (p, parse_query(q)),
            None => (target.as_str(), Vec::new()),
        };
        let segments = path
            .split('/')
            .filter(|s| !s.is_empty())
            .map(|s| pct_decode(s).into_owned())
            .collect();
        let auth = req
            .headers()
            .iter()
            .find(|h| h.field.equiv("Authorization"))
            .map(|h| h.value.to_string())
            .unwrap_or_default();
        Call {
            method: req.method().as_str().to_string(),
            path: path.to_string(),
            target,
            segments,
            query,
            auth,
            body,
        }
    }

    pub fn logged(&self) -> LoggedRequest {
        LoggedRequest {
            method: self.method.clone(),
            path: self.target.clone(),
            authorization: self.auth.clone(),
            body: String::from_utf8_lossy(&self.body).into_owned(),
        }
    }

    pub fn segments(&self) -> Vec<&str> {
        self.segments.iter().map(String::as_str).collect()
    }

    /// The first value of query parameter `key`.
    pub fn q(&self, key: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    pub fn num(&self, key: &str) -> Option<i64> {
        self.q(key)
            .and_then(|v| v.trim().parse::<f64>().ok())
            .map(|v| v as i64)
    }
}

fn pct_decode(s: &str) -> std::borrow::Cow<'_, str> {
    percent_encoding::percent_decode_str(s).decode_utf8_lossy()
}

/// `application/x-www-form-urlencoded` pairs: `+` is a space, then %XX escapes.
fn parse_query(q: &str) -> Vec<(String, String)> {
    q.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            let decode = |s: &str| pct_decode(&s.replace('+', " ")).into_owned();
            (decode(k), decode(v))
        })
        .collect()
}

pub(super) type Reply = tiny_http::Response<Cursor<Vec<u8>>>;

pub(super) fn json_reply(status: u16, body: &Value) -> Reply {
    tiny_http::Response::from_string(body.to_string())
        .with_status_code(status)
        .header("Content-Type", "application/json; charset=utf-8")
}

pub(super) fn no_content() -> Reply {
    tiny_http::Response::from_data(Vec::new()).with_status_code(204)
}

pub(super) trait WithHeader {
    fn header(self, name: &str, value: impl AsRef<str>) -> Self;
}

impl WithHeader for Reply {
    fn header(self, name: &str, value: impl AsRef<str>) -> Self {
        let value = value.as_ref().as_bytes();
        self.with_header(tiny_http::Header::from_bytes(name.as_bytes(), value).expect("header"))
    }
}

/// The `page`-th (from 1) run of `per_page` items.
pub(super) fn page_of(items: Vec<Value>, page: usize, per_page: usize) -> Vec<Value> {
    items
        .into_iter()
        .skip((page - 1).saturating_mul(per_page))
        .take(per_page)
        .collect()
}
