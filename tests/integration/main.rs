//! End-to-end tests against the real test bed: OpenBao, Pebble, pebble-challtestsrv.
//! `scripts/testbed up` is run once (idempotent) before the first test.

mod harness;

mod ari_a2c;
mod ari_rfc;
mod ari_server;

mod auth;
mod bad_input;
mod consumers;
mod dashboard;
mod deploy;
mod dns;
mod dns_outage;
mod doctor;
mod fake_api;
mod image;
mod import;
mod index;
mod issue;
mod lifecycle;
mod locks;
mod notify;
mod observe;
mod privilege;
mod provider_servers;
mod providers;
mod raft;
mod renew;
mod robust;
mod secrets;
mod storm;
mod trust;
mod vault_env;
mod vault_faults;
