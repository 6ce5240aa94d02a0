//! Flow files as the editor reads and writes them: the name rule that keeps
//! every write inside the flows folder, versions, and the atomic save.

use std::fmt;
use std::io::Write;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

/// The largest flow file the editor reads or writes, and the largest request
/// body it accepts: 1 MiB.
pub const MAX_FLOW_BYTES: usize = 1024 * 1024;

/// The longest flow name.
const MAX_NAME_CHARS: usize = 64;

/// A flow's name, which is its file `<flows>/<name>.yaml`: `[a-z0-9]`, then
/// up to 63 of `[a-z0-9_-]`. No dot, slash or backslash can pass, so the file
/// is always directly inside the flows folder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FlowName(String);

/// A name that breaks the rule.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "{0:?} is not a flow name: use 1 to {MAX_NAME_CHARS} lower-case letters, digits, '-' or '_', starting with a \
     letter or digit (the file is <name>.yaml in the flows folder)"
)]
pub struct BadFlowName(String);

impl FlowName {
    /// Checks `name` against the rule.
    pub fn parse(name: &str) -> Result<Self, BadFlowName> {
        let mut chars = name.chars();
        let first_ok = chars.next().is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
        let rest_ok = chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-');
        if first_ok && rest_ok && name.len() <= MAX_NAME_CHARS {
            Ok(Self(name.to_owned()))
        } else {
            Err(BadFlowName(name.to_owned()))
        }
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The flow's file in `flows_dir`.
    pub fn file_in(&self, flows_dir: &Path) -> PathBuf {
        flows_dir.join(format!("{}.yaml", self.0))
    }
}

impl fmt::Display for FlowName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The version of a flow text: the first 16 hex characters of its SHA-256.
pub fn version_of(text: &str) -> String {
    let digest = Sha256::digest(text.as_bytes());
    hex::encode(&digest[..8])
}

/// Reading or writing a flow file failed.
#[derive(Debug, thiserror::Error)]
pub enum FileError {
    /// The file could not be read, written or renamed.
    #[error("{action} {path}: {source}")]
    Io {
        /// What was being done.
        action: &'static str,
        /// The file or folder.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The file is larger than [`MAX_FLOW_BYTES`].
    #[error("{path} is larger than {MAX_FLOW_BYTES} bytes")]
    TooLarge {
        /// The file.
        path: PathBuf,
    },
}

/// The text of `file`, or `None` when there is no such file.
pub fn read_flow(file: &Path) -> Result<Option<String>, FileError> {
    match std::fs::metadata(file) {
        Ok(meta) if meta.len() > MAX_FLOW_BYTES as u64 => return Err(FileError::TooLarge { path: file.to_path_buf() }),
        Ok(_) => {}
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(error) => return Err(io("reading", file)(error)),
    }
    match std::fs::read_to_string(file) {
        Ok(text) => Ok(Some(text)),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(error) => Err(io("reading", file)(error)),
    }
}

/// The flows in `flows_dir` that the editor can address: `*.yaml` files whose
/// stem is a [`FlowName`], sorted by name.
pub fn flow_names(flows_dir: &Path) -> Result<Vec<FlowName>, FileError> {
    let listing = std::fs::read_dir(flows_dir).map_err(io("listing", flows_dir))?;
    let mut names: Vec<FlowName> = listing
        .flatten()
        .filter(|entry| entry.path().is_file())
        .filter_map(|entry| {
            let file_name = entry.file_name();
            let stem = file_name.to_str()?.strip_suffix(".yaml")?.to_owned();
            FlowName::parse(&stem).ok()
        })
        .collect();
    names.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(names)
}

/// Replaces `file` with `text` so that a reader (such as `serve`'s poll) sees
/// the old text or the new one, never a part: the text goes to a temporary
/// file in the same folder, is synced to disk, then renamed over `file`, and
/// the folder is synced so the rename survives a crash. The temporary name
/// starts with a dot and does not end in `.yaml`, so `serve` never loads it.
pub fn write_atomically(file: &Path, text: &str) -> Result<(), FileError> {
    let dir = file.parent().unwrap_or(Path::new("."));
    let file_name = file.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let temp = dir.join(format!(".{file_name}.{}.tmp", uuid::Uuid::now_v7().simple()));
    let written = (|| {
        let mut out =
            std::fs::OpenOptions::new().write(true).create_new(true).open(&temp).map_err(io("creating", &temp))?;
        out.write_all(text.as_bytes()).map_err(io("writing", &temp))?;
        out.sync_all().map_err(io("syncing", &temp))?;
        std::fs::rename(&temp, file).map_err(io("renaming the new text onto", file))
    })();
    if written.is_err() {
        // Nothing else refers to the temporary file; a failure leaves the old text.
        let _ = std::fs::remove_file(&temp);
    }
    written?;
    sync_dir(dir).map_err(io("syncing the folder", dir))
}

/// Turns an I/O error of `action` on `path` into a [`FileError`].
fn io<'p>(action: &'static str, path: &'p Path) -> impl FnOnce(std::io::Error) -> FileError + 'p {
    move |source| FileError::Io { action, path: path.to_path_buf(), source }
}

#[cfg(unix)]
fn sync_dir(dir: &Path) -> std::io::Result<()> {
    std::fs::File::open(dir)?.sync_all()
}

#[cfg(not(unix))]
fn sync_dir(_dir: &Path) -> std::io::Result<()> {
    // Windows cannot open a folder as a file; its renames are journaled.
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_stay_inside_the_flows_folder() {
        for good in ["a", "taobao-incremental", "flow_2", "0x", &"a".repeat(64)] {
            assert!(FlowName::parse(good).is_ok(), "{good}");
        }
        for bad in ["", "../x", "a/b", "x.yaml", "A", "-a", "_a", "a b", "a\\b", "..", &"a".repeat(65), "é"] {
            assert!(FlowName::parse(bad).is_err(), "{bad}");
        }
        let name = FlowName::parse("orders").unwrap();
        assert_eq!(name.file_in(Path::new("/srv/flows")), Path::new("/srv/flows/orders.yaml"));
    }

    #[test]
    fn versions_are_short_sha256() {
        // sha256("") = e3b0c44298fc1c14…
        assert_eq!(version_of(""), "e3b0c44298fc1c14");
        assert_ne!(version_of("a"), version_of("b"));
    }

    #[test]
    fn atomic_writes_replace_the_file_and_leave_no_temporary_file() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("f.yaml");
        assert_eq!(read_flow(&file).unwrap(), None);
        write_atomically(&file, "flow: a\n").unwrap();
        write_atomically(&file, "flow: b\n").unwrap();
        assert_eq!(read_flow(&file).unwrap().as_deref(), Some("flow: b\n"));
        let entries: Vec<_> = std::fs::read_dir(dir.path()).unwrap().flatten().map(|e| e.file_name()).collect();
        assert_eq!(entries, ["f.yaml"]);
        std::fs::write(dir.path().join("Not A Name.yaml"), "").unwrap();
        std::fs::write(dir.path().join("notes.txt"), "").unwrap();
        assert_eq!(flow_names(dir.path()).unwrap(), [FlowName::parse("f").unwrap()]);
    }
}
