//! The trading service's tables and [`TradingStore`], the only way the
//! service reaches them.
//!
//! - Markets are a row each, their rules as JSON; rules never change.
//! - Orders are a row each, written when accepted and updated as they
//!   trade, shrink, are cancelled or expire (its quantity, what traded, its
//!   state); `client_key` (participant and client order id) is unique per
//!   market, which makes submission idempotent even across a restart.
//! - Trades are immutable rows numbered in the order they happened; a
//!   call auction's trades have no aggressor (stored as `auction`).
//! - A call market's auctions are a row per product, written when it
//!   clears, with the fills and trades it made.
//!
//! What one batch of the market's sequencer changed is written in one
//! transaction ([`TradingStore::apply`]), before any of its callers is
//! answered: an acknowledged order is a stored order. The same transaction
//! writes a message per trade to the outbox ([`super::messaging`]), from
//! which the settlement ledger learns of it.

use jiff::Timestamp;
use rust_decimal::Decimal;
use sqlx::Row as _;
use volta_contracts::{Energy, PartyId};
use volta_trading::order::Shape;
use volta_trading::{
    AuctionRecord, CancelReason, Changes, Entry, Kind, MarketRules, Order, OrderId, OrderState, Price, ProductId, Side,
    TimeInForce, Trade, TradeId, TradeRecord,
};

use super::{Lease, Schema, Store, StoreError, advisory_key, values};

/// The trading service's tables.
pub const TRADING: Schema = Schema { service: "trading", migrations: MIGRATIONS };

const MIGRATIONS: &[(i64, &str)] = &[
    (
        1,
        "CREATE TABLE trading_markets (tenant TEXT NOT NULL, id TEXT NOT NULL, rules TEXT NOT NULL,
        created_at TEXT NOT NULL, PRIMARY KEY (tenant, id));
    CREATE TABLE trading_orders (tenant TEXT NOT NULL, market TEXT NOT NULL, id BIGINT NOT NULL,
        client_key TEXT NOT NULL, client_order_id TEXT NOT NULL, participant TEXT NOT NULL,
        delivery_start_s BIGINT NOT NULL, delivery_end_s BIGINT NOT NULL, side TEXT NOT NULL, price_micros BIGINT,
        time_in_force TEXT, quantity_wh BIGINT NOT NULL, filled_wh BIGINT NOT NULL, state TEXT NOT NULL,
        cancel_reason TEXT, placed_at TEXT NOT NULL, updated_at TEXT NOT NULL, PRIMARY KEY (tenant, market, id));
    CREATE UNIQUE INDEX trading_orders_by_client ON trading_orders (tenant, market, client_key);
    CREATE INDEX trading_orders_by_state ON trading_orders (tenant, market, state, id);
    CREATE INDEX trading_orders_by_participant ON trading_orders (tenant, market, participant, id);
    CREATE TABLE trading_trades (tenant TEXT NOT NULL, market TEXT NOT NULL, id BIGINT NOT NULL,
        delivery_start_s BIGINT NOT NULL, delivery_end_s BIGINT NOT NULL, buy_order BIGINT NOT NULL,
        sell_order BIGINT NOT NULL, buyer TEXT NOT NULL, seller TEXT NOT NULL, quantity_wh BIGINT NOT NULL,
        buyer_price_micros BIGINT NOT NULL, seller_price_micros BIGINT NOT NULL, aggressor TEXT NOT NULL,
        traded_at TEXT NOT NULL, PRIMARY KEY (tenant, market, id))",
    ),
    (
        2,
        "CREATE TABLE trading_auctions (tenant TEXT NOT NULL, market TEXT NOT NULL,
        delivery_start_s BIGINT NOT NULL, delivery_end_s BIGINT NOT NULL, price_micros BIGINT,
        volume_wh BIGINT NOT NULL, demand_wh BIGINT NOT NULL, supply_wh BIGINT NOT NULL, paid TEXT NOT NULL,
        received TEXT NOT NULL, orders BIGINT NOT NULL, cleared_at TEXT NOT NULL,
        PRIMARY KEY (tenant, market, delivery_start_s))",
    ),
    // Each leadership of a market gets the next epoch; a batch stored under
    // an older one is refused (fencing: a deposed leader writes nothing).
    (3, "ALTER TABLE trading_markets ADD COLUMN leader_epoch BIGINT NOT NULL DEFAULT 0"),
    // A participant's trades by delivery (what the market covered of its
    // needs, beside its contracts).
    (
        4,
        "CREATE INDEX trading_trades_by_buyer ON trading_trades (tenant, market, buyer, delivery_start_s);
    CREATE INDEX trading_trades_by_seller ON trading_trades (tenant, market, seller, delivery_start_s)",
    ),
    // The grid fee per kWh of each trade (the market's rule; none before).
    (5, "ALTER TABLE trading_trades ADD COLUMN grid_fee_micros BIGINT NOT NULL DEFAULT 0"),
    // A welfare market's orders name their node, and its auctions keep what
    // the clearing over the network found (nodal prices, flows, welfare) as
    // JSON; both empty elsewhere and before.
    (
        6,
        "ALTER TABLE trading_orders ADD COLUMN node TEXT;
    ALTER TABLE trading_auctions ADD COLUMN network TEXT",
    ),
    // Where the market's leader is reached (its advertised URL), so that
    // another replica can forward a call to it.
    (7, "ALTER TABLE trading_markets ADD COLUMN leader_url TEXT"),
    // A block order's intervals or a curve order's steps, as JSON; empty for
    // the other orders and before.
    (8, "ALTER TABLE trading_orders ADD COLUMN shape TEXT"),
];

