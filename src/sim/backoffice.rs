//! The simulated seller back office: the web pages a merchant without API
//! access reads orders from, over the same shop as the API faces. For the
//! `browser` node and its tests (docs/rpa.md).
//!
//! `GET /backoffice/login` shows a sign-in form; posting [`BACKOFFICE_USER`]
//! and [`BACKOFFICE_PASSWORD`] sets a session cookie and leads to
//! `/backoffice/orders`: every order, by tid, [`PAGE_SIZE`] a page
//! (`?page=N`, optionally `from`/`to` dates, `YYYY-MM-DD`, on `created`), with
//! a "Next" link disabled on the last page. `/backoffice/orders/{tid}` shows
//! one order and its lines. Without a session every page leads to the form.

use std::collections::HashSet;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use axum::Form;
use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::header::{COOKIE, LOCATION, SET_COOKIE};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use chrono::NaiveDate;
use serde::Deserialize;

use super::TruthOrder;
use super::gateway::{Gateway, clock, lock};

/// The back office's user name: a public test value.
pub const BACKOFFICE_USER: &str = "seller";
/// The back office's password: a public test value, like the app secret.
pub const BACKOFFICE_PASSWORD: &str = "sim-backoffice-password";
/// Orders per page of the order list.
pub const PAGE_SIZE: usize = 50;
/// The session cookie's name.
const SESSION_COOKIE: &str = "bo_session";

struct Backoffice {
    gateway: Arc<Gateway>,
    sessions: Mutex<HashSet<String>>,
    logins: Arc<AtomicU64>,
}

/// The back office's routes over `gateway`'s shop; each accepted sign-in
/// adds one to `logins`.
pub(crate) fn router(gateway: Arc<Gateway>, logins: Arc<AtomicU64>) -> Router {
    let state = Arc::new(Backoffice { gateway, sessions: Mutex::new(HashSet::new()), logins });
    Router::new()
        .route("/backoffice/login", get(login_form).post(login))
        .route("/backoffice/orders", get(order_list))
        .route("/backoffice/orders/{tid}", get(order_detail))
        .with_state(state)
}

#[derive(Deserialize)]
struct Credentials {
    username: String,
    password: String,
}

async fn login_form() -> Html<String> {
    Html(page("Sign in", &login_body(None)))
}

fn login_body(refused: Option<&str>) -> String {
    let notice = refused.map(|text| format!("<p class=\"error\">{text}</p>")).unwrap_or_default();
    format!(
        "{notice}<form method=\"post\" action=\"/backoffice/login\">\
         <label>User name <input id=\"username\" name=\"username\"></label>\
         <label>Password <input id=\"password\" name=\"password\" type=\"password\"></label>\
         <button type=\"submit\">Sign in</button></form>"
    )
}

async fn login(State(office): State<Arc<Backoffice>>, Form(credentials): Form<Credentials>) -> Response {
    if credentials.username != BACKOFFICE_USER || credentials.password != BACKOFFICE_PASSWORD {
        let body = page("Sign in", &login_body(Some("Wrong user name or password.")));
        return (StatusCode::UNAUTHORIZED, Html(body)).into_response();
    }
    let session = uuid::Uuid::now_v7().simple().to_string();
    lock(&office.sessions).insert(session.clone());
    office.logins.fetch_add(1, Ordering::Relaxed);
    let cookie = format!("{SESSION_COOKIE}={session}; Path=/backoffice; HttpOnly");
    (StatusCode::SEE_OTHER, [(SET_COOKIE, cookie), (LOCATION, "/backoffice/orders".to_owned())]).into_response()
}

/// Whether the request carries a live session.
fn signed_in(office: &Backoffice, headers: &HeaderMap) -> bool {
    let sessions = lock(&office.sessions);
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.trim().strip_prefix(SESSION_COOKIE)?.strip_prefix('='))
        .any(|session| sessions.contains(session))
}

fn to_login() -> Response {
    (StatusCode::SEE_OTHER, [(LOCATION, "/backoffice/login")]).into_response()
}

#[derive(Deserialize)]
struct ListQuery {
    #[serde(default)]
    page: Option<usize>,
    #[serde(default)]
    from: Option<NaiveDate>,
    #[serde(default)]
    to: Option<NaiveDate>,
}

/// Every order as the back office shows it, by tid.
fn orders(office: &Backoffice) -> Vec<TruthOrder> {
    let shop = lock(&office.gateway.shop);
    let now = clock();
    shop.trades().map(|trade| TruthOrder::new(trade, shop.catalog(), now)).collect()
}

