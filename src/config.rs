//! `orderflow.yaml`: the database and the shops, with `${VAR}` taken from the
//! environment or a secrets file.
//!
//! Secrets (app secrets, session keys) must come through `${VAR}`: written
//! literally they would sit in a file that gets committed and pasted. They are
//! held in [`Secret`], which never prints its value.
//!
//! Loading resolves no secret. The shops, `database` and `redis` are kept as
//! written, `${VAR}` and all (only the syntax of each reference is checked),
//! and resolved by the command that connects to them, when it does:
//! [`Config::shop`] for one shop, [`Config::database_url`] and
//! [`Config::redis_url`]. So `validate` needs no secret at all, `runs` only
//! the database's, and `run` only those of the shops its flow calls. The
//! other keys (`nodes_dir`, `secrets_file`, …) are resolved at load: every
//! command needs them. The secrets file is read only when a reference the
//! environment lacks is resolved.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use serde::Deserialize;

use crate::flow::error::{ConfigError, ConfigErrors};
use crate::flow::settings;
use crate::flow::yaml::{self, Node, Pos, Value};

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
    /// `sqlite://file`, `postgres://…` or `mysql://…`, as written: it may hold
    /// `${VAR}` (a password); [`Config::database_url`] resolves it.
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
    /// The shops flows run against, by name, as written.
    #[serde(default)]
    pub shops: BTreeMap<String, ShopConfig>,
    /// Optional: a Redis server (`redis://[:password@]host:port/db`) through
    /// which several processes share each app key's rate limit and bans and
    /// the detail cache; the `REDIS_URL` environment variable when left out.
    /// Without one, each process keeps them in memory. The URL may hold a
    /// password (literally or as `${VAR}`): it is never printed (only its
    /// host). [`Config::redis_url`] resolves it.
    #[serde(default)]
    pub redis: Option<Secret>,
    /// What every key orderflow writes in Redis starts with, so deployments
    /// can share a server.
    #[serde(default = "default_redis_key_prefix")]
    pub redis_key_prefix: String,
    /// What `${VAR}` references resolve against, and where each deferred
    /// value is written.
    #[serde(skip)]
    variables: Variables,
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

/// One shop as the config file writes it: its strings may hold `${VAR}`
/// references, which [`Config::shop`] resolves into a [`Shop`].
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ShopConfig {
    /// `taobao` (Taobao and Tmall) or `douyin`.
    pub platform: Platform,
    /// The API gateway URL (the production one, a sandbox, or the simulator).
    pub gateway: String,
    /// The app key.
    pub app_key: String,
    /// The app secret: always a `${VAR}` reference (checked at load).
    pub app_secret: String,
    /// The seller's session key or access token: always a `${VAR}` reference.
    pub session: String,
    /// How requests are signed.
    #[serde(default)]
    pub sign_method: SignMethod,
    /// Calls per minute allowed for this app key.
    #[serde(default = "default_rate_limit")]
    pub rate_limit_per_min: u32,
}

/// One shop on one platform, its references resolved: what a connector is
/// built from.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Shop {
    /// `taobao` (Taobao and Tmall) or `douyin`.
    pub platform: Platform,
    /// The API gateway URL (the production one, a sandbox, or the simulator).
    pub gateway: String,
    /// The app key.
    pub app_key: String,
    /// The app secret.
    pub app_secret: Secret,
    /// The seller's session key or access token.
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
            variables: Variables::default(),
        }
    }
}

const SECRET_KEYS: [&str; 2] = ["app_secret", "session"];

/// The keys whose `${VAR}` references are resolved only by a command that
/// connects to what they describe.
const DEFERRED_KEYS: [&str; 3] = ["shops", "database", "redis"];