/// Rows per multi-row INSERT. With 17 columns, 8 rows a statement carried
/// 200 clients' orders at 5,100 calls/s against 4,400 at 32 rows and 4,300
/// at 4 (`trading-load`, one run each, parameters bound by name); with
/// anonymous parameters on SQLite (see [`super::values`]) 64 rows a
/// statement, in shapes of powers of two, made 4,310 calls/s against 5,409
/// at 8 (one run each, 2026-12-06).
const ROWS_PER_INSERT: usize = 8;

/// A stored market.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MarketRecord {
    /// Its id.
    pub id: String,
    /// Its rules.
    pub rules: MarketRules,
    /// When it was created.
    pub created: Timestamp,
}

/// What a market needs to start again: its last ids and its resting orders.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    /// The last order id handed out.
    pub last_order: OrderId,
    /// The last trade id handed out.
    pub last_trade: TradeId,
    /// The resting orders, in id order.
    pub resting: Vec<Entry>,
}

/// Which orders to list.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OrderFilter {
    /// Only this participant's.
    pub participant: Option<PartyId>,
    /// Only resting ones.
    pub resting_only: bool,
    /// Only orders with a lower id (the page cursor).
    pub before: Option<OrderId>,
}

/// The leadership of a market: held while its lease is, and named by the
/// batches it stores.
#[derive(Debug)]
pub struct Leader {
    /// The market's lease (one process at a time).
    pub lease: Lease,
    /// This leadership's epoch: one more than the last.
    pub epoch: i64,
}

/// The key that makes a submission idempotent: participant and client
/// order id (a participant id holds no `:`).
#[must_use]
pub fn client_key(participant: &PartyId, client_order_id: &str) -> String {
    format!("{participant}:{client_order_id}")
}

/// What the trading service keeps. [`Store`] keeps it in SQLite or
/// PostgreSQL; the service sees only this trait.
#[tonic::async_trait]
pub trait TradingStore: Send + Sync + std::fmt::Debug {
    /// Creates market `id` of `tenant`, or returns the one stored under it
    /// (with `false`), whatever its rules; the caller compares them.
    ///
    /// # Errors
    /// A database error.
    async fn create_market(
        &self,
        tenant: &str,
        id: &str,
        rules: &MarketRules,
        now: Timestamp,
    ) -> Result<(MarketRecord, bool), StoreError>;

    /// The leadership of a market's sequencer, if no other process holds
    /// it: its lease and the next epoch, which every batch it stores names.
    ///
    /// # Errors
    /// A database error.
    async fn lead(&self, tenant: &str, market: &str) -> Result<Option<Leader>, StoreError>;

    /// Records where the leader of `epoch` is reached, unless another
    /// leadership has begun since.
    ///
    /// # Errors
    /// A database error.
    async fn advertise(&self, tenant: &str, market: &str, epoch: i64, url: &str) -> Result<(), StoreError>;

    /// Where the market's latest leader said it is reached (none: never
    /// said, or no such market).
    ///
    /// # Errors
    /// A database error.
    async fn leader_url(&self, tenant: &str, market: &str) -> Result<Option<String>, StoreError>;

    /// How many markets `tenant` has.
    ///
    /// # Errors
    /// A database error.
    async fn market_count(&self, tenant: &str) -> Result<usize, StoreError>;

    /// A market of `tenant`.
    ///
    /// # Errors
    /// A database error, or stored rules that no longer read.
    async fn market(&self, tenant: &str, id: &str) -> Result<Option<MarketRecord>, StoreError>;

    /// What a market restarts from.
    ///
    /// # Errors
    /// A database error, or rows that no longer read.
    async fn snapshot(&self, tenant: &str, market: &str) -> Result<Snapshot, StoreError>;

    /// The [`client_key`]s of the orders of products delivering after
    /// `after`, with their delivery start: every key a new submission could
    /// repeat while its gate is open.
    ///
    /// # Errors
    /// A database error.
    async fn open_keys(
        &self,
        tenant: &str,
        market: &str,
        after: Timestamp,
    ) -> Result<Vec<(String, Timestamp)>, StoreError>;

