//! The flow editor's API, against a `serve` process's router on a random
//! port: the scheduler and the web page with the editor, over a temporary copy
//! of `flows/`, SQLite and the simulator. Also the browser specs of `web/`
//! (Playwright), when `web/node_modules` is installed.

mod support;

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use orderflow::config::Secret;
use orderflow::engine::{Engine, EngineOptions};
use orderflow::server::editor::{CSRF_HEADER, EDITOR_TOKEN_VAR, Editor, USER_HEADER, assets, files};
use orderflow::server::serve::{FlowEnv, ServeOptions, Server};
use orderflow::server::web::{self, WebState};
use orderflow::sim::SimConfig;
use orderflow::store::{Cursor, Store};
use orderflow::sync::{INCREMENT_STREAM, flow_stream};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use support::rig::{Rig, SHOP};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

const APP_SECRET: &str = "editor-test-app-secret-71d3aa";
const SESSION: &str = "editor-test-session-c05e19";
const EDITOR_TOKEN: &str = "editor-token-3b9f";
const VIEWER_TOKEN: &str = "viewer-token-8e21";

/// A flow that compiles with the rig's registry and shops and runs without a
/// platform: it reads the example export and logs it.
const LOCAL_FLOW: &str = "# Reads the export.\nflow: local\ndescription: Reads the export.\ntrigger:\n  every: 1s\nnodes:\n  \
                          orders:\n    use: read_jsonl\n    with:\n      path: data/orders.jsonl\n  show:\n    use: log\n    \
                          input: orders\n";

/// A `serve` with the editor on 127.0.0.1, over a copy of `flows/`.
struct App {
    base: String,
    flows: tempfile::TempDir,
    store: Store,
    server_catalog: Arc<orderflow::server::catalog::Catalog>,
    http: reqwest::Client,
    shutdown: CancellationToken,
    rig: Rig,
    db: tempfile::TempDir,
}

impl App {
    /// Starts the scheduler and the page; `editor_token` and `viewer_token`
    /// as `ORDERFLOW_EDITOR_TOKEN` and `ORDERFLOW_WEB_TOKEN` would set them.
    async fn start(editor_token: Option<&str>, viewer_token: Option<&str>) -> App {
        let db = tempfile::tempdir().unwrap();
        let store = Store::connect(&format!("sqlite://{}", db.path().join("serve.db").display())).await.unwrap();
        let sim = SimConfig {
            seed: 11,
            orders: 40,
            days: 3,
            mutations_per_sec: 0.0,
            app_secret: APP_SECRET.to_owned(),
            session: SESSION.to_owned(),
            ..SimConfig::default()
        };
        let rig = Rig::new(sim, store.clone()).await;
        let flows = copy_of_flows();
        let mut build = rig.build.clone();
        build.flow_dir = flows.path().to_path_buf();
        let env = FlowEnv { registry: rig.registry.clone(), build: build.clone(), shops: rig.config.shop_names() };
        let engine = Engine::new(rig.registry.clone(), build, store.clone(), EngineOptions::default());
        let options = ServeOptions {
            flows_dir: flows.path().to_path_buf(),
            worker_id: "editor-test".into(),
            lease: Duration::from_secs(10),
            grace: Duration::from_secs(5),
            poll_every: Duration::from_millis(200),
            max_runs: 4,
        };
        let server = Server::new(options, env, engine, store.clone()).unwrap();
        let editor = Editor::new(flows.path(), server.flow_env(), store.clone(), editor_token.map(Secret::new))
            .unwrap()
            .with_shops(rig.config.clone());
        let state = WebState {
            store: store.clone(),
            catalog: server.catalog(),
            metrics: None,
            token: viewer_token.map(Secret::new),
            editor: Some(Arc::new(editor)),
        };
        let server_catalog = server.catalog();
        let shutdown = CancellationToken::new();
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let page_stop = shutdown.clone();
        tokio::spawn(async move { web::serve(listener, state, page_stop).await.expect("serving") });
        let serve_stop = shutdown.clone();
        tokio::spawn(async move { server.run(serve_stop).await.expect("serve runs") });
        App { base, flows, store, server_catalog, http: reqwest::Client::new(), shutdown, rig, db }
    }

    fn file(&self, name: &str) -> PathBuf {
        self.flows.path().join(format!("{name}.yaml"))
    }

    /// A request with the editor's credentials and headers.
    fn editor(&self, method: Method, path: &str) -> reqwest::RequestBuilder {
        self.http
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(EDITOR_TOKEN)
            .header(CSRF_HEADER, "1")
            .header(USER_HEADER, "%E7%8E%8B%E8%8A%B3")
    }

    async fn get(&self, path: &str) -> (StatusCode, Value) {
        answer(self.editor(Method::GET, path).send().await.unwrap()).await
    }

    async fn put(&self, name: &str, body: Value) -> (StatusCode, Value) {
        answer(self.editor(Method::PUT, &format!("/api/flows/{name}")).json_body(&body).send().await.unwrap()).await
    }