impl Config {
    /// Loads `path`; when `required` is false a missing file gives the
    /// defaults (SQLite, no shops). Relative paths in the file are made
    /// relative to its folder. No secret is resolved.
    pub fn load(path: &Path, required: bool) -> Result<Config, ConfigErrors> {
        let env: HashMap<String, String> = std::env::vars().collect();
        let source = match std::fs::read_to_string(path) {
            Ok(source) => source,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound && !required => {
                let redis = env.get("REDIS_URL").cloned().map(Secret);
                let variables = Variables { env: Arc::new(env), ..Variables::default() };
                return Ok(Config { redis, variables, ..Config::default() });
            }
            Err(error) => {
                return Err(one(ConfigError::new(path, None, format!("cannot read the config file: {error}"))));
            }
        };
        Self::parse(path, &source, &env)
    }

    /// Parses config `source` (from `path`). `${VAR}` outside the shops,
    /// `database` and `redis` is resolved now, from `env` and then from the
    /// secrets file; those three keep their references for the commands
    /// that connect (see the module docs), resolved from the same `env`.
    pub fn parse(path: &Path, source: &str, env: &HashMap<String, String>) -> Result<Config, ConfigErrors> {
        let base = path.parent().unwrap_or(Path::new(""));
        let mut tree = yaml::parse(source)
            .map_err(|e| one(ConfigError::new(path, e.pos, format!("this is not valid YAML: {}", e.message))))?;
        let mut errors = Vec::new();
        let mut variables = Variables { file: path.to_path_buf(), env: Arc::new(env.clone()), ..Variables::default() };
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
        if let Value::Map(entries) = &mut tree.value {
            // The secrets file first, as the other keys may refer to it; its
            // own name may refer to the environment only.
            for (_, value) in entries.iter_mut().filter(|(key, _)| key.name == "secrets_file") {
                interpolate(value, path, &mut |name| Ok(env.get(name).cloned()), &mut errors);
                if let Some(file) = value.as_str() {
                    let file = base.join(file);
                    variables.secrets =
                        Some(Arc::new(SecretsFile { path: file, at: value.pos, values: OnceLock::new() }));
                }
            }
            for (key, value) in entries.iter_mut().filter(|(key, _)| key.name != "secrets_file") {
                if DEFERRED_KEYS.contains(&key.name.as_str()) {
                    // Only the syntax of their references, now.
                    interpolate(&mut value.clone(), path, &mut |_| Ok(Some(String::new())), &mut errors);
                    record_positions(&key.name, value, &mut variables.positions);
                } else {
                    interpolate(value, path, &mut |name| variables.lookup(name), &mut errors);
                }
            }
        }
        if !errors.is_empty() {
            return Err(ConfigErrors::sorted(errors));
        }
        let mut config: Config = settings::deserialize(path, "config", &tree).map_err(one)?;
        config.redis = config.redis.or_else(|| env.get("REDIS_URL").map(|url| Secret(url.clone())));
        config.variables = variables;
        let mut errors = check_shops(&config, path);
        if let Some(url) = config.redis.as_ref().filter(|url| !has_reference(url.expose())) {
            errors.extend(redis_url_error(path, url.expose(), config.variables.at("redis")));
        }
        if !errors.is_empty() {
            return Err(ConfigErrors::sorted(errors));
        }
        config.nodes_dir = base.join(&config.nodes_dir);
        if !has_reference(&config.database) {
            config.database = rebase_sqlite(&config.database, base);
        }
        Ok(config)
    }

    /// The shop names, for validating flows.
    pub fn shop_names(&self) -> BTreeSet<String> {
        self.shops.keys().cloned().collect()
    }

