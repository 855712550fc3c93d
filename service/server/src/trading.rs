//! `volta.trading.v1.TradingService`: the tenant's local energy markets.
//!
//! Each market runs in one sequencer task that owns its books
//! ([`volta_trading::Market`]): calls send it commands and wait for its
//! reply. The sequencer takes whatever commands are waiting (up to
//! [`MAX_BATCH`]), runs them in arrival order against the books, writes
//! everything they changed in one transaction, and only then replies to
//! every caller of the batch and publishes the trades and book changes to
//! watchers: an acknowledged order is stored, and one commit serves many
//! orders under load (group commit). If the write fails, every caller of
//! the batch gets UNAVAILABLE and the books are rebuilt from the store, so
//! memory never holds what the store does not.
//!
//! A market's sequencer starts at its first call after the server starts,
//! or sooner for a market with resting orders (a warden looks for them at
//! start and every few seconds, so that their gates close on time with no
//! call), from the stored resting orders. Once a second it closes the
//! products whose gate has closed: in a continuous market their resting
//! orders expire; in a call market the product's auction clears, and its
//! fills, trades and result are stored in one transaction like a batch.
//!
//! Roles: a viewer reads books and the trade tape; an operator trades as
//! the participant its token's subject names and sees its own orders; an
//! admin is the market operator (creates markets, trades for anyone, sees
//! everything). One process runs a market's sequencer: the trading leader.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use jiff::{SignedDuration, Timestamp};
use tokio::sync::{Mutex, Notify, broadcast, mpsc, oneshot, watch};
use tokio_stream::Stream;
use tonic::{Request, Response, Status};
use volta_api::pb::trading as pb;
use volta_api::status::{self as errors, Reason};
use volta_api::trading as convert;
use volta_contracts::{Energy, PartyId};
use volta_engine::Cancel;
use volta_trading::book::Depth;
use volta_trading::{Changes, Entry, Market, NewOrder, OrderId, TradeId, TradeRecord};

use crate::Shared;
use crate::auth::{Caller, Role};
use crate::budget::Budget;
use crate::dead_letters;
use crate::messaging::POSITIONS;
use crate::routing::Router;
use crate::store::StoreError;
use crate::store::messaging::MessagingStore;
use crate::store::trading::{Leader, MarketRecord, OrderFilter, TradingStore, client_key};
use crate::store::unavailable;

/// Commands one batch of a sequencer takes at most.
const MAX_BATCH: usize = 512;

/// Commands waiting for a market's sequencer; beyond them a call is shed.
const QUEUE: usize = 8_192;

/// Events a watcher may fall behind by before it skips ahead.
const EVENTS: usize = 1_024;

/// Levels per side a book change carries to watchers (a watcher asks for
/// at most this many).
const MAX_WATCH_DEPTH: usize = 100;

/// Levels per side of a book read.
const MAX_DEPTH: usize = 1_000;

/// Orders of a page when the caller does not say, and at most.
const DEFAULT_PAGE: usize = 100;
const MAX_PAGE: usize = 1_000;

/// The most contracts one participant's positions are computed from.
const MAX_CONTRACTS: usize = 1_000;

/// The most days of contract positions one call reads (a year of quarter
/// hours is 35,136 intervals, about 0.7 MB).
const MAX_POSITION_DAYS: usize = 366;

/// Resting orders of one participant in one market, at most.
const MAX_RESTING_PER_PARTICIPANT: usize = 10_000;

/// Markets of one tenant, at most (each runs a sequencer once used).
const MAX_MARKETS: usize = 100;

/// How often the warden looks for markets with resting orders that no
/// sequencer here runs (after a restart, or when another replica's lease
/// has gone).
const WARDEN_PERIOD: Duration = Duration::from_secs(5);

/// Orders of one call auction (a block's intervals counted), at most: a
/// day of quarter hours for a thousand participants, each a ten-step curve.
const MAX_AUCTION_ORDERS: usize = 1_000_000;

/// What a submission became.
#[derive(Debug, Clone)]
struct Submitted {
    entry: Entry,
    trades: Vec<TradeRecord>,
    accepted: bool,
}

/// Who asks, as a sequencer sees it: `None` is the market operator.
type Owner = Option<PartyId>;

enum Command {
    Submit { order: NewOrder, reply: oneshot::Sender<Result<Submitted, Status>> },
    Cancel { id: OrderId, owner: Owner, reply: oneshot::Sender<Result<Option<Entry>, Status>> },
    Reduce { id: OrderId, quantity: Energy, owner: Owner, reply: oneshot::Sender<Result<Option<Entry>, Status>> },
    Depth { start: Timestamp, levels: usize, reply: oneshot::Sender<Result<pb::Book, Status>> },
}

/// What watchers are told after a batch is stored.
#[derive(Debug)]
enum Event {
    Trades(Vec<TradeRecord>),
    Books(Vec<pb::Book>),
}

/// A running market: its sequencer's queue and its event feed.
#[derive(Debug, Clone)]
struct Handle {
    commands: mpsc::Sender<Command>,
    events: broadcast::Sender<Arc<Event>>,
}

impl Handle {
    async fn ask<T>(&self, command: impl FnOnce(oneshot::Sender<Result<T, Status>>) -> Command) -> Result<T, Status> {
        let (tx, rx) = oneshot::channel();
        self.commands.try_send(command(tx)).map_err(|e| match e {
            mpsc::error::TrySendError::Full(_) => {
                errors::shed("the market's queue is full; retry with backoff", Duration::from_millis(100))
            }
            mpsc::error::TrySendError::Closed(_) => stopped(),
        })?;
        rx.await.map_err(|_| stopped())?
    }
}

fn stopped() -> Status {
    errors::error(Reason::StoreUnavailable, "the market restarted; retry")
}

/// The running markets of every tenant.
#[derive(Debug)]
struct Markets {
    store: Arc<dyn TradingStore>,
    metrics: Arc<crate::telemetry::Metrics>,
    /// Woken when trades are stored (their messages are in the outbox).
    outbox: Arc<Notify>,
    running: Mutex<HashMap<(String, String), Handle>>,
    /// Where this replica is reached, and the way to the others.
    router: Arc<Router>,
}

/// Where a call for a market goes.
enum Route {
    /// This process leads it.
    Here(Handle),
    /// Another replica leads it, reached at this URL.
    There(String),
    /// Neither is known (an invalid id, no such market, a leader that has
    /// not said where it is reached, a call forwarded already): the call is
    /// read, and answered as [`Markets::get`] answers.
    Undecided,
}

impl Route {
    /// The running market, from the route or from `markets`.
    async fn handle(self, markets: &Markets, tenant: &str, id: &str) -> Result<Handle, Status> {
        match self {
            Self::Here(handle) => Ok(handle),
            Self::There(_) | Self::Undecided => markets.get(tenant, id).await,
        }
    }
}

impl Markets {
    /// Where a call for market `id` goes (`forwarded`: the call came from
    /// another replica, and goes no further).
    async fn route(&self, tenant: &str, id: &str, forwarded: bool) -> Route {
        if !volta_engine::is_valid_id(id) {
            return Route::Undecided;
        }
        match self.start(tenant, id).await {
            Ok(Some(handle)) => Route::Here(handle),
            Ok(None) if !forwarded => match self.store.leader_url(tenant, id).await {
                Ok(Some(url)) if Some(url.as_str()) != self.router.own() => Route::There(url),
                Ok(_) | Err(_) => Route::Undecided,
            },
            Ok(None) | Err(_) => Route::Undecided,
        }
    }

