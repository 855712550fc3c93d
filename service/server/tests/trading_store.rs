//! The trading store on SQLite and PostgreSQL (`VOLTA_TEST_POSTGRES_URL`):
//! a market driven by a few hundred generated orders, each call's changes
//! written as the service writes them, then rebuilt from the store alone
//! must hold the same book and match the next orders exactly as the market
//! that ran; orders read back as written, client keys find their orders,
//! pages and the trade tape come in order, and no tenant sees another's.

mod support;

use jiff::{SignedDuration, Timestamp};
use volta_contracts::{Energy, PartyId};
use volta_server::store::trading::{OrderFilter, TradingStore as _, client_key};
use volta_server::store::{Store, StoreError};
use volta_trading::order::Shape;
use volta_trading::welfare::{Line, Network};
use volta_trading::{Kind, Market, MarketRules, Matching, NewOrder, OrderState, Price, Pricing, Side, TimeInForce};

const TENANT: &str = "acme";

fn rules() -> MarketRules {
    MarketRules {
        time_zone: "Europe/Berlin".into(),
        interval_minutes: 15,
        gate_opens_before: SignedDuration::from_hours(48),
        gate_closes_before: SignedDuration::from_mins(5),
        min_price: "-0.5".parse().expect("price"),
        max_price: "4".parse().expect("price"),
        matching: Matching::Continuous,
        grid_fee: Price::ZERO,
        network: None,
        day_ahead_gate: None,
    }
}

fn at(text: &str) -> Timestamp {
    text.parse().expect("instant")
}

/// A small deterministic generator (no dependency, the same on every run).
struct Lcg(u64);

impl Lcg {
    fn next(&mut self, n: u64) -> u64 {
        self.0 = self.0.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
        (self.0 >> 33) % n
    }
}

/// Order `k` of the generated flow: two products, six participants,
/// prices around 0.20, every kind of order.
fn generated(rng: &mut Lcg, k: usize) -> NewOrder {
    let start = if rng.next(2) == 0 { at("2024-06-01T10:00:00Z") } else { at("2024-06-01T10:15:00Z") };
    let side = if rng.next(2) == 0 { Side::Buy } else { Side::Sell };
    let price = Price::from_micros(150_000 + i64::try_from(rng.next(11)).expect("small") * 10_000);
    let kind = match rng.next(10) {
        0 => Kind::Market,
        1 => Kind::Limit { price, time_in_force: TimeInForce::Ioc },
        2 => Kind::Limit { price, time_in_force: TimeInForce::Fok },
        _ => Kind::Limit { price, time_in_force: TimeInForce::Gtc },
    };
    NewOrder {
        client_order_id: format!("c{k}"),
        participant: PartyId::new(format!("p{}", rng.next(6))).expect("id"),
        delivery_start: start,
        side,
        kind,
        quantity: Energy::from_wh(250 * (1 + i64::try_from(rng.next(8)).expect("small"))),
        node: None,
        shape: None,
    }
}

