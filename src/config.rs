//! `orderflow.yaml`: the database and the shops, with `${VAR}` taken from the
//! environment or a secrets file.
//!
//! Secrets (app secrets, session keys) must come through `${VAR}`: written
//! literally they would sit in a file that gets committed and pasted. They are
//! held in [`Secret`], which never prints its value.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::flow::error::{ConfigError, ConfigErrors};
use crate::flow::settings;
use crate::flow::yaml::{self, Node, Value};

/// The embedded default database.
pub const DEFAULT_DATABASE: &str = "sqlite://orderflow.db";

/// A value that must never be shown: Debug and Display print `***`.
#[derive(Clone, PartialEq, Eq, Deserialize)]
pub struct Secret(String);

impl Secret {
    /// Wraps a value read from elsewhere (an environment variable such as
    /// `ORDERFLOW_WEB_TOKEN`).
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The value, for the one place that needs it (signing a request).
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

/// The whole config file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// `sqlite://file`, `postgres://…` or `mysql://…`.
    #[serde(default = "default_database")]
    pub database: String,
    /// Where `nodes/*.rhai` custom node types are read from, relative to the
    /// config file.
    #[serde(default = "default_nodes_dir")]
    pub nodes_dir: PathBuf,
    /// A YAML file of `NAME: value` pairs that `${NAME}` may refer to when
    /// the environment has no such variable.
    #[serde(default)]
    pub secrets_file: Option<PathBuf>,
    /// The shops flows run against, by name.
    #[serde(default)]
    pub shops: BTreeMap<String, Shop>,
    /// Optional: a Redis server (`redis://[:password@]host:port/db`) through
    /// which several processes share each app key's rate limit and bans and
    /// the detail cache; the `REDIS_URL` environment variable when left out.
    /// Without one, each process keeps them in memory. The URL may hold a
    /// password: it is never printed (only its host).
    #[serde(default)]
    pub redis: Option<Secret>,
    /// What every key orderflow writes in Redis starts with, so deployments
    /// can share a server.
    #[serde(default = "default_redis_key_prefix")]
    pub redis_key_prefix: String,
}

fn default_redis_key_prefix() -> String {
    "orderflow:".to_owned()
}

fn default_database() -> String {
    DEFAULT_DATABASE.to_owned()
}

fn default_nodes_dir() -> PathBuf {
    PathBuf::from("nodes")
}

/// One shop on one platform.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Shop {
    /// `taobao` (Taobao and Tmall) or `douyin`.
    pub platform: Platform,
    /// The API gateway URL (the production one, a sandbox, or the simulator).
    pub gateway: String,
    /// The app key.
    pub app_key: String,
    /// The app secret; write it as `${VAR}`.
    pub app_secret: Secret,
    /// The seller's session key or access token; write it as `${VAR}`.
    pub session: Secret,
    /// How requests are signed.
    #[serde(default)]
    pub sign_method: SignMethod,
    /// Calls per minute allowed for this app key.
    #[serde(default = "default_rate_limit")]
    pub rate_limit_per_min: u32,
}

fn default_rate_limit() -> u32 {
    100
}

/// A platform orderflow can talk to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Platform {
    /// Taobao / Tmall open platform (TOP).
    Taobao,
    /// Douyin shop (抖店).
    Douyin,
}

impl Platform {
    /// The name stored in the `platform` columns.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Taobao => "taobao",
            Self::Douyin => "douyin",
        }
    }
}

/// Request signing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
pub enum SignMethod {
    /// MD5 over secret + parameters + secret.
    #[serde(rename = "md5")]
    Md5,
    /// HMAC-MD5.
    #[serde(rename = "hmac")]
    Hmac,
    /// HMAC-SHA256.
    #[default]
    #[serde(rename = "hmac-sha256")]
    HmacSha256,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            database: default_database(),
            nodes_dir: default_nodes_dir(),
            secrets_file: None,
            shops: BTreeMap::new(),
            redis: None,
            redis_key_prefix: default_redis_key_prefix(),
        }
    }
}

const SECRET_KEYS: [&str; 2] = ["app_secret", "session"];