    /// Whether this process runs the market.
    async fn is_running(&self, tenant: &str, id: &str) -> bool {
        self.running.lock().await.get(&(tenant.to_owned(), id.to_owned())).is_some_and(|h| !h.commands.is_closed())
    }

    /// The running market, started from the store if it is not running.
    async fn get(&self, tenant: &str, id: &str) -> Result<Handle, Status> {
        self.start(tenant, id).await?.ok_or_else(|| {
            errors::error(
                Reason::NotLeader,
                format!("market {id} is run by another replica (its leader); call that one, or retry after it stops"),
            )
        })
    }

    /// The running market, started from the store if it is not running;
    /// none when another replica leads it.
    async fn start(&self, tenant: &str, id: &str) -> Result<Option<Handle>, Status> {
        let mut running = self.running.lock().await;
        let key = (tenant.to_owned(), id.to_owned());
        if let Some(handle) = running.get(&key)
            && !handle.commands.is_closed()
        {
            return Ok(Some(handle.clone()));
        }
        let record = self
            .store
            .market(tenant, id)
            .await
            .map_err(|e| unavailable(&e))?
            .ok_or_else(|| errors::error(Reason::MarketNotFound, format!("no market {}", errors::shown(id))))?;
        let Some(leader) = self.store.lead(tenant, id).await.map_err(|e| unavailable(&e))? else {
            return Ok(None);
        };
        tracing::info!(
            market = %id,
            epoch = leader.epoch,
            across_replicas = leader.lease.is_shared(),
            "this process leads the market"
        );
        if leader.lease.is_shared()
            && let Some(url) = self.router.own()
            && let Err(e) = self.store.advertise(tenant, id, leader.epoch, url).await
        {
            // The other replicas answer NOT_LEADER instead of forwarding.
            tracing::warn!(market = %id, error = %e, "cannot record where this leader is reached");
        }
        let (market, keys) = load(self.store.as_ref(), tenant, &record).await?;
        let (commands, queue) = mpsc::channel(QUEUE);
        let (events, _) = broadcast::channel(EVENTS);
        let sequencer = Sequencer {
            tenant: tenant.to_owned(),
            market_id: id.to_owned(),
            record,
            market,
            keys,
            leader,
            deposed: false,
            store: self.store.clone(),
            events: events.clone(),
            metrics: self.metrics.clone(),
            outbox: self.outbox.clone(),
        };
        tokio::spawn(sequencer.run(queue));
        let handle = Handle { commands, events };
        running.insert(key, handle.clone());
        Ok(Some(handle))
    }
}

/// The client keys of stored orders whose product may still trade, by
/// delivery start: a submission whose key is not here is new.
type Keys = BTreeMap<Timestamp, HashSet<String>>;

/// A market rebuilt from the store, with its open client keys.
async fn load(store: &dyn TradingStore, tenant: &str, record: &MarketRecord) -> Result<(Market, Keys), Status> {
    let snapshot = store.snapshot(tenant, &record.id).await.map_err(|e| unavailable(&e))?;
    let mut market =
        Market::new(record.rules.clone(), snapshot.last_order, snapshot.last_trade).map_err(|e| errors::trading(&e))?;
    let count = snapshot.resting.len();
    for entry in snapshot.resting {
        let id = entry.order.id;
        market.restore(entry).map_err(|e| {
            tracing::error!(market = %record.id, order = id, error = %e, "a stored order does not restore");
            errors::error(Reason::Internal, "the market's stored book is inconsistent (logged on the server)")
        })?;
    }
    let mut keys = Keys::new();
    for (key, start) in store.open_keys(tenant, &record.id, Timestamp::now()).await.map_err(|e| unavailable(&e))? {
        keys.entry(start).or_default().insert(key);
    }
    tracing::info!(market = %record.id, resting = count, last_order = market.last_order(), "market loaded");
    Ok((market, keys))
}

/// Now, to the microsecond the store keeps: a reply read back from the
/// store is the reply given live.
fn stored_now() -> Timestamp {
    let now = Timestamp::now();
    Timestamp::from_microsecond(now.as_microsecond()).unwrap_or(now)
}

/// A reply the sequencer sends once its batch is stored.
enum Pending {
    Submitted(oneshot::Sender<Result<Submitted, Status>>, Submitted),
    /// A client order id stored before: the reply reads its trades.
    Replay(oneshot::Sender<Result<Submitted, Status>>, Entry),
    Changed(oneshot::Sender<Result<Option<Entry>, Status>>, Option<Entry>),
    Book(oneshot::Sender<Result<pb::Book, Status>>, pb::Book),
}

struct Sequencer {
    tenant: String,
    market_id: String,
    record: MarketRecord,
    market: Market,
    keys: Keys,
    /// Held while the sequencer runs (one per market across replicas);
    /// its epoch goes with every batch stored.
    leader: Leader,
    /// Another process took the market over (the lease was lost and the
    /// store refused a batch): the sequencer stops.
    deposed: bool,
    store: Arc<dyn TradingStore>,
    events: broadcast::Sender<Arc<Event>>,
    metrics: Arc<crate::telemetry::Metrics>,
    outbox: Arc<Notify>,
}