    /// The orders of `keys` ([`client_key`]) that exist.
    ///
    /// # Errors
    /// A database error.
    async fn orders_by_key(&self, tenant: &str, market: &str, keys: &[String]) -> Result<Vec<Entry>, StoreError>;

    /// Writes what a batch changed, in one transaction: orders as they are
    /// now (inserted or updated), new trades and cleared auctions, if
    /// `epoch` is still the market's (the transaction holds the market's
    /// row, so a new leader's epoch comes before or after it whole).
    ///
    /// # Errors
    /// [`StoreError::Deposed`] if another leadership took the market since
    /// `epoch`, or a database error; either way nothing is written.
    async fn apply(
        &self,
        tenant: &str,
        market: &str,
        epoch: i64,
        changes: &Changes,
        now: Timestamp,
    ) -> Result<(), StoreError>;

    /// One order.
    ///
    /// # Errors
    /// A database error.
    async fn order(&self, tenant: &str, market: &str, id: OrderId) -> Result<Option<Entry>, StoreError>;

    /// A page of orders, newest first.
    ///
    /// # Errors
    /// A database error.
    async fn orders(
        &self,
        tenant: &str,
        market: &str,
        filter: &OrderFilter,
        limit: usize,
    ) -> Result<Vec<Entry>, StoreError>;

    /// Trades after `after`, oldest first, at most `limit`.
    ///
    /// # Errors
    /// A database error.
    async fn trades(
        &self,
        tenant: &str,
        market: &str,
        after: TradeId,
        limit: usize,
    ) -> Result<Vec<TradeRecord>, StoreError>;

    /// What `participant` bought less what it sold in `market`, per
    /// delivery start in `[from, until)` with any trade, in time order, Wh.
    ///
    /// # Errors
    /// A database error.
    async fn traded_by(
        &self,
        tenant: &str,
        market: &str,
        participant: &str,
        from: Timestamp,
        until: Timestamp,
    ) -> Result<Vec<(Timestamp, i64)>, StoreError>;

    /// The trades order `id` made as it came in (it was the aggressor).
    ///
    /// # Errors
    /// A database error.
    async fn trades_made_by(&self, tenant: &str, market: &str, id: OrderId) -> Result<Vec<TradeRecord>, StoreError>;

    /// Cleared auctions of products delivering after `after` (all when
    /// none), in delivery order, at most `limit`.
    ///
    /// # Errors
    /// A database error.
    async fn auctions(
        &self,
        tenant: &str,
        market: &str,
        after: Option<Timestamp>,
        limit: usize,
    ) -> Result<Vec<AuctionRecord>, StoreError>;

    /// The markets (tenant, id) with resting orders: the ones whose gates
    /// will close with something to expire or clear.
    ///
    /// # Errors
    /// A database error.
    async fn busy_markets(&self) -> Result<Vec<(String, String)>, StoreError>;
}

const ORDER_COLUMNS: &str = "id, client_order_id, participant, delivery_start_s, delivery_end_s, side, price_micros, \
     time_in_force, quantity_wh, filled_wh, state, cancel_reason, placed_at, node, shape";

const TRADE_COLUMNS: &str = "id, delivery_start_s, delivery_end_s, buy_order, sell_order, buyer, seller, quantity_wh, \
     buyer_price_micros, seller_price_micros, grid_fee_micros, aggressor, traded_at";

fn corrupt(what: &str, error: impl std::fmt::Display) -> StoreError {
    StoreError::Query {
        action: "read stored trading data",
        source: sqlx::Error::Decode(format!("{what}: {error}").into()),
    }
}

const fn side_name(side: Side) -> &'static str {
    match side {
        Side::Buy => "buy",
        Side::Sell => "sell",
    }
}

fn side_of(text: &str) -> Result<Side, StoreError> {
    match text {
        "buy" => Ok(Side::Buy),
        "sell" => Ok(Side::Sell),
        other => Err(corrupt("side", other)),
    }
}

const fn tif_name(tif: TimeInForce) -> &'static str {
    match tif {
        TimeInForce::Gtc => "gtc",
        TimeInForce::Ioc => "ioc",
        TimeInForce::Fok => "fok",
    }
}

fn tif_of(text: &str) -> Result<TimeInForce, StoreError> {
    match text {
        "gtc" => Ok(TimeInForce::Gtc),
        "ioc" => Ok(TimeInForce::Ioc),
        "fok" => Ok(TimeInForce::Fok),
        other => Err(corrupt("time_in_force", other)),
    }
}

fn instant(seconds: i64) -> Result<Timestamp, StoreError> {
    Timestamp::from_second(seconds).map_err(|e| corrupt("delivery", e))
}

fn minutes(start: Timestamp, end: Timestamp) -> i64 {
    end.duration_since(start).as_mins()
}

