use std::process::ExitCode;

use clap::Parser;

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
    orderflow::cli::init_logging(cli.log_format, default_filter);
    match orderflow::cli::run(cli).await {
        Ok(code) => code,
        Err(error) => {
            eprintln!("error: {}", orderflow::cli::error_line(&error));
            ExitCode::FAILURE
        }
    }
}
