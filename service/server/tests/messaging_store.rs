//! The settlement messages in the store, on SQLite and PostgreSQL
//! (`VOLTA_TEST_POSTGRES_URL`): a trade's message is written with the trade
//! or not at all; relays claim without taking each other's rows; the inbox
//! applies each message once and in its aggregate's order whatever the
//! delivery order and repetitions; a poison message dies after its attempts
//! and its aggregate moves on; the reconciler finds what was published and
//! never handled; positions sum the ledger exactly; handled messages are
//! pruned after their retention and still known as handled; contract
//! changes reach the trading service's view once each and in order; a
//! round applied in place writes all of its batch or nothing.

mod support;

use jiff::{SignedDuration, Timestamp};
use rust_decimal::Decimal;
use sqlx::Executor as _;
use volta_contracts::{Energy, PartyId};
use volta_server::store::Store;
use volta_server::store::messaging::{
    CONTRACT, Effect, Handled, MAX_ATTEMPTS, Message, MessagingStore as _, POSITIONS, Round, Route, SETTLEMENT, Sender,
    TRADE, TradeMessage, contract_message,
};
use volta_server::store::trading::TradingStore as _;
use volta_trading::{Kind, Market, MarketRules, Matching, NewOrder, Price, Side, TimeInForce};

const TENANT: &str = "acme";
const CONSUMER: &str = SETTLEMENT.consumer;

/// A consumer of trades that never ran: what it handled is nothing.
const AUDIT: Route = Route { consumer: "audit", ..SETTLEMENT };

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

fn limit(k: usize, who: &str, side: Side, wh: i64, price: &str) -> NewOrder {
    NewOrder {
        client_order_id: format!("c{k}"),
        participant: PartyId::new(who).expect("id"),
        delivery_start: at("2024-06-01T10:00:00Z"),
        side,
        kind: Kind::Limit { price: price.parse::<Price>().expect("price"), time_in_force: TimeInForce::Gtc },
        quantity: Energy::from_wh(wh),
        node: None,
        shape: None,
    }
}

fn trade_of(message: &Message) -> TradeMessage {
    serde_json::from_str(&message.payload).expect("a trade message")
}

fn effect_of(message: &Message) -> Effect {
    Effect::Trade(trade_of(message))
}

/// A relay's round of up to 100 trade messages, which holds what it does
/// not deliver for an hour.
fn trade_round(relay: &str) -> Round<'_> {
    Round {
        relay,
        kinds: &[TRADE],
        limit: 100,
        claim: SignedDuration::from_secs(30),
        retry: SignedDuration::from_hours(1),
    }
}