async fn exercise(store: &Store) {
    let now = at("2024-06-01T08:00:00Z");
    let (record, created) = store.create_market(TENANT, "park", &rules(), now).await.expect("market");
    assert!(created);
    assert_eq!(record.rules, rules());
    let (_, again) = store.create_market(TENANT, "park", &rules(), now).await.expect("again");
    assert!(!again);
    assert!(store.market("globex", "park").await.expect("read").is_none(), "another tenant's market");

    let park = store.lead(TENANT, "park").await.expect("lead").expect("free");
    let mut live = Market::new(rules(), 0, 0).expect("market");
    let mut rng = Lcg(7);
    for k in 0..400 {
        let changes = live.submit(generated(&mut rng, k), now).expect("submit");
        store.apply(TENANT, "park", park.epoch, &changes, now).await.expect("apply");
        // A few cancellations and reductions along the way.
        if k % 37 == 5
            && let Some(id) = (1..=live.last_order()).rev().find(|id| live.open(*id).is_some())
        {
            let cancelled = live.cancel(id).expect("cancel");
            let changes = volta_trading::Changes { orders: vec![cancelled], ..Default::default() };
            store.apply(TENANT, "park", park.epoch, &changes, now).await.expect("apply");
        }
    }
    let snapshot = store.snapshot(TENANT, "park").await.expect("snapshot");
    assert_eq!(snapshot.last_order, live.last_order());
    assert_eq!(snapshot.resting.len(), live.resting());
    for entry in &snapshot.resting {
        assert_eq!(Some(entry), live.open(entry.order.id), "order {} as stored", entry.order.id);
    }
    let mut rebuilt = Market::new(rules(), snapshot.last_order, snapshot.last_trade).expect("market");
    for entry in snapshot.resting {
        rebuilt.restore(entry).expect("restore");
    }
    for start in [at("2024-06-01T10:00:00Z"), at("2024-06-01T10:15:00Z")] {
        assert_eq!(rebuilt.depth(start, 100), live.depth(start, 100));
    }
    for k in 400..450 {
        let order = generated(&mut rng, k);
        assert_eq!(rebuilt.submit(order.clone(), now), live.submit(order, now), "order {k}");
    }

    // Every trade is on the tape once, in order; an order's filled energy
    // is the sum of its trades.
    let mut tape = Vec::new();
    let mut after = 0;
    loop {
        let page = store.trades(TENANT, "park", after, 97).await.expect("trades");
        let Some(last) = page.last() else { break };
        after = last.id;
        tape.extend(page);
    }
    assert!(tape.len() > 100, "the flow should trade: {}", tape.len());
    assert!(tape.iter().enumerate().all(|(i, t)| t.id == i as u64 + 1));
    let some = &tape[tape.len() / 2];
    let buyer = store.order(TENANT, "park", some.trade.buy).await.expect("read").expect("buyer");
    let traded: i64 = tape
        .iter()
        .filter(|t| t.trade.buy == buyer.order.id || t.trade.sell == buyer.order.id)
        .map(|t| t.trade.quantity.wh())
        .sum();
    assert_eq!(buyer.filled.wh(), traded);
    let made = store.trades_made_by(TENANT, "park", some.trade.buy).await.expect("made");
    assert!(made.iter().all(|t| t.trade.buy == some.trade.buy && t.aggressor == Some(Side::Buy)));

    // Client keys find their orders; pages come newest first without overlap.
    let keys = vec![client_key(&buyer.order.participant, &buyer.client_order_id), "p1:no-such".to_owned()];
    let found = store.orders_by_key(TENANT, "park", &keys).await.expect("keys");
    assert_eq!(found, std::slice::from_ref(&buyer));
    let open = store.open_keys(TENANT, "park", now).await.expect("open keys");
    assert_eq!(open.len(), 400);
    assert!(open.contains(&(keys[0].clone(), buyer.delivery_start)));
    let later = store.open_keys(TENANT, "park", at("2024-06-01T10:00:00Z")).await.expect("open keys");
    assert!(later.iter().all(|(_, start)| *start == at("2024-06-01T10:15:00Z")) && later.len() < 400);
    let mut ids = Vec::new();
    let mut filter = OrderFilter::default();
    loop {
        let page = store.orders(TENANT, "park", &filter, 64).await.expect("page");
        let Some(last) = page.last() else { break };
        filter.before = Some(last.order.id);
        ids.extend(page.iter().map(|e| e.order.id));
    }
    assert_eq!(ids, (1..=400).rev().collect::<Vec<u64>>());
    let p1 = PartyId::new("p1").expect("id");
    let resting = OrderFilter { participant: Some(p1.clone()), resting_only: true, before: None };
    let mine = store.orders(TENANT, "park", &resting, 1000).await.expect("p1");
    assert!(mine.iter().all(|e| e.order.participant == p1 && e.state == OrderState::Resting));
    assert!(store.order("globex", "park", 1).await.expect("read").is_none(), "another tenant's order");
    assert!(store.trades("globex", "park", 0, 10).await.expect("read").is_empty());
    assert_eq!(store.busy_markets().await.expect("busy"), [(TENANT.to_owned(), "park".to_owned())]);

    // A call market: its orders rest, its gate closes, and the auction's
    // fills, trades (no aggressor) and result are stored together; after
    // that, nothing of it rests.
    let call = MarketRules { matching: Matching::Call(Pricing::PayAsBid), ..rules() };
    store.create_market(TENANT, "call", &call, now).await.expect("call market");
    let leader = store.lead(TENANT, "call").await.expect("lead").expect("free");
    let mut market = Market::new(call.clone(), 0, 0).expect("market");
    let mut rng = Lcg(11);
    for k in 0..60 {
        let mut order = generated(&mut rng, k);
        if let Kind::Limit { time_in_force, .. } = &mut order.kind {
            *time_in_force = TimeInForce::Gtc;
        }
        let changes = market.submit(order, now).expect("submit");
        assert!(changes.trades.is_empty());
        store.apply(TENANT, "call", leader.epoch, &changes, now).await.expect("apply");
    }
    let busy = store.busy_markets().await.expect("busy");
    assert_eq!(busy.len(), 2);
    let snapshot = store.snapshot(TENANT, "call").await.expect("snapshot");
    assert_eq!(snapshot.resting.len(), 60);
    let mut rebuilt = Market::new(call, snapshot.last_order, snapshot.last_trade).expect("market");
    for entry in snapshot.resting {
        rebuilt.restore(entry).expect("restore");
    }
    let gate = at("2024-06-01T09:55:00Z");
    let closed = market.close(gate);
    assert_eq!(closed, rebuilt.close(gate), "a market rebuilt from the store clears the same");
    assert_eq!(closed.auctions.len(), 1, "the 10:00 product closed; 10:15 still collects");
    store.apply(TENANT, "call", leader.epoch, &closed, gate).await.expect("apply the clearing");
    let stored = store.auctions(TENANT, "call", None, 10).await.expect("auctions");
    assert_eq!(stored, closed.auctions);
    assert!(stored[0].volume.wh() > 0 && stored[0].paid >= stored[0].received, "{stored:?}");
    assert!(store.auctions(TENANT, "call", Some(stored[0].delivery_start), 10).await.expect("after").is_empty());
    let trades = store.trades(TENANT, "call", 0, 1000).await.expect("trades");
    assert_eq!(trades, closed.trades);
    assert!(trades.iter().all(|t| t.aggressor.is_none()));
    let sold: i64 = trades.iter().map(|t| t.trade.quantity.wh()).sum();
    assert_eq!(sold, stored[0].volume.wh());
    let snapshot = store.snapshot(TENANT, "call").await.expect("snapshot");
    assert!(snapshot.resting.iter().all(|e| e.delivery_start == at("2024-06-01T10:15:00Z")));

    // A welfare market: its rules keep the network, its orders their nodes,
    // its auctions the nodal prices and flows; rebuilt from the store, it
    // clears the same.
    let line = Line { fee: "0.01".parse().expect("price"), ..Line::new("ab", "a", "b", Energy::from_wh(1_500)) };
    let network = Network { nodes: vec!["a".into(), "b".into()], lines: vec![line] };
    let grid = MarketRules { matching: Matching::Welfare, network: Some(network), ..rules() };
    let (record, _) = store.create_market(TENANT, "grid", &grid, now).await.expect("welfare market");
    assert_eq!(record.rules, grid);
    let leader = store.lead(TENANT, "grid").await.expect("lead").expect("free");
    let mut market = Market::new(grid.clone(), 0, 0).expect("market");
    let mut rng = Lcg(13);
    for k in 0..60 {
        let mut order = generated(&mut rng, k);
        if let Kind::Limit { time_in_force, .. } = &mut order.kind {
            *time_in_force = TimeInForce::Gtc;
        }
        // Sellers mostly at a, buyers mostly at b: the line binds.
        let node = if (order.side == Side::Sell) == (k % 5 != 0) { "a" } else { "b" };
        order.node = Some(node.to_owned());
        let changes = market.submit(order, now).expect("submit");
        store.apply(TENANT, "grid", leader.epoch, &changes, now).await.expect("apply");
    }
    // A curve and a one-hour block, whole in one row each.
    let start = market.open(1).expect("the first order rests").delivery_start;
    let steps = vec![
        ("0.05".parse().expect("price"), Energy::from_wh(700)),
        ("0.5".parse().expect("price"), Energy::from_wh(300)),
    ];
    let shaped = [
        (Side::Sell, "0.05", 1_000, Shape::Curve(steps)),
        (Side::Buy, "3", 400, Shape::Block(vec![(start, Energy::from_wh(400))])),
    ];
    for (k, (side, limit, wh, shape)) in shaped.into_iter().enumerate() {
        let order = NewOrder {
            client_order_id: format!("shaped-{k}"),
            participant: PartyId::new(format!("shaper{k}")).expect("id"),
            delivery_start: start,
            side,
            kind: Kind::Limit { price: limit.parse().expect("price"), time_in_force: TimeInForce::Gtc },
            quantity: Energy::from_wh(wh),
            node: Some("b".into()),
            shape: Some(shape),
        };
        let changes = market.submit(order, now).expect("a shaped order");
        store.apply(TENANT, "grid", leader.epoch, &changes, now).await.expect("apply");
    }
    let snapshot = store.snapshot(TENANT, "grid").await.expect("snapshot");
    assert!(snapshot.resting.iter().all(|e| e.node.is_some()), "every order keeps its node");
    let kept: Vec<_> = snapshot.resting.iter().filter_map(|e| e.shape.as_ref().map(Shape::as_str)).collect();
    assert_eq!(kept, ["curve", "block"], "both shapes come back from the store");
    let mut rebuilt = Market::new(grid, snapshot.last_order, snapshot.last_trade).expect("market");
    for entry in snapshot.resting {
        rebuilt.restore(entry).expect("restore");
    }
    let closed = market.close(gate);
    assert_eq!(closed, rebuilt.close(gate), "a welfare market rebuilt from the store clears the same");
    store.apply(TENANT, "grid", leader.epoch, &closed, gate).await.expect("apply the clearing");
    let stored = store.auctions(TENANT, "grid", None, 10).await.expect("auctions");
    assert_eq!(stored, closed.auctions);
    let outcome = stored[0].network.as_ref().expect("the network's outcome");
    assert_eq!((outcome.prices.len(), outcome.flows.len(), outcome.failure.as_deref()), (2, 1, None));
    assert!(outcome.flows[0].congested, "{outcome:?}");
    assert!(outcome.prices[1].1 > outcome.prices[0].1, "the line splits the prices: {outcome:?}");
    let trades = store.trades(TENANT, "grid", 0, 1000).await.expect("trades");
    assert_eq!(trades, closed.trades);
    let sold: i64 = trades.iter().map(|t| t.trade.quantity.wh()).sum();
    assert_eq!(sold, stored[0].volume.wh());
    assert!(sold > 0);
}