impl Config {
    /// Loads `path`; when `required` is false a missing file gives the
    /// defaults (SQLite, no shops). Relative paths in the file are made
    /// relative to its folder.
    pub fn load(path: &Path, required: bool) -> Result<Config, ConfigErrors> {
        let source = match std::fs::read_to_string(path) {
            Ok(source) => source,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound && !required => {
                return Ok(Config { redis: std::env::var("REDIS_URL").ok().map(Secret), ..Config::default() });
            }
            Err(error) => {
                return Err(one(ConfigError::new(path, None, format!("cannot read the config file: {error}"))));
            }
        };
        let env: HashMap<String, String> = std::env::vars().collect();
        Self::parse(path, &source, &env)
    }

    /// Parses config `source` (from `path`), resolving `${VAR}` from `env`
    /// and then from the secrets file.
    pub fn parse(path: &Path, source: &str, env: &HashMap<String, String>) -> Result<Config, ConfigErrors> {
        let base = path.parent().unwrap_or(Path::new(""));
        let mut tree = yaml::parse(source)
            .map_err(|e| one(ConfigError::new(path, e.pos, format!("this is not valid YAML: {}", e.message))))?;
        let mut errors = Vec::new();
        let secrets = match tree.get("secrets_file").and_then(Node::as_str) {
            Some(file) => load_secrets(&base.join(file), path, tree.get("secrets_file").map(|n| n.pos), &mut errors),
            None => HashMap::new(),
        };
        if let Some(shops) = tree.get("shops").and_then(Node::as_map) {
            for (_, shop) in shops {
                for key in SECRET_KEYS {
                    if let Some(value) = shop.get(key).and_then(Node::as_str) {
                        if !value.trim_start().starts_with("${") {
                            errors.push(
                                ConfigError::new(path, shop.get(key).map(|n| n.pos), format!("\"{key}\" is written in the config file"))
                                    .expected("a reference such as ${TAOBAO_APP_SECRET}, set in the environment or the secrets file"),
                            );
                        }
                    }
                }
            }
        }
        interpolate(&mut tree, path, &|name| env.get(name).or_else(|| secrets.get(name)).cloned(), &mut errors);
        if !errors.is_empty() {
            return Err(ConfigErrors::sorted(errors));
        }
        let mut config: Config = settings::deserialize(path, "config", &tree).map_err(one)?;
        config.redis = config.redis.or_else(|| env.get("REDIS_URL").map(|url| Secret(url.clone())));
        if let Some(url) = &config.redis {
            if !["redis://", "rediss://"].iter().any(|scheme| url.expose().starts_with(scheme)) {
                let at = tree.get("redis").map(|n| n.pos);
                return Err(one(ConfigError::new(path, at, "\"redis\" (or REDIS_URL) is not a Redis URL")
                    .expected("redis://host:6379 or rediss://:password@host:6380/0")));
            }
        }
        let errors = check_shops(&config, &tree, path);
        if !errors.is_empty() {
            return Err(ConfigErrors::sorted(errors));
        }
        config.nodes_dir = base.join(&config.nodes_dir);
        if let Some(rest) = config.database.strip_prefix("sqlite://") {
            let file = Path::new(rest.split('?').next().unwrap_or(rest));
            if !rest.starts_with(':') && file.is_relative() && !base.as_os_str().is_empty() {
                config.database = format!("sqlite://{}", base.join(rest).display());
            }
        }
        Ok(config)
    }

    /// The shop names, for validating flows.
    pub fn shop_names(&self) -> BTreeSet<String> {
        self.shops.keys().cloned().collect()
    }
}

/// What deserialising cannot see in a shop: a gateway that is not an
/// http(s) URL, a rate limit of zero. Each at its line and column, so a shop
/// is never left out later with a vaguer error.
fn check_shops(config: &Config, tree: &Node, path: &Path) -> Vec<ConfigError> {
    let mut errors = Vec::new();
    let at = |shop: &str, key: &str| {
        tree.get("shops").and_then(|shops| shops.get(shop)).and_then(|s| s.get(key)).map(|n| n.pos)
    };
    for (name, shop) in &config.shops {
        let url = reqwest::Url::parse(&shop.gateway);
        if !url.as_ref().is_ok_and(|url| matches!(url.scheme(), "http" | "https") && url.host().is_some()) {
            let why = url.err().map(|e| format!(" ({e})")).unwrap_or_default();
            errors.push(
                ConfigError::new(
                    path,
                    at(name, "gateway"),
                    format!("shop \"{name}\": \"gateway\" is not an http(s) URL{why}"),
                )
                .expected(
                    "https://eco.taobao.com/router/rest, https://openapi-fxg.jinritemai.com or the simulator's URL",
                ),
            );
        }
        if shop.rate_limit_per_min == 0 {
            errors.push(
                ConfigError::new(
                    path,
                    at(name, "rate_limit_per_min"),
                    format!("shop \"{name}\": \"rate_limit_per_min\" is 0"),
                )
                .expected("the calls per minute the platform allows the app key, at least 1"),
            );
        }
    }
    errors
}

