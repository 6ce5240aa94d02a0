//! A failed command's error as one line, each cause once.

/// `error` and its causes, outermost first, joined by ": ". A cause whose
/// message the one before it already ends with is left out: some errors
/// (sqlx's among them) show their source in their own message and return it
/// from `source()` too, and printing both would say it twice.
pub fn one_line(error: &anyhow::Error) -> String {
    let mut line = String::new();
    let mut previous = String::new();
    for cause in error.chain() {
        let message = cause.to_string();
        if line.is_empty() || !previous.ends_with(&message) {
            if !line.is_empty() {
                line.push_str(": ");
            }
            line.push_str(&message);
        }
        previous = message;
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("error communicating with database: {0}")]
    struct Embeds(#[source] std::io::Error);

    #[test]
    fn a_cause_its_wrapper_already_shows_is_printed_once() {
        let refused = std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "Connection refused (os error 111)");
        let error = anyhow::Error::new(Embeds(refused)).context("opening the database");
        let line = one_line(&error);
        assert_eq!(line, "opening the database: error communicating with database: Connection refused (os error 111)");
        assert_eq!(format!("{error:#}").matches("Connection refused").count(), 2, "what `{{:#}}` would print");
    }

    #[test]
    fn causes_that_do_not_repeat_are_all_kept() {
        let error = anyhow::anyhow!("no such file").context("reading flows/x.yaml").context("running the flow");
        assert_eq!(one_line(&error), "running the flow: reading flows/x.yaml: no such file");
    }
}
