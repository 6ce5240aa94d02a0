//! Makes up the shop: a catalogue of about 40 SKUs, buyers, and `orders`
//! orders over `days` days before the anchor, each with a planned life
//! (payment, shipping, confirmation, refunds) of which the steps before the
//! anchor have happened.
//!
//! The past is played with the same transitions that live mutations use
//! (`mutate.rs`), so a generated order is always one the simulator could
//! have reached by itself. All randomness comes from one seeded ChaCha8
//! stream drawn in a fixed order: the same seed and config give the same shop
//! relative to the anchor (as long as the anchor falls on the same weekday,
//! which drives the weekly seasonality).

use chrono::{DateTime, Datelike, Duration, FixedOffset, Utc};
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::model::{Item, Parcel, Receiver, Refund, RefundStatus, Sku, StepStatus, TraceStep, Trade, TradeType};

/// Products: title, category id, base price in fen, and the SKU variants.
const PRODUCTS: &[(&str, i64, i64, &[&str])] = &[
    (
        "纯棉圆领短袖T恤 男女同款",
        50000436,
        5900,
        &["颜色分类:白色;尺码:M", "颜色分类:白色;尺码:L", "颜色分类:黑色;尺码:M", "颜色分类:黑色;尺码:L"],
    ),
    ("316不锈钢保温杯 500ml", 50012450, 8900, &["颜色分类:雾霾蓝", "颜色分类:奶油白", "颜色分类:曜石黑"]),
    ("无线蓝牙耳机 降噪版", 50005050, 19900, &["颜色分类:白色", "颜色分类:黑色", "套餐类型:标配+保护套"]),
    ("加厚珊瑚绒毛毯", 50008280, 6900, &["尺寸:100x150cm", "尺寸:150x200cm", "尺寸:200x230cm"]),
    ("明前龙井绿茶", 50013000, 12800, &["规格:50g试饮装", "规格:250g罐装", "规格:500g礼盒"]),
    ("儿童益智拼装积木 300粒", 50012770, 9900, &["颜色分类:城市系列", "颜色分类:农场系列", "颜色分类:太空系列"]),
    ("运动速干跑步袜 3双装", 50011740, 2990, &["尺码:35-39", "尺码:40-44", "尺码:45-47"]),
    ("北欧陶瓷餐具套装", 50002809, 15900, &["套餐类型:2人食", "套餐类型:4人食", "套餐类型:6人食"]),
    (
        "液态硅胶手机壳",
        50023725,
        1990,
        &["适用型号:iPhone 15", "适用型号:iPhone 15 Pro", "适用型号:Mate 60", "适用型号:小米14"],
    ),
    ("氨基酸洁面乳 120g", 50011977, 7900, &["规格:120g", "规格:120g*2支"]),
    ("家用折叠收纳箱", 50016360, 3900, &["容量:30L", "容量:55L", "容量:80L"]),
    ("即食燕麦片 1kg", 50050368, 3500, &["口味:原味", "口味:水果坚果", "口味:低糖可可", "规格:1kg*2袋"]),
    ("全价成猫粮 2kg", 50006095, 8800, &["口味:鸡肉味", "口味:三文鱼味", "规格:2kg*2袋"]),
];

/// Province, city, district, zip.
const PLACES: &[(&str, &str, &str, &str)] = &[
    ("浙江省", "杭州市", "西湖区", "310012"),
    ("浙江省", "宁波市", "鄞州区", "315100"),
    ("上海", "上海市", "浦东新区", "200120"),
    ("北京", "北京市", "朝阳区", "100020"),
    ("广东省", "广州市", "天河区", "510630"),
    ("广东省", "深圳市", "南山区", "518052"),
    ("江苏省", "南京市", "鼓楼区", "210008"),
    ("江苏省", "苏州市", "工业园区", "215021"),
    ("四川省", "成都市", "武侯区", "610041"),
    ("湖北省", "武汉市", "洪山区", "430070"),
    ("山东省", "青岛市", "市南区", "266001"),
    ("福建省", "厦门市", "思明区", "361001"),
    ("陕西省", "西安市", "雁塔区", "710061"),
    ("河南省", "郑州市", "金水区", "450000"),
];

const SURNAMES: &[&str] =
    &["王", "李", "张", "刘", "陈", "杨", "黄", "赵", "吴", "周", "徐", "孙", "马", "朱", "胡", "林"];