impl Sequencer {
    async fn run(mut self, mut queue: mpsc::Receiver<Command>) {
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            let ok = tokio::select! {
                command = queue.recv() => {
                    let Some(command) = command else { break };
                    let mut batch = vec![command];
                    while batch.len() < MAX_BATCH {
                        match queue.try_recv() {
                            Ok(c) => batch.push(c),
                            Err(_) => break,
                        }
                    }
                    self.batch(batch).await
                }
                _ = tick.tick() => {
                    // A lost lease (the database dropped its connection)
                    // stops the sequencer before another process's batches
                    // could meet its own; the next call leads again.
                    if !self.leader.lease.is_held().await {
                        tracing::warn!(market = %self.market_id, "the market's lease is lost; its sequencer stops");
                        break;
                    }
                    self.close().await
                }
            };
            if self.deposed {
                tracing::warn!(market = %self.market_id, "another process leads the market now; its sequencer stops");
                break;
            }
            if !ok {
                // Rebuild from the store; if even that fails, stop: the
                // next call starts the market again.
                match load(self.store.as_ref(), &self.tenant, &self.record).await {
                    Ok((market, keys)) => (self.market, self.keys) = (market, keys),
                    Err(_) => break,
                }
            }
        }
    }

    /// Closes the products whose gate has closed (orders expire, call
    /// auctions clear); false if storing failed.
    async fn close(&mut self) -> bool {
        let now = stored_now();
        self.keys = self.keys.split_off(&now);
        // A welfare market's closing products are solved on HiGHS: off the
        // runtime's reactor where it has threads to spare, so the server's
        // other calls go on meanwhile.
        let welfare = self.market.rules().matching == volta_trading::Matching::Welfare;
        let changes = if welfare
            && tokio::runtime::Handle::current().runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread
        {
            tokio::task::block_in_place(|| self.market.close(now))
        } else {
            self.market.close(now)
        };
        if changes.is_empty() {
            return true;
        }
        if let Err(e) = self.store.apply(&self.tenant, &self.market_id, self.leader.epoch, &changes, now).await {
            self.deposed = matches!(e, StoreError::Deposed(_));
            tracing::error!(market = %self.market_id, error = %e, "cannot store closed products; rebuilding the books");
            return false;
        }
        for a in &changes.auctions {
            tracing::info!(
                market = %self.market_id,
                delivery_start = %a.delivery_start,
                price = a.price.map(|p| p.to_string()).unwrap_or_default(),
                volume_wh = a.volume.wh(),
                orders = a.orders,
                "call auction cleared"
            );
        }
        self.metrics.trading_closed(changes.auctions.len(), changes.trades.len());
        if !changes.trades.is_empty() {
            self.outbox.notify_one();
        }
        tracing::info!(market = %self.market_id, orders = changes.orders.len(), "gates closed");
        if self.events.receiver_count() > 0 && !changes.trades.is_empty() {
            let _ = self.events.send(Arc::new(Event::Trades(changes.trades)));
        }
        true
    }

    /// Runs a batch and stores what it changed; false if storing failed.
    async fn batch(&mut self, batch: Vec<Command>) -> bool {
        let now = stored_now();
        self.metrics.batch(batch.len());
        // Client order ids stored before (a retry after a lost reply): only
        // keys this market has seen are looked up.
        let keys: Vec<String> = batch
            .iter()
            .filter_map(|c| match c {
                Command::Submit { order, .. } => {
                    let key = client_key(&order.participant, &order.client_order_id);
                    self.keys.get(&order.delivery_start).is_some_and(|k| k.contains(&key)).then_some(key)
                }
                Command::Cancel { .. } | Command::Reduce { .. } | Command::Depth { .. } => None,
            })
            .collect();
        let mut stored: HashMap<String, Entry> = HashMap::new();
        if !keys.is_empty() {
            match self.store.orders_by_key(&self.tenant, &self.market_id, &keys).await {
                Ok(found) => {
                    for e in found {
                        stored.insert(client_key(&e.order.participant, &e.client_order_id), e);
                    }
                }
                Err(e) => {
                    let status = unavailable(&e);
                    for command in batch {
                        refuse(command, status.clone());
                    }
                    return true;
                }
            }
        }
        let mut pending = Vec::with_capacity(batch.len());
        let mut changes = Changes::default();
        let mut changed_books = HashSet::new();
        // Client order ids submitted earlier in this batch, by order id.
        let mut in_batch: HashMap<String, OrderId> = HashMap::new();
        let mut duplicates = Vec::new();
        for command in batch {
            match command {
                Command::Submit { order, reply } => {
                    let key = client_key(&order.participant, &order.client_order_id);
                    if let Some(entry) = stored.get(&key) {
                        pending.push(Pending::Replay(reply, entry.clone()));
                        continue;
                    }
                    if let Some(&id) = in_batch.get(&key) {
                        duplicates.push((reply, id));
                        continue;
                    }
                    if matches!(order.kind, volta_trading::Kind::Limit { .. })
                        && self.market.resting_of(&order.participant) >= MAX_RESTING_PER_PARTICIPANT
                    {
                        let _ = reply.send(Err(errors::over_limit(
                            "participant_id",
                            "resting orders",
                            "a participant's resting orders in a market",
                            MAX_RESTING_PER_PARTICIPANT,
                        )));
                        continue;
                    }
                    let refusal = match self.market.submit(order, now) {
                        Ok(made) => {
                            let entry = made.orders[0].clone();
                            changed_books.extend(entry.books());
                            in_batch.insert(key, entry.order.id);
                            let submitted = Submitted { entry, trades: made.trades.clone(), accepted: true };
                            changes.orders.extend(made.orders);
                            changes.trades.extend(made.trades);
                            pending.push(Pending::Submitted(reply, submitted));
                            continue;
                        }
                        Err(e) => e,
                    };
                    // A closed gate may be a retry of an order stored before
                    // its product's keys were let go.
                    if matches!(refusal, volta_trading::TradingError::GateClosed { .. })
                        && let Ok(found) =
                            self.store.orders_by_key(&self.tenant, &self.market_id, std::slice::from_ref(&key)).await
                        && let Some(entry) = found.into_iter().next()
                    {
                        pending.push(Pending::Replay(reply, entry));
                        continue;
                    }
                    let _ = reply.send(Err(refused(&refusal)));
                }
                Command::Cancel { id, owner, reply } => {
                    if !self.owns(id, owner.as_ref()) {
                        pending.push(Pending::Changed(reply, None));
                        continue;
                    }
                    match self.market.cancel(id) {
                        Ok(entry) => {
                            changed_books.extend(entry.books());
                            changes.orders.push(entry.clone());
                            pending.push(Pending::Changed(reply, Some(entry)));
                        }
                        Err(e) => {
                            let _ = reply.send(Err(errors::trading(&e)));
                        }
                    }
                }
                Command::Reduce { id, quantity, owner, reply } => {
                    if !self.owns(id, owner.as_ref()) {
                        pending.push(Pending::Changed(reply, None));
                        continue;
                    }
                    match self.market.reduce(id, quantity) {
                        Ok(entry) => {
                            changed_books.extend(entry.books());
                            changes.orders.push(entry.clone());
                            pending.push(Pending::Changed(reply, Some(entry)));
                        }
                        Err(e) => {
                            let _ = reply.send(Err(errors::trading(&e)));
                        }
                    }
                }
                Command::Depth { start, levels, reply } => match self.book(start, levels) {
                    Ok(book) => pending.push(Pending::Book(reply, book)),
                    Err(status) => {
                        let _ = reply.send(Err(status));
                    }
                },
            }
        }
        collapse(&mut changes.orders);
        if (!changes.orders.is_empty() || !changes.trades.is_empty())
            && let Err(e) = self.store.apply(&self.tenant, &self.market_id, self.leader.epoch, &changes, now).await
        {
            tracing::error!(market = %self.market_id, error = %e, "cannot store a batch; rebuilding the books");
            self.deposed = matches!(e, StoreError::Deposed(_));
            let status = if self.deposed {
                errors::error(Reason::NotLeader, format!("market {} is run by another replica now", self.market_id))
            } else {
                unavailable(&e)
            };
            for p in pending {
                p.refuse(status.clone());
            }
            for (reply, _) in duplicates {
                let _ = reply.send(Err(status.clone()));
            }
            return false;
        }
        // Stored: wake the relay, remember the new keys, answer, then tell
        // the watchers.
        if !changes.trades.is_empty() {
            crate::failpoint::pass("outbox.after_commit");
            self.outbox.notify_one();
        }
        for p in &pending {
            if let Pending::Submitted(_, submitted) = p {
                let e = &submitted.entry;
                self.keys
                    .entry(e.delivery_start)
                    .or_default()
                    .insert(client_key(&e.order.participant, &e.client_order_id));
            }
        }
        let final_state: HashMap<OrderId, &Entry> = changes.orders.iter().map(|e| (e.order.id, e)).collect();
        for (reply, id) in duplicates {
            let found = pending.iter().find_map(|p| match p {
                Pending::Submitted(_, s) if s.entry.order.id == id => Some(s.clone()),
                Pending::Submitted(..) | Pending::Replay(..) | Pending::Changed(..) | Pending::Book(..) => None,
            });
            if let Some(mut s) = found {
                s.accepted = false;
                if let Some(now) = final_state.get(&id) {
                    s.entry = (*now).clone();
                }
                let _ = reply.send(Ok(s));
            }
        }
        for p in pending {
            match p {
                Pending::Submitted(reply, mut s) => {
                    if let Some(now) = final_state.get(&s.entry.order.id) {
                        s.entry = (*now).clone();
                    }
                    let _ = reply.send(Ok(s));
                }
                Pending::Replay(reply, entry) => {
                    // The order as it is now: resting ones are in memory.
                    let entry = self.market.open(entry.order.id).cloned().unwrap_or(entry);
                    let trades = self.store.trades_made_by(&self.tenant, &self.market_id, entry.order.id).await;
                    let _ = reply.send(
                        trades.map(|trades| Submitted { entry, trades, accepted: false }).map_err(|e| unavailable(&e)),
                    );
                }
                Pending::Changed(reply, entry) => {
                    let _ = reply.send(Ok(entry));
                }
                Pending::Book(reply, book) => {
                    let _ = reply.send(Ok(book));
                }
            }
        }
        if self.events.receiver_count() > 0 {
            if !changes.trades.is_empty() {
                let _ = self.events.send(Arc::new(Event::Trades(changes.trades)));
            }
            if !changed_books.is_empty() {
                let books = changed_books.into_iter().filter_map(|s| self.book(s, MAX_WATCH_DEPTH).ok()).collect();
                let _ = self.events.send(Arc::new(Event::Books(books)));
            }
        }
        true
    }

    /// Whether `owner` may change resting order `id` (`None`: the operator).
    /// An order that does not rest, or rests for another participant, is
    /// answered from the store by the caller.
    fn owns(&self, id: OrderId, owner: Option<&PartyId>) -> bool {
        self.market.open(id).is_some_and(|e| owner.is_none_or(|o| &e.order.participant == o))
    }

    fn book(&self, start: Timestamp, levels: usize) -> Result<pb::Book, Status> {
        let product = self.market.product(start).map_err(|e| errors::trading(&e))?;
        let (bids, asks): (Vec<Depth>, Vec<Depth>) = self.market.depth(start, levels);
        let (bid_blocks, ask_blocks) = self.market.blocks_at(start, levels);
        let last = self.market.last_order();
        Ok(convert::book_message(start, product.gate_close, (&bids, &asks), (&bid_blocks, &ask_blocks), last))
    }
}

