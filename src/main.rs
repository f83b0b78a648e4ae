mod cli;

use std::process::ExitCode;

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    // OpenBao's BAO_* variables stand in for unset VAULT_* ones, before clap reads them.
    for (name, value) in cli::bao_aliases(|k| std::env::var_os(k)) {
        std::env::set_var(name, value);
    }
    let (logging, settings, command) = match cli::Cli::parse_args().into_parts() {
        Ok(parts) => parts,
        Err(e) => {
            eprintln!("error: {}", certvault::text::terminal(&e.to_string()));
            return ExitCode::from(2);
        }
    };
    certvault::init_logging(logging.verbose, logging.quiet, logging.format);
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let quiet = settings.quiet;
    let shutdown = shutdown_on_signal();
    match certvault::run(settings, command, time::OffsetDateTime::now_utc, shutdown).await {
        Ok(outcome) => {
            let failed = outcome.failed;
            if !quiet || failed {
                use std::io::Write;
                let mut out =
                    certvault::text::Terminal(std::io::BufWriter::new(std::io::stdout().lock()));
                if let Err(e) = outcome.write_to(&mut out).and_then(|()| out.flush()) {
                    // A closed pipe (`certvault list | head`) is not a failure of the job.
                    if e.kind() != std::io::ErrorKind::BrokenPipe {
                        eprintln!("error: cannot write the output: {e}");
                        return ExitCode::from(1);
                    }
                }
            }
            if failed {
                ExitCode::from(1)
            } else {
                ExitCode::SUCCESS
            }
        }
        Err(err) => {
            eprintln!(
                "error: {}",
                certvault::text::terminal(&certvault::chain(&err))
            );
            err.exit_code()
        }
    }
}

/// A flag that turns `true` on SIGTERM or SIGINT: work in progress stops and its DNS
/// records are cleaned up before the process exits.
fn shutdown_on_signal() -> tokio::sync::watch::Receiver<bool> {
    use tokio::signal::unix::{signal, SignalKind};
    let (tx, rx) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        let (Ok(mut term), Ok(mut int)) = (
            signal(SignalKind::terminate()),
            signal(SignalKind::interrupt()),
        ) else {
            // Keep the sender alive: no signal handling, no shutdown.
            std::future::pending::<()>().await;
            return;
        };
        tokio::select! {
            _ = term.recv() => {},
            _ = int.recv() => {},
        }
        tracing::warn!("signal received: stopping and cleaning up DNS records");
        let _ = tx.send(true);
        std::future::pending::<()>().await;
    });
    rx
}
