//! Taobao / Tmall open platform (TOP): signing, the wire format, and the
//! client that implements [`crate::platforms::Platform`].
//!
//! The simulator (`crate::sim`) checks requests with the same [`sign`] and
//! speaks the same [`time`] format, so the two cannot drift apart. The layers,
//! bottom up: [`envelope`] reads an answer body, [`error`] says what a failure
//! means, [`mapping`] turns TOP records into the normalised model, [`fields`]
//! holds what is asked of TOP, and [`client`] makes the calls.

pub mod client;
pub mod envelope;
pub mod error;
pub mod fields;
pub mod mapping;
#[cfg(test)]
mod parser_props;
pub mod sign;
pub mod time;

pub use client::{ClientError, TaobaoClient};

/// The platform's name in the `platform` column and in [`crate::platforms::Order::platform`].
pub const PLATFORM: &str = "taobao";

/// The longest window `taobao.trades.sold.increment.get` accepts: one day.
pub const MAX_MODIFIED_WINDOW: chrono::TimeDelta = chrono::TimeDelta::days(1);

/// How far back TOP lists orders: "only the last three months", of which 90
/// days is the safe reading.
pub const HORIZON: chrono::TimeDelta = chrono::TimeDelta::days(90);
