//! Douyin shop open platform (抖店): signing, the wire format, and the client
//! that implements [`crate::platforms::Platform`].
//!
//! The layers mirror `taobao/`: [`sign`] signs a request, [`envelope`] reads
//! an answer's `{code, msg, sub_code, sub_msg, data}`, [`error`] says what a
//! failure means, [`mapping`] turns Douyin records (fen, Unix seconds,
//! numeric statuses) into the normalised model, and [`client`] makes the
//! calls. The text helpers (excerpts, lenient ids, control characters) and
//! the anomaly type are Taobao's, shared rather than copied.
//!
//! What is confirmed and what is assumed: the request shape, the signing
//! pattern (over `param_json` sorted at every level), the envelope with
//! `code == 10000` for success, the methods' parameters (`order_by` for
//! update-time queries, paging from 0 with `size` ≤ 100) and the record
//! shapes and status codes are the official SDK's (docs/platforms.md names
//! the classes; `tests/fixtures/douyin/` holds answers written from them).
//! The error codes other than 10000 remain assumed (marked in [`error`]), and
//! the simulator speaks the same assumptions, so a wrong guess is one
//! constant to change.

pub mod client;
pub mod envelope;
pub mod error;
#[cfg(test)]
mod fixtures;
pub mod mapping;
#[cfg(test)]
mod parser_props;
pub mod sign;

pub use client::DouyinClient;

/// The platform's name in the `platform` column and in [`crate::platforms::Order::platform`].
pub const PLATFORM: &str = "douyin";

/// The longest window of a listing by update time. Douyin's largest span is
/// not documented (TOP-API.md: unconfirmed); a day, like TOP's, keeps one
/// window's pages few.
pub const MAX_MODIFIED_WINDOW: chrono::TimeDelta = chrono::TimeDelta::days(1);

/// How far back orders are listable: assumed like TOP's three months.
pub const HORIZON: chrono::TimeDelta = chrono::TimeDelta::days(90);

/// The API version every call sends (`v=2`).
pub const VERSION: &str = "2";

/// The most records `order.searchList` and the after-sale list return per page.
pub const MAX_PAGE_SIZE: u32 = 100;

/// The Douyin methods orderflow calls, and the path each is posted to
/// (`order.searchList` → `/order/searchList`).
pub mod methods {
    /// Orders by update or creation time, paged from 0.
    pub const ORDER_SEARCH_LIST: &str = "order.searchList";
    /// One order in full, by `shop_order_id`.
    pub const ORDER_DETAIL: &str = "order.orderDetail";
    /// After-sales (refunds) by update time (`update_start_time`/`update_end_time`).
    pub const AFTER_SALE_LIST: &str = "afterSale.List";
    /// One after-sale by `after_sale_id`.
    pub const AFTER_SALE_DETAIL: &str = "afterSale.Detail";

    /// The URL path of `method`: its dots as slashes.
    pub fn path(method: &str) -> String {
        format!("/{}", method.replace('.', "/"))
    }
}