fn entry_from(row: &sqlx::any::AnyRow) -> Result<Entry, StoreError> {
    let read = |e| StoreError::Query { action: "read an order", source: e };
    let start = instant(row.try_get("delivery_start_s").map_err(read)?)?;
    let end = instant(row.try_get("delivery_end_s").map_err(read)?)?;
    let id: i64 = row.try_get("id").map_err(read)?;
    let price: Option<i64> = row.try_get("price_micros").map_err(read)?;
    let tif: Option<String> = row.try_get("time_in_force").map_err(read)?;
    let kind = match (price, tif) {
        (Some(price), Some(tif)) => Kind::Limit { price: Price::from_micros(price), time_in_force: tif_of(&tif)? },
        (None, _) => Kind::Market,
        (Some(_), None) => return Err(corrupt("time_in_force", "missing on a limit order")),
    };
    let participant: String = row.try_get("participant").map_err(read)?;
    let placed: String = row.try_get("placed_at").map_err(read)?;
    let state: String = row.try_get("state").map_err(read)?;
    let reason: Option<String> = row.try_get("cancel_reason").map_err(read)?;
    let side: String = row.try_get("side").map_err(read)?;
    Ok(Entry {
        order: Order {
            id: u64::try_from(id).map_err(|e| corrupt("id", e))?,
            participant: PartyId::new(participant).map_err(|e| corrupt("participant", e))?,
            product: ProductId::of(start, minutes(start, end)),
            side: side_of(&side)?,
            kind,
            quantity: Energy::from_wh(row.try_get("quantity_wh").map_err(read)?),
            placed: placed.parse().map_err(|e| corrupt("placed_at", e))?,
        },
        client_order_id: row.try_get("client_order_id").map_err(read)?,
        delivery_start: start,
        delivery_end: end,
        filled: Energy::from_wh(row.try_get("filled_wh").map_err(read)?),
        state: OrderState::parse(&state).ok_or_else(|| corrupt("state", &state))?,
        cancel_reason: reason
            .map(|r| CancelReason::parse(&r).ok_or_else(|| corrupt("cancel_reason", &r)))
            .transpose()?,
        node: row.try_get("node").map_err(read)?,
        shape: row
            .try_get::<Option<String>, _>("shape")
            .map_err(read)?
            .map(|text| serde_json::from_str(&text).map_err(|e| corrupt("shape", e)))
            .transpose()?,
    })
}

/// A block's intervals or a curve's steps as stored: JSON.
fn shape_text(shape: Option<&Shape>) -> Option<String> {
    // Timestamps, integers and prices as text: nothing here can fail to
    // serialise.
    shape.and_then(|s| serde_json::to_string(s).ok())
}

fn trade_from(row: &sqlx::any::AnyRow) -> Result<TradeRecord, StoreError> {
    let read = |e| StoreError::Query { action: "read a trade", source: e };
    let start = instant(row.try_get("delivery_start_s").map_err(read)?)?;
    let end = instant(row.try_get("delivery_end_s").map_err(read)?)?;
    let id = |column: &str| -> Result<u64, StoreError> {
        u64::try_from(row.try_get::<i64, _>(column).map_err(read)?).map_err(|e| corrupt(column, e))
    };
    let party = |column: &str| -> Result<PartyId, StoreError> {
        PartyId::new(row.try_get::<String, _>(column).map_err(read)?).map_err(|e| corrupt(column, e))
    };
    let at: String = row.try_get("traded_at").map_err(read)?;
    let aggressor: String = row.try_get("aggressor").map_err(read)?;
    let aggressor = match aggressor.as_str() {
        AUCTION => None,
        side => Some(side_of(side)?),
    };
    Ok(TradeRecord {
        id: id("id")?,
        trade: Trade {
            product: ProductId::of(start, minutes(start, end)),
            buy: id("buy_order")?,
            sell: id("sell_order")?,
            buyer: party("buyer")?,
            seller: party("seller")?,
            quantity: Energy::from_wh(row.try_get("quantity_wh").map_err(read)?),
            buyer_price: Price::from_micros(row.try_get("buyer_price_micros").map_err(read)?),
            seller_price: Price::from_micros(row.try_get("seller_price_micros").map_err(read)?),
            grid_fee: Price::from_micros(row.try_get("grid_fee_micros").map_err(read)?),
        },
        delivery_start: start,
        delivery_end: end,
        aggressor,
        at: at.parse().map_err(|e| corrupt("traded_at", e))?,
    })
}

/// The aggressor column of a call auction's trade.
const AUCTION: &str = "auction";

