//! The DNSimple API v2. Facts relied on:
//!
//! - Base `https://api.dnsimple.com/v2/`; auth `Authorization: Bearer <token>`; success bodies
//!   `{"data": ...}`; errors `{"message": ...}`, 401 `{"message":"Authentication failed"}`;
//!   lists `pagination {current_page, per_page, total_entries, total_pages}`, `page`/`per_page`
//!   (default 30); every response carries `X-RateLimit-Limit`/`-Remaining`/`-Reset` (Unix
//!   time); over the limit: 429 `{"message":"quota exceeded"}`.
//!   <https://developer.dnsimple.com/v2/>
//! - `GET /v2/whoami` -> `{"data":{"user":null,"account":{"id","email","plan_identifier",
//!   "created_at","updated_at"}}}` for an account token.
//!   <https://developer.dnsimple.com/v2/identity/>
//!   (fixture `fixtures/v2/api/whoami/success.http` in github.com/dnsimple/dnsimple-developer)
//! - Zone records <https://developer.dnsimple.com/v2/zones/records/>: `GET
//!   /v2/{account}/zones/{zone}/records` (filters `name` exact, `name_like`, `type`; default sort
//!   id asc; the list includes the zone's system SOA/NS records), `POST` same path with
//!   zone-relative `name` ("" = apex), `type`, `content`, `ttl` -> 201 `{"data":{"id",
//!   "zone_id","parent_id","name","content","ttl","priority","type","regions",
//!   "system_record","created_at","updated_at"}}`, `GET .../records/{id}` -> 200 `{"data":
//!   <the same record, any type>}`, `DELETE .../records/{id}` -> 204.
//!   Not found: 404 ``{"message":"Zone `x` not found"}`` / ``{"message":"Record `x` not found"}``
//!   (fixtures `notfound-zone.http`, `notfound-record.http`).
//!
//!
//! Emulator choices (not from the docs): `per_page` is clamped to 1..=100; a path account id
//! other than the token's gets 404 ``{"message":"Account `x` not found"}``; the `errors` field
//! names for invalid input are illustrative.

use serde_json::{json, Value};

use super::http::{json_reply, no_content, page_of, Call, Reply, WithHeader};
use super::{normalize_name, unix_now, Rec, Shared, State, Zone};

const RATE_LIMIT: u64 = 2400;

pub(super) fn rate_limited() -> Reply {
    message(429, "quota exceeded")
        .header("Retry-After", "1")
        .header("X-RateLimit-Limit", RATE_LIMIT.to_string())
        .header("X-RateLimit-Remaining", "0")
        .header("X-RateLimit-Reset", (unix_now() + 1).to_string())
}

fn message(status: u16, message: &str) -> Reply {
    json_reply(status, &json!({"message": message}))
}

fn validation(field: &str, problem: &str) -> Reply {
    json_reply(
        400,
        &json!({"message": "Validation failed", "errors": {field: [problem]}}),
    )
}

fn list(items: Vec<Value>, call: &Call) -> Reply {
    let page = call.num("page").unwrap_or(1).max(1) as usize;
    let per_page = call.num("per_page").unwrap_or(30).clamp(1, 100) as usize;
    let total = items.len();
    json_reply(
        200,
        &json!({
            "data": page_of(items, page, per_page),
            "pagination": {
                "current_page": page,
                "per_page": per_page,
                "total_entries": total,
                "total_pages": total.div_ceil(per_page),
            },
        }),
    )
}

fn record_json(r: &Rec) -> Value {
    record(
        r.dnsimple_id,
        &r.zone,
        &r.rel,
        &r.kind,
        &r.content,
        r.ttl,
        false,
        &r.created,
    )
}

/// A record in DNSimple's shape.
#[allow(clippy::too_many_arguments)]
fn record(
    id: u64,
    zone: &str,
    name: &str,
    kind: &str,
    content: &str,
    ttl: u64,
    system: bool,
    created: &str,
) -> Value {
    json!({
        "id": id,
        "zone_id": zone,
        "parent_id": null,
        "name": name,
        "content": content,
        "ttl": ttl,
        "priority": null,
        "type": kind,
        "regions": ["global"],
        "system_record": system,
        "created_at": created,
        "updated_at": created,
    })
}

/// The SOA and NS records DNSimple lists for every zone (`system_record: true`).
fn system_records(z: &Zone) -> Vec<Value> {
    let base = z.dnsimple_id * 10;
    let soa = format!(
        "ns1.dnsimple.com admin.dnsimple.com {} 86400 7200 604800 300",
        unix_now()
    );
    [
        (base + 1, "SOA", soa.as_str()),
        (base + 2, "NS", "ns1.dnsimple.com"),
        (base + 3, "NS", "ns2.dnsimple.com"),
    ]
    .into_iter()
    .map(|(id, kind, content)| record(id, &z.name, "", kind, content, 3600, true, &z.created))
    .collect()
}

impl Shared {
    fn ds_zone_json(&self, z: &Zone) -> Value {
        json!({
            "id": z.dnsimple_id,
            "account_id": self.account_id,
            "name": z.name,
            "reverse": false,
            "secondary": false,
            "last_transferred_at": null,
            "active": true,
            "created_at": z.created,
            "updated_at": z.created,
        })
    }

    /// Every answer carries the X-RateLimit-* headers.
    pub(super) fn dnsimple(&self, st: &mut State, call: &Call) -> Reply {
        let remaining = RATE_LIMIT.saturating_sub(st.served % RATE_LIMIT);
        self.ds_route(st, call)
            .header("X-RateLimit-Limit", RATE_LIMIT.to_string())
            .header("X-RateLimit-Remaining", remaining.to_string())
            .header("X-RateLimit-Reset", (unix_now() + 3600).to_string())
    }

