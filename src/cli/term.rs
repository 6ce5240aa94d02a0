//! What the command line writes to the terminal it runs in, and how: log
//! lines as text or JSON, colours only on a terminal and never under
//! `NO_COLOR` (<https://no-color.org>), and log lines written above the
//! progress bars rather than into them.

use std::ffi::OsString;
use std::io::{self, IsTerminal, Write};

use clap::ValueEnum;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::MakeWriter;

use super::progress;

/// How log lines are written to stderr.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, ValueEnum)]
pub enum LogFormat {
    /// One readable line per event.
    #[default]
    Text,
    /// One JSON object per line, for log shippers (timestamp, level,
    /// target, fields).
    Json,
}

/// Whether stderr is a terminal someone watches: progress bars and colours
/// only then.
pub fn stderr_is_terminal() -> bool {
    io::stderr().is_terminal()
}

/// Whether what goes to stderr may be coloured: it is a terminal and
/// `NO_COLOR` is unset or empty.
pub fn colours_on_stderr() -> bool {
    stderr_is_terminal() && colour_allowed(std::env::var_os("NO_COLOR"))
}

/// NO_COLOR's rule: any non-empty value turns colour off.
fn colour_allowed(no_color: Option<OsString>) -> bool {
    no_color.is_none_or(|value| value.is_empty())
}

/// Sends `tracing` events to stderr in `format`, filtered by `RUST_LOG` or
/// else `default_filter`, above any progress bar.
pub fn init_logging(format: LogFormat, default_filter: &str) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default_filter));
    let logs = tracing_subscriber::fmt().with_env_filter(filter).with_writer(AboveBars);
    match format {
        LogFormat::Text => logs.with_ansi(colours_on_stderr()).init(),
        LogFormat::Json => logs.json().with_ansi(false).init(),
    }
}

/// Writes each log line to stderr with the progress bars lifted: a line
/// never lands inside a bar, and a redrawn bar never erases it.
struct AboveBars;

impl<'a> MakeWriter<'a> for AboveBars {
    type Writer = AboveBars;

    fn make_writer(&'a self) -> Self::Writer {
        AboveBars
    }
}

impl Write for AboveBars {
    fn write(&mut self, line: &[u8]) -> io::Result<usize> {
        // The formatter hands over each event whole, so one event is one
        // suspension of the bars.
        progress::bars().suspend(|| io::stderr().write_all(line))?;
        Ok(line.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        io::stderr().flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn any_non_empty_no_color_turns_colour_off() {
        assert!(colour_allowed(None));
        assert!(colour_allowed(Some(OsString::new())), "an empty NO_COLOR is as good as none");
        assert!(!colour_allowed(Some("1".into())));
        assert!(!colour_allowed(Some("false".into())), "the value does not matter");
    }
}
