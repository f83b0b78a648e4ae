//! The Cloudflare API v4. Facts relied on:
//!
//! - Base URL `https://api.cloudflare.com/client/v4/`; auth `Authorization: Bearer <API_TOKEN>`.
//!   <https://developers.cloudflare.com/fundamentals/api/how-to/make-api-calls/>
//! - Envelope `{"success","errors":[{"code","message"}],"messages","result"}`, lists add
//!   `result_info {page, per_page, count, total_count, total_pages}`; query `page=` / `per_page=`.
//!   (same page; also the DNS records list page below)
//! - List Zones `GET /zones`: `name` (operators `equal` (default), `not_equal`, `starts_with`,
//!   `ends_with`, `contains`, `*_case_sensitive`, written `name=contains:foo`), `status`,
//!   `page` (min 1), `per_page` (default 20, 5..=50), `direction`. An unknown name is simply an
//!   empty `result` with `success: true`.
//!   <https://developers.cloudflare.com/api/resources/zones/methods/list/>
//! - DNS records <https://developers.cloudflare.com/api/resources/dns/subresources/records/>:
//!   `GET /zones/{zone_id}/dns_records` (filters `type`, `name` = `name.exact`,
//!   `name.contains|startswith|endswith`, `content` = `content.exact`, ...; `per_page`
//!   default 100), `POST /zones/{zone_id}/dns_records` -> HTTP 200 with the record in
//!   `result` (`id`, `name`, `type`, `content`, `proxiable`, `proxied`, `ttl`, `settings`,
//!   `meta`, `comment`, `tags`, `created_on`, `modified_on`; no `zone_id`/`zone_name`, which
//!   the current docs no longer list), `GET /zones/{zone_id}/dns_records/{id}` -> 200 with
//!   the record (of any type) in `result`, `DELETE /zones/{zone_id}/dns_records/{id}` -> 200
//!   `{"result":{"id":...}}`. `ttl` 1 means automatic, else 60..=86400. TXT `content`
//!   "must consist of quoted character strings (RFC 1035)", Cloudflare also accepts it
//!   unquoted: stored as sent, unquoted for DNS.
//!   <https://developers.cloudflare.com/api/resources/dns/subresources/records/methods/create/>
//!   <https://developers.cloudflare.com/api/resources/dns/subresources/records/methods/get/>
//!   <https://developers.cloudflare.com/api/resources/dns/subresources/records/methods/delete/>
//! - Rate limit: HTTP 429, `retry-after` = seconds until capacity.
//!   <https://developers.cloudflare.com/fundamentals/api/reference/limits/>
//! - Error bodies the reference does not spell out, as reported from the live API in public
//!   issue threads and in other clients' recorded responses:
//!   403 `9109 "Invalid access token"` (well-formed but unknown token);
//!   400 `9106 "Missing X-Auth-Key, X-Auth-Email or Authorization headers"`;
//!   400 `6003 "Invalid request headers"` with `error_chain`
//!   `6111 "Invalid format for Authorization header"`
//!   (<https://github.com/kissgyorgy/cloudflare-dyndns/issues/40>);
//!   401 `1000 "Invalid API Token"` on `/user/tokens/verify`;
//!   404 `81044 "Record does not exist."`
//!   (<https://github.com/zanjie1999/cloudflare-api-v4-ddns/issues/5>);
//!   400 `81058 "An identical record already exists."`
//!   (<https://github.com/jeessy2/ddns-go/issues/1378>);
//!   429 `971 "Please wait and consider throttling your request speed"`
//!   (<https://github.com/cloudflare/workers-sdk/issues/10025>);
//!   400 `7003 "Could not route to ..., perhaps your object identifier is invalid?"` +
//!   `7000 "No route for that URI"`;
//!   403 `9109 "Unauthorized to access requested resource"` (zone the token cannot see);
//!   400 `1004 "DNS Validation Error"` with an `error_chain` for invalid record input.
//!
//! Emulator choices (not from the docs): `per_page` outside the documented range is clamped; a
//! failed `nsupdate` is code 500; the `error_chain` codes under 1004 are illustrative; padding
//! zones `pad00.test` .. `pad24.test` (not in BIND) are hosted too, so zone listings need two
//! pages at the default `per_page`.

use serde_json::{json, Value};

