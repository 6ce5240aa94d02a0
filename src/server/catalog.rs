//! The flows a `serve` process has loaded, as the scheduler keeps them and
//! the web page shows them.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use chrono::{DateTime, Utc};

use crate::flow::Flow;

/// One flow file and its state.
#[derive(Debug, Clone)]
pub struct FlowEntry {
    /// The file.
    pub file: PathBuf,
    /// The version that runs: the last one that passed validation. `None`
    /// when the file never validated.
    pub flow: Option<Arc<Flow>>,
    /// The errors of the last load, as `path:line:col: message`; empty when
    /// it validated. A broken edit keeps `flow` (the old version) running.
    pub errors: Vec<String>,
    /// When the running version was loaded.
    pub loaded_at: Option<DateTime<Utc>>,
    /// The shops it runs for.
    pub shops: Vec<String>,
    /// When it runs next (for every shop), when it has a trigger.
    pub next_run: Option<DateTime<Utc>>,
    /// The shops it is running for now, in this process.
    pub running: BTreeSet<String>,
}

impl FlowEntry {
    /// A file not loaded yet.
    pub fn new(file: impl Into<PathBuf>) -> Self {
        Self {
            file: file.into(),
            flow: None,
            errors: Vec::new(),
            loaded_at: None,
            shops: Vec::new(),
            next_run: None,
            running: BTreeSet::new(),
        }
    }

    /// The flow's name, or the file's stem while it never validated.
    pub fn name(&self) -> String {
        match &self.flow {
            Some(flow) => flow.name.clone(),
            None => self.file.file_stem().map(|stem| stem.to_string_lossy().into_owned()).unwrap_or_default(),
        }
    }
}

/// The loaded flows by file, shared between the scheduler and the page.
#[derive(Debug, Default)]
pub struct Catalog {
    entries: RwLock<BTreeMap<PathBuf, FlowEntry>>,
}

impl Catalog {
    /// Every entry, by file.
    pub fn snapshot(&self) -> Vec<FlowEntry> {
        self.entries.read().unwrap_or_else(|e| e.into_inner()).values().cloned().collect()
    }

    /// The entry of `file`, when loaded.
    pub fn get(&self, file: &Path) -> Option<FlowEntry> {
        self.entries.read().unwrap_or_else(|e| e.into_inner()).get(file).cloned()
    }

    /// The entry of the flow named `name`.
    pub fn find(&self, name: &str) -> Option<FlowEntry> {
        self.entries.read().unwrap_or_else(|e| e.into_inner()).values().find(|entry| entry.name() == name).cloned()
    }

    /// Changes the entry of `file`, creating it first when new.
    pub fn update<R>(&self, file: &Path, change: impl FnOnce(&mut FlowEntry) -> R) -> R {
        let mut entries = self.entries.write().unwrap_or_else(|e| e.into_inner());
        let entry = entries.entry(file.to_path_buf()).or_insert_with(|| FlowEntry::new(file));
        change(entry)
    }

    /// Forgets `file` (it was deleted).
    pub fn remove(&self, file: &Path) -> Option<FlowEntry> {
        self.entries.write().unwrap_or_else(|e| e.into_inner()).remove(file)
    }
}