    async fn validate(&self, yaml: &str) -> Value {
        let response =
            self.editor(Method::POST, "/api/validate").json_body(&json!({"yaml": yaml})).send().await.unwrap();
        let (status, body) = answer(response).await;
        assert_eq!(status, 200, "{body}");
        body
    }
}

impl Drop for App {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

/// A JSON request body (reqwest is built without its `json` feature).
trait JsonBody {
    fn json_body(self, body: &Value) -> Self;
}

impl JsonBody for reqwest::RequestBuilder {
    fn json_body(self, body: &Value) -> Self {
        self.header("content-type", "application/json").body(body.to_string())
    }
}

/// The status and the JSON body of `response`.
async fn answer(response: reqwest::Response) -> (StatusCode, Value) {
    let status = response.status();
    let text = response.text().await.unwrap();
    let body = serde_json::from_str(&text).unwrap_or_else(|_| panic!("{status}: not JSON: {text}"));
    (status, body)
}

/// A temporary folder with the `*.yaml` files of `flows/` and its `data/`.
fn copy_of_flows() -> tempfile::TempDir {
    let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("flows");
    let dir = tempfile::tempdir().unwrap();
    copy_tree(&source, dir.path());
    dir
}

fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap().flatten() {
        let path = entry.path();
        if path.is_dir() {
            copy_tree(&path, &to.join(entry.file_name()));
        } else {
            std::fs::copy(&path, to.join(entry.file_name())).unwrap();
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_catalog_lists_every_node_type_and_no_answer_shows_a_secret() {
    let app = App::start(Some(EDITOR_TOKEN), None).await;
    let (status, catalog) = app.get("/api/catalog").await;
    assert_eq!(status, 200);
    let listed: Vec<&str> =
        catalog["node_types"].as_array().unwrap().iter().map(|t| t["name"].as_str().unwrap()).collect();
    let registered: Vec<&str> = app.rig.registry.names().collect();
    assert_eq!(listed, registered, "every registered type, custom ones included");
    let custom = catalog["node_types"].as_array().unwrap().iter().find(|t| t["name"] == "tag_vip").expect("tag_vip");
    assert_eq!((custom["group"].as_str(), custom["role"].as_str()), (Some("custom"), Some("transform")));
    assert!(catalog["node_types"][0]["schema"].is_object() && catalog["node_types"][0]["outputs"].is_null());
    assert!(catalog["flow_schema"]["properties"]["x-layout"].is_object(), "the schema accepts x-layout");
    assert_eq!(catalog["shops"], json!([SHOP]));

    // Every answer of the API and the bundle route: no secret of the shop's config.
    let mut answers = vec![serde_json::to_string(&catalog).unwrap()];
    for path in
        ["/api/flows", "/api/flows/taobao-incremental", "/api/templates", "/api/flows/taobao-incremental/versions"]
    {
        let (status, body) = app.get(path).await;
        assert_eq!(status, 200, "{path}: {body}");
        answers.push(body.to_string());
    }
    let flows = app.get("/api/flows").await.1;
    let incremental = flows.as_array().unwrap().iter().find(|f| f["name"] == "taobao-incremental").expect("listed");
    assert_eq!(incremental["valid"], true);
    assert_eq!(incremental["shop"], SHOP);
    assert_eq!(incremental["has_draft"], false);
    let templates = app.get("/api/templates").await.1;
    assert!(templates.as_array().unwrap().iter().any(|t| t["name"] == "example-orders" && t["yaml"].is_string()));
    let uses_the_shop = "flow: x\nshop: tmall-main\nnodes:\n  a: {use: fetch_increment, with: {windw: 1}}\n";
    answers.push(app.validate(uses_the_shop).await.to_string());
    let (status, refused) = app.put("x", json!({"yaml": uses_the_shop, "base_version": null, "draft": false})).await;
    assert_eq!(status, 422);
    answers.push(refused.to_string());
    let (status, conflict) =
        app.put("taobao-incremental", json!({"yaml": uses_the_shop, "base_version": null, "draft": true})).await;
    assert_eq!(status, 409);
    answers.push(conflict.to_string());
    // The bundle: any path under /editor/ that is no file is the front-end's
    // index page (its own routes), or says how to build it.
    let index = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("web/dist/index.html")).ok();
    for path in ["/editor/", "/editor/flows/taobao-incremental"] {
        let page = app.http.get(format!("{}{path}", app.base)).send().await.unwrap();
        let status = page.status();
        let text = page.text().await.unwrap();
        match &index {
            Some(index) => assert_eq!((status.as_u16(), &text), (200, index), "{path}"),
            None => assert_eq!((status.as_u16(), text.as_str()), (503, assets::NOT_BUILT), "{path}"),
        }
        answers.push(text);
    }
    let no_redirects = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let bare = no_redirects.get(format!("{}/editor", app.base)).send().await.unwrap();
    assert_eq!((bare.status().as_u16(), bare.headers()["location"].to_str().unwrap()), (308, "/editor/"));
    let (status, unknown) = app.get("/api/nothing-here").await;
    assert_eq!(status, 404, "{unknown}");
    for answer in &answers {
        for secret in [APP_SECRET, SESSION, EDITOR_TOKEN] {
            assert!(!answer.contains(secret), "an answer shows a secret: {answer}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn validate_returns_every_problem_with_its_line_column_and_node() {
    let app = App::start(Some(EDITOR_TOKEN), None).await;
    let yaml = "flow: broken\nnodes:\n  orders:\n    use: read_jsonl\n    with:\n      path: data/orders.jsonl\n      \
                windw: 5\n  a:\n    use: log\n    input: b\n  b:\n    use: log\n    input: a\n";
    let validation = app.validate(yaml).await;
    assert_eq!(validation["ok"], false);
    let problems = validation["problems"].as_array().unwrap();
    let unknown = problems.iter().find(|p| p["message"].as_str().unwrap().contains("windw")).expect("unknown setting");
    assert_eq!((unknown["line"].as_u64(), unknown["col"].as_u64()), (Some(7), Some(7)), "{unknown}");
    assert_eq!(unknown["node"], "orders");
    assert_eq!(unknown["path"], json!(["nodes", "orders", "with", "windw"]));
    let cycle = problems.iter().find(|p| p["message"].as_str().unwrap().contains("cycle")).expect("the cycle");
    assert_eq!(cycle["node"], "a", "{cycle}");
    assert!(!cycle["message"].as_str().unwrap().contains("yaml:"), "the message leaves the position apart");
    let graph: Vec<&str> =
        validation["graph"]["nodes"].as_array().unwrap().iter().map(|n| n["id"].as_str().unwrap()).collect();
    assert_eq!(graph, ["orders", "a", "b"]);

    let valid = app.validate(&format!("{LOCAL_FLOW}x-layout: {{orders: [10, 20], gone: [0, 0]}}\n")).await;
    assert_eq!(valid["ok"], true, "{valid}");
    assert_eq!(valid["problems"], json!([]));
    assert_eq!(
        valid["graph"]["nodes"][1],
        json!({"id": "show", "use": "log", "role": "transform", "inputs": ["orders"], "errors_lane": false})
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn saves_are_atomic_versioned_refused_when_stale_or_invalid_and_drafts_leave_the_file() {
    let app = App::start(Some(EDITOR_TOKEN), None).await;
    let file = app.file("local");
    assert_eq!(app.get("/api/flows/local").await.0, 404);

    // Create.
    let (status, saved) = app.put("local", json!({"yaml": LOCAL_FLOW, "base_version": null, "draft": false})).await;
    assert_eq!(status, 200, "{saved}");
    let first = saved["version"].as_str().unwrap().to_owned();
    assert_eq!(first, files::version_of(LOCAL_FLOW));
    assert_eq!(std::fs::read_to_string(&file).unwrap(), LOCAL_FLOW);
    let leftovers: Vec<String> = std::fs::read_dir(app.flows.path())
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|name| name.ends_with(".tmp"))
        .collect();
    assert!(leftovers.is_empty(), "no temporary file is left: {leftovers:?}");
    let response = app.editor(Method::GET, "/api/flows/local").send().await.unwrap();
    assert_eq!(response.headers()["etag"], format!("\"{first}\"").as_str());
    let (_, opened) = answer(response).await;
    assert_eq!((opened["yaml"].as_str(), opened["version"].as_str()), (Some(LOCAL_FLOW), Some(first.as_str())));
    assert!(opened["draft"].is_null());
    // Creating it again is a conflict.
    let (status, conflict) = app.put("local", json!({"yaml": LOCAL_FLOW, "base_version": null, "draft": false})).await;
    assert_eq!(status, 409, "{conflict}");

    // Change it: a new version.
    let second_text = LOCAL_FLOW.replace("every: 1s", "every: 2s");
    let (status, saved) = app.put("local", json!({"yaml": second_text, "base_version": first, "draft": false})).await;
    assert_eq!(status, 200, "{saved}");
    let second = saved["version"].as_str().unwrap().to_owned();
    assert_ne!(second, first);

    // A save based on the first version: refused with what is there now.
    let stale = LOCAL_FLOW.replace("every: 1s", "every: 3s");
    let (status, conflict) = app.put("local", json!({"yaml": stale, "base_version": first, "draft": false})).await;
    assert_eq!(status, 409, "{conflict}");
    assert_eq!(conflict["current_version"], second.as_str());
    assert_eq!(conflict["current_yaml"], second_text.as_str());
    assert_eq!(conflict["error"], "the flow \"local\" was changed since it was opened");
    assert_eq!(std::fs::read_to_string(&file).unwrap(), second_text);

    // Invalid and not a draft: 422, nothing written.
    let invalid = second_text.replace("use: log", "use: lgo");
    let (status, refused) = app.put("local", json!({"yaml": invalid, "base_version": second, "draft": false})).await;
    assert_eq!(status, 422, "{refused}");
    let problem = &refused["problems"][0];
    assert!(problem["message"].as_str().unwrap().contains("unknown node type \"lgo\""), "{refused}");
    assert_eq!((problem["line"].as_u64(), problem["node"].as_str()), (Some(12), Some("show")), "{refused}");
    assert_eq!(std::fs::read_to_string(&file).unwrap(), second_text);

    // The same text as a draft: kept beside the file, which stays.
    let (status, new_draft) = app.put("fresh", json!({"yaml": invalid, "base_version": null, "draft": true})).await;
    assert_eq!(status, 200, "{new_draft}");
    assert!(!app.file("fresh").exists());
    let (status, fresh) = app.get("/api/flows/fresh").await;
    assert_eq!(status, 200, "{fresh}");
    assert_eq!((fresh["yaml"].as_str(), fresh["version"].is_null()), (Some(""), true), "{fresh}");
    assert_eq!(fresh["draft"]["yaml"], invalid.as_str());
    let (status, drafted) = app.put("local", json!({"yaml": invalid, "base_version": second, "draft": true})).await;
    assert_eq!(status, 200, "{drafted}");
    assert_eq!(std::fs::read_to_string(&file).unwrap(), second_text);
    let (_, opened) = app.get("/api/flows/local").await;
    assert_eq!(opened["version"], second.as_str());
    assert_eq!(opened["draft"]["yaml"], invalid.as_str());
    assert_eq!(opened["draft"]["saved_by"], "王芳");
    let listed = app.get("/api/flows").await.1;
    let local = listed.as_array().unwrap().iter().find(|f| f["name"] == "local").expect("listed");
    assert_eq!((local["has_draft"].as_bool(), local["valid"].as_bool()), (Some(true), Some(true)));
    let fresh = listed.as_array().unwrap().iter().find(|f| f["name"] == "fresh").expect("a draft-only flow is listed");
    assert_eq!((fresh["has_draft"].as_bool(), fresh["valid"].as_bool()), (Some(true), Some(false)));
    assert!(fresh["version"].is_null() && fresh["description"] == "Reads the export.", "{fresh}");

    // History, newest first; restoring the first version is a save of its text.
    let (_, versions) = app.get("/api/flows/local/versions").await;
    let summary: Vec<(&str, bool)> = versions
        .as_array()
        .unwrap()
        .iter()
        .map(|v| (v["version"].as_str().unwrap(), v["draft"].as_bool().unwrap()))
        .collect();
    assert_eq!(
        summary,
        [(drafted["version"].as_str().unwrap(), true), (second.as_str(), false), (first.as_str(), false)]
    );
    assert!(versions.as_array().unwrap().iter().all(|v| v["saved_by"] == "王芳" && v["role"] == "editor"));
    let (status, old) = app.get(&format!("/api/flows/local/versions/{first}")).await;
    assert_eq!(status, 200, "{old}");
    assert_eq!(old["yaml"], LOCAL_FLOW);
    let (status, _) = app.put("local", json!({"yaml": old["yaml"], "base_version": second, "draft": false})).await;
    assert_eq!(status, 200);
    assert_eq!(std::fs::read_to_string(&file).unwrap(), LOCAL_FLOW);
    let (_, opened) = app.get("/api/flows/local").await;
    assert!(opened["draft"].is_null(), "a save clears the draft: {opened}");
    let (status, missing) = app.get("/api/flows/local/versions/0000000000000000").await;
    assert_eq!(
        (status.as_u16(), &missing["error"]),
        (404, &json!("the flow \"local\" has no version \"0000000000000000\""))
    );
    let (status, missing) = app.get("/api/flows/nothing").await;
    assert_eq!((status.as_u16(), &missing["error"]), (404, &json!("there is no flow named \"nothing\"")));

    // A shipped flow saved once: its text from disk is kept as a version too.
    let shipped = std::fs::read_to_string(app.file("example-orders")).unwrap();
    let edited = shipped.replace("threshold: 1000", "threshold: 2000");
    let base = files::version_of(&shipped);
    let (status, _) = app.put("example-orders", json!({"yaml": edited, "base_version": base, "draft": false})).await;
    assert_eq!(status, 200);
    let (_, versions) = app.get("/api/flows/example-orders/versions").await;
    let roles: Vec<&str> = versions.as_array().unwrap().iter().map(|v| v["role"].as_str().unwrap()).collect();
    assert_eq!(roles, ["editor", "file"]);
    assert_eq!(app.get(&format!("/api/flows/example-orders/versions/{base}")).await.1["yaml"], shipped.as_str());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_write_needs_the_editor_token_the_csrf_header_and_this_origin() {
    let body = json!({"yaml": LOCAL_FLOW, "base_version": null, "draft": false});
    let draft = json!({"yaml": LOCAL_FLOW, "base_version": null, "draft": true});

    // No editor token configured: reading works, every write is refused.
    let app = App::start(None, None).await;
    assert_eq!(app.get("/api/flows").await.0, 200);
    for body in [&body, &draft] {
        let (status, refused) = app.put("local", body.clone()).await;
        assert_eq!(status, 403, "{refused}");
        assert!(refused["error"].as_str().unwrap().contains(EDITOR_TOKEN_VAR), "{refused}");
    }
    assert!(!app.file("local").exists());
    drop(app);

    let app = App::start(Some(EDITOR_TOKEN), Some(VIEWER_TOKEN)).await;
    let url = format!("{}/api/flows/local", app.base);
    let put = || app.http.put(&url).header(CSRF_HEADER, "1").json_body(&body);
    // Without any token the viewer token's check answers first (401).
    let refused = [
        ("no token", put(), 401),
        ("a wrong token", put().bearer_auth("editor-token-3b9e"), 401),
        ("the viewer token", put().bearer_auth(VIEWER_TOKEN), 403),
        ("no CSRF header", app.http.put(&url).bearer_auth(EDITOR_TOKEN).json_body(&body), 403),
        ("another origin", put().bearer_auth(EDITOR_TOKEN).header("origin", "http://evil.example"), 403),
    ];
    for (what, request, expected) in refused {
        let status = request.send().await.unwrap().status();
        assert_eq!(status, expected, "{what}");
        assert!(!app.file("local").exists(), "{what} wrote the file");
    }
    // The viewer reads, the editor token reads too.
    let read = app.http.get(format!("{}/api/flows", app.base)).bearer_auth(VIEWER_TOKEN).send().await.unwrap();
    assert_eq!(read.status(), 200);
    assert_eq!(app.http.get(format!("{}/api/flows", app.base)).send().await.unwrap().status(), 401);
    // The editor, from this origin, saves.
    let origin = app.base.clone();
    let saved = put().bearer_auth(EDITOR_TOKEN).header("origin", origin).send().await.unwrap();
    assert_eq!(saved.status(), 200);
    // The editor token given once in the query becomes a cookie that saves.
    let login = app.http.get(format!("{}/editor/?token={EDITOR_TOKEN}", app.base)).send().await.unwrap();
    let cookie = login.headers()["set-cookie"].to_str().unwrap().split(';').next().unwrap().to_owned();
    assert!(!cookie.contains(EDITOR_TOKEN));
    let changed = LOCAL_FLOW.replace("every: 1s", "every: 5s");
    let by_cookie = app
        .http
        .put(&url)
        .header("cookie", cookie)
        .header(CSRF_HEADER, "1")
        .json_body(&json!({"yaml": changed, "base_version": files::version_of(LOCAL_FLOW), "draft": false}))
        .send()
        .await
        .unwrap();
    assert_eq!(by_cookie.status(), 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn names_outside_the_rule_and_bodies_over_a_mebibyte_are_refused() {
    let app = App::start(Some(EDITOR_TOKEN), None).await;
    let body = json!({"yaml": LOCAL_FLOW, "base_version": null, "draft": false});
    for name in ["..%2Fx", "a%2Fb", "x.yaml", "Big", "a..b", "..%2F..%2Fetc%2Fpasswd"] {
        let (status, refused) = app.put(name, body.clone()).await;
        assert_eq!(status, 400, "{name}: {refused}");
        assert!(refused["error"].as_str().unwrap().contains("not a flow name"), "{refused}");
        assert_eq!(app.get(&format!("/api/flows/{name}")).await.0, 400, "{name}");
    }
    let (status, _) = answer(
        app.editor(Method::POST, "/api/validate")
            .json_body(&json!({"yaml": LOCAL_FLOW, "name": "../x"}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 400);
    assert!(!app.flows.path().parent().unwrap().join("x.yaml").exists());

    let huge = format!("{LOCAL_FLOW}# {}\n", "x".repeat(files::MAX_FLOW_BYTES));
    // A file over the limit put in the folder by hand: listed as not valid,
    // refused when opened, and the rest of the folder still served.
    std::fs::write(app.file("by-hand"), &huge).unwrap();
    let (status, listed) = app.get("/api/flows").await;
    assert_eq!(status, 200, "{listed}");
    let by_hand = listed.as_array().unwrap().iter().find(|f| f["name"] == "by-hand").expect("listed");
    assert_eq!((by_hand["valid"].as_bool(), by_hand["version"].is_null()), (Some(false), true));
    assert!(listed.as_array().unwrap().iter().any(|f| f["name"] == "taobao-incremental" && f["valid"] == true));
    let (status, refused) = app.get("/api/flows/by-hand").await;
    assert_eq!(status, 413);
    assert_eq!(refused["error"], format!("the flow is larger than {} bytes", files::MAX_FLOW_BYTES));
    let (status, refused) = app.put("local", json!({"yaml": huge, "base_version": null, "draft": true})).await;
    assert_eq!(status, 413, "{refused}");
    let response = app.editor(Method::POST, "/api/validate").json_body(&json!({"yaml": huge})).send().await.unwrap();
    assert_eq!(response.status(), 413);
    assert!(!app.file("local").exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_runs_a_flow_saved_through_the_api_on_its_trigger() {
    let app = App::start(Some(EDITOR_TOKEN), None).await;
    let (status, _) = app.put("local", json!({"yaml": LOCAL_FLOW, "base_version": null, "draft": false})).await;
    assert_eq!(status, 200);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let loaded = app.server_catalog.find("local").is_some_and(|entry| entry.flow.is_some());
        let runs = app.store.recent_runs(Some("local"), 5).await.unwrap();
        if loaded && !runs.is_empty() {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "serve did not run the saved flow (loaded: {loaded})");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // A draft never reaches the running version.
    let broken = LOCAL_FLOW.replace("use: log", "use: lgo");
    let base = files::version_of(LOCAL_FLOW);
    let (status, _) = app.put("local", json!({"yaml": broken, "base_version": base, "draft": true})).await;
    assert_eq!(status, 200);
    tokio::time::sleep(Duration::from_millis(600)).await;
    let entry = app.server_catalog.find("local").expect("still loaded");
    assert!(entry.errors.is_empty(), "{:?}", entry.errors);
    assert_eq!(std::fs::read_to_string(app.file("local")).unwrap(), LOCAL_FLOW);
}

/// The real database's bytes, as a hash (its journal too, when there is one).
fn database_hash(app: &App) -> String {
    use sha2::{Digest, Sha256};
    let mut hash = Sha256::new();
    for file in ["serve.db", "serve.db-wal", "serve.db-journal"] {
        if let Ok(bytes) = std::fs::read(app.db.path().join(file)) {
            hash.update(file.as_bytes());
            hash.update(&bytes);
        }
    }
    hash.finalize().iter().map(|byte| format!("{byte:02x}")).collect()
}

/// Waits until `serve` has done what it does at start (it runs the shipped
/// flows once), so that the real database changes only when asked.
async fn database_settled(app: &App) {
    let mut last = database_hash(app);
    for _ in 0..40 {
        tokio::time::sleep(Duration::from_millis(1000)).await;
        let now = database_hash(app);
        if now == last {
            return;
        }
        last = now;
    }
    panic!("the real database is still changing after 40s");
}

/// Sets `flow`'s cursor of node `changed` three days back, so a run of it
/// finds the simulator's orders after it; returns the cursor's value.
async fn synced_three_days_ago(store: &Store, flow: &str) -> Value {
    let value = json!({"modified_until": (chrono::Utc::now() - chrono::Duration::days(3)).to_rfc3339()});
    let cursor = Cursor {
        platform: "taobao".into(),
        shop: SHOP.into(),
        stream: flow_stream(INCREMENT_STREAM, flow, "changed"),
        value: value.clone(),
    };
    store.save_orders(&[], &[cursor]).await.unwrap();
    value
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_test_run_shows_each_node_and_leaves_the_database_the_cursors_and_webhooks_alone() {
    let app = App::start(Some(EDITOR_TOKEN), None).await;
    database_settled(&app).await;
    let cursor = synced_three_days_ago(&app.store, "taobao-incremental").await;
    let runs_before = app.store.recent_runs(None, 100).await.unwrap().len();
    let before = database_hash(&app);
    // Shop mode: the simulator's orders, two pages, from the real cursor; the
    // windows widened in the text being edited, so two pages hold orders.
    let shipped = std::fs::read_to_string(app.file("taobao-incremental")).unwrap();
    let yaml = shipped.replace("window: 30m", "window: 1d");
    assert_ne!(yaml, shipped);
    let body = json!({"yaml": yaml, "name": "taobao-incremental", "mode": "shop", "pages": 2});
    let response = app.editor(Method::POST, "/api/test-run").json_body(&body).send().await.unwrap();
    let (status, report) = answer(response).await;
    assert_eq!(status, 200, "{report}");
    assert_eq!(report["status"], "succeeded", "{report}");
    let node = |id: &str| report["nodes"].as_array().unwrap().iter().find(|n| n["id"] == id).cloned().unwrap();
    let changed = node("changed");
    assert!(changed["records_out"].as_u64().unwrap() > 0, "{changed}");
    assert!(!changed["records"].as_array().unwrap().is_empty(), "a sample of what it read: {changed}");
    assert!(changed["elapsed_ms"].is_u64(), "{changed}");
    let save = node("save");
    assert_eq!(save["records_in"], changed["records_out"], "every order read reaches the (scratch) save");
    assert!(!report.to_string().contains(APP_SECRET) && !report.to_string().contains(SESSION));

    assert_eq!(database_hash(&app), before, "the real database is byte for byte the same");
    let stream = flow_stream(INCREMENT_STREAM, "taobao-incremental", "changed");
    let after = app.store.load_cursor("taobao", SHOP, &stream).await.unwrap();
    assert_eq!(after, Some(cursor), "the cursor did not move");
    assert_eq!(app.store.recent_runs(None, 100).await.unwrap().len(), runs_before, "no run recorded");

    // Fixtures mode: records stand in for the source, notify only says what it would send.
    let hook = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", hook.local_addr().unwrap());
    let yaml = format!(
        "flow: tryout\nnodes:\n  orders: {{use: read_jsonl, with: {{path: data/orders.jsonl}}}}\n  paid:\n    use: \
         filter\n    input: orders\n    with: {{condition: 'record.payment > 10'}}\n  tell:\n    use: notify\n    \
         input: paid\n    with: {{url: '{url}', secret_env: TRYOUT_SECRET, delivery_key: [tid]}}\n"
    );
    let fixtures = json!({"orders": [{"tid": "1", "payment": 50}, {"tid": "2", "payment": 5}]});
    let body = json!({"yaml": yaml, "mode": "fixtures", "fixtures": fixtures});
    let response = app.editor(Method::POST, "/api/test-run").json_body(&body).send().await.unwrap();
    let (status, report) = answer(response).await;
    assert_eq!(status, 200, "{report}");
    let node = |id: &str| report["nodes"].as_array().unwrap().iter().find(|n| n["id"] == id).cloned().unwrap();
    assert_eq!((node("orders")["fixture"].clone(), node("orders")["records_out"].clone()), (json!(true), json!(2)));
    let paid = node("paid");
    assert_eq!((paid["records_in"].as_u64(), paid["records_out"].as_u64()), (Some(2), Some(1)), "{paid}");
    assert_eq!(paid["records"], json!([{"tid": "1", "payment": 50}]));
    let held = report["webhooks"].as_array().unwrap();
    assert_eq!(held.len(), 1, "{report}");
    assert_eq!((held[0]["node_id"].as_str(), held[0]["url"].as_str()), (Some("tell"), Some(url.as_str())));
    let knocked = tokio::time::timeout(Duration::from_millis(500), hook.accept()).await;
    assert!(knocked.is_err(), "the webhook got a request");

    // A flow that does not compile is refused like a save; so is a source that needs a fixture.
    let body = json!({"yaml": "flow: x\nnodes:\n  a: {use: nope}\n", "mode": "fixtures"});
    let (status, refused) =
        answer(app.editor(Method::POST, "/api/test-run").json_body(&body).send().await.unwrap()).await;
    assert_eq!(status, 422, "{refused}");
    assert_eq!(refused["problems"][0]["node"], "a", "{refused}");
    let body = json!({"yaml": std::fs::read_to_string(app.file("taobao-incremental")).unwrap(), "mode": "fixtures"});
    let (status, refused) =
        answer(app.editor(Method::POST, "/api/test-run").json_body(&body).send().await.unwrap()).await;
    assert_eq!(status, 422, "{refused}");
    assert!(refused["error"].as_str().unwrap().contains("give it a fixture"), "{refused}");

    // It spends the shop's quota: the viewer may not.
    let body = json!({"yaml": yaml, "mode": "fixtures", "fixtures": fixtures});
    let viewer = app.http.post(format!("{}/api/test-run", app.base)).header(CSRF_HEADER, "1").json_body(&body);
    let (status, refused) = answer(viewer.send().await.unwrap()).await;
    assert_eq!(status, 403, "{refused}");
    assert_eq!(database_hash(&app), before, "still the same");
}

/// Runs `npx playwright test` in `web/` against a served editor. Without
/// `web/node_modules` (or Chromium) it is skipped with one line, and fails
/// under `CI`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_browser_specs_pass_against_a_served_editor() {
    let web = Path::new(env!("CARGO_MANIFEST_DIR")).join("web");
    let missing = if !web.join("node_modules").is_dir() {
        Some("web/node_modules is not installed (cd web && npm ci)")
    } else if !Path::new("/usr/bin/chromium").exists() {
        Some("/usr/bin/chromium is not installed")
    } else {
        None
    };
    if let Some(missing) = missing {
        assert!(std::env::var_os("CI").is_none(), "the browser specs cannot run: {missing}");
        use std::io::Write;
        let _ = writeln!(std::io::stderr(), "skipping the editor's browser specs: {missing}");
        return;
    }
    let app = App::start(Some(EDITOR_TOKEN), None).await;
    // For specs that check a saved file with `orderflow validate` and sync
    // the simulated shop with `orderflow run`.
    let config = app.db.path().join("orderflow.yaml");
    let config_text = format!(
        "database: sqlite://{}\nnodes_dir: {}\nshops:\n  {SHOP}:\n    platform: taobao\n    gateway: {}\n    \
         app_key: {}\n    app_secret: ${{ORDERFLOW_TEST_APP_SECRET}}\n    session: ${{ORDERFLOW_TEST_SESSION}}\n    \
         rate_limit_per_min: 1000000\n",
        app.db.path().join("run.db").display(),
        Path::new(env!("CARGO_MANIFEST_DIR")).join("nodes").display(),
        app.rig.sim.gateway_url(),
        SimConfig::default().app_key,
    );
    std::fs::write(&config, config_text).unwrap();
    let status = tokio::process::Command::new("npx")
        .args(["playwright", "test"])
        .current_dir(&web)
        .env("ORDERFLOW_EDITOR_URL", format!("{}/editor/", app.base))
        .env("ORDERFLOW_EDITOR_TOKEN", EDITOR_TOKEN)
        .env("ORDERFLOW_FLOWS_DIR", app.flows.path())
        .env("ORDERFLOW_SIM_URL", app.rig.sim.gateway_url())
        .env("ORDERFLOW_BIN", env!("CARGO_BIN_EXE_orderflow"))
        .env("ORDERFLOW_CONFIG", &config)
        .env("ORDERFLOW_TEST_APP_SECRET", APP_SECRET)
        .env("ORDERFLOW_TEST_SESSION", SESSION)
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .status();
    let status = tokio::time::timeout(Duration::from_secs(600), status)
        .await
        .expect("the browser specs finish within 10 minutes")
        .expect("npx starts");
    assert!(status.success(), "npx playwright test failed: {status}");
    // test-run.spec.ts test-ran `taobao-tryout` against the simulated shop: the real database saw none of it.
    let stream = flow_stream(INCREMENT_STREAM, "taobao-tryout", "changed");
    assert_eq!(app.store.load_cursor("taobao", SHOP, &stream).await.unwrap(), None, "no cursor written");
    assert!(app.store.recent_runs(Some("taobao-tryout"), 10).await.unwrap().is_empty(), "no run recorded");
}

#[tokio::test]
async fn flow_versions_keep_every_save_and_the_newest_draft_on_every_backend() {
    use chrono::{TimeZone, Utc};
    use orderflow::store::FlowVersion;

    for test in support::test_stores().await {
        let store = &test.store;
        let label = test.label;
        let at = Utc.with_ymd_and_hms(2026, 12, 1, 8, 0, 0).unwrap();
        let version = |flow: &str, text: &str, minutes: i64, draft: bool| FlowVersion {
            flow: flow.into(),
            version: files::version_of(text),
            saved_by: "王芳".into(),
            role: "editor".into(),
            saved_at: at + chrono::Duration::minutes(minutes),
            draft,
        };
        assert!(store.flow_versions("orders").await.unwrap().is_empty(), "{label}");
        assert!(store.flow_draft("orders").await.unwrap().is_none(), "{label}");
        let long_text = format!("flow: orders\n# {}\n", "长".repeat(100_000));
        store.record_flow_version(&version("orders", "flow: a\n", 0, false), "flow: a\n").await.unwrap();
        store.record_flow_version(&version("orders", &long_text, 1, true), &long_text).await.unwrap();
        store.record_flow_version(&version("other", "flow: o\n", 2, false), "flow: o\n").await.unwrap();

        let listed = store.flow_versions("orders").await.unwrap();
        assert_eq!(
            listed,
            [version("orders", &long_text, 1, true), version("orders", "flow: a\n", 0, false)],
            "{label}"
        );
        let (draft, text) = store.flow_draft("orders").await.unwrap().expect("the draft");
        assert_eq!((draft.draft, text.as_str()), (true, long_text.as_str()), "{label}: the text survives whole");
        assert_eq!(store.flows_with_drafts().await.unwrap(), ["orders"], "{label}");
        let (first, text) = store.flow_version("orders", &files::version_of("flow: a\n")).await.unwrap().unwrap();
        assert_eq!((first.saved_by.as_str(), text.as_str()), ("王芳", "flow: a\n"), "{label}");
        assert!(store.flow_version("orders", "0000000000000000").await.unwrap().is_none(), "{label}");
        assert!(store.flow_version("other", &files::version_of("flow: a\n")).await.unwrap().is_none(), "{label}");

        // A later save clears the draft; the history keeps it.
        store.record_flow_version(&version("orders", "flow: b\n", 3, false), "flow: b\n").await.unwrap();
        assert!(store.flow_draft("orders").await.unwrap().is_none(), "{label}");
        assert!(store.flows_with_drafts().await.unwrap().is_empty(), "{label}");
        assert_eq!(store.flow_versions("orders").await.unwrap().len(), 3, "{label}");
        test.cleanup().await;
    }
}

#[tokio::test]
async fn an_empty_editor_token_stops_serve_before_it_listens() {
    use orderflow::nodes::{BuildContext, Registry};
    use orderflow::script::{Limits, Sandbox};

    let test = support::sqlite().await;
    let flows = copy_of_flows();
    let env = FlowEnv {
        registry: Registry::builtin(),
        build: BuildContext::new(flows.path(), Sandbox::new(Limits::default())),
        shops: Default::default(),
    };
    let editor = Editor::new(flows.path(), Arc::new(env), test.store.clone(), Some(Secret::new(""))).unwrap();
    let state = WebState {
        store: test.store.clone(),
        catalog: Arc::default(),
        metrics: None,
        token: None,
        editor: Some(Arc::new(editor)),
    };
    let refused = web::serve_on("127.0.0.1:0".parse().unwrap(), state, CancellationToken::new()).await;
    assert!(matches!(refused, Err(web::WebError::EmptyEditorToken)), "{refused:?}");
    assert!(refused.unwrap_err().to_string().contains(EDITOR_TOKEN_VAR));
    test.cleanup().await;
}
