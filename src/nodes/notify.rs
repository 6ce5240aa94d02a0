//! `notify`: POSTs records to a webhook, signed, each delivery key once.

use std::collections::HashSet;
use std::time::Duration;

use async_trait::async_trait;
use hmac::{Hmac, KeyInit, Mac};
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{Map, Value as Json};
use sha2::{Digest, Sha256};

use super::{
    BuildContext, BuildError, Built, NodeContext, NodeError, NodeKind, Output, Role, Transform, Typing, list_entries,
};
use crate::engine::node::{HeldWebhook, HeldWebhooks};
use crate::record::{Batch, Record};
use crate::script::{Sandbox, Script};
use crate::store::DELIVERY_KEY_LEN;
use crate::sync::Span;

/// The header carrying the body's signature: `sha256=<hex HMAC-SHA256 of the
/// body, keyed with the secret>`.
pub const SIGNATURE_HEADER: &str = "X-Orderflow-Signature";
/// The header carrying the record's delivery key, so a receiver can drop
/// repeats on its side too.
pub const DELIVERY_KEY_HEADER: &str = "X-Orderflow-Delivery-Key";

/// POSTs each record to a webhook, signed, exactly once per delivery key.
///
/// The body is the record as JSON, or what the optional Rhai `template`
/// ends with: an object map (sent as JSON) or a string (sent as plain text,
/// e.g. a chat message). The template sees `record`, `tags` and `settings`
/// and runs in the flows' sandbox with its limits. Every request carries
/// `X-Orderflow-Signature: sha256=<hex>`, the HMAC-SHA256 of the body keyed
/// with the secret in the environment variable `secret_env`, and
/// `X-Orderflow-Delivery-Key`. The URL and the secret are read when the run
/// starts and never logged nor put in an error or the database.
///
/// A record whose key was delivered to this target before is skipped; a key
/// is recorded in `deliveries` only after the receiver answered 2xx, so a
/// failed run delivers it on a later run. Network errors, timeouts, 5xx and
/// 429 answers are retried with exponential backoff and jitter; any other
/// answer fails the record at once (the receiver refuses it). Passes every
/// record on, delivered or skipped.
///
/// In `orderflow test` and `orderflow run --dry-run` nothing is posted and
/// no secret is read: the node records the URL (`$VAR` for `url_env`), the
/// delivery key and the body it would have sent.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NotifySettings {
    /// The webhook URL. Give this or `url_env`.
    #[serde(default)]
    pub url: Option<String>,
    /// The environment variable holding the webhook URL (for URLs that carry a
    /// token). Give this or `url`.
    #[serde(default)]
    pub url_env: Option<String>,
    /// The environment variable holding the signing secret, e.g.
    /// `NOTIFY_SECRET`. Required: receivers check the signature.
    pub secret_env: String,
    /// The record fields whose values, joined by `/`, make a record's
    /// delivery key. Keys longer than 191 characters are replaced by their
    /// SHA-256.
    #[serde(default = "default_delivery_key")]
    #[schemars(length(min = 1))]
    pub delivery_key: Vec<String>,
    /// Names the receiver in `deliveries` (at most 64 characters); defaults to
    /// the SHA-256 of the URL, so a token in the URL never reaches the
    /// database. Set it to keep the record of deliveries when the URL changes.
    #[serde(default)]
    pub target: Option<String>,
    /// A Rhai script building the body from `record`: it ends with an object
    /// map or a string.
    #[serde(default)]
    pub template: Option<String>,
    /// Values the template reads as `settings`.
    #[serde(default)]
    pub settings: Map<String, Json>,
    /// How long one request may take.
    #[serde(default = "default_timeout")]
    pub timeout: Span,
    /// Tries per record in all, for errors worth retrying.
    #[serde(default = "default_attempts")]
    #[schemars(range(min = 1))]
    pub attempts: usize,
    /// The first wait before a retry; each further wait doubles, up to 30 s,
    /// with jitter.
    #[serde(default = "default_backoff")]
    pub backoff: Span,
}

fn default_delivery_key() -> Vec<String> {
    vec!["alert_id".to_owned(), "state".to_owned()]
}

fn default_timeout() -> Span {
    Span(Duration::from_secs(10))
}

fn default_attempts() -> usize {
    5
}

fn default_backoff() -> Span {
    Span(Duration::from_millis(500))
}

const TARGET_LEN: usize = 64;

/// The `notify` node type.
pub struct Notify;

impl NodeKind for Notify {
    const TYPE: &'static str = "notify";
    const ROLE: Role = Role::Transform;
    type Settings = NotifySettings;