    /// Shop `name` with its references resolved from the environment (and
    /// the secrets file): what connecting to it needs. Every reference that
    /// cannot be resolved is an error naming the variable and where the
    /// config file refers to it.
    pub fn shop(&self, name: &str) -> Result<Shop, ConfigErrors> {
        let file = &self.variables.file;
        let Some(shop) = self.shops.get(name) else {
            return Err(one(ConfigError::new(file, None, format!("shop \"{name}\" is not configured"))));
        };
        let mut errors = Vec::new();
        let mut resolve = |key: &str, text: &str| {
            let at = self.variables.at(&format!("shops.{name}.{key}"));
            self.variables.resolve(text, at).unwrap_or_else(|mut unresolved| {
                errors.append(&mut unresolved);
                String::new()
            })
        };
        let gateway = resolve("gateway", &shop.gateway);
        let app_key = resolve("app_key", &shop.app_key);
        let app_secret = Secret(resolve("app_secret", &shop.app_secret));
        let session = Secret(resolve("session", &shop.session));
        if errors.is_empty() && has_reference(&shop.gateway) {
            let at = self.variables.at(&format!("shops.{name}.gateway"));
            errors.extend(gateway_error(file, name, &gateway, at));
        }
        if !errors.is_empty() {
            return Err(ConfigErrors::sorted(errors));
        }
        Ok(Shop {
            platform: shop.platform,
            gateway,
            app_key,
            app_secret,
            session,
            sign_method: shop.sign_method,
            rate_limit_per_min: shop.rate_limit_per_min,
        })
    }

    /// The database URL with its references resolved, for the commands that
    /// open the database. A relative SQLite path is relative to the config
    /// file's folder.
    pub fn database_url(&self) -> Result<String, ConfigErrors> {
        if !has_reference(&self.database) {
            return Ok(self.database.clone());
        }
        let url =
            self.variables.resolve(&self.database, self.variables.at("database")).map_err(ConfigErrors::sorted)?;
        Ok(rebase_sqlite(&url, self.variables.file.parent().unwrap_or(Path::new(""))))
    }

    /// The Redis URL with its references resolved, for the commands that
    /// connect to shops (`None` when none is configured).
    pub fn redis_url(&self) -> Result<Option<Secret>, ConfigErrors> {
        let Some(url) = &self.redis else { return Ok(None) };
        if !has_reference(url.expose()) {
            return Ok(Some(url.clone()));
        }
        let at = self.variables.at("redis");
        let resolved = self.variables.resolve(url.expose(), at).map_err(ConfigErrors::sorted)?;
        match redis_url_error(&self.variables.file, &resolved, at) {
            Some(error) => Err(one(error)),
            None => Ok(Some(Secret(resolved))),
        }
    }
}

/// Where `${VAR}` references are looked up: the environment the config was
/// loaded with, then the secrets file (read when first needed). Prints no
/// value.
#[derive(Clone, Default)]
struct Variables {
    /// The config file, which errors point into.
    file: PathBuf,
    env: Arc<HashMap<String, String>>,
    secrets: Option<Arc<SecretsFile>>,
    /// Where each deferred string is written: `database`, `redis`,
    /// `shops.<name>.<key>`.
    positions: HashMap<String, Pos>,
}

impl fmt::Debug for Variables {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Variables")
            .field("secrets_file", &self.secrets.as_ref().map(|s| &s.path))
            .finish_non_exhaustive()
    }
}

/// The secrets file, read once, when a reference first needs it.
struct SecretsFile {
    path: PathBuf,
    /// Where the config names it.
    at: Pos,
    values: OnceLock<Result<HashMap<String, String>, ConfigError>>,
}

impl Variables {
    fn at(&self, path: &str) -> Option<Pos> {
        self.positions.get(path).copied()
    }

    /// The value of `name`: the environment's, else the secrets file's.
    fn lookup(&self, name: &str) -> Result<Option<String>, ConfigError> {
        if let Some(value) = self.env.get(name) {
            return Ok(Some(value.clone()));
        }
        let Some(secrets) = &self.secrets else { return Ok(None) };
        match secrets.values.get_or_init(|| load_secrets(&secrets.path, &self.file, secrets.at)) {
            Ok(values) => Ok(values.get(name).cloned()),
            Err(error) => Err(error.clone()),
        }
    }