fn auction_from(row: &sqlx::any::AnyRow) -> Result<AuctionRecord, StoreError> {
    let read = |e| StoreError::Query { action: "read an auction", source: e };
    let wh = |column: &str| -> Result<Energy, StoreError> { Ok(Energy::from_wh(row.try_get(column).map_err(read)?)) };
    let money = |column: &str| -> Result<Decimal, StoreError> {
        row.try_get::<String, _>(column).map_err(read)?.parse().map_err(|e| corrupt(column, e))
    };
    let price: Option<i64> = row.try_get("price_micros").map_err(read)?;
    let at: String = row.try_get("cleared_at").map_err(read)?;
    let orders: i64 = row.try_get("orders").map_err(read)?;
    let network: Option<String> = row.try_get("network").map_err(read)?;
    Ok(AuctionRecord {
        delivery_start: instant(row.try_get("delivery_start_s").map_err(read)?)?,
        delivery_end: instant(row.try_get("delivery_end_s").map_err(read)?)?,
        price: price.map(Price::from_micros),
        volume: wh("volume_wh")?,
        demand: wh("demand_wh")?,
        supply: wh("supply_wh")?,
        paid: money("paid")?,
        received: money("received")?,
        orders: usize::try_from(orders).map_err(|e| corrupt("orders", e))?,
        at: at.parse().map_err(|e| corrupt("cleared_at", e))?,
        network: network.map(|text| serde_json::from_str(&text).map_err(|e| corrupt("network", e))).transpose()?,
    })
}

/// An id as a BIGINT column holds it (ids never come near `i64::MAX`).
fn big(id: u64) -> i64 {
    i64::try_from(id).unwrap_or(i64::MAX)
}

fn market_from(row: &sqlx::any::AnyRow) -> Result<MarketRecord, StoreError> {
    let read = |e| StoreError::Query { action: "read a market", source: e };
    let rules: String = row.try_get("rules").map_err(read)?;
    let created: String = row.try_get("created_at").map_err(read)?;
    Ok(MarketRecord {
        id: row.try_get("id").map_err(read)?,
        rules: serde_json::from_str(&rules).map_err(|e| corrupt("rules", e))?,
        created: created.parse().map_err(|e| corrupt("created_at", e))?,
    })
}

#[tonic::async_trait]
impl TradingStore for Store {
    async fn create_market(
        &self,
        tenant: &str,
        id: &str,
        rules: &MarketRules,
        now: Timestamp,
    ) -> Result<(MarketRecord, bool), StoreError> {
        let body = serde_json::to_string(rules).unwrap_or_default();
        let inserted = sqlx::query(
            "INSERT INTO trading_markets (tenant, id, rules, created_at) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (tenant, id) DO NOTHING",
        )
        .bind(tenant)
        .bind(id)
        .bind(body)
        .bind(super::stored_time(now))
        .execute(self.pool())
        .await
        .map_err(StoreError::query("create the market"))?;
        let record = self.market(tenant, id).await?.ok_or_else(|| corrupt("market", "created, then not found"))?;
        Ok((record, inserted.rows_affected() > 0))
    }

    async fn lead(&self, tenant: &str, market: &str) -> Result<Option<Leader>, StoreError> {
        let Some(lease) = self.lease(advisory_key(&format!("volta-trading/{tenant}/{market}")), false).await? else {
            return Ok(None);
        };
        let epoch: i64 = sqlx::query_scalar(
            "UPDATE trading_markets SET leader_epoch = leader_epoch + 1 WHERE tenant = $1 AND id = $2 \
             RETURNING leader_epoch",
        )
        .bind(tenant)
        .bind(market)
        .fetch_one(self.pool())
        .await
        .map_err(StoreError::query("take the market's next epoch"))?;
        Ok(Some(Leader { lease, epoch }))
    }

    async fn advertise(&self, tenant: &str, market: &str, epoch: i64, url: &str) -> Result<(), StoreError> {
        sqlx::query("UPDATE trading_markets SET leader_url = $4 WHERE tenant = $1 AND id = $2 AND leader_epoch = $3")
            .bind(tenant)
            .bind(market)
            .bind(epoch)
            .bind(url)
            .execute(self.pool())
            .await
            .map_err(StoreError::query("record where the market's leader is reached"))?;
        Ok(())
    }

    async fn leader_url(&self, tenant: &str, market: &str) -> Result<Option<String>, StoreError> {
        let url: Option<Option<String>> =
            sqlx::query_scalar("SELECT leader_url FROM trading_markets WHERE tenant = $1 AND id = $2")
                .bind(tenant)
                .bind(market)
                .fetch_optional(self.pool())
                .await
                .map_err(StoreError::query("read where the market's leader is reached"))?;
        Ok(url.flatten())
    }

    async fn market_count(&self, tenant: &str) -> Result<usize, StoreError> {
        let n: i64 = sqlx::query_scalar("SELECT CAST(COUNT(*) AS BIGINT) FROM trading_markets WHERE tenant = $1")
            .bind(tenant)
            .fetch_one(self.readers())
            .await
            .map_err(StoreError::query("count the markets"))?;
        Ok(usize::try_from(n).unwrap_or(0))
    }

