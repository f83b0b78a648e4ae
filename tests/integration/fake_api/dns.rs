//! The emulators' DNS: the test bed's primary BIND, changed with `nsupdate` (TSIG key
//! `CERTVAULT_TEST_TSIG_API_*`), and [`served_txt`], what an authoritative server serves.

use std::io::Write;
use std::process::{Command, Stdio};

use crate::harness::env;

const TTL: u64 = 60;

pub(super) struct Bind {
    server: String,
    key_name: String,
    secret: String,
}

impl Bind {
    /// The test bed's primary BIND (the harness starts the test bed if needed, and fails
    /// when its env file lacks the server or key).
    pub(super) fn from_bed() -> Bind {
        Bind {
            server: env("CERTVAULT_TEST_BIND1"),
            key_name: env("CERTVAULT_TEST_TSIG_API_NAME"),
            secret: env("CERTVAULT_TEST_TSIG_API_SECRET"),
        }
    }

    pub(super) fn nsupdate(
        &self,
        zone: &str,
        add: bool,
        fqdn: &str,
        txt: &str,
    ) -> Result<(), String> {
        let rr = if add {
            format!("update add {fqdn}. {TTL} IN TXT {}", zone_file_txt(txt))
        } else {
            format!("update delete {fqdn}. IN TXT {}", zone_file_txt(txt))
        };
        let (host, port) = host_port(&self.server);
        let script = format!("server {host} {port}\nzone {zone}\n{rr}\nsend\n");
        let mut child = Command::new("nsupdate")
            .arg("-y")
            .arg(format!("hmac-sha256:{}:{}", self.key_name, self.secret))
            .args(["-t", "10"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("cannot run nsupdate: {e}"))?;
        if let Some(mut stdin) = child.stdin.take() {
            stdin
                .write_all(script.as_bytes())
                .map_err(|e| format!("writing to nsupdate: {e}"))?;
        }
        let out = child
            .wait_with_output()
            .map_err(|e| format!("waiting for nsupdate: {e}"))?;
        if out.status.success() {
            return Ok(());
        }
        Err(format!(
            "nsupdate {} for {fqdn} in zone {zone}: {}{}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim(),
            String::from_utf8_lossy(&out.stdout).trim()
        ))
    }
}

fn host_port(server: &str) -> (&str, &str) {
    let (host, port) = server
        .rsplit_once(':')
        .unwrap_or_else(|| panic!("{server}: not HOST:PORT"));
    (host.trim_matches(['[', ']']), port)
}

/// The TXT values `server` (HOST:PORT) serves at `name`, sorted, asked without recursion.
/// Fails unless the server answers for the name as its authority (NOERROR or NXDOMAIN with
/// the AA flag): a server that is down, refuses the query or does not hold the zone does not
/// count as "no value there".
#[track_caller]
pub fn served_txt(server: &str, name: &str) -> Vec<String> {
    let (host, port) = host_port(server);
    let out = Command::new("dig")
        .arg(format!("@{host}"))
        .args(["-p", port, "+norecurse", "+noall", "+comments", "+answer"])
        .args(["TXT", name])
        .output()
        .expect("run dig");
    let text = String::from_utf8_lossy(&out.stdout);
    let status = text
        .lines()
        .find_map(|l| l.split_once("status: "))
        .and_then(|(_, s)| s.split(',').next());
    let authoritative = text
        .lines()
        .find_map(|l| l.strip_prefix(";; flags: "))
        .and_then(|f| f.split(';').next())
        .is_some_and(|f| f.split_whitespace().any(|f| f == "aa"));
    assert!(
        out.status.success() && matches!(status, Some("NOERROR" | "NXDOMAIN")) && authoritative,
        "{server} gave no authoritative answer for TXT {name}: {}\n{text}",
        String::from_utf8_lossy(&out.stderr)
    );
    let name = name.trim_end_matches('.');
    let mut values: Vec<String> = text
        .lines()
        .filter(|l| !l.starts_with(';'))
        .filter_map(|l| {
            // owner TTL class type rdata
            let mut rest = l;
            let mut fields = Vec::new();
            for _ in 0..4 {
                let t = rest.trim_start();
                let end = t.find(char::is_whitespace)?;
                fields.push(&t[..end]);
                rest = &t[end..];
            }
            let owner = fields[0].trim_end_matches('.');
            (owner.eq_ignore_ascii_case(name) && fields[3] == "TXT").then(|| txt_value(rest.trim()))
        })
        .collect();
    values.sort();
    values
}

/// The TXT data a record content stands for: quoted RFC 1035 character-strings are unquoted
/// (and concatenated), anything else is taken literally.
pub(super) fn txt_value(content: &str) -> String {
    let s = content.trim();
    if !(s.len() >= 2 && s.starts_with('"') && s.ends_with('"')) {
        return content.to_string();
    }
    let mut out = String::new();
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '"' => loop {
                match chars.next() {
                    None | Some('"') => break,
                    Some('\\') => {
                        let digits: String =
                            std::iter::from_fn(|| chars.next_if(|d| d.is_ascii_digit()))
                                .take(3)
                                .collect();
                        if digits.len() == 3 {
                            if let Ok(b) = digits.parse::<u8>() {
                                out.push(char::from(b));
                            }
                        } else if let Some(n) = chars.next() {
                            out.push_str(&digits);
                            out.push(n);
                        }
                    }
                    Some(other) => out.push(other),
                }
            },
            c if c.is_whitespace() => {}
            other => out.push(other),
        }
    }
    out
}

/// `txt` as zone-file character-strings (split at 255 bytes) for nsupdate.
fn zone_file_txt(txt: &str) -> String {
    let mut parts = Vec::new();
    let mut cur = String::new();
    for c in txt.chars() {
        if cur.len() + c.len_utf8() > 255 {
            parts.push(std::mem::take(&mut cur));
        }
        cur.push(c);
    }
    parts.push(cur);
    parts
        .iter()
        .map(|p| {
            let escaped: String = p
                .chars()
                .flat_map(|c| match c {
                    '"' | '\\' => vec!['\\', c],
                    c => vec![c],
                })
                .collect();
            format!("\"{escaped}\"")
        })
        .collect::<Vec<_>>()
        .join(" ")
}
