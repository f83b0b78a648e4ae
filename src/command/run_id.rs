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
        let mut seed = [0u8; 6];
        // A run id only tells runs apart in messages: the clock and pid mixed are enough
        // when the system's random source is missing.
        if std::fs::File::open("/dev/urandom")
            .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut seed))
            .is_err()
        {
            let t = time::OffsetDateTime::now_utc().unix_timestamp_nanos() as u64;
            seed.copy_from_slice(&(t ^ u64::from(std::process::id())).to_le_bytes()[..6]);
        }
        let id: String = seed.iter().map(|b| format!("{b:02x}")).collect();
        let holder = format!("certvault on {host}, pid {}, run {id}", std::process::id());
        Self { id, holder }
    }
}
