//! Validation errors that point at a file, a line and a column.

use std::fmt;
use std::path::{Path, PathBuf};

use super::yaml::Pos;

/// One mistake in a flow, config or script file.
///
/// Displays as `path:line:col: message (did you mean "x"?); expected …`, the
/// form editors and terminals turn into clickable links.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// The file the mistake is in.
    pub file: PathBuf,
    /// Where in the file, when known.
    pub pos: Option<Pos>,
    /// What is wrong.
    pub message: String,
    /// The nearest valid name, for a misspelling.
    pub suggestion: Option<String>,
    /// What would have been accepted.
    pub expected: Option<String>,
}

impl ConfigError {
    /// An error at `pos` in `file`.
    pub fn new(file: &Path, pos: Option<Pos>, message: impl Into<String>) -> Self {
        Self { file: file.to_path_buf(), pos, message: message.into(), suggestion: None, expected: None }
    }

    /// Adds what would have been accepted.
    #[must_use]
    pub fn expected(mut self, expected: impl Into<String>) -> Self {
        self.expected = Some(expected.into());
        self
    }

    /// Adds the nearest valid name to `wrong` among `candidates`, if one is close.
    #[must_use]
    pub fn suggest<'a>(mut self, wrong: &str, candidates: impl IntoIterator<Item = &'a str>) -> Self {
        self.suggestion = nearest(wrong, candidates).map(str::to_owned);
        self
    }
}

impl ConfigError {
    /// What is wrong, with the suggestion and what was expected, without the
    /// file and position (for places that show those apart, such as the
    /// editor's problem list).
    pub fn detail(&self) -> String {
        let mut text = self.message.clone();
        if let Some(suggestion) = &self.suggestion {
            text.push_str(&format!(" (did you mean \"{suggestion}\"?)"));
        }
        if let Some(expected) = &self.expected {
            text.push_str(&format!("; expected {expected}"));
        }
        text
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file.display())?;
        if let Some(pos) = self.pos {
            write!(f, ":{}:{}", pos.line, pos.col)?;
        }
        write!(f, ": {}", self.detail())
    }
}

impl std::error::Error for ConfigError {}

/// All the mistakes found in one validation pass, in file and position order.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{} error(s):\n{}", .0.len(), .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n"))]
pub struct ConfigErrors(pub Vec<ConfigError>);

impl ConfigErrors {
    /// Sorts by file and position so output reads top to bottom.
    pub fn sorted(mut errors: Vec<ConfigError>) -> Self {
        errors.sort_by(|a, b| (&a.file, a.pos).cmp(&(&b.file, b.pos)));
        errors.dedup();
        Self(errors)
    }
}

/// The candidate closest to `wrong` by edit distance, if it is close enough to
/// be a plausible typo (at most a third of the word's length, and at least 1).
pub fn nearest<'a>(wrong: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let limit = (wrong.chars().count() / 3).max(1);
    candidates
        .into_iter()
        .map(|c| (strsim::damerau_levenshtein(wrong, c), c))
        .filter(|(distance, _)| *distance <= limit)
        .min_by_key(|(distance, _)| *distance)
        .map(|(_, c)| c)
}

/// `"a", "b" or "c"` for messages.
pub fn one_of<'a>(names: impl IntoIterator<Item = &'a str>) -> String {
    let names: Vec<String> = names.into_iter().map(|n| format!("\"{n}\"")).collect();
    match names.as_slice() {
        [] => "nothing".into(),
        [only] => only.clone(),
        [rest @ .., last] => format!("one of {} or {last}", rest.join(", ")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggests_close_names_only() {
        assert_eq!(nearest("windw", ["window", "key"]), Some("window"));
        assert_eq!(nearest("fliter", ["filter", "log"]), Some("filter"));
        assert_eq!(nearest("zzzzzz", ["filter", "log"]), None);
    }

    #[test]
    fn displays_as_path_line_col() {
        let error = ConfigError::new(Path::new("f.yaml"), Some(Pos::new(3, 7)), "unknown setting \"windw\"")
            .suggest("windw", ["window"])
            .expected("one of \"window\" or \"key\"");
        assert_eq!(
            error.to_string(),
            "f.yaml:3:7: unknown setting \"windw\" (did you mean \"window\"?); expected one of \"window\" or \"key\""
        );
    }

    #[test]
    fn lists_alternatives_readably() {
        assert_eq!(one_of(["a"]), "\"a\"");
        assert_eq!(one_of(["a", "b", "c"]), "one of \"a\", \"b\" or \"c\"");
    }
}