    fn example() -> &'static str {
        "tell:\n  use: notify\n  input: stalled\n  with:\n    url_env: NOTIFY_URL\n    secret_env: NOTIFY_SECRET\n    template: |\n      `${record.state}: ${record.detail}`\n"
    }

    fn output() -> Output {
        Output::unchanged()
    }

    fn typing(settings: &NotifySettings, ctx: &BuildContext) -> Result<Typing, BuildError> {
        let typing =
            Typing::output(Self::output()).reading_setting("delivery_key", list_entries(&settings.delivery_key));
        Ok(match &settings.template {
            Some(source) => {
                let fields = super::script::compile(&ctx.sandbox, source, None, "template")?.fields();
                typing.reading_script("template", None, &fields)
            }
            None => typing,
        })
    }

    fn build(settings: NotifySettings, ctx: &BuildContext) -> Result<Built, BuildError> {
        let url = match (settings.url, settings.url_env) {
            (Some(url), None) => {
                let parsed =
                    reqwest::Url::parse(&url).map_err(|e| BuildError::setting("url", format!("not a URL: {e}")))?;
                check_scheme(&parsed).map_err(|message| BuildError::setting("url", message))?;
                UrlFrom::Literal(url)
            }
            (None, Some(var)) => UrlFrom::Env(env_name("url_env", var)?),
            _ => return Err(BuildError::setting("url", "give either \"url\" or \"url_env\"")),
        };
        let secret_env = env_name("secret_env", settings.secret_env)?;
        if settings.delivery_key.is_empty() {
            return Err(BuildError::setting("delivery_key", "name at least one field"));
        }
        if let Some(target) = &settings.target {
            if target.is_empty() || target.chars().count() > TARGET_LEN {
                return Err(BuildError::setting("target", "a target name has 1 to 64 characters"));
            }
        }
        if settings.attempts == 0 {
            return Err(BuildError::setting("attempts", "\"attempts\" must be at least 1"));
        }
        let template = settings
            .template
            .as_deref()
            .map(|source| super::script::compile(&ctx.sandbox, source, None, "template"))
            .transpose()?;
        let client = reqwest::Client::builder()
            .timeout(settings.timeout.0)
            .build()
            .map_err(|e| BuildError::setting("timeout", format!("cannot make an HTTP client: {e}")))?;
        Ok(Built::Transform(Box::new(NotifyNode {
            held: ctx.sandboxed.as_ref().map(|sandboxed| sandboxed.webhooks.clone()),
            url,
            secret_env,
            target: settings.target,
            ready: None,
            delivery_key: settings.delivery_key,
            template,
            sandbox: ctx.sandbox.clone(),
            settings: Json::Object(settings.settings),
            client,
            attempts: settings.attempts,
            backoff: settings.backoff.0,
        })))
    }
}

/// Where the URL comes from.
enum UrlFrom {
    Literal(String),
    Env(String),
}

fn env_name(setting: &str, name: String) -> Result<String, BuildError> {
    let valid = !name.is_empty()
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        && !name.starts_with(|c: char| c.is_ascii_digit());
    if valid {
        Ok(name)
    } else {
        Err(BuildError::setting(setting, format!("{name:?} is not an environment variable name")))
    }
}

fn check_scheme(url: &reqwest::Url) -> Result<(), String> {
    match url.scheme() {
        "http" | "https" => Ok(()),
        other => Err(format!("the URL's scheme is {other:?}; only http and https are posted to")),
    }
}

/// What the node reads when its run starts. Written by hand so that the URL
/// and the secret never reach a log.
struct Ready {
    url: reqwest::Url,
    secret: Vec<u8>,
    target: String,
}

struct NotifyNode {
    /// Set in a sandboxed run: hold every webhook here instead of posting.
    held: Option<HeldWebhooks>,
    url: UrlFrom,
    secret_env: String,
    target: Option<String>,
    ready: Option<Ready>,
    delivery_key: Vec<String>,
    template: Option<Script>,
    sandbox: Sandbox,
    settings: Json,
    client: reqwest::Client,
    attempts: usize,
    backoff: Duration,
}

/// Why a POST failed, and whether trying again can help.
struct PostFailure {
    retry: bool,
    message: String,
}