/// Keeps the last version of every order, in the order of first change.
fn collapse(orders: &mut Vec<Entry>) {
    let mut at: HashMap<OrderId, usize> = HashMap::new();
    let mut out: Vec<Entry> = Vec::with_capacity(orders.len());
    for e in orders.drain(..) {
        match at.get(&e.order.id) {
            Some(&i) => out[i] = e,
            None => {
                at.insert(e.order.id, out.len());
                out.push(e);
            }
        }
    }
    *orders = out;
}

/// An order the market refused, its field named as the request names it.
fn refused(error: &volta_trading::TradingError) -> Status {
    errors::trading_at(error, &|field| {
        match field {
            "price" => "limit_price",
            "quantity" => "quantity_wh",
            "product" => "delivery_start",
            other => other,
        }
        .to_owned()
    })
}

fn refuse(command: Command, status: Status) {
    match command {
        Command::Submit { reply, .. } => {
            let _ = reply.send(Err(status));
        }
        Command::Cancel { reply, .. } | Command::Reduce { reply, .. } => {
            let _ = reply.send(Err(status));
        }
        Command::Depth { reply, .. } => {
            let _ = reply.send(Err(status));
        }
    }
}

impl Pending {
    fn refuse(self, status: Status) {
        match self {
            Self::Submitted(reply, _) | Self::Replay(reply, _) => {
                let _ = reply.send(Err(status));
            }
            Self::Changed(reply, _) => {
                let _ = reply.send(Err(status));
            }
            Self::Book(reply, _) => {
                let _ = reply.send(Err(status));
            }
        }
    }
}

/// The trading service.
pub(crate) struct Trading {
    shared: Shared,
    store: Arc<dyn TradingStore>,
    /// The view of the contracts the contract service's messages keep.
    views: Arc<dyn MessagingStore>,
    markets: Arc<Markets>,
    stopping: watch::Receiver<bool>,
}

impl Trading {
    pub(crate) fn new(
        shared: Shared,
        store: Arc<dyn TradingStore>,
        views: Arc<dyn MessagingStore>,
        stopping: watch::Receiver<bool>,
        outbox: Arc<Notify>,
        router: Router,
    ) -> Self {
        let markets = Arc::new(Markets {
            store: store.clone(),
            metrics: shared.metrics.clone(),
            outbox,
            running: Mutex::new(HashMap::new()),
            router: Arc::new(router),
        });
        tokio::spawn(warden(markets.clone(), stopping.clone()));
        Self { shared, store, views, markets, stopping }
    }
}

/// Starts the sequencer of every market with resting orders that none runs
/// here, now and every [`WARDEN_PERIOD`] until the server stops: a gate
/// that closes while nobody calls still expires its orders or clears its
/// auction, and a replica takes over a market whose leader died. A market
/// another replica leads is left to it.
async fn warden(markets: Arc<Markets>, mut stopping: watch::Receiver<bool>) {
    let mut tick = tokio::time::interval(WARDEN_PERIOD);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = stopping.wait_for(|s| *s) => return,
        }
        let busy = match markets.store.busy_markets().await {
            Ok(busy) => busy,
            Err(e) => {
                tracing::warn!(error = %e, "the trading warden cannot read the markets with resting orders");
                continue;
            }
        };
        for (tenant, id) in busy {
            if markets.is_running(&tenant, &id).await {
                continue;
            }
            match markets.start(&tenant, &id).await {
                Ok(Some(_)) => tracing::info!(tenant = %tenant, market = %id, "started a market with resting orders"),
                Ok(None) => {}
                Err(status) => {
                    tracing::warn!(tenant = %tenant, market = %id, error = %status.message(), "cannot start a market");
                }
            }
        }
    }
}

/// The caller as a participant: its token's subject.
fn participant_of(caller: &Caller) -> Result<PartyId, Status> {
    PartyId::new(caller.subject.clone()).map_err(|_| {
        errors::invalid(
            "participant_id",
            format!(
                "the token's subject {} is not a participant id (1 to 64 of A-Z a-z 0-9 _ - .)",
                errors::shown(&caller.subject)
            ),
        )
    })
}

fn is_operator(caller: &Caller) -> bool {
    caller.role.is_some_and(|r| r >= Role::Admin)
}

/// Who a change acts as: the participant the request names (the market
/// operator only), or the caller.
fn acting(caller: &Caller, named: Option<PartyId>) -> Result<PartyId, Status> {
    match named {
        Some(p) if is_operator(caller) => Ok(p),
        Some(_) => Err(errors::error(
            Reason::RoleRequired,
            format!("{} may trade only for itself: only an admin names another participant", caller.subject),
        )),
        None => participant_of(caller),
    }
}

