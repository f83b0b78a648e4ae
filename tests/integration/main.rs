//! End-to-end tests against the real test bed: OpenBao, Pebble, pebble-challtestsrv.
//! `scripts/testbed up` is run once (idempotent) before the first test.

mod harness;

mod auth;
mod bad_input;
mod dns;
mod fake_api;
mod issue;
mod observe;
mod provider_servers;
mod providers;
mod renew;
mod secrets;
mod vault_env;