impl NotifyNode {
    /// Reads the URL and the secret from the environment, once per node.
    fn ready(&mut self) -> Result<&Ready, NodeError> {
        if self.ready.is_none() {
            let env = |name: &str| {
                std::env::var(name).map_err(|_| {
                    NodeError::permanent(format!("the environment variable {name} is not set (or not UTF-8)"))
                })
            };
            let url_text = match &self.url {
                UrlFrom::Literal(url) => url.clone(),
                UrlFrom::Env(name) => env(name)?,
            };
            // The URL's own text stays out of the message: it may hold a token.
            let url = reqwest::Url::parse(&url_text)
                .map_err(|e| NodeError::permanent(format!("the webhook URL is not a URL: {e}")))?;
            check_scheme(&url).map_err(NodeError::permanent)?;
            let secret = env(&self.secret_env)?.into_bytes();
            let target = self.target.clone().unwrap_or_else(|| hex::encode(Sha256::digest(url.as_str())));
            self.ready = Some(Ready { url, secret, target });
        }
        self.ready.as_ref().ok_or_else(|| NodeError::permanent("the webhook is not set up"))
    }

    /// Records what each record would send, posting nothing and reading no
    /// secret (a sandboxed run).
    async fn hold(&self, held: &HeldWebhooks, batch: &Batch, ctx: &NodeContext) -> Result<(), NodeError> {
        let url = match &self.url {
            UrlFrom::Env(name) => format!("${name}"),
            UrlFrom::Literal(url) => reqwest::Url::parse(url)
                .map(|mut url| {
                    url.set_query(None);
                    let _ = url.set_password(None);
                    url.to_string()
                })
                .unwrap_or_else(|_| url.clone()),
        };
        for record in batch {
            let delivery_key = self.key_of(record)?;
            let (body, content_type) = self.body_of(record).await?;
            let body = if content_type == JSON {
                serde_json::from_slice(&body).map_err(|e| NodeError::permanent(e.to_string()))?
            } else {
                Json::String(String::from_utf8_lossy(&body).into_owned())
            };
            held.hold(HeldWebhook { node_id: ctx.node_id.clone(), url: url.clone(), delivery_key, body });
        }
        Ok(())
    }

    /// The record's delivery key.
    fn key_of(&self, record: &Record) -> Result<String, NodeError> {
        let mut parts = Vec::with_capacity(self.delivery_key.len());
        for field in &self.delivery_key {
            match record.fields.get(field) {
                None | Some(Json::Null) => {
                    return Err(NodeError::permanent(format!("the record has no `{field}` for its delivery key")));
                }
                Some(Json::String(text)) => parts.push(text.clone()),
                Some(other) => parts.push(other.to_string()),
            }
        }
        let key = parts.join("/");
        Ok(if key.chars().count() > DELIVERY_KEY_LEN {
            format!("sha256:{}", hex::encode(Sha256::digest(&key)))
        } else {
            key
        })
    }

    /// The body and its content type.
    async fn body_of(&self, record: &Record) -> Result<(Vec<u8>, &'static str), NodeError> {
        let Some(template) = &self.template else {
            return Ok((serde_json::to_vec(&record.to_json()).map_err(|e| NodeError::permanent(e.to_string()))?, JSON));
        };
        let (script, sandbox, settings, record) =
            (template.clone(), self.sandbox.clone(), self.settings.clone(), record.clone());
        // Bounded CPU work: off the async workers, as the script node does.
        let value = tokio::task::spawn_blocking(move || sandbox.run_value(&script, &record, &settings))
            .await
            .map_err(|e| NodeError::permanent(format!("the template failed: {e}")))?
            .map_err(|e| NodeError::permanent(format!("the template failed: {e}")))?;
        match value {
            Json::String(text) => Ok((text.into_bytes(), "text/plain; charset=utf-8")),
            object @ Json::Object(_) => {
                Ok((serde_json::to_vec(&object).map_err(|e| NodeError::permanent(e.to_string()))?, JSON))
            }
            other => Err(NodeError::permanent(format!(
                "the template must end with an object map or a string, not {}",
                json_type(&other)
            ))),
        }
    }

    /// One POST: Ok on 2xx.
    async fn post(&self, ready: &Ready, key: &str, body: &[u8], content_type: &str) -> Result<(), PostFailure> {
        let response = self
            .client
            .post(ready.url.clone())
            .header(reqwest::header::CONTENT_TYPE, content_type)
            .header(SIGNATURE_HEADER, signature(&ready.secret, body))
            .header(DELIVERY_KEY_HEADER, key)
            .body(body.to_vec())
            .send()
            .await
            // `without_url`: the URL may hold a token.
            .map_err(|e| PostFailure { retry: true, message: e.without_url().to_string() })?;
        let status = response.status();
        if status.is_success() {
            Ok(())
        } else {
            let retry = status.is_server_error() || status == reqwest::StatusCode::TOO_MANY_REQUESTS;
            Err(PostFailure { retry, message: format!("the receiver answered {status}") })
        }
    }