/// What the caller may see of others: `None` everything (the operator).
fn viewer(caller: &Caller) -> Option<Option<PartyId>> {
    if is_operator(caller) { None } else { Some(PartyId::new(caller.subject.clone()).ok()) }
}

fn trade_for(record: &TradeRecord, seen_by: &Option<Option<PartyId>>) -> pb::Trade {
    let shown = |p: &PartyId| match seen_by {
        None => true,
        Some(me) => me.as_ref() == Some(p),
    };
    convert::trade_message(record, &shown)
}

/// A request's `depth`: 10 when unset, at most `max` levels of `what`.
fn depth(n: i32, max: usize, what: &str) -> Result<usize, Status> {
    match volta_api::time::unsigned("depth", n)? {
        0 => Ok(10),
        n if n > max => Err(errors::over_limit("depth", "levels", what, max)),
        n => Ok(n),
    }
}

/// A request's `after_trade_id`: 0 or a trade id.
fn after_trade(id: i64) -> Result<TradeId, Status> {
    u64::try_from(id).map_err(|_| errors::invalid("after_trade_id", format!("{id} is negative")))
}

type WatchStream<T> = Pin<Box<dyn Stream<Item = Result<T, Status>> + Send + 'static>>;

impl Trading {
    /// Where a call of `caller` for `market` goes. Only an admitted caller
    /// (its role checked here; the leader checks the rest again) starts a
    /// market or is passed on.
    async fn route<T>(&self, caller: &Caller, request: &Request<T>, market: &str) -> Route {
        self.markets.route(&caller.tenant, market, Router::is_forwarded(request)).await
    }

    /// MARKET_NOT_FOUND unless the tenant has the market. Read from the
    /// store: a replica that does not lead the market serves store reads.
    async fn exists(&self, tenant: &str, market: &str) -> Result<(), Status> {
        match self.store.market(tenant, market).await.map_err(|e| unavailable(&e))? {
            Some(_) => Ok(()),
            None => Err(errors::error(Reason::MarketNotFound, format!("no market {}", errors::shown(market)))),
        }
    }

    /// An order the caller may see, from the store.
    async fn visible(&self, caller: &Caller, market: &str, id: OrderId) -> Result<Entry, Status> {
        let entry = self.store.order(&caller.tenant, market, id).await.map_err(|e| unavailable(&e))?;
        let me = viewer(caller);
        entry
            .filter(|e| match &me {
                None => true,
                Some(me) => me.as_ref() == Some(&e.order.participant),
            })
            .ok_or_else(|| errors::error(Reason::OrderNotFound, format!("no order {id} of yours in this market")))
    }
}

/// A caller's view of the trade tape, sent in id order without gaps.
struct Tape {
    store: Arc<dyn TradingStore>,
    tenant: String,
    market_id: String,
    seen_by: Option<Option<PartyId>>,
    tx: mpsc::Sender<Result<pb::WatchTradesResponse, Status>>,
    /// The last trade id sent.
    last: TradeId,
}

impl Tape {
    /// Sends `trades`; false when the caller has gone.
    async fn send(&self, trades: &[TradeRecord]) -> bool {
        let trades = trades.iter().map(|t| trade_for(t, &self.seen_by)).collect();
        self.tx.send(Ok(pb::WatchTradesResponse { trades })).await.is_ok()
    }

    /// Sends the stored trades after the last one sent; false when the
    /// caller has gone or the store failed (the caller is told).
    async fn catch_up(&mut self) -> bool {
        loop {
            let page = match self.store.trades(&self.tenant, &self.market_id, self.last, MAX_PAGE).await {
                Ok(page) => page,
                Err(e) => {
                    let _ = self.tx.send(Err(unavailable(&e))).await;
                    return false;
                }
            };
            let Some(end) = page.last().map(|t| t.id) else { return true };
            if !self.send(&page).await {
                return false;
            }
            self.last = end;
        }
    }

    /// The stored trades, then the new ones as they are stored, until the
    /// caller goes or the server stops.
    async fn follow(mut self, mut events: broadcast::Receiver<Arc<Event>>, mut stopping: watch::Receiver<bool>) {
        if !self.catch_up().await {
            return;
        }
        loop {
            let event = tokio::select! {
                event = events.recv() => event,
                _ = stopping.wait_for(|s| *s) => break,
                () = self.tx.closed() => break,
            };
            let going = match event {
                Ok(event) => match event.as_ref() {
                    Event::Trades(trades) if trades.first().is_some_and(|t| t.id > self.last + 1) => {
                        // A gap (this feed began after the catch-up read): the store has it.
                        self.catch_up().await
                    }
                    Event::Trades(trades) => {
                        let new: Vec<TradeRecord> = trades.iter().filter(|t| t.id > self.last).cloned().collect();
                        match new.last().map(|t| t.id) {
                            Some(end) => {
                                self.last = end;
                                self.send(&new).await
                            }
                            None => true,
                        }
                    }
                    Event::Books(_) => true,
                },
                Err(broadcast::error::RecvError::Lagged(_)) => self.catch_up().await,
                Err(broadcast::error::RecvError::Closed) => false,
            };
            if !going {
                break;
            }
        }
    }
}

#[tonic::async_trait]
impl pb::trading_service_server::TradingService for Trading {
    async fn create_market(
        &self,
        request: Request<pb::CreateMarketRequest>,
    ) -> Result<Response<pb::CreateMarketResponse>, Status> {
        let caller = Caller::of(&request)?;
        caller.require(Role::Admin)?;
        let pb::CreateMarketRequest { market_id, rules } = request.into_inner();
        let id = convert::market_id("market_id", market_id)?;
        let rules = convert::rules(rules)?;
        if self.store.market(&caller.tenant, &id).await.map_err(|e| unavailable(&e))?.is_none()
            && self.store.market_count(&caller.tenant).await.map_err(|e| unavailable(&e))? >= MAX_MARKETS
        {
            return Err(errors::over_limit("market_id", "markets", "markets of a tenant", MAX_MARKETS));
        }
        let (record, created) = self
            .store
            .create_market(&caller.tenant, &id, &rules, Timestamp::now())
            .await
            .map_err(|e| unavailable(&e))?;
        if !created && record.rules != rules {
            return Err(errors::error(
                Reason::AlreadyExists,
                format!("market {id} exists with other rules; a market's rules never change"),
            ));
        }
        if created {
            tracing::info!(market = %id, zone = %rules.time_zone, interval = rules.interval_minutes, "market created");
        }
        Ok(Response::new(pb::CreateMarketResponse {
            market: Some(convert::market_message(&record.id, &record.rules, record.created)),
            created,
        }))
    }

    async fn get_market(
        &self,
        request: Request<pb::GetMarketRequest>,
    ) -> Result<Response<pb::GetMarketResponse>, Status> {
        let caller = Caller::of(&request)?;
        caller.require(Role::Viewer)?;
        let pb::GetMarketRequest { market_id } = request.into_inner();
        let id = convert::market_id("market_id", market_id)?;
        let record = self
            .store
            .market(&caller.tenant, &id)
            .await
            .map_err(|e| unavailable(&e))?
            .ok_or_else(|| errors::error(Reason::MarketNotFound, format!("no market {id}")))?;
        Ok(Response::new(pb::GetMarketResponse {
            market: Some(convert::market_message(&record.id, &record.rules, record.created)),
        }))
    }