const GIVEN: &[&str] =
    &["伟", "芳", "娜", "敏", "静", "磊", "洋", "艳", "勇", "军", "杰", "娟", "涛", "明", "超", "霞", "晓燕", "子涵"];
const STREETS: &[&str] =
    &["文三路", "人民路", "解放路", "中山路", "建设路", "学院路", "科技园路", "滨江大道", "长江路"];
const NICK_WORDS: &[&str] = &["小鱼儿", "快乐的猫", "晴天", "阿狸", "木子", "星星点灯", "橘子汽水", "一只胖虎"];
const NICK_LATIN: &[&str] = &["sunny", "xiaoming", "lele", "momo", "tiantian", "joy", "amy_chen", "kevin", "lucky"];
const BUYER_MESSAGES: &[&str] =
    &["请尽快发货，谢谢", "不要放快递柜，放门卫", "送人的，不要放价格单", "周末才在家，工作日别送", "麻烦发顺丰"];
const SELLER_MEMOS: &[&str] = &["已核实地址", "老客户，送小样", "优先发货", "缺货，延迟发货已告知买家", "改发中通"];
const REFUND_REASONS: &[&str] =
    &["不想要了", "尺码拍错", "商品质量问题", "少件/漏发", "与商品描述不符", "快递一直未送达"];
/// Carriers and a waybill prefix each.
const CARRIERS: &[(&str, &str)] = &[
    ("中通快递", "7"),
    ("圆通速递", "YT"),
    ("韵达快递", "43"),
    ("申通快递", "77"),
    ("顺丰速运", "SF"),
    ("极兔速递", "JT"),
];
const HUBS: &[&str] = &["杭州转运中心", "上海转运中心", "广州转运中心", "武汉转运中心", "郑州转运中心", "成都转运中心"];

/// The shop as generated.
pub(crate) struct Generated {
    pub catalog: Vec<Sku>,
    pub trades: Vec<Trade>,
    pub refunds: Vec<Refund>,
    /// The last tid handed out; new orders continue above it.
    pub last_tid: i64,
    /// The last refund id handed out.
    pub last_refund_id: i64,
}

/// The first tid: above 2^53, as real tids are, so that a client that reads
/// ids through f64 fails at once.
const TID_BASE: i64 = 3_900_000_000_000_000_000;
const REFUND_ID_BASE: i64 = 210_000_000_000_000_000;

fn gmt8() -> FixedOffset {
    // 8 hours is within FixedOffset's ±24 h range.
    FixedOffset::east_opt(8 * 3600).expect("GMT+8 is a valid offset")
}

/// Monday = 0 … Sunday = 6, in Beijing.
fn weekday(at: DateTime<Utc>) -> usize {
    at.with_timezone(&gmt8()).weekday().num_days_from_monday() as usize
}

fn secs(rng: &mut ChaCha8Rng, lo: i64, hi: i64) -> Duration {
    Duration::seconds(rng.random_range(lo..hi))
}

const MIN: i64 = 60;
const HOUR: i64 = 3600;
const DAY: i64 = 86_400;

/// Generates the shop for `seed`: `orders` orders over the `days` days before
/// `anchor`.
pub(crate) fn generate(seed: u64, orders: usize, days: u32, anchor: DateTime<Utc>) -> Generated {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let catalog = catalog(&mut rng);
    let days = i64::from(days.max(1));

    // Weekends sell about 40 % more; the weight of day k (k days back) uses
    // the weekday at the middle of its 24 hours.
    let weights: Vec<f64> = (0..days)
        .map(|k| {
            let middle = anchor - Duration::seconds(k * DAY + DAY / 2);
            if weekday(middle) >= 5 { 1.4 } else { 1.0 }
        })
        .collect();
    let cumulative = running_sum(&weights);
    let mut created: Vec<DateTime<Utc>> = (0..orders)
        .map(|_| {
            let k = pick_weighted(&cumulative, rng.random_range(0.0..1.0)) as i64;
            anchor - Duration::seconds(k * DAY) - secs(&mut rng, 1, DAY + 1)
        })
        .collect();
    created.sort_unstable();

    let mut last_tid = TID_BASE + rng.random_range(0..100_000_000_000_000);
    let mut last_refund_id = REFUND_ID_BASE + rng.random_range(0..10_000_000_000);
    let mut trades = Vec::with_capacity(orders);
    let mut refunds = Vec::new();
    for at in created {
        last_tid = next_id(&mut rng, last_tid);
        let kind = match rng.random_range(0..100) {
            0..9 => TradeType::Step,
            9..12 => TradeType::Fenxiao,
            _ => TradeType::Fixed,
        };
        let mut trade = new_trade(&mut rng, &catalog, last_tid, at, kind);
        let plan = plan_life(&mut rng, &trade);
        for (when, event) in plan {
            if when > anchor {
                break;
            }
            play(&mut rng, &mut trade, &mut refunds, &mut last_refund_id, event, when);
        }
        trades.push(trade);
    }
    Generated { catalog, trades, refunds, last_tid, last_refund_id }
}