async fn exercise(store: &Store) {
    let now = at("2024-06-01T08:00:00Z");
    store.create_market(TENANT, "park", &rules(), now).await.expect("market");
    let epoch = store.lead(TENANT, "park").await.expect("lead").expect("free").epoch;
    // Sellers rest, buyers take them: 20 trades over two sellers.
    let mut market = Market::new(rules(), 0, 0).expect("market");
    let mut k = 0;
    for i in 0..10 {
        for (who, side, price) in [("alice", Side::Sell, "0.20"), ("bob", Side::Sell, "0.21")] {
            k += 1;
            let changes = market.submit(limit(k, who, side, 1_000 + i, price), now).expect("sell");
            store.apply(TENANT, "park", epoch, &changes, now).await.expect("apply");
        }
        k += 1;
        let changes = market.submit(limit(k, "carol", Side::Buy, 2_000 + 2 * i, "0.30"), now).expect("buy");
        assert_eq!(changes.trades.len(), 2);
        store.apply(TENANT, "park", epoch, &changes, now).await.expect("apply");
    }
    assert_eq!(store.backlog().await.expect("backlog"), 20, "a message per trade, written with it");

    // Two relays claim at once: nothing is taken twice, and of a market
    // only what comes before anything another relay holds: the relay that
    // came second gets nothing of it until the first has published its
    // part (else it could hand message 13 to the carrier before 12).
    let until = now + SignedDuration::from_secs(30);
    let (a, b) = tokio::join!(
        store.claim("relay-a", &[TRADE], now, until, 12),
        store.claim("relay-b", &[TRADE], now, until, 12)
    );
    let (a, b) = (a.expect("claim a"), b.expect("claim b"));
    let (a, b) = if a.is_empty() { (b, a) } else { (a, b) };
    assert!(
        b.is_empty(),
        "the second relay took {:?} while 1-12 were held",
        b.iter().map(|m| m.seq).collect::<Vec<_>>()
    );
    assert_eq!(a.iter().map(|m| m.seq).collect::<Vec<_>>(), (1..=12).collect::<Vec<u64>>());
    assert!(store.claim("relay-c", &[TRADE], now, until, 50).await.expect("claim c").is_empty(), "the rest waits");
    let first: Vec<String> = a.iter().map(|m| m.id.clone()).collect();
    store.published(&first, now).await.expect("published");
    let b = store.claim("relay-b", &[TRADE], now, until, 50).await.expect("claim b");
    assert_eq!(b.iter().map(|m| m.seq).collect::<Vec<_>>(), (13..=20).collect::<Vec<u64>>());
    let mut all: Vec<Message> = a.into_iter().chain(b).collect();
    all.sort_by_key(|m| m.seq);
    assert_eq!(all.iter().map(|m| m.seq).collect::<Vec<_>>(), (1..=20).collect::<Vec<u64>>());
    assert_eq!(all[4].id, "trade/acme/park/5");

    // Delivered out of order and twice: applied once each, in order.
    let settle = |m: &Message| {
        let effect = effect_of(m);
        let m = m.clone();
        async move { store.consume_one(CONSUMER, &m, &effect, now).await.expect("settle") }
    };
    assert_eq!(settle(&all[1]).await, Handled::Early { expected: 1 });
    // A batch out of order and with a repeat: one transaction, each judged
    // against the cursor as the batch moves it.
    let trades: Vec<Effect> = all[..2].iter().map(effect_of).collect();
    let batch = [(&all[1], &trades[1]), (&all[0], &trades[0]), (&all[0], &trades[0])];
    let handled = store.consume(CONSUMER, &batch, now).await.expect("batch");
    assert_eq!(handled, [Handled::Early { expected: 1 }, Handled::Applied, Handled::Duplicate]);
    assert_eq!(settle(&all[0]).await, Handled::Duplicate);
    assert_eq!(settle(&all[1]).await, Handled::Applied);
    // Two deliveries of the same message at once: one applies.
    let (x, y) = tokio::join!(settle(&all[2]), settle(&all[2]));
    let mut outcomes = [x, y];
    outcomes.sort_by_key(|h| *h != Handled::Applied);
    assert_eq!(outcomes, [Handled::Applied, Handled::Duplicate]);

    // Message 4 is poison: it fails until it dies, then 5 goes on.
    let poison = Message { payload: "{not json".into(), ..all[3].clone() };
    for attempt in 1..=MAX_ATTEMPTS {
        let dead = store.failed(CONSUMER, &poison, "payload is not a trade message", now).await.expect("failed");
        assert_eq!(dead, attempt == MAX_ATTEMPTS, "attempt {attempt}");
    }
    assert_eq!(settle(&all[3]).await, Handled::Duplicate, "a dead message is handled");
    for m in &all[4..] {
        assert_eq!(settle(m).await, Handled::Applied, "{}", m.id);
    }
    let dead = store.dead_letters(CONSUMER, TENANT, 10).await.expect("dead letters");
    assert_eq!(dead.len(), 1);
    assert_eq!((dead[0].id.as_str(), dead[0].seq, dead[0].attempts), ("trade/acme/park/4", 4, 5));
    assert_eq!(dead[0].payload, "{not json");
    assert!(store.dead_letters(CONSUMER, "globex", 10).await.expect("other tenant").is_empty());
    assert_eq!(store.dead_count(CONSUMER).await.expect("count"), 1);

    // Published: all but one, which the carrier "lost" (published, never
    // handled by a consumer of another name): the reconciler finds it.
    let ids: Vec<String> = all.iter().map(|m| m.id.clone()).collect();
    store.published(&ids[12..], now).await.expect("published");
    assert_eq!(store.backlog().await.expect("backlog"), 0);
    let later = now + SignedDuration::from_secs(60);
    assert!(store.unhandled(&SETTLEMENT, later, 100).await.expect("unhandled").is_empty());
    let lost = store.unhandled(&AUDIT, later, 100).await.expect("unhandled");
    assert_eq!(lost.len(), 20, "another consumer has handled nothing");
    assert!(store.unhandled(&AUDIT, now, 100).await.expect("not yet").is_empty(), "within the grace");
    store.republish(&lost[..3]).await.expect("republish");
    assert_eq!(store.backlog().await.expect("backlog"), 3);
    let again = store.claim("relay-a", &[TRADE], later, later + SignedDuration::from_secs(30), 1).await.expect("claim");
    assert_eq!(again.iter().map(|m| m.seq).collect::<Vec<_>>(), [1]);
    // A release holds a message back until the retry time, and what comes
    // after it in its market with it.
    let retry = later + SignedDuration::from_secs(1);
    store.release(&lost[..1], retry).await.expect("release");
    assert!(store.claim("relay-b", &[TRADE], later, retry, 50).await.expect("claim").is_empty(), "2, 3 wait for 1");
    assert_eq!(
        store.claim("relay-a", &[TRADE], retry + SignedDuration::from_millis(1), retry, 50).await.expect("claim").len(),
        3
    );

    // Positions: the ledger summed, against the trades summed here.
    let mut expected: std::collections::BTreeMap<String, (i64, i64, Decimal, Decimal, u64)> = Default::default();
    for m in all.iter().filter(|m| m.seq != 4) {
        let t = trade_of(m).trade;
        let q = t.trade.quantity;
        let buyer = expected.entry(t.trade.buyer.to_string()).or_default();
        buyer.0 += q.wh();
        buyer.2 += volta_trading::price::amount(q, t.trade.buyer_price);
        buyer.4 += 1;
        let seller = expected.entry(t.trade.seller.to_string()).or_default();
        seller.1 += q.wh();
        seller.3 += volta_trading::price::amount(q, t.trade.seller_price);
        seller.4 += 1;
    }
    let positions = store
        .market_positions(TENANT, None, at("2024-06-01T00:00:00Z"), at("2024-06-02T00:00:00Z"))
        .await
        .expect("positions");
    let got: std::collections::BTreeMap<String, (i64, i64, Decimal, Decimal, u64)> = positions
        .iter()
        .map(|p| (p.participant.clone(), (p.bought_wh, p.sold_wh, p.paid, p.received, p.trades)))
        .collect();
    assert_eq!(got, expected);
    let carol = store
        .market_positions(TENANT, Some("carol"), at("2024-06-01T00:00:00Z"), at("2024-06-02T00:00:00Z"))
        .await
        .expect("carol");
    assert_eq!(carol.len(), 1);
    assert!(
        store
            .market_positions(TENANT, None, at("2024-06-02T00:00:00Z"), at("2024-06-03T00:00:00Z"))
            .await
            .expect("empty day")
            .is_empty()
    );

    // Pruning: what is handled and older than the retention goes, a batch
    // at a time; what is not yet published stays; the ledger stays.
    let inbox = || async {
        let n: i64 = sqlx::query_scalar("SELECT CAST(COUNT(*) AS BIGINT) FROM messaging_inbox WHERE consumer = $1")
            .bind(CONSUMER)
            .fetch_one(store.pool())
            .await
            .expect("count");
        n
    };
    let handled = inbox().await;
    assert_eq!(handled, 20, "every message has an inbox record, the dead one too");
    assert_eq!(store.prune(&SETTLEMENT, now, 100).await.expect("prune"), (0, 0), "nothing older than the retention");
    let old = later + SignedDuration::from_hours(1);
    // The first five of the market are looked at; 1-3 wait to be sent
    // again and stay.
    assert_eq!(store.prune(&SETTLEMENT, old, 5).await.expect("prune"), (2, 5), "a batch of at most 5");
    assert_eq!(store.prune(&SETTLEMENT, old, 100).await.expect("prune"), (15, 15));
    assert_eq!(store.prune(&SETTLEMENT, old, 100).await.expect("prune"), (0, 0));
    assert_eq!(inbox().await, 0);
    assert_eq!(store.backlog().await.expect("backlog"), 3, "the messages to send again stay");
    // A pruned message delivered again is still known by its cursor.
    assert_eq!(settle(&all[5]).await, Handled::Duplicate);
    let after: std::collections::BTreeMap<String, (i64, i64, Decimal, Decimal, u64)> = store
        .market_positions(TENANT, None, at("2024-06-01T00:00:00Z"), at("2024-06-02T00:00:00Z"))
        .await
        .expect("positions")
        .iter()
        .map(|p| (p.participant.clone(), (p.bought_wh, p.sold_wh, p.paid, p.received, p.trades)))
        .collect();
    assert_eq!(after, expected, "the ledger is kept");

    // An operator's retry of the dead letter, with the message as it
    // should have been: applied once, no longer dead.
    let dead = store.dead_message(CONSUMER, TENANT, "trade/acme/park/4").await.expect("read").expect("dead");
    assert_eq!((dead.seq, dead.payload.as_str()), (4, "{not json"));
    assert!(store.dead_message(CONSUMER, "globex", "trade/acme/park/4").await.expect("read").is_none());
    assert!(store.redrive(CONSUMER, &all[3], &effect_of(&all[3]), now).await.expect("redrive"));
    assert!(!store.redrive(CONSUMER, &all[3], &effect_of(&all[3]), now).await.expect("again"), "applied once");
    assert_eq!(store.dead_count(CONSUMER).await.expect("count"), 0);
    let t = trade_of(&all[3]).trade;
    let buyer = expected.get_mut(t.trade.buyer.as_str()).expect("buyer");
    buyer.0 += t.trade.quantity.wh();
    buyer.2 += volta_trading::price::amount(t.trade.quantity, t.trade.buyer_price);
    buyer.4 += 1;
    let seller = expected.get_mut(t.trade.seller.as_str()).expect("seller");
    seller.1 += t.trade.quantity.wh();
    seller.3 += volta_trading::price::amount(t.trade.quantity, t.trade.seller_price);
    seller.4 += 1;
    let repaired: std::collections::BTreeMap<String, (i64, i64, Decimal, Decimal, u64)> = store
        .market_positions(TENANT, None, at("2024-06-01T00:00:00Z"), at("2024-06-02T00:00:00Z"))
        .await
        .expect("positions")
        .iter()
        .map(|p| (p.participant.clone(), (p.bought_wh, p.sold_wh, p.paid, p.received, p.trades)))
        .collect();
    assert_eq!(repaired, expected, "every trade once, the retried one included");
    let later = later + SignedDuration::from_secs(5);
    assert!(
        store.claim("relay-b", &[CONTRACT], later, later, 50).await.expect("claim").is_empty(),
        "a relay claims only the kinds it carries"
    );
}

