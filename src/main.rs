use std::process::ExitCode;

use clap::Parser;
use tracing_subscriber::EnvFilter;

#[tokio::main]
async fn main() -> ExitCode {
    let cli = orderflow::cli::Cli::parse();
    // The demo prints its own story; run-by-run log lines would bury it. A
    // flow test's runs are sandboxed: what they log (a failure a test
    // expects, included) is in the test's report, not news for the reader.
    let default_filter = match cli.command {
        orderflow::cli::Command::Demo { .. } => "warn",
        orderflow::cli::Command::Test { .. } => "orderflow=off,warn",
        _ => "orderflow=info,warn",
    };
    tracing_subscriber::fmt()
        .with_env_filter(EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default_filter)))
        .with_writer(std::io::stderr)
        .init();
    match orderflow::cli::run(cli).await {
        Ok(code) => code,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}