    async fn market(&self, tenant: &str, id: &str) -> Result<Option<MarketRecord>, StoreError> {
        let row = sqlx::query("SELECT id, rules, created_at FROM trading_markets WHERE tenant = $1 AND id = $2")
            .bind(tenant)
            .bind(id)
            .fetch_optional(self.readers())
            .await
            .map_err(StoreError::query("read the market"))?;
        row.as_ref().map(market_from).transpose()
    }

    async fn snapshot(&self, tenant: &str, market: &str) -> Result<Snapshot, StoreError> {
        let last = |table: &'static str| async move {
            let sql = format!("SELECT COALESCE(MAX(id), 0) AS last FROM {table} WHERE tenant = $1 AND market = $2");
            let row = sqlx::query(sqlx::AssertSqlSafe(sql))
                .bind(tenant)
                .bind(market)
                .fetch_one(self.pool())
                .await
                .map_err(StoreError::query("read the market's last ids"))?;
            let last: i64 = row.try_get("last").map_err(StoreError::query("read the market's last ids"))?;
            u64::try_from(last).map_err(|e| corrupt("id", e))
        };
        let last_order = last("trading_orders").await?;
        let last_trade = last("trading_trades").await?;
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {ORDER_COLUMNS} FROM trading_orders WHERE tenant = $1 AND market = $2 AND state = 'resting' \
             ORDER BY id"
        )))
        .bind(tenant)
        .bind(market)
        .fetch_all(self.pool())
        .await
        .map_err(StoreError::query("read the resting orders"))?;
        let resting = rows.iter().map(entry_from).collect::<Result<_, _>>()?;
        Ok(Snapshot { last_order, last_trade, resting })
    }

    async fn open_keys(
        &self,
        tenant: &str,
        market: &str,
        after: Timestamp,
    ) -> Result<Vec<(String, Timestamp)>, StoreError> {
        let rows = sqlx::query(
            "SELECT client_key, delivery_start_s FROM trading_orders \
             WHERE tenant = $1 AND market = $2 AND delivery_start_s > $3",
        )
        .bind(tenant)
        .bind(market)
        .bind(after.as_second())
        .fetch_all(self.pool())
        .await
        .map_err(StoreError::query("read the open client keys"))?;
        rows.iter()
            .map(|row| {
                let key: String = row.try_get("client_key").map_err(StoreError::query("read a client key"))?;
                let start = instant(row.try_get("delivery_start_s").map_err(StoreError::query("read a client key"))?)?;
                Ok((key, start))
            })
            .collect()
    }

    async fn orders_by_key(&self, tenant: &str, market: &str, keys: &[String]) -> Result<Vec<Entry>, StoreError> {
        let mut found = Vec::new();
        for chunk in keys.chunks(ROWS_PER_INSERT * 4) {
            let sql = format!(
                "SELECT {ORDER_COLUMNS} FROM trading_orders WHERE tenant = $1 AND market = $2 AND client_key IN ({})",
                super::placeholders(3, chunk.len())
            );
            let mut q = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(tenant).bind(market);
            for key in chunk {
                q = q.bind(key.as_str());
            }
            let rows = q.fetch_all(self.pool()).await.map_err(StoreError::query("look up client order ids"))?;
            for row in &rows {
                found.push(entry_from(row)?);
            }
        }
        Ok(found)
    }

    async fn apply(
        &self,
        tenant: &str,
        market: &str,
        epoch: i64,
        changes: &Changes,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        const ORDER_VALUES: usize = 19;
        const TRADE_VALUES: usize = 15;
        let updated = super::stored_time(now);
        let mut tx = self.pool().begin().await.map_err(StoreError::query("begin a batch"))?;
        let current = sqlx::query(
            "UPDATE trading_markets SET leader_epoch = leader_epoch WHERE tenant = $1 AND id = $2 AND leader_epoch = $3",
        )
        .bind(tenant)
        .bind(market)
        .bind(epoch)
        .execute(&mut *tx)
        .await
        .map_err(StoreError::query("check the market's epoch"))?;
        if current.rows_affected() == 0 {
            return Err(StoreError::Deposed(format!("market {market} (epoch {epoch})")));
        }
        for chunk in changes.orders.chunks(ROWS_PER_INSERT) {
            let sql = format!(
                "INSERT INTO trading_orders (tenant, market, id, client_key, client_order_id, participant, \
                 delivery_start_s, delivery_end_s, side, price_micros, time_in_force, quantity_wh, filled_wh, state, \
                 cancel_reason, placed_at, updated_at, node, shape) VALUES {} \
                 ON CONFLICT (tenant, market, id) DO UPDATE SET quantity_wh = excluded.quantity_wh, \
                 filled_wh = excluded.filled_wh, state = excluded.state, cancel_reason = excluded.cancel_reason, \
                 updated_at = excluded.updated_at",
                values(&tx, chunk.len(), ORDER_VALUES)
            );
            let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
            for e in chunk {
                let (price, tif) = match e.order.kind {
                    Kind::Limit { price, time_in_force } => (Some(price.micros()), Some(tif_name(time_in_force))),
                    Kind::Market => (None, None),
                };
                q = q
                    .bind(tenant)
                    .bind(market)
                    .bind(big(e.order.id))
                    .bind(client_key(&e.order.participant, &e.client_order_id))
                    .bind(e.client_order_id.as_str())
                    .bind(e.order.participant.as_str())
                    .bind(e.delivery_start.as_second())
                    .bind(e.delivery_end.as_second())
                    .bind(side_name(e.order.side))
                    .bind(price)
                    .bind(tif)
                    .bind(e.order.quantity.wh())
                    .bind(e.filled.wh())
                    .bind(e.state.as_str())
                    .bind(e.cancel_reason.map(CancelReason::as_str))
                    .bind(super::stored_time(e.order.placed))
                    .bind(updated.as_str())
                    .bind(e.node.as_deref())
                    .bind(shape_text(e.shape.as_ref()));
            }
            q.execute(&mut *tx).await.map_err(StoreError::query("store the orders"))?;
        }
        for chunk in changes.trades.chunks(ROWS_PER_INSERT) {
            let sql = format!(
                "INSERT INTO trading_trades (tenant, market, id, delivery_start_s, delivery_end_s, buy_order, \
                 sell_order, buyer, seller, quantity_wh, buyer_price_micros, seller_price_micros, grid_fee_micros, \
                 aggressor, traded_at) VALUES {}",
                values(&tx, chunk.len(), TRADE_VALUES)
            );
            let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
            for t in chunk {
                q = q
                    .bind(tenant)
                    .bind(market)
                    .bind(big(t.id))
                    .bind(t.delivery_start.as_second())
                    .bind(t.delivery_end.as_second())
                    .bind(big(t.trade.buy))
                    .bind(big(t.trade.sell))
                    .bind(t.trade.buyer.as_str())
                    .bind(t.trade.seller.as_str())
                    .bind(t.trade.quantity.wh())
                    .bind(t.trade.buyer_price.micros())
                    .bind(t.trade.seller_price.micros())
                    .bind(t.trade.grid_fee.micros())
                    .bind(t.aggressor.map_or(AUCTION, side_name))
                    .bind(super::stored_time(t.at));
            }
            q.execute(&mut *tx).await.map_err(StoreError::query("store the trades"))?;
        }
        // Every trade goes to the settlement ledger: its message is written
        // with it, in this transaction (the outbox).
        let messages: Vec<_> =
            changes.trades.iter().map(|t| super::messaging::trade_message(tenant, market, t)).collect();
        super::messaging::enqueue(&mut tx, &messages, now).await?;
        for a in &changes.auctions {
            sqlx::query(
                "INSERT INTO trading_auctions (tenant, market, delivery_start_s, delivery_end_s, price_micros, \
                 volume_wh, demand_wh, supply_wh, paid, received, orders, cleared_at, network) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)",
            )
            .bind(tenant)
            .bind(market)
            .bind(a.delivery_start.as_second())
            .bind(a.delivery_end.as_second())
            .bind(a.price.map(Price::micros))
            .bind(a.volume.wh())
            .bind(a.demand.wh())
            .bind(a.supply.wh())
            .bind(a.paid.to_string())
            .bind(a.received.to_string())
            .bind(i64::try_from(a.orders).unwrap_or(i64::MAX))
            .bind(super::stored_time(a.at))
            .bind(a.network.as_ref().map(|n| serde_json::to_string(n).unwrap_or_default()))
            .execute(&mut *tx)
            .await
            .map_err(StoreError::query("store an auction"))?;
        }
        tx.commit().await.map_err(StoreError::query("commit a batch"))?;
        Ok(())
    }

    async fn order(&self, tenant: &str, market: &str, id: OrderId) -> Result<Option<Entry>, StoreError> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {ORDER_COLUMNS} FROM trading_orders WHERE tenant = $1 AND market = $2 AND id = $3"
        )))
        .bind(tenant)
        .bind(market)
        .bind(big(id))
        .fetch_optional(self.readers())
        .await
        .map_err(StoreError::query("read the order"))?;
        row.as_ref().map(entry_from).transpose()
    }

    async fn orders(
        &self,
        tenant: &str,
        market: &str,
        filter: &OrderFilter,
        limit: usize,
    ) -> Result<Vec<Entry>, StoreError> {
        let mut sql = format!("SELECT {ORDER_COLUMNS} FROM trading_orders WHERE tenant = $1 AND market = $2");
        let mut next = 3;
        if filter.participant.is_some() {
            sql.push_str(&format!(" AND participant = ${next}"));
            next += 1;
        }
        if filter.resting_only {
            sql.push_str(" AND state = 'resting'");
        }
        if filter.before.is_some() {
            sql.push_str(&format!(" AND id < ${next}"));
        }
        sql.push_str(&format!(" ORDER BY id DESC LIMIT {}", limit.min(super::MAX_PAGE)));
        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(tenant).bind(market);
        if let Some(participant) = &filter.participant {
            q = q.bind(participant.as_str());
        }
        if let Some(before) = filter.before {
            q = q.bind(big(before));
        }
        let rows = q.fetch_all(self.readers()).await.map_err(StoreError::query("list the orders"))?;
        rows.iter().map(entry_from).collect()
    }

    async fn trades(
        &self,
        tenant: &str,
        market: &str,
        after: TradeId,
        limit: usize,
    ) -> Result<Vec<TradeRecord>, StoreError> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {TRADE_COLUMNS} FROM trading_trades WHERE tenant = $1 AND market = $2 AND id > $3 \
             ORDER BY id LIMIT {}",
            limit.min(super::MAX_PAGE)
        )))
        .bind(tenant)
        .bind(market)
        .bind(big(after))
        .fetch_all(self.readers())
        .await
        .map_err(StoreError::query("list the trades"))?;
        rows.iter().map(trade_from).collect()
    }

    async fn traded_by(
        &self,
        tenant: &str,
        market: &str,
        participant: &str,
        from: Timestamp,
        until: Timestamp,
    ) -> Result<Vec<(Timestamp, i64)>, StoreError> {
        // Two index ranges: its buys, and its sells counted negative.
        let rows = sqlx::query(
            "SELECT delivery_start_s, CAST(SUM(wh) AS BIGINT) AS net FROM ( \
             SELECT delivery_start_s, quantity_wh AS wh FROM trading_trades WHERE tenant = $1 AND market = $2 \
             AND buyer = $3 AND delivery_start_s >= $4 AND delivery_start_s < $5 \
             UNION ALL SELECT delivery_start_s, -quantity_wh AS wh FROM trading_trades WHERE tenant = $1 \
             AND market = $2 AND seller = $3 AND delivery_start_s >= $4 AND delivery_start_s < $5) AS sides \
             GROUP BY delivery_start_s ORDER BY delivery_start_s",
        )
        .bind(tenant)
        .bind(market)
        .bind(participant)
        .bind(from.as_second())
        .bind(until.as_second())
        .fetch_all(self.readers())
        .await
        .map_err(StoreError::query("sum a participant's trades"))?;
        rows.iter()
            .map(|row| {
                let read = |e| StoreError::Query { action: "sum a participant's trades", source: e };
                let start: i64 = row.try_get("delivery_start_s").map_err(read)?;
                let net: i64 = row.try_get("net").map_err(read)?;
                let start =
                    Timestamp::from_second(start).map_err(|e| read(sqlx::Error::Decode(e.to_string().into())))?;
                Ok((start, net))
            })
            .collect()
    }

    async fn trades_made_by(&self, tenant: &str, market: &str, id: OrderId) -> Result<Vec<TradeRecord>, StoreError> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {TRADE_COLUMNS} FROM trading_trades WHERE tenant = $1 AND market = $2 \
             AND ((buy_order = $3 AND aggressor = 'buy') OR (sell_order = $3 AND aggressor = 'sell')) ORDER BY id"
        )))
        .bind(tenant)
        .bind(market)
        .bind(big(id))
        .fetch_all(self.readers())
        .await
        .map_err(StoreError::query("read the order's trades"))?;
        rows.iter().map(trade_from).collect()
    }

    async fn auctions(
        &self,
        tenant: &str,
        market: &str,
        after: Option<Timestamp>,
        limit: usize,
    ) -> Result<Vec<AuctionRecord>, StoreError> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT delivery_start_s, delivery_end_s, price_micros, volume_wh, demand_wh, supply_wh, paid, received, \
             orders, cleared_at, network FROM trading_auctions WHERE tenant = $1 AND market = $2 AND delivery_start_s > $3 \
             ORDER BY delivery_start_s LIMIT {}",
            limit.min(super::MAX_PAGE)
        )))
        .bind(tenant)
        .bind(market)
        .bind(after.map_or(i64::MIN, Timestamp::as_second))
        .fetch_all(self.readers())
        .await
        .map_err(StoreError::query("list the auctions"))?;
        rows.iter().map(auction_from).collect()
    }

    async fn busy_markets(&self) -> Result<Vec<(String, String)>, StoreError> {
        let rows = sqlx::query(
            "SELECT DISTINCT m.tenant, m.id FROM trading_markets m WHERE EXISTS (SELECT 1 FROM trading_orders o \
             WHERE o.tenant = m.tenant AND o.market = m.id AND o.state = 'resting') ORDER BY m.tenant, m.id",
        )
        .fetch_all(self.readers())
        .await
        .map_err(StoreError::query("find the markets with resting orders"))?;
        rows.iter()
            .map(|row| {
                let read = || StoreError::query("find the markets with resting orders");
                Ok((row.try_get("tenant").map_err(read())?, row.try_get("id").map_err(read())?))
            })
            .collect()
    }
}
