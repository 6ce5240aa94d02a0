//! The TMC message queue, as `taobao.tmc.messages.consume` and
//! `taobao.tmc.messages.confirm` see it: at-least-once (a message comes back
//! on every consume until it is confirmed), gone after 24 hours.
//!
//! The queue starts empty (an app subscribes when it starts); only live
//! changes publish.

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, Utc};
use serde_json::{Value as Json, json};

use super::model::{SELLER_NICK, SELLER_USER_ID};
use crate::platforms::taobao::time;

/// How long TOP keeps an unconfirmed message.
pub(crate) const MESSAGE_TTL: Duration = Duration::hours(24);
/// At most this many unconfirmed messages are kept (the oldest go first), so
/// that a simulator nobody consumes from does not grow without bound: at 50
/// changes a second, 24 hours would be over four million.
pub(crate) const BACKLOG_LIMIT: usize = 100_000;
/// The first message id; real ids are large numbers too.
const FIRST_ID: i64 = 4_000_000_000_000;

/// One published message.
#[derive(Debug, Clone)]
pub(crate) struct Message {
    pub id: i64,
    pub topic: &'static str,
    pub pub_time: DateTime<Utc>,
    /// The content, already a JSON string as TOP sends it.
    pub content: String,
}

impl Message {
    /// The message as `tmc_message` writes it.
    pub(crate) fn to_json(&self) -> Json {
        json!({
            "id": self.id,
            "topic": self.topic,
            "pub_time": time::format(self.pub_time),
            "pub_app_key": "12497914",
            "user_id": SELLER_USER_ID,
            "user_nick": SELLER_NICK,
            "content": self.content,
        })
    }
}

/// Unconfirmed messages by id (ids grow with publication).
#[derive(Debug, Default)]
pub(crate) struct Tmc {
    messages: BTreeMap<i64, Message>,
    last_id: i64,
}

impl Tmc {
    /// Publishes a message about a change at `at`.
    pub(crate) fn publish(&mut self, topic: &'static str, at: DateTime<Utc>, content: Json) {
        self.last_id = self.last_id.max(FIRST_ID) + 1;
        let message = Message { id: self.last_id, topic, pub_time: at, content: content.to_string() };
        self.messages.insert(message.id, message);
        while self.messages.len() > BACKLOG_LIMIT {
            self.messages.pop_first();
        }
    }

    /// Up to `quantity` unconfirmed messages, oldest first, after dropping
    /// those older than [`MESSAGE_TTL`] at `now`.
    pub(crate) fn consume(&mut self, quantity: usize, now: DateTime<Utc>) -> Vec<Message> {
        while self.messages.first_key_value().is_some_and(|(_, m)| now - m.pub_time > MESSAGE_TTL) {
            self.messages.pop_first();
        }
        self.messages.values().take(quantity).cloned().collect()
    }

    /// Confirms `ids`; unknown ids (already confirmed, expired) are ignored,
    /// as TOP does.
    pub(crate) fn confirm(&mut self, ids: &[i64]) {
        for id in ids {
            self.messages.remove(id);
        }
    }

    /// How many messages wait for confirmation.
    pub(crate) fn len(&self) -> usize {
        self.messages.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn messages_come_back_until_confirmed_and_expire_after_a_day() {
        let t0 = Utc.with_ymd_and_hms(2026, 3, 18, 6, 0, 0).single().expect("valid");
        let mut tmc = Tmc::default();
        for i in 0..5 {
            tmc.publish("taobao_trade_TradeCreate", t0 + Duration::hours(i), json!({ "tid": i }));
        }
        let first = tmc.consume(3, t0);
        assert_eq!(first.len(), 3);
        assert_eq!(tmc.consume(3, t0)[0].id, first[0].id, "unconfirmed messages come back");
        tmc.confirm(&[first[0].id, first[1].id, 12345]);
        assert_eq!(tmc.consume(10, t0).len(), 3);
        let later = tmc.consume(10, t0 + Duration::hours(27) + Duration::seconds(1));
        assert_eq!(later.len(), 1, "older than 24 h are dropped");
        assert_eq!(later[0].content, r#"{"tid":4}"#);
    }
}