fn contract(state_steps: usize, amended: bool) -> (volta_contracts::Contract, Vec<volta_contracts::MeteringPoint>) {
    use volta_contracts::{Contract, ContractId, Location, MeterId, MeteringPoint, Technology};
    let terms = |price: &str| -> volta_contracts::Terms {
        toml::from_str(&format!(
            "kind = \"fixed_price\"\ndelivery_first = \"2024-06-01\"\ndelivery_last = \"2024-06-30\"\n\
             currency = \"EUR\"\ndecimals = 2\n[price]\nrule = \"fixed\"\nprice = \"{price}\"\n\
             [quantity]\nbasis = \"daily\"\nenergy = 240\n[shape]\nshape = \"flat\"\n"
        ))
        .expect("terms")
    };
    let meter = MeteringPoint {
        id: MeterId::new("shop-meter").expect("id"),
        party: PartyId::new("shop").expect("id"),
        interval_minutes: 60,
        time_zone: "Europe/Berlin".into(),
        location: Location::Zone("de".into()),
        technology: Technology::Load,
    };
    let mut c = Contract::draft(
        ContractId::new("ppa-1").expect("id"),
        PartyId::new("gen").expect("id"),
        PartyId::new("shop").expect("id"),
        vec![meter.id.clone()],
        terms("0.20"),
    )
    .expect("draft");
    if state_steps >= 1 {
        c.sign().expect("sign");
    }
    if state_steps >= 2 {
        c.activate().expect("activate");
    }
    if amended {
        c.amend(jiff::civil::date(2024, 6, 15), terms("0.25")).expect("amend");
    }
    (c, vec![meter])
}