    /// `text` (written at `at`) with its references resolved.
    fn resolve(&self, text: &str, at: Option<Pos>) -> Result<String, Vec<ConfigError>> {
        let mut errors = Vec::new();
        let resolved = substitute(text, &self.file, at, &mut |name| self.lookup(name), &mut errors);
        if errors.is_empty() { Ok(resolved) } else { Err(errors) }
    }
}

fn has_reference(text: &str) -> bool {
    text.contains("${")
}

/// Notes where each string under `key` is written, by dotted path.
fn record_positions(prefix: &str, node: &Node, positions: &mut HashMap<String, Pos>) {
    match &node.value {
        Value::Map(entries) => {
            for (key, value) in entries {
                record_positions(&format!("{prefix}.{}", key.name), value, positions);
            }
        }
        _ => {
            positions.insert(prefix.to_owned(), node.pos);
        }
    }
}

/// A relative SQLite path made relative to `base` (the config's folder).
fn rebase_sqlite(url: &str, base: &Path) -> String {
    if let Some(rest) = url.strip_prefix("sqlite://") {
        let file = Path::new(rest.split('?').next().unwrap_or(rest));
        if !rest.starts_with(':') && file.is_relative() && !base.as_os_str().is_empty() {
            return format!("sqlite://{}", base.join(rest).display());
        }
    }
    url.to_owned()
}

