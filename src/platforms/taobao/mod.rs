//! Taobao / Tmall open platform (TOP): signing, the wire format, and the
//! client that implements [`crate::platforms::Platform`].
//!
//! The simulator (`crate::sim`) checks requests with the same [`sign`] and
//! speaks the same [`time`] format, so the two cannot drift apart.

pub mod sign;
pub mod time;
