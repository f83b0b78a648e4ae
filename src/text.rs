//! Text from stored documents on a terminal: control characters (escape sequences, carriage
//! returns, and in one-line fields newlines) and Unicode direction overrides are shown
//! escaped as `\uXXXX`, so a document a renew token wrote cannot repaint the screen or add
//! lines of its own to `list` or the renew summary. The form is also valid inside a JSON
//! string, so whole JSON documents go through [`terminal`] unchanged in meaning.

use std::borrow::Cow;

/// Whether `c` must not reach a terminal as it is.
fn unsafe_char(c: char) -> bool {
    c.is_control() || matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

fn escape(s: &str, keep: impl Fn(char) -> bool) -> Cow<'_, str> {
    if !s.chars().any(|c| unsafe_char(c) && !keep(c)) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        if unsafe_char(c) && !keep(c) {
            out.push_str(&format!("\\u{:04x}", c as u32));
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// A writer that passes whole output on as [`terminal`] shows it. Every write is escaped
/// on its own; bytes that are not UTF-8 on their own (a character split across writes,
/// which certvault's own writers never do) pass with control bytes replaced by `?`.
pub struct Terminal<W: std::io::Write>(pub W);

impl<W: std::io::Write> std::io::Write for Terminal<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match std::str::from_utf8(buf) {
            Ok(s) => self.0.write_all(terminal(s).as_bytes())?,
            Err(_) => {
                let safe: Vec<u8> = buf
                    .iter()
                    .map(|&b| match b {
                        b'\n' | b'\t' => b,
                        0..=0x1f | 0x7f => b'?',
                        _ => b,
                    })
                    .collect();
                self.0.write_all(&safe)?
            }
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.0.flush()
    }
}

/// A field of one line: every control character escaped, newlines included.
pub fn one_line(s: &str) -> Cow<'_, str> {
    escape(s, |_| false)
}

/// Whole output: control characters escaped except newlines and tabs.
pub fn terminal(s: &str) -> Cow<'_, str> {
    escape(s, |c| c == '\n' || c == '\t')
}

/// One log line: control characters escaped, newlines included, except tabs and ESC
/// (the logger's own colouring; it escapes the ESC of the text it formats itself).
pub fn log_line(s: &str) -> Cow<'_, str> {
    escape(s, |c| c == '\t' || c == '\u{1b}')
}

/// The error and its causes on one line, outermost first: `a: b: c`. Every cause is printed
/// once: certvault's errors never repeat their source in their own message (a message that
/// shows a cause inline passes on that cause's own source instead, see
/// `DeployFailed` in `hook`).
pub fn chain(err: &(dyn std::error::Error + 'static)) -> String {
    let mut out = err.to_string();
    let mut source = next_cause(err);
    while let Some(e) = source {
        out.push_str(": ");
        out.push_str(&e.to_string());
        source = next_cause(e);
    }
    out
}

/// The cause printed after `e`. instant-acme's `Http`, `Json` and `InvalidUri` errors put
/// their `#[from]` source into their own message (`"HTTP request failure: {0}"`); for those,
/// known by their kind, the next cause is that source's own.
fn next_cause<'a>(
    e: &'a (dyn std::error::Error + 'static),
) -> Option<&'a (dyn std::error::Error + 'static)> {
    match e.downcast_ref::<instant_acme::Error>() {
        Some(
            instant_acme::Error::Http(_)
            | instant_acme::Error::Json(_)
            | instant_acme::Error::InvalidUri(_),
        ) => e.source().and_then(|s| s.source()),
        _ => e.source(),
    }
}

/// Format a time as RFC 3339 (UTC, whole seconds).
pub fn rfc3339(t: time::OffsetDateTime) -> String {
    let t = t
        .to_offset(time::UtcOffset::UTC)
        .replace_nanosecond(0)
        .unwrap_or(t);
    t.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|_| t.to_string())
}

/// "in 3d 4h" / "2h ago", coarse.
pub fn relative(now: time::OffsetDateTime, t: time::OffsetDateTime) -> String {
    let d = t - now;
    let secs = d.whole_seconds().unsigned_abs();
    let text = if secs >= 2 * 86400 {
        format!("{}d", secs / 86400)
    } else if secs >= 3600 {
        format!("{}h{}m", secs / 3600, secs % 3600 / 60)
    } else {
        format!("{}m", secs / 60)
    };
    if d.is_negative() {
        format!("{text} ago")
    } else {
        format!("in {text}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escape_sequences_and_fake_lines_are_shown_escaped() {
        assert_eq!(one_line("plain, ü ok"), "plain, ü ok");
        assert!(matches!(one_line("plain"), Cow::Borrowed(_)));
        assert_eq!(
            one_line("x\u{1b}[2J\nrenewed  web\r\u{9b}31m\u{202e}"),
            "x\\u001b[2J\\u000arenewed  web\\u000d\\u009b31m\\u202e"
        );
        assert_eq!(
            terminal("a\nb\t\u{1b}]0;t\u{7}"),
            "a\nb\t\\u001b]0;t\\u0007"
        );
        // Still JSON: the escape is JSON's own.
        let v: serde_json::Value = serde_json::from_str(&terminal("{\"a\":\"x\u{9b}y\"}")).unwrap();
        assert_eq!(v["a"], "x\u{9b}y");
    }
}