    /// POSTs with retries; Ok once the receiver accepted it.
    async fn deliver(&self, ctx: &NodeContext, ready: &Ready, key: &str, record: &Record) -> Result<(), NodeError> {
        use backon::{ExponentialBuilder, Retryable};

        let (body, content_type) = self.body_of(record).await?;
        let backoff = ExponentialBuilder::default()
            .with_min_delay(self.backoff)
            .with_max_delay(Duration::from_secs(30))
            .with_max_times(self.attempts - 1)
            .with_jitter();
        let attempts = (|| self.post(ready, key, &body, content_type))
            .retry(backoff)
            .when(|failure| failure.retry)
            .notify(|failure, delay| {
                tracing::warn!(node_id = %ctx.node_id, run_id = %ctx.run_id, target = %ready.target, key,
                    error = %failure.message, ?delay, "Webhook delivery failed; retrying.");
            });
        let result = tokio::select! {
            biased;
            () = ctx.cancel.cancelled() => return Err(NodeError::cancelled()),
            result = attempts => result,
        };
        result.map_err(|failure| {
            let message = format!("delivering {key:?} to {}: {}", ready.target, failure.message);
            if failure.retry { NodeError::transient(message) } else { NodeError::permanent(message) }
        })
    }
}

const JSON: &str = "application/json";

/// `sha256=<hex HMAC-SHA256 of body keyed with secret>`.
pub fn signature(secret: &[u8], body: &[u8]) -> String {
    // HMAC takes keys of any length, so this never fails.
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(secret).expect("HMAC accepts any key length");
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

fn json_type(value: &Json) -> &'static str {
    match value {
        Json::Null => "nothing",
        Json::Bool(_) => "a bool",
        Json::Number(_) => "a number",
        Json::String(_) => "a string",
        Json::Array(_) => "an array",
        Json::Object(_) => "an object",
    }
}