/// The next id after `last`: gaps like real ids, wide enough that a trade's
/// oids (tid + 1 …) never reach the next tid.
pub(crate) fn next_id(rng: &mut ChaCha8Rng, last: i64) -> i64 {
    last + rng.random_range(1_000..2_000_000)
}

fn running_sum(weights: &[f64]) -> Vec<f64> {
    let total: f64 = weights.iter().sum();
    let mut sum = 0.0;
    weights
        .iter()
        .map(|w| {
            sum += w / total;
            sum
        })
        .collect()
}

/// The index whose cumulative share first reaches `u` (in `0..1`).
fn pick_weighted(cumulative: &[f64], u: f64) -> usize {
    cumulative.partition_point(|c| *c <= u).min(cumulative.len().saturating_sub(1))
}

fn catalog(rng: &mut ChaCha8Rng) -> Vec<Sku> {
    let mut skus = Vec::new();
    for (p, (title, cid, base, variants)) in PRODUCTS.iter().enumerate() {
        let num_iid = 600_000_000_000 + p as i64 * 73_129_857 + rng.random_range(0..1_000_000);
        for (v, properties) in variants.iter().enumerate() {
            // Larger variants cost more; prices end in .90 like shop prices do.
            let price = ((base + base * v as i64 / 4) / 100).max(1) * 100 - 10;
            skus.push(Sku {
                num_iid,
                sku_id: 5_000_000_000_000 + rng.random_range(0..900_000_000_000),
                outer_iid: format!("SP{p:03}"),
                outer_sku_id: format!("SP{p:03}-{v:02}"),
                title: (*title).to_owned(),
                properties: (*properties).to_owned(),
                price,
                cid: *cid,
                popularity: 0.0,
                weekday: std::array::from_fn(|_| rng.random_range(0.7..1.3)),
            });
        }
    }
    // A few best sellers and a long tail: Zipf-like over a shuffled rank.
    let mut ranks: Vec<usize> = (0..skus.len()).collect();
    for i in (1..ranks.len()).rev() {
        ranks.swap(i, rng.random_range(0..=i));
    }
    for (sku, rank) in skus.iter_mut().zip(ranks) {
        sku.popularity = 1.0 / ((rank + 1) as f64).powf(0.8);
    }
    skus
}

fn pick<'a>(rng: &mut ChaCha8Rng, from: &[&'a str]) -> &'a str {
    from[rng.random_range(0..from.len())]
}

fn buyer_nick(rng: &mut ChaCha8Rng) -> String {
    match rng.random_range(0..3) {
        0 => format!("tb{}", rng.random_range(1_000_000..9_999_999)),
        1 => format!("{}{}", pick(rng, NICK_LATIN), rng.random_range(1..999)),
        _ => format!("{}{}", pick(rng, NICK_WORDS), rng.random_range(10..9999)),
    }
}

fn receiver(rng: &mut ChaCha8Rng) -> Receiver {
    let (state, city, district, zip) = PLACES[rng.random_range(0..PLACES.len())];
    let name = format!("{}{}", pick(rng, SURNAMES), pick(rng, GIVEN));
    let mut address = format!("{}{}号", pick(rng, STREETS), rng.random_range(1..999));
    if rng.random_bool(0.6) {
        address.push_str(&format!(
            "{}幢{}单元{}室",
            rng.random_range(1..30),
            rng.random_range(1..6),
            rng.random_range(101..2801)
        ));
    }
    let mobile =
        format!("1{}{}****{:04}", rng.random_range(3..9), rng.random_range(0..10), rng.random_range(0..10_000));
    Receiver { name, mobile, state, city, district, address, zip }
}