    async fn submit_order(
        &self,
        request: Request<pb::SubmitOrderRequest>,
    ) -> Result<Response<pb::SubmitOrderResponse>, Status> {
        let caller = Caller::of(&request)?;
        caller.require(Role::Operator)?;
        let route = self.route(&caller, &request, &request.get_ref().market_id).await;
        if let Route::There(url) = &route {
            return self
                .markets
                .router
                .forward(url, &self.shared.metrics, request, |mut c, r| async move { c.submit_order(r).await })
                .await;
        }
        let submission = convert::submission(request.into_inner())?;
        let participant = acting(&caller, submission.participant.clone())?;
        let market = route.handle(&self.markets, &caller.tenant, &submission.market_id).await?;
        let order = submission.order_for(participant);
        let done = market.ask(|reply| Command::Submit { order, reply }).await?;
        self.shared.metrics.traded(done.accepted, done.trades.len());
        let seen_by = viewer(&caller);
        Ok(Response::new(pb::SubmitOrderResponse {
            order: Some(convert::order_message(&done.entry)),
            trades: done.trades.iter().map(|t| trade_for(t, &seen_by)).collect(),
            accepted: done.accepted,
        }))
    }

    async fn amend_order(
        &self,
        request: Request<pb::AmendOrderRequest>,
    ) -> Result<Response<pb::AmendOrderResponse>, Status> {
        let caller = Caller::of(&request)?;
        caller.require(Role::Operator)?;
        let route = self.route(&caller, &request, &request.get_ref().market_id).await;
        if let Route::There(url) = &route {
            return self
                .markets
                .router
                .forward(url, &self.shared.metrics, request, |mut c, r| async move { c.amend_order(r).await })
                .await;
        }
        let pb::AmendOrderRequest { market_id, order_id, quantity_wh } = request.into_inner();
        let market_id = convert::market_id("market_id", market_id)?;
        let id = convert::order_id(order_id)?;
        if quantity_wh <= 0 {
            return Err(errors::invalid("quantity_wh", format!("{quantity_wh}; a quantity is positive")));
        }
        let owner = if is_operator(&caller) { None } else { Some(participant_of(&caller)?) };
        let market = route.handle(&self.markets, &caller.tenant, &market_id).await?;
        let quantity = Energy::from_wh(quantity_wh);
        let changed = market.ask(|reply| Command::Reduce { id, quantity, owner, reply }).await?;
        let entry = match changed {
            Some(entry) => entry,
            None => {
                let entry = self.visible(&caller, &market_id, id).await?;
                if entry.order.quantity != quantity {
                    return Err(errors::error(
                        Reason::ContractRule,
                        format!("order {id} is {}: only a resting order can be reduced", entry.state.as_str()),
                    ));
                }
                entry
            }
        };
        Ok(Response::new(pb::AmendOrderResponse { order: Some(convert::order_message(&entry)) }))
    }

    async fn cancel_order(
        &self,
        request: Request<pb::CancelOrderRequest>,
    ) -> Result<Response<pb::CancelOrderResponse>, Status> {
        let caller = Caller::of(&request)?;
        caller.require(Role::Operator)?;
        let route = self.route(&caller, &request, &request.get_ref().market_id).await;
        if let Route::There(url) = &route {
            return self
                .markets
                .router
                .forward(url, &self.shared.metrics, request, |mut c, r| async move { c.cancel_order(r).await })
                .await;
        }
        let pb::CancelOrderRequest { market_id, order_id } = request.into_inner();
        let market_id = convert::market_id("market_id", market_id)?;
        let id = convert::order_id(order_id)?;
        let owner = if is_operator(&caller) { None } else { Some(participant_of(&caller)?) };
        let market = route.handle(&self.markets, &caller.tenant, &market_id).await?;
        let cancelled = market.ask(|reply| Command::Cancel { id, owner, reply }).await?;
        let (entry, now) = match cancelled {
            Some(entry) => (entry, true),
            None => (self.visible(&caller, &market_id, id).await?, false),
        };
        Ok(Response::new(pb::CancelOrderResponse { order: Some(convert::order_message(&entry)), cancelled: now }))
    }

    async fn get_order(&self, request: Request<pb::GetOrderRequest>) -> Result<Response<pb::GetOrderResponse>, Status> {
        let caller = Caller::of(&request)?;
        caller.require(Role::Viewer)?;
        let pb::GetOrderRequest { market_id, order_id } = request.into_inner();
        let market_id = convert::market_id("market_id", market_id)?;
        let id = convert::order_id(order_id)?;
        let entry = self.visible(&caller, &market_id, id).await?;
        Ok(Response::new(pb::GetOrderResponse { order: Some(convert::order_message(&entry)) }))
    }

    async fn list_orders(
        &self,
        request: Request<pb::ListOrdersRequest>,
    ) -> Result<Response<pb::ListOrdersResponse>, Status> {
        let caller = Caller::of(&request)?;
        caller.require(Role::Viewer)?;
        let pb::ListOrdersRequest { market_id, participant_id, resting_only, page_size, page_token } =
            request.into_inner();
        let market_id = convert::market_id("market_id", market_id)?;
        let named = if participant_id.is_empty() {
            None
        } else {
            Some(volta_api::contracts::party_id("participant_id", participant_id)?)
        };
        let participant = match (is_operator(&caller), named) {
            (true, named) => named,
            (false, None) => Some(participant_of(&caller)?),
            (false, Some(p)) if caller.subject == p.as_str() => Some(p),
            (false, Some(_)) => {
                return Err(errors::error(Reason::RoleRequired, "only an admin lists another participant's orders"));
            }
        };
        let limit = volta_api::time::page_size(page_size, DEFAULT_PAGE, MAX_PAGE)?;
        let before = if page_token.is_empty() {
            None
        } else {
            Some(page_token.parse::<u64>().map_err(|_| errors::invalid("page_token", "not a page token".to_owned()))?)
        };
        self.exists(&caller.tenant, &market_id).await?;
        let filter = OrderFilter { participant, resting_only, before };
        let orders =
            self.store.orders(&caller.tenant, &market_id, &filter, limit).await.map_err(|e| unavailable(&e))?;
        let next = if orders.len() == limit { orders.last().map(|e| e.order.id.to_string()) } else { None };
        Ok(Response::new(pb::ListOrdersResponse {
            orders: orders.iter().map(convert::order_message).collect(),
            next_page_token: next.unwrap_or_default(),
        }))
    }

    async fn list_trades(
        &self,
        request: Request<pb::ListTradesRequest>,
    ) -> Result<Response<pb::ListTradesResponse>, Status> {
        let caller = Caller::of(&request)?;
        caller.require(Role::Viewer)?;
        let pb::ListTradesRequest { market_id, after_trade_id, page_size } = request.into_inner();
        let market_id = convert::market_id("market_id", market_id)?;
        let after = after_trade(after_trade_id)?;
        let limit = volta_api::time::page_size(page_size, DEFAULT_PAGE, MAX_PAGE)?;
        self.exists(&caller.tenant, &market_id).await?;
        let trades = self.store.trades(&caller.tenant, &market_id, after, limit).await.map_err(|e| unavailable(&e))?;
        let seen_by = viewer(&caller);
        let next = if trades.len() == limit { trades.last().map_or(0, |t| t.id) } else { 0 };
        Ok(Response::new(pb::ListTradesResponse {
            trades: trades.iter().map(|t| trade_for(t, &seen_by)).collect(),
            next_after_trade_id: i64::try_from(next).unwrap_or(i64::MAX),
        }))
    }