/// The positions route: contract changes into the trading service's view,
/// once each and in order, whatever the delivery order.
async fn contract_view_follows_changes(store: &Store) {
    let now = at("2024-05-01T08:00:00Z");
    let change = |version: u64, steps: usize, amended: bool| {
        let (c, meters) = contract(steps, amended);
        let m = contract_message(TENANT, version, &c, meters);
        let effect = Effect::Contract(serde_json::from_str(&m.payload).expect("a contract message"));
        (m, effect)
    };
    let (v1, e1) = change(1, 0, false);
    let (v2, e2) = change(2, 1, false);
    let (v3, e3) = change(3, 1, true);
    assert_eq!(
        (v1.id.as_str(), v1.aggregate.as_str(), v1.kind.as_str()),
        ("contract/acme/ppa-1/1", "contracts/acme/ppa-1", CONTRACT)
    );
    let consumer = POSITIONS.consumer;
    assert_eq!(store.consume_one(consumer, &v2, &e2, now).await.expect("early"), Handled::Early { expected: 1 });
    assert!(store.contract_view(TENANT, "shop", 10).await.expect("view").is_empty(), "nothing before change 1");
    let handled = store.consume(consumer, &[(&v1, &e1), (&v2, &e2), (&v1, &e1)], now).await.expect("batch");
    assert_eq!(handled, [Handled::Applied, Handled::Applied, Handled::Duplicate]);
    let seen = store.contract_view(TENANT, "shop", 10).await.expect("view");
    assert_eq!(seen.len(), 1);
    assert_eq!((seen[0].version, seen[0].contract.state()), (2, volta_contracts::State::Signed));
    assert_eq!(store.consume_one(consumer, &v3, &e3, now).await.expect("v3"), Handled::Applied);
    assert_eq!(store.consume_one(consumer, &v2, &e2, now).await.expect("again"), Handled::Duplicate);
    let seen = store.contract_view(TENANT, "gen", 10).await.expect("the seller's view");
    assert_eq!((seen[0].version, seen[0].contract.versions().len()), (3, 2), "the amendment is seen");
    assert!(store.contract_view(TENANT, "mill", 10).await.expect("view").is_empty());
    assert!(store.contract_view("globex", "shop", 10).await.expect("view").is_empty(), "another tenant's");
    // The two routes keep separate cursors and dead letters.
    assert_eq!(store.dead_count(consumer).await.expect("dead"), 0);
}