fn one(error: ConfigError) -> ConfigErrors {
    ConfigErrors(vec![error])
}

fn load_secrets(
    file: &Path,
    config: &Path,
    pos: Option<yaml::Pos>,
    errors: &mut Vec<ConfigError>,
) -> HashMap<String, String> {
    let source = match std::fs::read_to_string(file) {
        Ok(source) => source,
        Err(error) => {
            errors.push(ConfigError::new(
                config,
                pos,
                format!("cannot read the secrets file {}: {error}", file.display()),
            ));
            return HashMap::new();
        }
    };
    // The values are secrets: a parse error must not quote them.
    match yaml::parse(&source).map(|tree| tree.to_json()) {
        Ok(serde_json::Value::Object(map)) => map
            .into_iter()
            .filter_map(|(k, v)| match v {
                serde_json::Value::String(s) => Some((k, s)),
                serde_json::Value::Number(n) => Some((k, n.to_string())),
                _ => None,
            })
            .collect(),
        Ok(_) | Err(_) => {
            let at = yaml::parse(&source).err().and_then(|e| e.pos);
            errors.push(
                ConfigError::new(file, at, "the secrets file is not a YAML mapping of NAME: value")
                    .expected("lines such as TAOBAO_APP_SECRET: \"…\""),
            );
            HashMap::new()
        }
    }
}

