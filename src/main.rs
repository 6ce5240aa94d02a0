use std::process::ExitCode;

use clap::Parser;

#[tokio::main]
async fn main() -> ExitCode {
    let cli = orderflow::cli::Cli::parse();
    // The demo prints its own story; run-by-run log lines would bury it.
    let default_filter =
        if matches!(cli.command, orderflow::cli::Command::Demo { .. }) { "warn" } else { "orderflow=info,warn" };
    orderflow::cli::init_logging(cli.log_format, default_filter);
    match orderflow::cli::run(cli).await {
        Ok(code) => code,
        Err(error) => {
            eprintln!("error: {}", orderflow::cli::error_line(&error));
            ExitCode::FAILURE
        }
    }
}