/// A continuous market of the store, led here, in which alice sells and
/// carol buys 1 kWh a trade, each trade a message of the market's.
struct Trades<'s> {
    store: &'s Store,
    name: &'static str,
    epoch: i64,
    market: Market,
}

impl<'s> Trades<'s> {
    const AT: &'static str = "2024-06-01T08:00:00Z";

    async fn open(store: &'s Store, name: &'static str) -> Self {
        store.create_market(TENANT, name, &rules(), at(Self::AT)).await.expect("market");
        let epoch = store.lead(TENANT, name).await.expect("lead").expect("free").epoch;
        Self { store, name, epoch, market: Market::new(rules(), 0, 0).expect("market") }
    }

    /// Trade `k` (orders `2k` and `2k + 1`), stored.
    async fn trade(&mut self, k: usize) {
        let now = at(Self::AT);
        let sell = self.market.submit(limit(2 * k, "alice", Side::Sell, 1_000, "0.2"), now).expect("sell");
        self.store.apply(TENANT, self.name, self.epoch, &sell, now).await.expect("apply");
        let buy = self.market.submit(limit(2 * k + 1, "carol", Side::Buy, 1_000, "0.3"), now).expect("buy");
        self.store.apply(TENANT, self.name, self.epoch, &buy, now).await.expect("apply");
    }
}