    fn ds_route(&self, st: &mut State, call: &Call) -> Reply {
        let not_found = || message(404, "Not Found");
        let segments = call.segments();
        let ["v2", rest @ ..] = segments.as_slice() else {
            return not_found();
        };
        let token = call.auth.strip_prefix("Bearer ").map(str::trim);
        if token != Some(self.token.as_str()) {
            return message(401, "Authentication failed");
        }
        let (account, tail) = match (call.method.as_str(), rest) {
            ("GET", ["whoami"]) => {
                return json_reply(
                    200,
                    &json!({"data": {"user": null, "account": {
                        "id": self.account_id,
                        "email": "certvault-test@example.com",
                        "plan_identifier": "dnsimple-professional",
                        "created_at": "2024-01-01T00:00:00Z",
                        "updated_at": "2024-01-01T00:00:00Z",
                    }}}),
                )
            }
            (_, [account, tail @ ..]) => (*account, tail),
            _ => return not_found(),
        };
        if account != self.account_id.to_string() {
            return message(404, &format!("Account `{account}` not found"));
        }
        let (zone, tail) = match (call.method.as_str(), tail) {
            ("GET", ["zones"]) => {
                let like = call.q("name_like").map(str::to_ascii_lowercase);
                let items = st
                    .zones
                    .iter()
                    .filter(|z| like.as_ref().is_none_or(|l| z.name.contains(l.as_str())))
                    .map(|z| self.ds_zone_json(z))
                    .collect();
                return list(items, call);
            }
            (_, ["zones", zone, tail @ ..]) => (*zone, tail),
            _ => return not_found(),
        };
        let zone_name = normalize_name(zone);
        let Some(zi) = st.zones.iter().position(|z| z.name == zone_name) else {
            return message(404, &format!("Zone `{zone}` not found"));
        };
        let find = |rid: &str| {
            st.records
                .iter()
                .position(|r| r.zone == zone_name && rid.parse::<u64>() == Ok(r.dnsimple_id))
        };
        let no_record = |rid: &str| message(404, &format!("Record `{rid}` not found"));
        match (call.method.as_str(), tail) {
            ("GET", []) => json_reply(200, &json!({"data": self.ds_zone_json(&st.zones[zi])})),
            ("GET", ["records"]) => list_records(st, zi, call),
            ("POST", ["records"]) => self.ds_create_record(st, zi, call),
            ("GET", ["records", rid]) => match find(rid) {
                Some(pos) => json_reply(200, &json!({"data": record_json(&st.records[pos])})),
                None => no_record(rid),
            },
            ("DELETE", ["records", rid]) => match find(rid) {
                Some(pos) => match self.remove_record(st, pos) {
                    Ok(()) => no_content(),
                    Err(e) => message(500, &e),
                },
                None => no_record(rid),
            },
            _ => not_found(),
        }
    }

    fn ds_create_record(&self, st: &mut State, zi: usize, call: &Call) -> Reply {
        let Ok(body) = serde_json::from_slice::<Value>(&call.body) else {
            return message(400, "Invalid JSON body");
        };
        let Some(name) = body.get("name").and_then(Value::as_str) else {
            return validation("name", "can't be blank");
        };
        let Some(kind) = body.get("type").and_then(Value::as_str) else {
            return validation("type", "can't be blank");
        };
        if !kind.eq_ignore_ascii_case("TXT") {
            return validation("type", "is not supported by fake_api (TXT only)");
        }
        let content = body.get("content").and_then(Value::as_str).unwrap_or("");
        if content.is_empty() {
            return validation("content", "can't be blank");
        }
        let ttl = match body.get("ttl") {
            None | Some(Value::Null) => 3600,
            Some(v) => match v.as_u64() {
                Some(t) => t,
                None => return validation("ttl", "is not a number"),
            },
        };
        let zone = &st.zones[zi].name;
        let rel = normalize_name(name);
        // The name is always zone-relative: a FQDN ends up under the zone again, as with the
        // real API.
        let fqdn = if rel.is_empty() {
            zone.clone()
        } else {
            format!("{rel}.{zone}")
        };
        match self.add_record(st, zi, fqdn, "TXT", content, ttl) {
            Ok(rec) => json_reply(201, &json!({"data": record_json(&rec)})),
            Err(e) => message(500, &e),
        }
    }
}

/// Records sorted by id (the system records first), filtered by `name`, `name_like`, `type`.
fn list_records(st: &State, zi: usize, call: &Call) -> Reply {
    let z = &st.zones[zi];
    let mut items = system_records(z);
    items.extend(
        st.records
            .iter()
            .filter(|r| r.zone == z.name)
            .map(record_json),
    );
    items.sort_by_key(|v| v["id"].as_u64());
    let name = call.q("name");
    let like = call.q("name_like").map(str::to_ascii_lowercase);
    let kind = call.q("type");
    let filtered = items
        .into_iter()
        .filter(|v| {
            let rel = v["name"].as_str().unwrap_or("");
            name.is_none_or(|n| n == rel)
                && like.as_ref().is_none_or(|l| rel.contains(l.as_str()))
                && kind.is_none_or(|t| {
                    v["type"]
                        .as_str()
                        .is_some_and(|k| t.eq_ignore_ascii_case(k))
                })
        })
        .collect();
    list(filtered, call)
}