/// What deserialising cannot see in a shop: a gateway that is not an
/// http(s) URL, a rate limit of zero. Each at its line and column, so a shop
/// is never left out later with a vaguer error. A gateway written as a
/// reference is checked when it is resolved.
fn check_shops(config: &Config, path: &Path) -> Vec<ConfigError> {
    let mut errors = Vec::new();
    let at = |shop: &str, key: &str| config.variables.at(&format!("shops.{shop}.{key}"));
    for (name, shop) in &config.shops {
        if !has_reference(&shop.gateway) {
            errors.extend(gateway_error(path, name, &shop.gateway, at(name, "gateway")));
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

/// The error for shop `name`'s `gateway` when it is not an http(s) URL.
fn gateway_error(path: &Path, name: &str, gateway: &str, at: Option<Pos>) -> Option<ConfigError> {
    let url = reqwest::Url::parse(gateway);
    if url.as_ref().is_ok_and(|url| matches!(url.scheme(), "http" | "https") && url.host().is_some()) {
        return None;
    }
    let why = url.err().map(|e| format!(" ({e})")).unwrap_or_default();
    Some(
        ConfigError::new(path, at, format!("shop \"{name}\": \"gateway\" is not an http(s) URL{why}"))
            .expected("https://eco.taobao.com/router/rest, https://openapi-fxg.jinritemai.com or the simulator's URL"),
    )
}

/// The error for a `redis` URL (which may hold a password, never quoted)
/// that is not a Redis URL.
fn redis_url_error(path: &Path, url: &str, at: Option<Pos>) -> Option<ConfigError> {
    if ["redis://", "rediss://"].iter().any(|scheme| url.starts_with(scheme)) {
        return None;
    }
    Some(
        ConfigError::new(path, at, "\"redis\" (or REDIS_URL) is not a Redis URL")
            .expected("redis://host:6379 or rediss://:password@host:6380/0"),
    )
}

fn one(error: ConfigError) -> ConfigErrors {
    ConfigErrors(vec![error])
}

fn load_secrets(file: &Path, config: &Path, pos: Pos) -> Result<HashMap<String, String>, ConfigError> {
    let source = std::fs::read_to_string(file).map_err(|error| {
        ConfigError::new(config, Some(pos), format!("cannot read the secrets file {}: {error}", file.display()))
    })?;
    // The values are secrets: a parse error must not quote them.
    match yaml::parse(&source).map(|tree| tree.to_json()) {
        Ok(serde_json::Value::Object(map)) => Ok(map
            .into_iter()
            .filter_map(|(k, v)| match v {
                serde_json::Value::String(s) => Some((k, s)),
                serde_json::Value::Number(n) => Some((k, n.to_string())),
                _ => None,
            })
            .collect()),
        Ok(_) | Err(_) => {
            let at = yaml::parse(&source).err().and_then(|e| e.pos);
            Err(ConfigError::new(file, at, "the secrets file is not a YAML mapping of NAME: value")
                .expected("lines such as TAOBAO_APP_SECRET: \"…\""))
        }
    }
}

/// A name-to-value lookup for `${NAME}`: `Ok(None)` when the name is not set.
type Lookup<'a> = dyn FnMut(&str) -> Result<Option<String>, ConfigError> + 'a;

/// Replaces `${NAME}` in every string of the tree by what `lookup` gives.
fn interpolate(node: &mut Node, file: &Path, lookup: &mut Lookup<'_>, errors: &mut Vec<ConfigError>) {
    match &mut node.value {
        Value::String(text) => *text = substitute(text, file, Some(node.pos), lookup, errors),
        Value::Seq(items) => items.iter_mut().for_each(|item| interpolate(item, file, lookup, errors)),
        Value::Map(entries) => entries.iter_mut().for_each(|(_, value)| interpolate(value, file, lookup, errors)),
        _ => {}
    }
}

/// `text` (written at `at` in `file`) with each `${NAME}` replaced by what
/// `lookup` gives; a name it does not know, or cannot look up, is an error.
fn substitute(
    text: &str,
    file: &Path,
    at: Option<Pos>,
    lookup: &mut Lookup<'_>,
    errors: &mut Vec<ConfigError>,
) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let Some(end) = after.find('}') else {
            errors.push(ConfigError::new(file, at, "\"${\" without its closing \"}\"").expected("${NAME}"));
            return out;
        };
        let name = &after[..end];
        match lookup(name) {
            Ok(Some(value)) => out.push_str(&value),
            Ok(None) => errors.push(
                ConfigError::new(file, at, format!("${{{name}}} is not set"))
                    .expected(format!("the environment variable {name}, or {name} in the secrets file")),
            ),
            Err(error) => errors.push(error),
        }
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    out
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
        let shop = config.shop("tmall").unwrap();
        assert_eq!(shop.app_secret.expose(), "s3cr3t");
        assert!(!format!("{config:?}").contains("s3cr3t"));
        assert_eq!(shop.sign_method, SignMethod::HmacSha256);
        assert_eq!(shop.rate_limit_per_min, 100);
        assert_eq!(config.database, "sqlite://dir/x.db");
    }

    #[test]
    fn a_missing_variable_is_named_with_its_position_when_the_shop_is_resolved() {
        let config = Config::parse(Path::new("o.yaml"), CONFIG, &env(&[("APP_SECRET", "s")])).unwrap();
        let errors = config.shop("tmall").unwrap_err();
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
        assert_eq!(config.shop("tmall").unwrap().app_secret.expose(), "from-file");
    }

    #[test]
    fn loading_resolves_no_secret_and_a_shop_resolves_only_its_own() {
        let source = format!(
            "{CONFIG}  douyin:\n    platform: douyin\n    gateway: ${{DY_GATEWAY}}\n    app_key: ${{DY_KEY}}\n    app_secret: ${{DY_SECRET}}\n    session: ${{DY_TOKEN}}\n"
        );
        let config = Config::parse(Path::new("o.yaml"), &source, &HashMap::new()).unwrap();
        assert_eq!(config.shops["douyin"].app_secret, "${DY_SECRET}", "kept as written");
        assert_eq!(config.shop_names().len(), 2);

        let env = env(&[("APP_SECRET", "s3cr3t"), ("SESSION", "sess")]);
        let config = Config::parse(Path::new("o.yaml"), &source, &env).unwrap();
        let tmall = config.shop("tmall").unwrap();
        assert_eq!((tmall.app_key.as_str(), tmall.session.expose()), ("123", "sess"));
        let errors = config.shop("douyin").unwrap_err().to_string();
        for (line, name) in [(11, "DY_GATEWAY"), (12, "DY_KEY"), (13, "DY_SECRET"), (14, "DY_TOKEN")] {
            assert!(
                errors.contains(&format!("o.yaml:{line}:")) && errors.contains(&format!("${{{name}}} is not set")),
                "{errors}"
            );
        }
        assert!(config.shop("jd").unwrap_err().to_string().contains("shop \"jd\" is not configured"));
    }

    #[test]
    fn a_gateway_written_as_a_reference_is_checked_once_resolved() {
        let source = CONFIG.replace("http://127.0.0.1:9/router/rest", "${GATEWAY}");
        let env = env(&[("APP_SECRET", "s"), ("SESSION", "s"), ("GATEWAY", "ftp://host/x")]);
        let config = Config::parse(Path::new("o.yaml"), &source, &env).unwrap();
        let error = config.shop("tmall").unwrap_err().to_string();
        assert!(error.contains("o.yaml:5:14: shop \"tmall\": \"gateway\" is not an http(s) URL"), "{error}");
    }

    #[test]
    fn an_unclosed_reference_in_a_shop_is_an_error_at_load() {
        let source = CONFIG.replace("${SESSION}", "${SESSION");
        let error = Config::parse(Path::new("o.yaml"), &source, &HashMap::new()).unwrap_err().to_string();
        assert!(error.contains("o.yaml:8:14: \"${\" without its closing \"}\""), "{error}");
    }

    #[test]
    fn a_missing_secrets_file_matters_only_to_a_reference_it_must_answer() {
        let source = format!("secrets_file: missing.yaml\n{CONFIG}");
        let config = Config::parse(Path::new("dir/o.yaml"), &source, &env(&[("APP_SECRET", "s")])).unwrap();
        let error = config.shop("tmall").unwrap_err().to_string();
        assert!(error.contains("dir/o.yaml:1:15: cannot read the secrets file dir/missing.yaml"), "{error}");
        let config =
            Config::parse(Path::new("dir/o.yaml"), &source, &env(&[("APP_SECRET", "s"), ("SESSION", "t")])).unwrap();
        assert_eq!(config.shop("tmall").unwrap().session.expose(), "t", "the environment answers first");
    }

    #[test]
    fn database_and_redis_references_are_resolved_when_they_are_opened() {
        let source = "database: postgres://app:${DB_PASSWORD}@db/orders\nredis: ${CACHE_URL}\n";
        let config = Config::parse(Path::new("o.yaml"), source, &HashMap::new()).unwrap();
        let error = config.database_url().unwrap_err().to_string();
        assert!(error.contains("o.yaml:1:11: ${DB_PASSWORD} is not set"), "{error}");
        assert!(config.redis_url().unwrap_err().to_string().contains("o.yaml:2:8: ${CACHE_URL} is not set"));

        let env = env(&[("DB_PASSWORD", "hunter2"), ("CACHE_URL", "redis://:hunter3@cache:6379")]);
        let config = Config::parse(Path::new("o.yaml"), source, &env).unwrap();
        assert_eq!(config.database_url().unwrap(), "postgres://app:hunter2@db/orders");
        assert_eq!(config.redis_url().unwrap().as_ref().map(Secret::expose), Some("redis://:hunter3@cache:6379"));
        assert!(!format!("{config:?}").contains("hunter"), "{config:?}");

        let env = HashMap::from([
            ("DB_FILE".to_owned(), "data/x.db".to_owned()),
            ("CACHE_URL".to_owned(), "http://c".to_owned()),
        ]);
        let config =
            Config::parse(Path::new("dir/o.yaml"), "database: sqlite://${DB_FILE}\nredis: ${CACHE_URL}\n", &env)
                .unwrap();
        assert_eq!(config.database_url().unwrap(), "sqlite://dir/data/x.db", "relative to the config's folder");
        assert!(config.redis_url().unwrap_err().to_string().contains("not a Redis URL"));
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
