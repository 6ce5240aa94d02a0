//! Flow files: the YAML model, and [`compile`], which checks everything before
//! anything runs.
pub mod compile;
pub mod error;
pub mod fields;
pub mod model;
pub mod reference;
pub mod render;
pub mod schema;
pub mod settings;
pub mod yaml;

pub use compile::{CompileEnv, compile, compile_file};
pub use error::{ConfigError, ConfigErrors};
pub use model::{Flow, NodeSpec, OnError, Overlap, Retry, Trigger, When};
