//! Who this run is, as recorded in the locks it holds.

/// This run's identity in lock records: host (pod) name, pid and a random run id.
pub(crate) struct RunId {
    pub id: String,
    pub holder: String,
}

impl RunId {
    pub(super) fn new() -> Self {
        let host = std::env::var("HOSTNAME")
            .ok()
            .filter(|h| !h.trim().is_empty())
            .or_else(|| std::fs::read_to_string("/proc/sys/kernel/hostname").ok())
            .map(|h| h.trim().to_string())
            .unwrap_or_else(|| "unknown host".into());
        let id: String = crate::random::bytes::<6>()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        let holder = format!("certvault on {host}, pid {}, run {id}", std::process::id());
        Self { id, holder }
    }
}