use super::http::{json_reply, page_of, Call, Reply, WithHeader};
use super::{hex_id, normalize_name, Rec, Shared, State, Zone};

/// Where the API lives below the server's root.
pub(super) const PREFIX: &str = "/client/v4";
pub(super) const PADDING_ZONES: usize = 25;

pub(super) fn padding_zones() -> impl Iterator<Item = String> {
    (0..PADDING_ZONES).map(|i| format!("pad{i:02}.test"))
}

pub(super) fn rate_limited() -> Reply {
    let slow_down = "Please wait and consider throttling your request speed";
    fail(429, 971, slow_down).header("Retry-After", "1")
}

fn err(code: u32, message: &str) -> Value {
    json!({"code": code, "message": message})
}

fn error_list(status: u16, errors: Vec<Value>) -> Reply {
    json_reply(
        status,
        &json!({"success": false, "errors": errors, "messages": [], "result": null}),
    )
}

/// An error answer with one error.
fn fail(status: u16, code: u32, message: &str) -> Reply {
    error_list(status, vec![err(code, message)])
}

fn ok(result: Value) -> Reply {
    json_reply(
        200,
        &json!({"success": true, "errors": [], "messages": [], "result": result}),
    )
}

fn list(items: Vec<Value>, page: usize, per_page: usize) -> Reply {
    let total = items.len();
    let result = page_of(items, page, per_page);
    json_reply(
        200,
        &json!({
            "success": true,
            "errors": [],
            "messages": [],
            "result": result,
            "result_info": {
                "page": page,
                "per_page": per_page,
                "count": result.len(),
                "total_count": total,
                "total_pages": total.div_ceil(per_page),
            },
        }),
    )
}

/// HTTP 400 with one error `code`/`message` whose `error_chain` holds `cause`.
fn chained(code: u32, message: &str, cause: Value) -> Reply {
    let error = json!({"code": code, "message": message, "error_chain": [cause]});
    error_list(400, vec![error])
}

fn validation(code: u32, message: &str) -> Reply {
    chained(1004, "DNS Validation Error", err(code, message))
}

fn failed(e: String) -> Reply {
    fail(500, 500, &e)
}

fn no_record() -> Reply {
    fail(404, 81044, "Record does not exist.")
}

/// The `name` filter of List Zones, with its optional operator prefix (`contains:foo`).
fn name_matches(filter: &str, name: &str) -> bool {
    const OPS: &str = "equal not_equal starts_with ends_with contains \
                       starts_with_case_sensitive ends_with_case_sensitive contains_case_sensitive";
    let (op, arg) = match filter.split_once(':') {
        Some((op, arg)) if OPS.split_whitespace().any(|o| o == op) => (op, arg),
        _ => ("equal", filter),
    };
    let (n, a) = if op.ends_with("_case_sensitive") {
        (name.to_string(), arg.to_string())
    } else {
        (name.to_ascii_lowercase(), arg.to_ascii_lowercase())
    };
    match op.trim_end_matches("_case_sensitive") {
        "not_equal" => n != a,
        "starts_with" => n.starts_with(&a),
        "ends_with" => n.ends_with(&a),
        "contains" => n.contains(&a),
        _ => n == a,
    }
}