    async fn get_book(&self, request: Request<pb::GetBookRequest>) -> Result<Response<pb::GetBookResponse>, Status> {
        let caller = Caller::of(&request)?;
        caller.require(Role::Viewer)?;
        let route = self.route(&caller, &request, &request.get_ref().market_id).await;
        if let Route::There(url) = &route {
            return self
                .markets
                .router
                .forward(url, &self.shared.metrics, request, |mut c, r| async move { c.get_book(r).await })
                .await;
        }
        let pb::GetBookRequest { market_id, delivery_start, depth: levels } = request.into_inner();
        let market_id = convert::market_id("market_id", market_id)?;
        let start = convert::delivery_start("delivery_start", delivery_start)?;
        let levels = depth(levels, MAX_DEPTH, "levels of a book read")?;
        let market = route.handle(&self.markets, &caller.tenant, &market_id).await?;
        let book = market.ask(|reply| Command::Depth { start, levels, reply }).await?;
        Ok(Response::new(pb::GetBookResponse { book: Some(book) }))
    }

    type WatchBookStream = WatchStream<pb::WatchBookResponse>;

    async fn watch_book(
        &self,
        request: Request<pb::WatchBookRequest>,
    ) -> Result<Response<Self::WatchBookStream>, Status> {
        let caller = Caller::of(&request)?;
        caller.require(Role::Viewer)?;
        let route = self.route(&caller, &request, &request.get_ref().market_id).await;
        if let Route::There(url) = &route {
            let stream = self
                .markets
                .router
                .forward(url, &self.shared.metrics, request, |mut c, r| async move { c.watch_book(r).await })
                .await?;
            return Ok(Response::new(Box::pin(stream.into_inner())));
        }
        let pb::WatchBookRequest { market_id, delivery_start, depth: levels } = request.into_inner();
        let market_id = convert::market_id("market_id", market_id)?;
        let start = convert::delivery_start("delivery_start", delivery_start)?;
        let levels = depth(levels, MAX_WATCH_DEPTH, "levels of a watched book")?;
        let market = route.handle(&self.markets, &caller.tenant, &market_id).await?;
        let mut events = market.events.subscribe();
        let first = market.ask(|reply| Command::Depth { start, levels, reply }).await?;
        let (tx, rx) = mpsc::channel(16);
        let mut stopping = self.stopping.clone();
        tokio::spawn(async move {
            let cut = |mut book: pb::Book| {
                book.bids.truncate(levels);
                book.asks.truncate(levels);
                pb::WatchBookResponse { book: Some(book) }
            };
            if tx.send(Ok(cut(first))).await.is_err() {
                return;
            }
            let start_message = Some(volta_api::time::timestamp(start));
            loop {
                let event = tokio::select! {
                    event = events.recv() => event,
                    _ = stopping.wait_for(|s| *s) => break,
                    () = tx.closed() => break,
                };
                let book = match event {
                    Ok(event) => match event.as_ref() {
                        Event::Books(books) => books.iter().find(|b| b.delivery_start == start_message).cloned(),
                        Event::Trades(_) => None,
                    },
                    Err(broadcast::error::RecvError::Lagged(_)) => {
                        market.ask(|reply| Command::Depth { start, levels, reply }).await.ok()
                    }
                    Err(broadcast::error::RecvError::Closed) => break,
                };
                if let Some(book) = book
                    && tx.send(Ok(cut(book))).await.is_err()
                {
                    break;
                }
            }
        });
        Ok(Response::new(Box::pin(tokio_stream::wrappers::ReceiverStream::new(rx))))
    }

    async fn clear_auction(
        &self,
        request: Request<pb::ClearAuctionRequest>,
    ) -> Result<Response<pb::ClearAuctionResponse>, Status> {
        let caller = Caller::of(&request)?;
        caller.require(Role::Viewer)?;
        let budget = Budget::of(&request);
        let auction = convert::auction(request.into_inner(), MAX_AUCTION_ORDERS)?;
        let time_limit = budget.time_limit(None);
        let cancel = Cancel::new();
        let reply = self
            .shared
            .offload("auction", &cancel, &budget, move || match auction {
                convert::Auction::Call { pricing, fee, products, order } => {
                    let mut cleared = Vec::with_capacity(products.len());
                    for (start, product, bids) in products {
                        let c = volta_trading::clear(&product, &bids, pricing, fee).map_err(|e| errors::trading(&e))?;
                        cleared.push((start, c));
                    }
                    Ok(convert::call_message(&cleared, &order))
                }
                convert::Auction::Welfare { network, fee, book, starts } => {
                    let settings = volta_lp::Settings { time_limit_s: time_limit, ..volta_lp::Settings::default() };
                    let w = volta_trading::welfare::clear(&network, &book, fee, &settings)
                        .map_err(|e| convert::welfare_refused(&e))?;
                    Ok(convert::welfare_message(&w, &book, &starts))
                }
            })
            .await?;
        Ok(Response::new(reply))
    }

    async fn list_auctions(
        &self,
        request: Request<pb::ListAuctionsRequest>,
    ) -> Result<Response<pb::ListAuctionsResponse>, Status> {
        let caller = Caller::of(&request)?;
        caller.require(Role::Viewer)?;
        let pb::ListAuctionsRequest { market_id, after_delivery_start, page_size } = request.into_inner();
        let market_id = convert::market_id("market_id", market_id)?;
        let after = volta_api::time::instant("after_delivery_start", after_delivery_start)?;
        let limit = volta_api::time::page_size(page_size, DEFAULT_PAGE, MAX_PAGE)?;
        self.exists(&caller.tenant, &market_id).await?;
        let auctions =
            self.store.auctions(&caller.tenant, &market_id, after, limit).await.map_err(|e| unavailable(&e))?;
        let next =
            (auctions.len() == limit).then(|| auctions.last().map(|a| volta_api::time::timestamp(a.delivery_start)));
        Ok(Response::new(pb::ListAuctionsResponse {
            auctions: auctions.iter().map(convert::auction_message).collect(),
            next_after_delivery_start: next.flatten(),
        }))
    }

