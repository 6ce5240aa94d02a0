//! `orderflow serve`: the long-running process that schedules every flow,
//! shows what it does on a web page and reports metrics.
//!
//! [`catalog::Catalog`] is the one shared picture of the loaded flows: the
//! scheduler writes it, the page reads it. [`web`] is the page and
//! `/metrics` (`docs/observability.md`); [`editor`] is the flow editor's
//! API and front-end (`docs/editor.md`).

pub mod catalog;
pub mod editor;
pub mod scheduler;
pub mod serve;
pub mod web;