/// A leader that lost its market to another writes nothing (fencing): its
/// batch names an epoch that is no longer the market's.
async fn a_deposed_leader_stores_nothing(store: &Store) {
    let now = at("2024-06-01T08:00:00Z");
    store.create_market(TENANT, "fenced", &rules(), now).await.expect("market");
    let first = store.lead(TENANT, "fenced").await.expect("lead").expect("free");
    if store.is_postgres() {
        assert!(store.lead(TENANT, "fenced").await.expect("lead").is_none(), "one leader at a time");
    }
    let mut market = Market::new(rules(), 0, 0).expect("market");
    let mut rng = Lcg(3);
    let changes = market.submit(generated(&mut rng, 0), now).expect("submit");
    store.apply(TENANT, "fenced", first.epoch, &changes, now).await.expect("the leader stores");
    // The first leader's lease goes (its connection dropped, as when the
    // database restarts) while it still runs; a second process leads.
    let stale = first.epoch;
    drop(first.lease);
    let mut second = None;
    for _ in 0..100 {
        second = store.lead(TENANT, "fenced").await.expect("lead");
        if second.is_some() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let second = second.expect("the lease is released with its connection");
    assert_eq!(second.epoch, stale + 1);
    let more = market.submit(generated(&mut rng, 1), now).expect("submit");
    let refused = store.apply(TENANT, "fenced", stale, &more, now).await.expect_err("a deposed leader's batch");
    assert!(matches!(refused, StoreError::Deposed(_)), "{refused}");
    assert_eq!(store.snapshot(TENANT, "fenced").await.expect("snapshot").last_order, 1, "nothing of it stored");
    store.apply(TENANT, "fenced", second.epoch, &more, now).await.expect("the new leader stores");
    assert_eq!(store.snapshot(TENANT, "fenced").await.expect("snapshot").last_order, 2);
}

#[tokio::test]
async fn the_sqlite_store_rebuilds_the_market_that_ran() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open(&format!("sqlite://{}", dir.path().join("t.db").display())).await.expect("open");
    exercise(&store).await;
    a_deposed_leader_stores_nothing(&store).await;
}

#[tokio::test]
async fn the_postgres_store_rebuilds_the_market_that_ran() {
    let Some(db) = support::Scratch::create().await else { return };
    let url = db.url.clone();
    let store = Store::open(&url).await.expect("open");
    exercise(&store).await;
    a_deposed_leader_stores_nothing(&store).await;
    store.pool().close().await;
    db.drop_database().await;
}