/// Replaces `${NAME}` in every string of the tree.
fn interpolate(node: &mut Node, file: &Path, lookup: &dyn Fn(&str) -> Option<String>, errors: &mut Vec<ConfigError>) {
    match &mut node.value {
        Value::String(text) => {
            let mut out = String::new();
            let mut rest = text.as_str();
            while let Some(start) = rest.find("${") {
                out.push_str(&rest[..start]);
                let after = &rest[start + 2..];
                let Some(end) = after.find('}') else {
                    errors.push(
                        ConfigError::new(file, Some(node.pos), "\"${\" without its closing \"}\"").expected("${NAME}"),
                    );
                    return;
                };
                let name = &after[..end];
                match lookup(name) {
                    Some(value) => out.push_str(&value),
                    None => errors.push(
                        ConfigError::new(file, Some(node.pos), format!("${{{name}}} is not set"))
                            .expected(format!("the environment variable {name}, or {name} in the secrets file")),
                    ),
                }
                rest = &after[end + 1..];
            }
            out.push_str(rest);
            *text = out;
        }
        Value::Seq(items) => items.iter_mut().for_each(|item| interpolate(item, file, lookup, errors)),
        Value::Map(entries) => entries.iter_mut().for_each(|(_, value)| interpolate(value, file, lookup, errors)),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CONFIG: &str = "database: sqlite://x.db\nshops:\n  tmall:\n    platform: taobao\n    gateway: http://127.0.0.1:9/router/rest\n    app_key: \"123\"\n    app_secret: ${APP_SECRET}\n    session: ${SESSION}\n";

    fn env(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
    }

    #[test]
    fn secrets_come_from_the_environment_and_never_print() {
        let config = Config::parse(
            Path::new("dir/orderflow.yaml"),
            CONFIG,
            &env(&[("APP_SECRET", "s3cr3t"), ("SESSION", "sess")]),
        )
        .unwrap();
        let shop = &config.shops["tmall"];
        assert_eq!(shop.app_secret.expose(), "s3cr3t");
        assert!(!format!("{config:?}").contains("s3cr3t"));
        assert_eq!(shop.sign_method, SignMethod::HmacSha256);
        assert_eq!(shop.rate_limit_per_min, 100);
        assert_eq!(config.database, "sqlite://dir/x.db");
    }

    #[test]
    fn a_missing_variable_is_named_with_its_position() {
        let errors = Config::parse(Path::new("o.yaml"), CONFIG, &env(&[("APP_SECRET", "s")])).unwrap_err();
        assert_eq!(errors.0.len(), 1);
        assert_eq!(
            errors.0[0].to_string(),
            "o.yaml:8:14: ${SESSION} is not set; expected the environment variable SESSION, or SESSION in the secrets file"
        );
    }

    #[test]
    fn a_literal_secret_is_refused_without_being_echoed() {
        let source = CONFIG.replace("${APP_SECRET}", "hunter2");
        let errors = Config::parse(Path::new("o.yaml"), &source, &env(&[("SESSION", "s")])).unwrap_err();
        let text = errors.to_string();
        assert!(text.contains("\"app_secret\" is written in the config file"), "{text}");
        assert!(!text.contains("hunter2"), "{text}");
    }

    #[test]
    fn the_secrets_file_fills_in_what_the_environment_lacks() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("secrets.yaml"), "APP_SECRET: from-file\nSESSION: s\n").unwrap();
        let source = format!("secrets_file: secrets.yaml\n{CONFIG}");
        let config = Config::parse(&dir.path().join("orderflow.yaml"), &source, &HashMap::new()).unwrap();
        assert_eq!(config.shops["tmall"].app_secret.expose(), "from-file");
    }

    #[test]
    fn unknown_keys_and_platforms_are_errors_with_positions() {
        let source = CONFIG.replace("platform: taobao", "platform: jd");
        let errors =
            Config::parse(Path::new("o.yaml"), &source, &env(&[("APP_SECRET", "s"), ("SESSION", "s")])).unwrap_err();
        assert!(errors.0[0].to_string().starts_with("o.yaml:4:15: config: unknown variant \"jd\""), "{errors}");
    }

    #[test]
    fn a_gateway_that_is_not_a_url_and_a_zero_rate_limit_are_named_at_their_place() {
        let source = CONFIG.replace("http://127.0.0.1:9/router/rest", "not a url") + "    rate_limit_per_min: 0\n";
        let errors =
            Config::parse(Path::new("o.yaml"), &source, &env(&[("APP_SECRET", "s"), ("SESSION", "s")])).unwrap_err();
        let text = errors.to_string();
        assert_eq!(errors.0.len(), 2, "{text}");
        assert!(text.contains("o.yaml:5:14: shop \"tmall\": \"gateway\" is not an http(s) URL"), "{text}");
        assert!(text.contains("o.yaml:9:25: shop \"tmall\": \"rate_limit_per_min\" is 0"), "{text}");
        let ftp = CONFIG.replace("http://127.0.0.1:9/router/rest", "ftp://host/x");
        let error =
            Config::parse(Path::new("o.yaml"), &ftp, &env(&[("APP_SECRET", "s"), ("SESSION", "s")])).unwrap_err();
        assert!(error.to_string().contains("\"gateway\" is not an http(s) URL"), "{error}");
    }

    #[test]
    fn a_missing_optional_file_gives_defaults() {
        let config = Config::load(Path::new("/nonexistent/orderflow.yaml"), false).unwrap();
        assert_eq!(config.database, DEFAULT_DATABASE);
        assert!(Config::load(Path::new("/nonexistent/orderflow.yaml"), true).is_err());
    }

    #[test]
    fn redis_comes_from_the_file_or_redis_url_is_never_printed_and_must_be_a_redis_url() {
        let env = HashMap::from([("REDIS_URL".to_owned(), "redis://:hunter2@cache:6379/0".to_owned())]);
        let from_env = Config::parse(Path::new("c.yaml"), "shops: {}\n", &env).unwrap();
        assert_eq!(from_env.redis.as_ref().map(Secret::expose), Some("redis://:hunter2@cache:6379/0"));
        assert!(!format!("{from_env:?}").contains("hunter2"), "the password is never printed");
        let from_file = Config::parse(Path::new("c.yaml"), "redis: redis://file:6379\n", &env).unwrap();
        assert_eq!(from_file.redis.as_ref().map(Secret::expose), Some("redis://file:6379"), "the file wins");
        let error = Config::parse(Path::new("c.yaml"), "redis: http://cache\n", &HashMap::new()).unwrap_err();
        assert!(error.to_string().contains("c.yaml:1:") && error.to_string().contains("not a Redis URL"), "{error}");
    }
}