/// Relay rounds: what the carrier acknowledged is published; what it did
/// not is held back until its retry, and everything after it in its market
/// with it, whichever relay asks.
async fn relay_rounds(store: &Store) {
    const YARD: &str = "trading/acme/yard";
    // The trades are made at the market's time; the rounds run on the clock.
    let mut market = Trades::open(store, "yard").await;
    for k in 0..6 {
        market.trade(k).await;
    }
    let yard = |batch: &[Message]| batch.iter().filter(|m| m.aggregate == YARD).map(|m| m.seq).collect::<Vec<_>>();
    let yard_ids = |batch: &[Message], upto: u64| -> Vec<String> {
        batch.iter().filter(|m| m.aggregate == YARD && m.seq <= upto).map(|m| m.id.clone()).collect()
    };
    // A carrier that takes the yard's first three only.
    let three: &Sender<'_> = &|batch| {
        let ids = yard_ids(batch, 3);
        Box::pin(async move { ids })
    };
    let everything: &Sender<'_> = &|batch| {
        let ids = batch.iter().map(|m| m.id.clone()).collect();
        Box::pin(async move { ids })
    };
    let round = trade_round("relay-a");
    let first = store.relay_round(&round, three).await.expect("round");
    assert_eq!(yard(&first.batch), [1, 2, 3, 4, 5, 6]);
    assert!(first.held_back());
    let second = store.relay_round(&Round { relay: "relay-b", ..round }, everything).await.expect("round");
    assert!(yard(&second.batch).is_empty(), "4-6 wait: {:?}", yard(&second.batch));
    // The retry of 5 and 6 comes (brought forward here), but 4 still waits:
    // nothing overtakes it.
    let rest = yard_ids(&first.batch, 6).split_off(3);
    let past = Timestamp::now() - SignedDuration::from_secs(1);
    store.release(&rest[1..], past).await.expect("bring forward");
    let early = store.relay_round(&Round { relay: "relay-b", ..round }, everything).await.expect("round");
    assert!(yard(&early.batch).is_empty(), "5, 6 overtook 4: {:?}", yard(&early.batch));
    // Then 4's: 4, 5 and 6 go, in order.
    store.release(&rest[..1], past).await.expect("bring forward");
    let third = store.relay_round(&Round { relay: "relay-b", ..round }, everything).await.expect("round");
    assert_eq!(yard(&third.batch), [4, 5, 6]);
    assert!(!third.held_back());
    let fourth = store.relay_round(&round, everything).await.expect("round");
    assert!(yard(&fourth.batch).is_empty(), "all published");
}