#[async_trait]
impl Transform for NotifyNode {
    async fn process(&mut self, batch: Batch, ctx: &NodeContext) -> Result<Batch, NodeError> {
        if batch.is_empty() {
            return Ok(batch);
        }
        if let Some(held) = &self.held {
            self.hold(held, &batch, ctx).await?;
            return Ok(batch);
        }
        let keys = batch.iter().map(|r| self.key_of(r)).collect::<Result<Vec<_>, _>>()?;
        let target = self.ready()?.target.clone();
        let mut done: HashSet<String> = ctx.store.delivered_keys(&target, &keys).await?;
        let ready = self.ready.take().ok_or_else(|| NodeError::permanent("the webhook is not set up"))?;
        let mut result = Ok(());
        for (record, key) in batch.iter().zip(&keys) {
            if done.contains(key) {
                continue;
            }
            result = self.deliver(ctx, &ready, key, record).await;
            if result.is_err() {
                break;
            }
            // Recorded one by one: a batch retried after a failure skips what
            // was delivered before it.
            if let Err(error) = ctx.store.record_delivery(&ready.target, key, chrono::Utc::now()).await {
                result = Err(error.into());
                break;
            }
            done.insert(key.clone());
        }
        self.ready = Some(ready);
        result.map(|()| batch)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::nodes::testing::build_ctx;

    fn node(settings: Json) -> Result<Built, BuildError> {
        Notify::build(serde_json::from_value(settings).unwrap(), &build_ctx())
    }

    #[test]
    fn the_signature_is_the_hex_hmac_sha256_of_the_body() {
        // RFC 4231, test case 2.
        assert_eq!(
            signature(b"Jefe", b"what do ya want for nothing?"),
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn settings_are_checked_when_built() {
        let error = |settings| match node(settings) {
            Err(error) => error.message,
            Ok(_) => panic!("refused"),
        };
        assert!(error(json!({"secret_env": "S"})).contains("url"));
        assert!(error(json!({"url": "ftp://x", "secret_env": "S"})).contains("scheme"));
        assert!(error(json!({"url_env": "U", "secret_env": "NOT A NAME"})).contains("environment variable"));
        assert!(error(json!({"url_env": "U", "secret_env": "S", "template": "record.x +"})).contains("compile"));
        assert!(node(json!({"url_env": "U", "secret_env": "S", "template": "`${record.detail}`"})).is_ok());
    }

    /// A receiver answering every request with `status`; counts them.
    async fn receiver(status: u16) -> (reqwest::Url, std::sync::Arc<std::sync::atomic::AtomicU32>) {
        use std::sync::atomic::{AtomicU32, Ordering};
        let count = std::sync::Arc::new(AtomicU32::new(0));
        let seen = count.clone();
        let app = axum::Router::new().route(
            "/",
            axum::routing::post(move || {
                seen.fetch_add(1, Ordering::SeqCst);
                async move { axum::http::StatusCode::from_u16(status).unwrap() }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = reqwest::Url::parse(&format!("http://{}/?token=hidden", listener.local_addr().unwrap())).unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        (url, count)
    }

    fn ready_node(url: reqwest::Url, attempts: usize) -> NotifyNode {
        NotifyNode {
            held: None,
            url: UrlFrom::Literal(url.to_string()),
            secret_env: "UNUSED".into(),
            target: None,
            ready: Some(Ready { url, secret: b"s".to_vec(), target: "hook".into() }),
            delivery_key: default_delivery_key(),
            template: None,
            sandbox: Sandbox::default(),
            settings: Json::Null,
            client: reqwest::Client::new(),
            attempts,
            backoff: Duration::from_millis(1),
        }
    }

    #[tokio::test]
    async fn refusals_fail_at_once_and_overload_is_retried_and_nothing_is_recorded() {
        use std::sync::atomic::Ordering;
        let store = crate::store::Store::connect("sqlite::memory:").await.unwrap();
        let ctx = crate::nodes::testing::node_ctx(&store, crate::flow::OnError::Fail);
        let batch = || vec![Record::from_value(json!({"alert_id": 1, "state": "raised"})).unwrap()];

        let (url, count) = receiver(400).await;
        let error = ready_node(url, 3).process(batch(), &ctx).await.unwrap_err();
        assert_eq!(error.class, crate::nodes::ErrorClass::Permanent);
        assert_eq!(count.load(Ordering::SeqCst), 1, "a 400 is not retried");
        assert!(!error.message.contains("hidden"), "no URL in errors: {error}");

        let (url, count) = receiver(429).await;
        let error = ready_node(url, 3).process(batch(), &ctx).await.unwrap_err();
        assert!(error.is_retryable());
        assert_eq!(count.load(Ordering::SeqCst), 3, "a 429 is retried");
        assert!(store.delivered_keys("hook", &["1/raised".into()]).await.unwrap().is_empty());

        let (url, count) = receiver(204).await;
        let mut node = ready_node(url, 3);
        let sent = node.process(batch(), &ctx).await.unwrap();
        let json = |batch: &[Record]| batch.iter().map(Record::to_json).collect::<Vec<_>>();
        crate::nodes::testing::assert_output(&Notify::output(), &json(&batch()), &json(&sent));
        assert_eq!(node.process(batch(), &ctx).await.unwrap().len(), 1, "passed on, not sent");
        assert_eq!(count.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn keys_join_fields_and_templates_make_strings_or_json() {
        let Built::Transform(_) = node(json!({"url": "http://127.0.0.1:1/", "secret_env": "S"})).unwrap() else {
            panic!("a transform")
        };
        let settings: NotifySettings = serde_json::from_value(
            json!({"url": "http://127.0.0.1:1/", "secret_env": "S", "template": "#{text: `${record.state} ${settings.who}`}", "settings": {"who": "ops"}}),
        )
        .unwrap();
        let sandbox = Sandbox::default();
        let template = Some(
            super::super::script::compile(&sandbox, settings.template.as_deref().unwrap(), None, "template").unwrap(),
        );
        let node = NotifyNode {
            held: None,
            url: UrlFrom::Literal("http://127.0.0.1:1/".into()),
            secret_env: "S".into(),
            target: None,
            ready: None,
            delivery_key: default_delivery_key(),
            template,
            sandbox,
            settings: Json::Object(settings.settings),
            client: reqwest::Client::new(),
            attempts: 1,
            backoff: Duration::from_millis(1),
        };
        let record = Record::from_value(json!({"alert_id": 7, "state": "raised"})).unwrap();
        assert_eq!(node.key_of(&record).unwrap(), "7/raised");
        let (body, content_type) = node.body_of(&record).await.unwrap();
        assert_eq!(content_type, JSON);
        assert_eq!(serde_json::from_slice::<Json>(&body).unwrap(), json!({"text": "raised ops"}));
        let missing = Record::from_value(json!({"alert_id": 7})).unwrap();
        assert!(node.key_of(&missing).unwrap_err().message.contains("`state`"));
        let long = Record::from_value(json!({"alert_id": "x".repeat(300), "state": "raised"})).unwrap();
        assert!(node.key_of(&long).unwrap().starts_with("sha256:"));
    }
}