async fn order_list(
    State(office): State<Arc<Backoffice>>,
    headers: HeaderMap,
    Query(query): Query<ListQuery>,
) -> Response {
    if !signed_in(&office, &headers) {
        return to_login();
    }
    let mut shown: Vec<TruthOrder> = orders(&office)
        .into_iter()
        .filter(|o| query.from.is_none_or(|from| o.created.date_naive() >= from))
        .filter(|o| query.to.is_none_or(|to| o.created.date_naive() <= to))
        .collect();
    shown.sort_by_key(|o| o.tid);
    let pages = shown.len().div_ceil(PAGE_SIZE).max(1);
    let current = query.page.unwrap_or(1).clamp(1, pages);
    let mut body = String::from(
        "<table class=\"orders\"><thead><tr><th>Order</th><th>Status</th><th>Type</th><th>Presale</th>\
         <th>Placed</th><th>Changed</th><th>Paid</th><th>Amount</th><th>Buyer</th></tr></thead><tbody>",
    );
    for order in shown.iter().skip((current - 1) * PAGE_SIZE).take(PAGE_SIZE) {
        let _ = write!(
            body,
            "<tr><td class=\"tid\"><a href=\"/backoffice/orders/{tid}\">{tid}</a></td><td class=\"status\">{}</td>\
             <td class=\"type\">{}</td><td class=\"step\">{}</td><td class=\"created\">{}</td>\
             <td class=\"modified\">{}</td><td class=\"paid\">{}</td><td class=\"payment\">{}</td>\
             <td class=\"buyer\">{}</td></tr>",
            order.status,
            order.order_type,
            order.step_trade_status.as_deref().unwrap_or_default(),
            order.created.to_rfc3339(),
            order.modified.to_rfc3339(),
            order.pay_time.map(|t| t.to_rfc3339()).unwrap_or_default(),
            order.payment,
            escape(&order.buyer_nick),
            tid = order.tid,
        );
    }
    body.push_str("</tbody></table>");
    let filter: String = [("from", query.from), ("to", query.to)]
        .iter()
        .filter_map(|(name, date)| date.map(|d| format!("&{name}={d}")))
        .collect();
    let _ = write!(body, "<p class=\"pager\">Page {current} of {pages} ");
    if current < pages {
        let _ = write!(body, "<a class=\"next\" href=\"/backoffice/orders?page={}{filter}\">Next</a>", current + 1);
    } else {
        body.push_str("<a class=\"next\" aria-disabled=\"true\">Next</a>");
    }
    body.push_str("</p>");
    Html(page("Orders", &body)).into_response()
}

async fn order_detail(State(office): State<Arc<Backoffice>>, headers: HeaderMap, Path(tid): Path<i64>) -> Response {
    if !signed_in(&office, &headers) {
        return to_login();
    }
    let Some(order) = orders(&office).into_iter().find(|o| o.tid == tid) else {
        return (StatusCode::NOT_FOUND, Html(page("Not found", "<p>No such order.</p>"))).into_response();
    };
    let mut body = format!(
        "<dl class=\"order\"><dt>Order</dt><dd class=\"tid\">{}</dd><dt>Status</dt><dd class=\"status\">{}</dd>\
         <dt>Buyer</dt><dd class=\"buyer\">{}</dd></dl><table class=\"items\"><tbody>",
        order.tid,
        order.status,
        escape(&order.buyer_nick)
    );
    for item in &order.items {
        let _ = write!(
            body,
            "<tr><td class=\"oid\">{}</td><td class=\"sku\">{}</td><td class=\"num\">{}</td><td class=\"price\">{}</td>\
             <td class=\"payment\">{}</td></tr>",
            item.oid,
            escape(&item.outer_sku_id),
            item.num,
            item.price,
            item.payment
        );
    }
    body.push_str("</tbody></table>");
    Html(page(&format!("Order {tid}"), &body)).into_response()
}

fn page(title: &str, body: &str) -> String {
    format!(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>{title}</title></head><body><h1>{title}</h1>{body}</body></html>"
    )
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sim::{SimConfig, Simulator};

    #[tokio::test]
    async fn a_refused_password_stays_on_the_form_and_pages_need_the_session() {
        let config = SimConfig { seed: 3, orders: 60, days: 10, mutations_per_sec: 0.0, ..SimConfig::default() };
        let sim = Simulator::start(config, "127.0.0.1:0".parse().unwrap()).await.unwrap();
        let base = format!("http://{}/backoffice", sim.addr());
        let client = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();

        let list = client.get(format!("{base}/orders")).send().await.unwrap();
        assert_eq!(list.status(), StatusCode::SEE_OTHER);
        assert_eq!(list.headers()[LOCATION], "/backoffice/login");

        let form = [("username", BACKOFFICE_USER), ("password", "wrong")];
        let refused = client.post(format!("{base}/login")).form(&form).send().await.unwrap();
        assert_eq!(refused.status(), StatusCode::UNAUTHORIZED);
        assert!(refused.text().await.unwrap().contains("Wrong user name or password."));
        assert_eq!(sim.backoffice_logins(), 0);

        let form = [("username", BACKOFFICE_USER), ("password", BACKOFFICE_PASSWORD)];
        let accepted = client.post(format!("{base}/login")).form(&form).send().await.unwrap();
        let cookie = accepted.headers()[SET_COOKIE].to_str().unwrap().split(';').next().unwrap().to_owned();
        let second = client.get(format!("{base}/orders?page=2")).header(COOKIE, &cookie).send().await.unwrap();
        let html = second.text().await.unwrap();
        assert_eq!(html.matches("<td class=\"tid\">").count(), 10, "60 orders: 50, then 10");
        assert!(html.contains("Page 2 of 2 <a class=\"next\" aria-disabled=\"true\">"), "{html}");
        assert_eq!(sim.backoffice_logins(), 1);
    }
}