/// Rounds applied in place (the carrier of one process): a round whose
/// batch holds a message that cannot be read writes nothing; one that can
/// applies, marks and holds back in one transaction.
async fn rounds_in_place(store: &Store) {
    const LANE: &str = "trading/acme/lane";
    let mut trades = Trades::open(store, "lane").await;
    for k in 0..6 {
        trades.trade(k).await;
    }
    let ledger = async || -> i64 {
        sqlx::query_scalar("SELECT COUNT(*) FROM contracts_market_ledger WHERE market = 'lane'")
            .fetch_one(store.pool())
            .await
            .expect("count")
    };
    let waiting = async || -> i64 {
        sqlx::query_scalar(
            "SELECT COUNT(*) FROM messaging_outbox WHERE aggregate = 'trading/acme/lane' AND published_at IS NULL",
        )
        .fetch_one(store.pool())
        .await
        .expect("count")
    };
    let lane = |batch: &[Message]| batch.iter().filter(|m| m.aggregate == LANE).map(|m| m.seq).collect::<Vec<_>>();
    let round = trade_round("relay-a");
    let poisoned = |m: &Message| {
        if m.aggregate == LANE && m.seq == 4 { Err("unreadable".to_owned()) } else { Ok((CONSUMER, effect_of(m))) }
    };
    assert!(store.relay_in_place(&round, &poisoned).await.expect("round").is_none(), "not for a round in place");
    assert_eq!((ledger().await, waiting().await), (0, 6), "nothing written");

    let readable = |m: &Message| -> Result<(&'static str, Effect), String> { Ok((CONSUMER, effect_of(m))) };
    let done = store.relay_in_place(&round, &readable).await.expect("round").expect("in place");
    assert_eq!(lane(&done.relayed.batch), [1, 2, 3, 4, 5, 6]);
    assert!(done.outcomes.iter().all(|(c, _, h)| *c == CONSUMER && *h == Handled::Applied), "{:?}", done.outcomes);
    assert_eq!(done.relayed.acked.len(), done.relayed.batch.len());
    assert_eq!((ledger().await, waiting().await), (12, 0), "a buyer's and a seller's row per trade, all published");
    let again = store.relay_in_place(&round, &readable).await.expect("round").expect("in place");
    assert!(again.relayed.batch.is_empty(), "{:?}", lane(&again.relayed.batch));

    // The consumer's cursor set back (as after its rows were lost): 7 and 8
    // come before 6 was handled, so they are held back, unpublished.
    sqlx::query("UPDATE messaging_cursors SET seq = 5 WHERE consumer = $1 AND aggregate = $2")
        .bind(CONSUMER)
        .bind(LANE)
        .execute(store.pool())
        .await
        .expect("set the cursor back");
    trades.trade(6).await;
    trades.trade(7).await;
    let held = store.relay_in_place(&round, &readable).await.expect("round").expect("in place");
    assert_eq!(lane(&held.relayed.batch), [7, 8]);
    assert!(held.outcomes.iter().all(|(_, _, h)| *h == Handled::Early { expected: 6 }), "{:?}", held.outcomes);
    assert!(held.relayed.held_back() && held.relayed.acked.is_empty());
    assert_eq!((ledger().await, waiting().await), (12, 2));
    let later = store.relay_in_place(&round, &readable).await.expect("round").expect("in place");
    assert!(lane(&later.relayed.batch).is_empty(), "held until the retry");
}

/// A trade batch whose outbox write fails is not stored either.
async fn no_trade_without_its_message(store: &Store) {
    let now = at("2024-06-01T08:00:00Z");
    store.create_market(TENANT, "atomic", &rules(), now).await.expect("market");
    let epoch = store.lead(TENANT, "atomic").await.expect("lead").expect("free").epoch;
    let mut market = Market::new(rules(), 0, 0).expect("market");
    let sell = market.submit(limit(1, "alice", Side::Sell, 1_000, "0.2"), now).expect("sell");
    store.apply(TENANT, "atomic", epoch, &sell, now).await.expect("apply");
    let buy = market.submit(limit(2, "carol", Side::Buy, 1_000, "0.3"), now).expect("buy");
    // The message id of the coming trade is taken already.
    store
        .pool()
        .execute(
            "INSERT INTO messaging_outbox (id, tenant, aggregate, seq, kind, payload, headers, created_at) \
             VALUES ('trade/acme/atomic/1', 'acme', 'elsewhere', 1, 'x', '{}', '{}', '2024-06-01T08:00:00.000000Z')",
        )
        .await
        .expect("squat the id");
    assert!(store.apply(TENANT, "atomic", epoch, &buy, now).await.is_err());
    assert!(store.trades(TENANT, "atomic", 0, 10).await.expect("trades").is_empty(), "the trade went with its message");
    let order = store.order(TENANT, "atomic", 2).await.expect("read");
    assert!(order.is_none(), "nor its order");
}

#[tokio::test]
async fn sqlite_settles_every_trade_once_in_order() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open(&format!("sqlite://{}", dir.path().join("t.db").display())).await.expect("open");
    exercise(&store).await;
    relay_rounds(&store).await;
    rounds_in_place(&store).await;
    no_trade_without_its_message(&store).await;
    contract_view_follows_changes(&store).await;
}

#[tokio::test]
async fn postgres_settles_every_trade_once_in_order() {
    let Some(db) = support::Scratch::create().await else { return };
    let store = Store::open(&db.url).await.expect("open");
    // Every transaction that writes to the outbox is announced to the
    // relays of all processes at its commit.
    let mut listener = sqlx::postgres::PgListener::connect(&db.url).await.expect("listen");
    listener.listen(volta_server::store::messaging::OUTBOX_CHANNEL).await.expect("listen");
    exercise(&store).await;
    let heard = tokio::time::timeout(std::time::Duration::from_secs(30), listener.recv()).await;
    assert!(matches!(heard, Ok(Ok(_))), "no announcement of the outbox: {heard:?}");
    drop(listener);
    relay_rounds(&store).await;
    rounds_in_place(&store).await;
    no_trade_without_its_message(&store).await;
    contract_view_follows_changes(&store).await;
    store.pool().close().await;
    db.drop_database().await;
}