/// A new order placed at `created`: waiting for payment (for a presale, for
/// the deposit), with 1–3 lines chosen by popularity and the weekday.
pub(crate) fn new_trade(
    rng: &mut ChaCha8Rng,
    catalog: &[Sku],
    tid: i64,
    created: DateTime<Utc>,
    kind: TradeType,
) -> Trade {
    let day = weekday(created);
    let weights: Vec<f64> = catalog.iter().map(|s| s.popularity * s.weekday[day]).collect();
    let cumulative = running_sum(&weights);
    let lines = match rng.random_range(0..100) {
        0..65 => 1,
        65..90 => 2,
        _ => 3,
    };
    let mut items: Vec<Item> = Vec::with_capacity(lines);
    while items.len() < lines {
        let sku = pick_weighted(&cumulative, rng.random_range(0.0..1.0));
        if items.iter().any(|i| i.sku == sku) {
            continue;
        }
        let num = match rng.random_range(0..100) {
            0..80 => 1,
            80..95 => 2,
            _ => 3,
        };
        items.push(Item {
            oid: tid + 1 + items.len() as i64,
            sku,
            num,
            price: catalog[sku].price,
            discount: 0,
            adjust: 0,
            refund_id: None,
            refund_status: None,
            end_time: None,
        });
    }
    // A shop coupon on about a third of the orders, taken off the first line.
    if rng.random_bool(0.3) {
        let coupon = [500, 1000, 2000][rng.random_range(0..3)];
        let first = &mut items[0];
        first.discount = coupon.min(first.price * first.num - 100).max(0);
    }
    let post_fee = if rng.random_bool(0.8) { 0 } else { [600, 800, 1000][rng.random_range(0..3)] };
    let mut trade = Trade {
        tid,
        kind,
        status: super::model::Status::WaitBuyerPay,
        step: (kind == TradeType::Step).then_some(StepStatus::NothingPaid),
        created,
        modified: created,
        pay_time: None,
        consign_time: None,
        end_time: None,
        buyer_nick: buyer_nick(rng),
        receiver: receiver(rng),
        buyer_message: rng.random_bool(0.15).then(|| pick(rng, BUYER_MESSAGES).to_owned()),
        seller_memo: None,
        seller_flag: 0,
        post_fee,
        deposit: 0,
        alipay_no: format!("2026{:024}", rng.random_range(0..i64::MAX)),
        trade_from: if rng.random_bool(0.85) { "WAP,WAP" } else { "TAOBAO" },
        items,
        parcel: None,
    };
    // Presale deposits are a fifth of the price, in whole yuan.
    trade.deposit = (trade.payment() / 5 / 100).max(1) * 100;
    trade
}

/// A parcel shipped at `at`: picked up within hours, through 2–4 hubs,
/// delivered and signed for within a few days. About 6 % stall after a hub
/// and never move again.
pub(crate) fn plan_parcel(rng: &mut ChaCha8Rng, at: DateTime<Utc>) -> Parcel {
    let (company, prefix) = CARRIERS[rng.random_range(0..CARRIERS.len())];
    let out_sid = format!("{prefix}{}", rng.random_range(100_000_000_000i64..999_999_999_999));
    let mut steps = Vec::new();
    let mut when = at + secs(rng, HOUR, 8 * HOUR);
    let city = PLACES[rng.random_range(0..PLACES.len())].1;
    steps.push(TraceStep { at: when, desc: format!("【{city}】{company} 已揽收"), action: "ACCEPT" });
    let hubs = rng.random_range(2..5);
    let stall_after = rng.random_bool(0.06).then(|| rng.random_range(1..=hubs));
    for hop in 1..=hubs {
        when += secs(rng, 4 * HOUR, 20 * HOUR);
        let hub = pick(rng, HUBS);
        steps.push(TraceStep { at: when, desc: format!("快件已到达【{hub}】"), action: "TRANSPORT" });
        if stall_after == Some(hop) {
            return Parcel { company, out_sid, steps };
        }
    }
    when += secs(rng, 4 * HOUR, 16 * HOUR);
    let courier = pick(rng, SURNAMES);
    steps.push(TraceStep {
        at: when,
        desc: format!("快件正在派送中，派件员：{courier}师傅，电话：1{}********", rng.random_range(30..90)),
        action: "DELIVERING",
    });
    when += secs(rng, HOUR, 6 * HOUR);
    steps.push(TraceStep {
        at: when, desc: "快件已签收，签收人：本人，感谢使用".to_owned(), action: "SIGN"
    });
    Parcel { company, out_sid, steps }
}

