//! orderflow: keeps a merchant's own database in step with its shops.
//!
//! A flow file (`flows/*.yaml`) is compiled by [`flow::compile`] into a
//! [`flow::Flow`], run by [`engine::Engine`] as a graph of [`nodes`] joined by
//! bounded channels, and recorded in the [`store`]. See `docs/ARCHITECTURE.md`.
pub mod activity;
pub mod cli;
pub mod clock;
pub mod config;
pub mod engine;
pub mod flow;
pub mod forecast;
pub mod harness;
pub mod nodes;
pub mod platforms;
pub mod record;
pub mod rpa;
pub mod script;
pub mod server;
pub mod sim;
pub mod store;
pub mod sync;
pub mod telemetry;