pub(super) fn is_id(s: &str) -> bool {
    s.len() == 32
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

fn record_json(r: &Rec) -> Value {
    json!({
        "id": r.cf_id,
        "name": r.fqdn,
        "type": r.kind,
        "content": r.content,
        "proxiable": false,
        "proxied": false,
        "ttl": r.ttl,
        "settings": {},
        "meta": {},
        "comment": null,
        "tags": [],
        "created_on": r.created,
        "modified_on": r.created,
    })
}

impl Shared {
    fn cf_account(&self) -> Value {
        json!({"id": hex_id(self.seed, "account", 0), "name": "certvault test account"})
    }

    fn cf_zone_json(&self, z: &Zone) -> Value {
        json!({
            "id": z.cf_id,
            "name": z.name,
            "status": "active",
            "paused": false,
            "type": "full",
            "development_mode": 0,
            "name_servers": ["ada.ns.cloudflare.com", "bob.ns.cloudflare.com"],
            "original_name_servers": null,
            "original_registrar": null,
            "original_dnshost": null,
            "created_on": z.created,
            "modified_on": z.created,
            "activated_on": z.created,
            "meta": {"step": 2, "phishing_detected": false},
            "owner": {"id": null, "type": "user", "email": null},
            "account": self.cf_account(),
            "permissions": ["#dns_records:edit", "#dns_records:read", "#zone:read"],
            "plan": {"id": "0feeeeeeeeeeeeeeeeeeeeeeeeeeeeee", "name": "Free Website",
                     "price": 0, "currency": "USD", "frequency": "", "is_subscribed": false,
                     "can_subscribe": false, "legacy_id": "free", "legacy_discount": false,
                     "externally_managed": false},
        })
    }

    /// `None` when the Authorization header carries this server's token.
    fn cf_auth(&self, call: &Call) -> Option<Reply> {
        let verify = call.segments() == ["client", "v4", "user", "tokens", "verify"];
        if call.auth.is_empty() {
            return Some(fail(
                400,
                9106,
                "Missing X-Auth-Key, X-Auth-Email or Authorization headers",
            ));
        }
        let token = call.auth.strip_prefix("Bearer ").map(str::trim);
        let well_formed = token.is_some_and(|t| {
            !t.is_empty()
                && t.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        });
        if !well_formed {
            let cause = err(6111, "Invalid format for Authorization header");
            return Some(chained(6003, "Invalid request headers", cause));
        }
        if token != Some(self.token.as_str()) {
            return Some(if verify {
                fail(401, 1000, "Invalid API Token")
            } else {
                fail(403, 9109, "Invalid access token")
            });
        }
        None
    }

    pub(super) fn cloudflare(&self, st: &mut State, call: &Call) -> Reply {
        let no_route = || fail(404, 7000, "No route for that URI");
        let segments = call.segments();
        let ["client", "v4", rest @ ..] = segments.as_slice() else {
            return no_route();
        };
        if let Some(denied) = self.cf_auth(call) {
            return denied;
        }
        let (zid, tail) = match (call.method.as_str(), rest) {
            ("GET", ["user", "tokens", "verify"]) => {
                return json_reply(
                    200,
                    &json!({
                        "success": true,
                        "errors": [],
                        "messages": [{"code": 10000,
                                      "message": "This API Token is valid and active",
                                      "type": null}],
                        "result": {"id": hex_id(self.seed, "token", 0), "status": "active"},
                    }),
                )
            }
            ("GET", ["zones"]) => return self.cf_list_zones(st, call),
            (_, ["zones", zid, tail @ ..]) => (*zid, tail),
            _ => return no_route(),
        };
        if !is_id(zid) {
            let path = &call.path;
            let message =
                format!("Could not route to {path}, perhaps your object identifier is invalid?");
            return error_list(
                400,
                vec![err(7003, &message), err(7000, "No route for that URI")],
            );
        }
        let Some(zi) = st.zones.iter().position(|z| z.cf_id == zid) else {
            let message = "Unauthorized to access requested resource";
            return fail(403, 9109, message);
        };
        let zone = st.zones[zi].name.clone();
        let find = |rid: &str| {
            st.records
                .iter()
                .position(|r| r.zone == zone && r.cf_id == rid)
        };
        match (call.method.as_str(), tail) {
            ("GET", []) => ok(self.cf_zone_json(&st.zones[zi])),
            ("GET", ["dns_records"]) => self.cf_list_records(st, &zone, call),
            ("POST", ["dns_records"]) => self.cf_create_record(st, zi, call),
            ("GET", ["dns_records", rid]) => match find(rid) {
                Some(pos) => ok(record_json(&st.records[pos])),
                None => no_record(),
            },
            ("DELETE", ["dns_records", rid]) => match find(rid) {
                Some(pos) => match self.remove_record(st, pos) {
                    Ok(()) => ok(json!({"id": rid})),
                    Err(e) => failed(e),
                },
                None => no_record(),
            },
            _ => no_route(),
        }
    }

    fn cf_list_zones(&self, st: &State, call: &Call) -> Reply {
        let page = call.num("page").unwrap_or(1).max(1) as usize;
        let per_page = call.num("per_page").unwrap_or(20).clamp(5, 50) as usize;
        let mut zones: Vec<&Zone> = st
            .zones
            .iter()
            .filter(|z| call.q("name").is_none_or(|f| name_matches(f, &z.name)))
            .filter(|_| call.q("status").is_none_or(|s| s == "active"))
            .filter(|_| {
                call.q("account.id")
                    .is_none_or(|a| a == hex_id(self.seed, "account", 0))
            })
            .collect();
        zones.sort_by(|a, b| a.name.cmp(&b.name));
        if call
            .q("direction")
            .is_some_and(|d| d.eq_ignore_ascii_case("desc"))
        {
            zones.reverse();
        }
        let items = zones.into_iter().map(|z| self.cf_zone_json(z)).collect();
        list(items, page, per_page)
    }

    fn cf_list_records(&self, st: &State, zone: &str, call: &Call) -> Reply {
        let page = call.num("page").unwrap_or(1).max(1) as usize;
        let per_page = call.num("per_page").unwrap_or(100).clamp(5, 5_000_000) as usize;
        // `field`, `field.exact`, `field.contains`, ...: `None` when no such filter is given.
        let text = |field: &str, value: &str| -> Option<bool> {
            let v = value.to_ascii_lowercase();
            let mut result: Option<bool> = None;
            for suffix in ["", ".exact", ".contains", ".startswith", ".endswith"] {
                if let Some(f) = call.q(&format!("{field}{suffix}")) {
                    let f = f.to_ascii_lowercase();
                    let f = if field == "name" {
                        f.trim_end_matches('.')
                    } else {
                        &f
                    };
                    let ok = match suffix {
                        ".contains" => v.contains(f),
                        ".startswith" => v.starts_with(f),
                        ".endswith" => v.ends_with(f),
                        _ => v == f,
                    };
                    result = Some(result.unwrap_or(true) && ok);
                }
            }
            result
        };
        let any = call.q("match").is_some_and(|m| m == "any");
        let items: Vec<Value> = st
            .records
            .iter()
            .filter(|r| r.zone == zone)
            .filter(|r| {
                let checks: Vec<bool> = [
                    call.q("type").map(|t| t.eq_ignore_ascii_case(&r.kind)),
                    text("name", &r.fqdn),
                    text("content", &r.content),
                ]
                .into_iter()
                .flatten()
                .collect();
                if any && !checks.is_empty() {
                    checks.iter().any(|c| *c)
                } else {
                    checks.iter().all(|c| *c)
                }
            })
            .map(record_json)
            .collect();
        list(items, page, per_page)
    }

    fn cf_create_record(&self, st: &mut State, zi: usize, call: &Call) -> Reply {
        let Ok(body) = serde_json::from_slice::<Value>(&call.body) else {
            return fail(400, 9207, "Request body is invalid.");
        };
        let Some(kind) = body.get("type").and_then(Value::as_str) else {
            return validation(9000, "DNS record type is invalid.");
        };
        if !kind.eq_ignore_ascii_case("TXT") {
            return validation(9000, "fake_api only emulates TXT records.");
        }
        let Some(name) = body.get("name").and_then(Value::as_str).map(str::trim) else {
            return validation(9007, "DNS record name is required.");
        };
        let content = body.get("content").and_then(Value::as_str).unwrap_or("");
        if content.is_empty() {
            return validation(9005, "Content for TXT record is invalid.");
        }
        if body.get("proxied").and_then(Value::as_bool) == Some(true) {
            return fail(400, 9004, "This record type cannot be proxied.");
        }
        let ttl = match body.get("ttl") {
            None | Some(Value::Null) => 1,
            Some(v) => match v.as_u64() {
                Some(t) if t == 1 || (60..=86400).contains(&t) => t,
                _ => {
                    let message =
                        "Invalid TTL. Must be between 60 and 86400 seconds, or 1 for automatic.";
                    return validation(9021, message);
                }
            },
        };
        let zone = &st.zones[zi].name;
        let name = normalize_name(name);
        // Names not ending in the zone are relative to it, "@" is the apex.
        let fqdn = if name == "@" || name.is_empty() || name == *zone {
            zone.clone()
        } else if name.ends_with(&format!(".{zone}")) {
            name
        } else {
            format!("{name}.{zone}")
        };
        if st
            .records
            .iter()
            .any(|r| r.kind == "TXT" && r.fqdn == fqdn && r.content == content)
        {
            return fail(400, 81058, "An identical record already exists.");
        }
        match self.add_record(st, zi, fqdn, "TXT", content, ttl) {
            Ok(rec) => ok(record_json(&rec)),
            Err(e) => failed(e),
        }
    }
}