/// A reason for a refund.
pub(crate) fn refund_reason(rng: &mut ChaCha8Rng) -> &'static str {
    pick(rng, REFUND_REASONS)
}

/// What an open refund becomes next: sellers mostly agree, buyers mostly
/// send the goods back.
pub(crate) fn next_refund_status(rng: &mut ChaCha8Rng, refund: &Refund) -> RefundStatus {
    use RefundStatus::*;
    match refund.status {
        WaitSellerAgree if refund.has_good_return => {
            if rng.random_bool(0.85) {
                WaitBuyerReturnGoods
            } else {
                SellerRefuseBuyer
            }
        }
        WaitSellerAgree => {
            if rng.random_bool(0.8) {
                Success
            } else {
                SellerRefuseBuyer
            }
        }
        WaitBuyerReturnGoods => {
            if rng.random_bool(0.9) {
                WaitSellerConfirmGoods
            } else {
                Closed
            }
        }
        WaitSellerConfirmGoods => Success,
        SellerRefuseBuyer | Closed | Success => Closed,
    }
}

/// A seller's memo.
pub(crate) fn seller_memo(rng: &mut ChaCha8Rng) -> String {
    pick(rng, SELLER_MEMOS).to_owned()
}

/// One step of an order's planned life.
enum Event {
    Pay,
    Close,
    AdjustFee(i64),
    Memo(String),
    Ship(Parcel),
    Finish,
    OpenRefund { item: usize, return_goods: bool, reason: &'static str },
    AdvanceRefund,
}

/// Plans an order's whole life from its creation, in time order.
fn plan_life(rng: &mut ChaCha8Rng, trade: &Trade) -> Vec<(DateTime<Utc>, Event)> {
    let created = trade.created;
    let mut plan = Vec::new();
    if rng.random_bool(0.1) {
        plan.push((created + secs(rng, MIN, 3 * DAY), Event::Memo(seller_memo(rng))));
    }
    // Payment: a presale pays a deposit, then the rest days later.
    let paid_at = if trade.kind == TradeType::Step {
        if rng.random_bool(0.05) {
            plan.push((created + secs(rng, HOUR, DAY), Event::Close));
            return sorted(plan);
        }
        let front = created + secs(rng, 10, 20 * MIN);
        plan.push((front, Event::Pay));
        if rng.random_bool(0.12) {
            plan.push((front + Duration::days(15), Event::Close));
            return sorted(plan);
        }
        let last = front + secs(rng, DAY, 12 * DAY);
        plan.push((last, Event::Pay));
        last
    } else {
        if rng.random_bool(0.06) {
            plan.push((created + secs(rng, 20 * MIN, DAY), Event::Close));
            return sorted(plan);
        }
        let delay = if rng.random_bool(0.9) { secs(rng, 10, 30 * MIN) } else { secs(rng, 30 * MIN, 20 * HOUR) };
        if rng.random_bool(0.05) {
            let cut = -100 * rng.random_range(1..20);
            plan.push((created + delay / 2, Event::AdjustFee(cut)));
        }
        plan.push((created + delay, Event::Pay));
        created + delay
    };
    let ship_at =
        paid_at + if rng.random_bool(0.96) { secs(rng, HOUR, 36 * HOUR) } else { secs(rng, 3 * DAY, 7 * DAY) };
    let parcel = plan_parcel(rng, ship_at);
    let signed = parcel.steps.last().filter(|s| s.action == "SIGN").map(|s| s.at);
    let auto_confirm = ship_at + Duration::days(10);
    let finish_at = signed.map_or(auto_confirm, |at| (at + secs(rng, 2 * HOUR, 5 * DAY)).min(auto_confirm));
    plan.push((ship_at, Event::Ship(parcel)));
    plan.push((finish_at, Event::Finish));
    if rng.random_bool(0.07) {
        let mut at = paid_at + secs(rng, 10 * MIN, 14 * DAY);
        let item = rng.random_range(0..trade.items.len());
        let return_goods = at > ship_at && rng.random_bool(0.6);
        plan.push((at, Event::OpenRefund { item, return_goods, reason: refund_reason(rng) }));
        for _ in 0..4 {
            at += secs(rng, 2 * HOUR, 2 * DAY);
            plan.push((at, Event::AdvanceRefund));
        }
    }
    sorted(plan)
}

fn sorted(mut plan: Vec<(DateTime<Utc>, Event)>) -> Vec<(DateTime<Utc>, Event)> {
    plan.sort_by_key(|(at, _)| *at);
    plan
}

/// Plays one planned event, if the order can still take it (a refund that
/// closed the order cancels its shipping, for instance).
fn play(
    rng: &mut ChaCha8Rng,
    trade: &mut Trade,
    refunds: &mut Vec<Refund>,
    last_refund_id: &mut i64,
    event: Event,
    at: DateTime<Utc>,
) {
    match event {
        Event::Pay => {
            trade.pay(at);
        }
        Event::Close => {
            trade.close(at);
        }
        Event::AdjustFee(delta) => {
            trade.adjust_fee(delta, at);
        }
        Event::Memo(memo) => {
            trade.set_memo(memo, at);
        }
        Event::Ship(parcel) => {
            trade.ship(parcel, at);
        }
        Event::Finish => {
            trade.finish(at);
        }
        Event::OpenRefund { item, return_goods, reason } => {
            let id = next_id(rng, *last_refund_id);
            if let Some(refund) = trade.open_refund(item, id, return_goods, reason, at) {
                *last_refund_id = id;
                refunds.push(refund);
            }
        }
        Event::AdvanceRefund => {
            let Some(refund) = refunds.last_mut().filter(|r| r.tid == trade.tid && r.status.is_open()) else {
                return;
            };
            let next = next_refund_status(rng, refund);
            trade.advance_refund(refund, next, at);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sim::model::Status;
    use chrono::TimeZone;

    fn anchor() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 3, 18, 6, 30, 0).single().expect("valid")
    }

    #[test]
    fn the_catalogue_has_about_forty_skus() {
        let shop = generate(1, 10, 1, anchor());
        assert!((38..=42).contains(&shop.catalog.len()), "{}", shop.catalog.len());
    }

    #[test]
    fn orders_are_consistent_with_their_age() {
        let shop = generate(42, 3000, 90, anchor());
        let mut tids: Vec<i64> = shop.trades.iter().map(|t| t.tid).collect();
        tids.dedup();
        assert_eq!(tids.len(), 3000, "tids are unique and increasing");
        for t in &shop.trades {
            assert!(t.tid > 1 << 53);
            assert!(t.created <= t.modified && t.modified <= anchor(), "{}", t.tid);
            if let Some(paid) = t.pay_time {
                assert!(t.created <= paid && paid <= t.modified);
            }
            assert!((1..=3).contains(&t.items.len()));
        }
        let old: Vec<&Trade> = shop.trades.iter().filter(|t| anchor() - t.created > Duration::days(30)).collect();
        let finished = old.iter().filter(|t| t.status == Status::TradeFinished).count();
        assert!(finished * 10 > old.len() * 7, "old orders are mostly finished: {finished}/{}", old.len());
        let recent: Vec<&Trade> = shop.trades.iter().filter(|t| anchor() - t.created < Duration::hours(12)).collect();
        assert!(recent.iter().any(|t| t.status == Status::WaitBuyerPay));
        assert!(recent.iter().any(|t| t.status == Status::WaitSellerSendGoods));
        for kind in TradeType::ALL {
            assert!(shop.trades.iter().any(|t| t.kind == kind), "{kind:?}");
        }
        assert!(!shop.refunds.is_empty());
        let stalled = shop.trades.iter().filter(|t| {
            t.status == Status::WaitBuyerConfirmGoods
                && t.parcel.as_ref().is_some_and(|p| p.steps.iter().all(|s| s.action != "SIGN"))
                && t.parcel.as_ref().and_then(|p| p.steps.last()).is_some_and(|s| anchor() - s.at > Duration::hours(72))
        });
        assert!(stalled.count() > 0, "some parcels are stalled for more than 72 h");
    }

    #[test]
    fn weekends_sell_more() {
        let shop = generate(3, 20_000, 84, anchor());
        let mut per_weekday = [0usize; 7];
        for t in &shop.trades {
            per_weekday[weekday(t.created)] += 1;
        }
        let weekday_avg = per_weekday[..5].iter().sum::<usize>() as f64 / 5.0;
        let weekend_avg = per_weekday[5..].iter().sum::<usize>() as f64 / 2.0;
        assert!(weekend_avg > weekday_avg * 1.2, "{per_weekday:?}");
    }
}
