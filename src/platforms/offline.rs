//! A shop's stand-in for commands that call no shop (`validate`, `graph`,
//! `schema`, the compile of `run` and `serve`): the nodes are built against
//! it exactly as against the real connector, so a flow is checked in full,
//! but it holds no secret and makes no call. Any call is refused with an
//! error saying so: a command that calls a shop connects to it instead
//! ([`super::Platforms::for_shops`]).

use std::collections::BTreeMap;
use std::num::NonZeroU32;

use async_trait::async_trait;

use super::guard::ShopGuard;
use super::{
    ErrorKind, Order, Page, PageRequest, ParcelTrace, Platform, PlatformError, PlatformMessage, Refund, TimeWindow,
    douyin, taobao,
};
use crate::config::{self, ShopConfig};

/// A configured shop, not connected.
pub struct Offline {
    platform: config::Platform,
    shop: String,
    /// Never admits a call (none is made); nodes may read its app key and
    /// state as they would a connected shop's.
    guard: ShopGuard,
}

impl Offline {
    /// The stand-in for shop `name`, as the config writes it (its app key
    /// possibly an unresolved `${VAR}`).
    pub fn new(name: &str, shop: &ShopConfig) -> Self {
        let per_minute = NonZeroU32::new(shop.rate_limit_per_min).unwrap_or(NonZeroU32::MIN);
        let guard = ShopGuard::standalone(shop.platform.as_str(), &shop.app_key, name, per_minute);
        Self { platform: shop.platform, shop: name.to_owned(), guard }
    }

    fn refuse<T>(&self, method: &str) -> Result<T, PlatformError> {
        Err(PlatformError {
            kind: ErrorKind::Other,
            method: method.to_owned(),
            message: format!(
                "shop \"{}\" is not connected in this command (it checks flows without the shops' secrets)",
                self.shop
            ),
            request_id: None,
        })
    }
}

#[async_trait]
impl Platform for Offline {
    fn name(&self) -> &'static str {
        self.platform.as_str()
    }

    fn shop(&self) -> &str {
        &self.shop
    }

    fn max_modified_window(&self) -> chrono::Duration {
        match self.platform {
            config::Platform::Taobao => taobao::MAX_MODIFIED_WINDOW,
            config::Platform::Douyin => douyin::MAX_MODIFIED_WINDOW,
        }
    }

    fn horizon(&self) -> chrono::Duration {
        match self.platform {
            config::Platform::Taobao => taobao::HORIZON,
            config::Platform::Douyin => douyin::HORIZON,
        }
    }

    async fn orders_created(&self, _: TimeWindow, _: PageRequest, _: &[String]) -> Result<Page<Order>, PlatformError> {
        self.refuse("orders_created")
    }

    async fn orders_modified(&self, _: TimeWindow, _: PageRequest, _: &[String]) -> Result<Page<Order>, PlatformError> {
        self.refuse("orders_modified")
    }

    async fn order_detail(&self, _: i64, _: &[String]) -> Result<Option<Order>, PlatformError> {
        self.refuse("order_detail")
    }

    async fn refunds_modified(&self, _: TimeWindow, _: PageRequest) -> Result<Page<Refund>, PlatformError> {
        self.refuse("refunds_modified")
    }

    async fn refund(&self, _: i64) -> Result<Option<Refund>, PlatformError> {
        self.refuse("refund")
    }

    async fn parcel_trace(&self, _: i64) -> Result<Vec<ParcelTrace>, PlatformError> {
        self.refuse("parcel_trace")
    }

    async fn messages(&self, _: u32) -> Result<Vec<PlatformMessage>, PlatformError> {
        self.refuse("messages")
    }

    async fn confirm_messages(&self, _: &[i64]) -> Result<(), PlatformError> {
        self.refuse("confirm_messages")
    }

    fn calls(&self) -> BTreeMap<String, u64> {
        BTreeMap::new()
    }

    fn guard(&self) -> &ShopGuard {
        &self.guard
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn it_answers_like_its_platform_and_refuses_every_call() {
        let shop: ShopConfig = serde_json::from_value(serde_json::json!({
            "platform": "douyin", "gateway": "${GATEWAY}", "app_key": "${KEY}",
            "app_secret": "${SECRET}", "session": "${TOKEN}",
        }))
        .unwrap();
        let offline = Offline::new("dy", &shop);
        assert_eq!((offline.name(), offline.shop()), ("douyin", "dy"));
        assert_eq!(offline.max_modified_window(), douyin::MAX_MODIFIED_WINDOW);
        let error = offline.order_detail(1, &[]).await.unwrap_err();
        assert_eq!(error.kind, ErrorKind::Other);
        assert!(error.to_string().contains("shop \"dy\" is not connected"), "{error}");
        assert!(offline.calls().is_empty());
    }
}