    async fn contract_positions(
        &self,
        request: Request<pb::ContractPositionsRequest>,
    ) -> Result<Response<pb::ContractPositionsResponse>, Status> {
        let caller = Caller::of(&request)?;
        caller.require(Role::Operator)?;
        let budget = Budget::of(&request);
        let pb::ContractPositionsRequest { market_id, participant_id, first, last } = request.into_inner();
        let market_id = convert::market_id("market_id", market_id)?;
        let party = if participant_id.is_empty() {
            participant_of(&caller)?
        } else {
            let named = volta_api::contracts::party_id("participant_id", participant_id)?;
            if !is_operator(&caller) && caller.subject != named.as_str() {
                return Err(errors::error(
                    Reason::RoleRequired,
                    "only an admin reads another participant's contract positions",
                ));
            }
            named
        };
        let max_days = i32::try_from(self.shared.limits.max_period_days.min(MAX_POSITION_DAYS)).unwrap_or(i32::MAX);
        let period = volta_api::contracts::period(first, last, max_days)?;
        let record =
            self.store.market(&caller.tenant, &market_id).await.map_err(|e| unavailable(&e))?.ok_or_else(|| {
                errors::error(Reason::MarketNotFound, format!("no market {}", errors::shown(&market_id)))
            })?;
        let seen = self
            .views
            .contract_view(&caller.tenant, party.as_str(), MAX_CONTRACTS + 1)
            .await
            .map_err(|e| unavailable(&e))?;
        if seen.len() > MAX_CONTRACTS {
            return Err(errors::over_limit(
                "participant_id",
                "contracts",
                "the contracts one participant's positions are computed from",
                MAX_CONTRACTS,
            ));
        }
        let contracts: Vec<pb::ContractSeen> = seen
            .iter()
            .map(|m| {
                let c = &m.contract;
                let buys = c.buyer() == &party;
                pb::ContractSeen {
                    contract_id: c.id().to_string(),
                    side: if buys { pb::Side::Buy } else { pb::Side::Sell }.into(),
                    counterparty_id: if buys { c.seller() } else { c.buyer() }.to_string(),
                    state: c.state().name().to_owned(),
                    change: i64::try_from(m.version).unwrap_or(i64::MAX),
                    counted: c.state().delivers(),
                }
            })
            .collect();
        let rules = record.rules;
        let who = party.clone();
        let positions = self
            .shared
            .unslotted("contract positions", &budget, move || {
                let contracts: Vec<_> = seen.into_iter().map(|m| (m.contract, m.meters)).collect();
                volta_trading::netting::market_positions(&rules, &who, &period, &contracts)
            })
            .await?
            .map_err(|e| errors::trading(&e))?;
        let (from, until) = match (positions.first(), positions.last()) {
            (Some(first), Some(last)) => (first.start, last.start + SignedDuration::from_secs(1)),
            _ => (Timestamp::UNIX_EPOCH, Timestamp::UNIX_EPOCH),
        };
        let traded: HashMap<Timestamp, i64> = self
            .store
            .traded_by(&caller.tenant, &market_id, party.as_str(), from, until)
            .await
            .map_err(|e| unavailable(&e))?
            .into_iter()
            .collect();
        let intervals: Vec<pb::IntervalPosition> = positions
            .iter()
            .map(|p| pb::IntervalPosition {
                delivery_start: Some(volta_api::time::timestamp(p.start)),
                contracted_wh: p.contracted.wh(),
                market_wh: traded.get(&p.start).copied().unwrap_or(0),
            })
            .collect();
        Ok(Response::new(pb::ContractPositionsResponse {
            contracted_wh: intervals.iter().map(|i| i.contracted_wh).sum(),
            market_wh: intervals.iter().map(|i| i.market_wh).sum(),
            intervals,
            contracts,
        }))
    }

    async fn list_dead_letters(
        &self,
        request: Request<pb::ListDeadLettersRequest>,
    ) -> Result<Response<pb::ListDeadLettersResponse>, Status> {
        let caller = Caller::of(&request)?;
        let pb::ListDeadLettersRequest { page_size } = request.into_inner();
        let dead = dead_letters::list(&*self.views, &POSITIONS, &caller, page_size).await?;
        Ok(Response::new(pb::ListDeadLettersResponse {
            dead_letters: dead
                .into_iter()
                .map(|d| pb::DeadLetter {
                    message_id: d.id,
                    aggregate: d.aggregate,
                    sequence: i64::try_from(d.seq).unwrap_or(i64::MAX),
                    kind: d.kind,
                    payload: d.payload,
                    attempts: i32::try_from(d.attempts).unwrap_or(i32::MAX),
                    error: d.error,
                    first_failed_time: Some(volta_api::time::timestamp(d.first_failed)),
                    last_failed_time: Some(volta_api::time::timestamp(d.last_failed)),
                })
                .collect(),
        }))
    }

    async fn retry_dead_letter(
        &self,
        request: Request<pb::RetryDeadLetterRequest>,
    ) -> Result<Response<pb::RetryDeadLetterResponse>, Status> {
        let caller = Caller::of(&request)?;
        let pb::RetryDeadLetterRequest { message_id, payload } = request.into_inner();
        let metrics = self.shared.metrics.clone();
        let failed = dead_letters::retry(self.views.clone(), metrics, POSITIONS, &caller, &message_id, payload).await?;
        Ok(Response::new(pb::RetryDeadLetterResponse { applied: failed.is_none(), error: failed.unwrap_or_default() }))
    }

    type WatchTradesStream = WatchStream<pb::WatchTradesResponse>;

    async fn watch_trades(
        &self,
        request: Request<pb::WatchTradesRequest>,
    ) -> Result<Response<Self::WatchTradesStream>, Status> {
        let caller = Caller::of(&request)?;
        caller.require(Role::Viewer)?;
        let route = self.route(&caller, &request, &request.get_ref().market_id).await;
        if let Route::There(url) = &route {
            let stream = self
                .markets
                .router
                .forward(url, &self.shared.metrics, request, |mut c, r| async move { c.watch_trades(r).await })
                .await?;
            return Ok(Response::new(Box::pin(stream.into_inner())));
        }
        let pb::WatchTradesRequest { market_id, after_trade_id } = request.into_inner();
        let market_id = convert::market_id("market_id", market_id)?;
        let last = after_trade(after_trade_id)?;
        let market = route.handle(&self.markets, &caller.tenant, &market_id).await?;
        // Subscribe first, then catch up from the store: nothing between
        // the two is missed, and ids already sent are skipped.
        let events = market.events.subscribe();
        let (tx, rx) = mpsc::channel(16);
        let tape = Tape {
            store: self.store.clone(),
            tenant: caller.tenant.clone(),
            market_id,
            seen_by: viewer(&caller),
            tx,
            last,
        };
        tokio::spawn(tape.follow(events, self.stopping.clone()));
        Ok(Response::new(Box::pin(tokio_stream::wrappers::ReceiverStream::new(rx))))
    }
}

#[cfg(test)]
mod tests {
    use volta_trading::OrderState;

    use super::*;

    #[test]
    fn a_batch_keeps_the_last_version_of_each_order_in_first_change_order() {
        let entry = |id: u64, filled: i64| {
            let start: Timestamp = "2024-06-01T10:00:00Z".parse().expect("instant");
            Entry {
                order: volta_trading::Order {
                    id,
                    participant: PartyId::new("p").expect("id"),
                    product: volta_trading::ProductId::of(start, 15),
                    side: volta_trading::Side::Buy,
                    kind: volta_trading::Kind::Market,
                    quantity: Energy::from_wh(10),
                    placed: start,
                },
                client_order_id: format!("c{id}"),
                delivery_start: start,
                delivery_end: start,
                filled: Energy::from_wh(filled),
                state: OrderState::Resting,
                cancel_reason: None,
                node: None,
                shape: None,
            }
        };
        let mut orders = vec![entry(2, 0), entry(1, 0), entry(2, 5), entry(3, 0), entry(1, 7)];
        collapse(&mut orders);
        let seen: Vec<_> = orders.iter().map(|e| (e.order.id, e.filled.wh())).collect();
        assert_eq!(seen, [(2, 5), (1, 7), (3, 0)]);
    }
}
