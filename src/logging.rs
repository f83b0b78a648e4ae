//! Logs on stderr: human text (default) or one JSON object per line (`--log-format json`).
//!
//! JSON keys: `ts` (RFC 3339, UTC, milliseconds), `level` (`error`, `warn`, `info`, `debug`,
//! `trace`), `msg`, then the event's own fields by name (`cert` for the certificate, and
//! e.g. `version`, `reason`, `not_after`). Fields of enclosing spans are not included. No
//! secret is ever a field: tokens and keys are never logged.

use std::fmt;

use serde_json::{Map, Value};
use tracing::field::{Field, Visit};
use tracing::{Event, Subscriber};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::EnvFilter;

/// `--log-format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Format {
    #[default]
    Text,
    Json,
}

/// Install the global subscriber. `CERTVAULT_LOG` (tracing filter syntax) overrides the
/// level from `-v`. vaultrs logs expected 404s and CAS conflicts as errors: silenced, since
/// certvault reports those itself.
pub fn init(verbose: u8, quiet: bool, format: Format) {
    let level = match verbose {
        _ if quiet => "error",
        0 => "info",
        1 => "debug",
        _ => "trace",
    };
    let filter = std::env::var("CERTVAULT_LOG")
        .ok()
        .and_then(|f| EnvFilter::try_new(f).ok())
        .unwrap_or_else(|| {
            EnvFilter::new(format!(
                "{},certvault={level},vaultrs=off,rustify=off,instant_acme={}",
                if quiet { "error" } else { "warn" },
                if quiet { "error" } else { "warn" }
            ))
        });
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(|| SafeStderr);
    match format {
        Format::Text => builder
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .with_target(false)
            .init(),
        Format::Json => builder.with_ansi(false).event_format(JsonLines).init(),
    }
}

/// One flat JSON object per event.
struct JsonLines;

impl<S, N> FormatEvent<S, N> for JsonLines
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        _ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let now = time::OffsetDateTime::now_utc();
        let ts = now
            .replace_nanosecond(now.millisecond() as u32 * 1_000_000)
            .unwrap_or(now)
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap_or_default();
        let mut fields = Fields(Map::new());
        event.record(&mut fields);
        writeln!(writer, "{}", line(&ts, event.metadata().level(), fields.0))
    }
}

/// `ts`, `level`, `msg` first, then the other fields in name order.
fn line(ts: &str, level: &tracing::Level, mut fields: Map<String, Value>) -> String {
    let msg = fields
        .remove("message")
        .unwrap_or(Value::String(String::new()));
    let mut out = Map::new();
    out.insert("ts".into(), Value::String(ts.to_string()));
    out.insert(
        "level".into(),
        Value::String(level.as_str().to_ascii_lowercase()),
    );
    out.insert("msg".into(), msg);
    for (k, v) in fields {
        // A field may not overwrite the three fixed keys.
        let key = if out.contains_key(&k) {
            format!("field_{k}")
        } else {
            k
        };
        out.insert(key, v);
    }
    // serde_json's map keeps insertion order only with preserve_order; write it by hand.
    let mut text = String::from("{");
    for (i, key) in ["ts", "level", "msg"]
        .into_iter()
        .map(String::from)
        .chain(
            out.keys()
                .filter(|k| !matches!(k.as_str(), "ts" | "level" | "msg"))
                .cloned()
                .collect::<Vec<_>>(),
        )
        .enumerate()
    {
        if i > 0 {
            text.push(',');
        }
        text.push_str(&Value::String(key.clone()).to_string());
        text.push(':');
        text.push_str(&out[&key].to_string());
    }
    text.push('}');
    text
}

struct Fields(Map<String, Value>);

impl Visit for Fields {
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.0
            .insert(field.name().into(), Value::String(format!("{value:?}")));
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0
            .insert(field.name().into(), Value::String(value.to_string()));
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.0.insert(field.name().into(), Value::from(value));
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.0.insert(field.name().into(), Value::from(value));
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        self.0.insert(field.name().into(), Value::from(value));
    }
    fn record_f64(&mut self, field: &Field, value: f64) {
        self.0.insert(field.name().into(), Value::from(value));
    }
}

/// stderr, with every control character of an event escaped (`\uXXXX`) except its final
/// newline, tabs and ESC: text from renew-writable documents in a log line cannot add
/// lines or move the cursor. tracing-subscriber already escapes ESC in fields and
/// messages, so the ESC that passes is its own colouring.
struct SafeStderr;

impl std::io::Write for SafeStderr {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let text = String::from_utf8_lossy(buf);
        let (body, end) = match text.strip_suffix('\n') {
            Some(b) => (b, "\n"),
            None => (&*text, ""),
        };
        let safe = crate::text::log_line(body);
        std::io::stderr().write_all(format!("{safe}{end}").as_bytes())?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        std::io::stderr().flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fixed_keys_first_and_never_overwritten() {
        let mut fields = Map::new();
        fields.insert("message".into(), Value::from("renewing"));
        fields.insert("cert".into(), Value::from("web"));
        fields.insert("level".into(), Value::from("sneaky"));
        let text = line("2026-11-26T10:00:00.123Z", &tracing::Level::INFO, fields);
        assert_eq!(
            text,
            r#"{"ts":"2026-11-26T10:00:00.123Z","level":"info","msg":"renewing","cert":"web","field_level":"sneaky"}"#
        );
        let v: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(v["cert"], "web");
    }
}
