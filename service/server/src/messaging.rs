//! Exactly-once messages between the services: every trade the trading
//! service stores reaches the contract service's market ledger once
//! ([`SETTLEMENT`]), and every change of a contract reaches the trading
//! service's view of contract positions once ([`POSITIONS`]).
//!
//! The guarantee rests on the database, not on a carrier:
//! 1. **Outbox.** The trading store writes a message per trade in the
//!    transaction that stores the trade ([`crate::store::messaging`]).
//! 2. **Relay.** A [`Relay`] takes unpublished messages, hands them to the
//!    carrier, and marks published only what the carrier acknowledged;
//!    the rest is held back and taken again after [`RETRY`], with whatever
//!    follows it in its aggregate. On PostgreSQL the relays of all
//!    processes take turns, a round at a time, in one transaction each (a
//!    relay that dies mid-round rolls back); on SQLite a relay claims what
//!    it takes, and one that dies loses its claim when it expires
//!    ([`CLAIM`]). Either way an aggregate's messages reach the carrier in
//!    order.
//! 3. **Carrier.** In one process ([`InProcess`]) the consumers keep their
//!    inbox in the outbox's database, so a round reads its batch beside the
//!    writer, then applies it and marks it published in one transaction:
//!    no claim, no window between the effect and the mark. Over NATS
//!    JetStream the relay publishes with the message id as the stream's
//!    de-duplication id.
//! 4. **Inbox.** A route's consumer ([`Inbox`]) applies a message in one
//!    transaction with its inbox record and its aggregate's cursor: a
//!    message seen again is acknowledged and ignored, one that comes before
//!    its predecessor waits, one that keeps failing dies after
//!    [`MAX_ATTEMPTS`](crate::store::messaging::MAX_ATTEMPTS) attempts into
//!    the dead letters, and its aggregate moves on.
//! 5. **Reconciler.** The [`reconcile`] task compares what was published
//!    with what the consumer handled, by id, sends again what is still
//!    missing a while after it was published
//!    (`messaging.resend_after_seconds`), and reports the drift. It also
//!    deletes the outbox and inbox rows of handled messages older than
//!    `messaging.retain_hours`.
//!
//! So a crash anywhere (after the commit and before the relay, after the
//! carrier and before the mark, after the effect and before the ack) ends
//! in a second delivery the stream or the inbox ignores, or (in one
//! process) in a round rolled back, never in a lost or doubled effect.

use std::sync::Arc;
use std::time::{Duration, Instant};

use jiff::{SignedDuration, Timestamp};
use tokio::sync::{Notify, watch};
use volta_contracts::Contract;

use crate::store::StoreError;
use crate::store::messaging::{
    ContractMessage, Effect, Handled, InPlace, Message, MessagingStore, Relayed, Round, Sender, TradeMessage,
};
pub(crate) use crate::store::messaging::{POSITIONS, Route, SETTLEMENT};
use crate::telemetry::Metrics;

/// Messages a relay claims at once.
const BATCH: usize = 512;

/// How long a relay's claim holds: a relay that dies lets its messages go
/// after this. A batch takes milliseconds to deliver.
const CLAIM: SignedDuration = SignedDuration::from_secs(10);

/// When a message not delivered (waiting for its predecessor, or failed)
/// is tried again.
const RETRY: SignedDuration = SignedDuration::from_secs(1);

/// How often the relay looks at the outbox without being woken.
const POLL: Duration = Duration::from_secs(1);

/// A consumer: the messages of one route into their effect (trades into
/// the contract service's market ledger, contracts into the trading
/// service's view of positions).
#[derive(Debug, Clone)]
pub(crate) struct Inbox {
    route: Route,
    store: Arc<dyn MessagingStore>,
    metrics: Arc<Metrics>,
}

impl Inbox {
    pub(crate) fn new(route: Route, store: Arc<dyn MessagingStore>, metrics: Arc<Metrics>) -> Self {
        Self { route, store, metrics }
    }

    /// Its route.
    pub(crate) const fn route(&self) -> &Route {
        &self.route
    }

    /// Handles one delivery of each of `messages` (in aggregate order):
    /// for each, whether it is done with (applied now, handled before, or
    /// dead) or must come again (its predecessor has not been handled, or
    /// it failed). The readable ones are applied in one transaction; if that
    /// fails, one by one, so that only the failing one fails.
    pub(crate) async fn handle(&self, messages: &[Message]) -> Vec<Delivery> {
        let now = Timestamp::now();
        let consumer = self.route.consumer;
        let mut acked = vec![Delivery::Failed; messages.len()];
        let mut readable = Vec::with_capacity(messages.len());
        for (i, m) in messages.iter().enumerate() {
            match read(&self.route, m) {
                Ok(effect) => readable.push((i, effect)),
                Err(error) => acked[i] = self.fail(m, &error, now).await,
            }
        }
        let batch: Vec<(&Message, &Effect)> = readable.iter().map(|(i, e)| (&messages[*i], e)).collect();
        match self.store.consume(consumer, &batch, now).await {
            Ok(handled) => {
                for ((i, effect), handled) in readable.iter().zip(handled) {
                    acked[*i] = self.count(&messages[*i], handled, effect);
                }
            }
            Err(_) if batch.len() > 1 => {
                for (i, effect) in &readable {
                    let m = &messages[*i];
                    acked[*i] = match self.store.consume_one(consumer, m, effect, now).await {
                        Ok(handled) => self.count(m, handled, effect),
                        Err(error) => self.fail(m, &error.to_string(), now).await,
                    };
                }
            }
            Err(error) => {
                if let Some((i, _)) = readable.first() {
                    acked[*i] = self.fail(&messages[*i], &error.to_string(), now).await;
                }
            }
        }
        acked
    }

    /// Counts what became of a message.
    fn count(&self, message: &Message, handled: Handled, effect: &Effect) -> Delivery {
        let route = self.route.consumer;
        match handled {
            Handled::Applied => {
                self.metrics.message(route, "applied");
                if let Effect::Trade(trade) = effect {
                    // From the trade to its ledger rows committed (not to
                    // when the delivery began).
                    self.metrics.settled(Timestamp::now().duration_since(trade.trade.at).as_secs_f64());
                }
                Delivery::Done
            }
            Handled::Duplicate => {
                self.metrics.message(route, "duplicate");
                Delivery::Done
            }
            Handled::Early { expected } => {
                tracing::debug!(id = %message.id, expected, "message before its predecessor: later");
                self.metrics.message(route, "deferred");
                Delivery::Early
            }
        }
    }

    /// Records a failed attempt: done with when the message is dead.
    async fn fail(&self, message: &Message, error: &str, now: Timestamp) -> Delivery {
        let route = self.route.consumer;
        self.metrics.message(route, "failed");
        match self.store.failed(route, message, error, now).await {
            Ok(true) => {
                tracing::error!(id = %message.id, route, error, "message dead after repeated failures");
                self.metrics.message(route, "dead");
                Delivery::Done
            }
            Ok(false) => {
                tracing::warn!(id = %message.id, route, error, "message failed; it comes again");
                Delivery::Failed
            }
            Err(store) => {
                tracing::warn!(id = %message.id, route, error, store = %store, "message failed, and so did recording it");
                Delivery::Failed
            }
        }
    }
}

/// What became of one delivery of a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Delivery {
    /// Done with: applied now, handled before, or dead. Acknowledged.
    Done,
    /// Before its predecessor, which is most likely a moment behind it
    /// (published out of order under load, or pulled by another replica
    /// until a partition moved): it comes again soon.
    Early,
    /// Failed (and recorded as an attempt): it comes again later.
    Failed,
}

/// What an operator's retry of a dead letter came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Retried {
    /// Applied now; no longer dead.
    Applied,
    /// It failed again (why); still dead.
    Failed(String),
    /// No such dead letter (or another retry applied it first).
    NotFound,
}

impl Inbox {
    /// Applies dead letter `id` of `tenant` again, with its payload as
    /// received or `payload` instead, read with the same checks.
    ///
    /// # Errors
    /// A database error.
    pub(crate) async fn retry(&self, tenant: &str, id: &str, payload: Option<String>) -> Result<Retried, StoreError> {
        let consumer = self.route.consumer;
        let Some(mut message) = self.store.dead_message(consumer, tenant, id).await? else {
            return Ok(Retried::NotFound);
        };
        if let Some(payload) = payload {
            message.payload = payload;
        }
        let now = Timestamp::now();
        match read(&self.route, &message) {
            Err(error) => {
                self.store.failed_again(consumer, &message, &error, now).await?;
                Ok(Retried::Failed(error))
            }
            Ok(effect) => match self.store.redrive(consumer, &message, &effect, now).await {
                Ok(true) => {
                    tracing::info!(id = %message.id, route = consumer, "dead letter applied on retry");
                    self.metrics.message(consumer, "retried");
                    Ok(Retried::Applied)
                }
                Ok(false) => Ok(Retried::NotFound),
                Err(error) => {
                    let text = error.to_string();
                    self.store.failed_again(consumer, &message, &text, now).await?;
                    Ok(Retried::Failed(text))
                }
            },
        }
    }
}

/// A message's effect, or why it is not one `route`'s consumer reads.
fn read(route: &Route, message: &Message) -> Result<Effect, String> {
    if message.kind != route.kind {
        return Err(format!("kind {:?} is not one the {} consumer reads", message.kind, route.consumer));
    }
    if message.kind == SETTLEMENT.kind {
        read_trade(message).map(Effect::Trade)
    } else {
        read_contract(message).map(Effect::Contract)
    }
}

/// A trade message's trade, checked against its message.
fn read_trade(message: &Message) -> Result<TradeMessage, String> {
    let trade: TradeMessage =
        serde_json::from_str(&message.payload).map_err(|e| format!("payload is not a trade message: {e}"))?;
    if trade.tenant != message.tenant || trade.trade.id != message.seq {
        return Err(format!(
            "payload names tenant {:?} and trade {}, the message tenant {:?} and number {}",
            trade.tenant, trade.trade.id, message.tenant, message.seq
        ));
    }
    if trade.trade.trade.quantity.wh() <= 0 {
        return Err(format!("trade {} has no energy", trade.trade.id));
    }
    Ok(trade)
}

/// A contract message's contract, checked against its message and as the
/// contract service checks a contract it stores.
fn read_contract(message: &Message) -> Result<ContractMessage, String> {
    let body: ContractMessage =
        serde_json::from_str(&message.payload).map_err(|e| format!("payload is not a contract message: {e}"))?;
    let c = &body.contract;
    let aggregate = format!("contracts/{}/{}", body.tenant, c.id());
    if body.tenant != message.tenant || body.version != message.seq || aggregate != message.aggregate {
        return Err(format!(
            "payload names tenant {:?}, contract {} and change {}; the message {:?}, {} and {}",
            body.tenant,
            c.id(),
            body.version,
            message.tenant,
            message.aggregate,
            message.seq
        ));
    }
    Contract::restore(
        c.id().clone(),
        c.seller().clone(),
        c.buyer().clone(),
        c.meters().to_vec(),
        c.versions().to_vec(),
        c.state(),
        c.terminated_on(),
    )
    .map_err(|e| format!("contract {}: {e}", c.id()))?;
    let listed: Vec<_> = body.meters.iter().map(|m| &m.id).collect();
    if listed != c.meters().iter().collect::<Vec<_>>() {
        return Err(format!("contract {}: the metering points sent are not the contract's", c.id()));
    }
    for meter in &body.meters {
        meter.check().map_err(|e| format!("metering point {}: {e}", meter.id))?;
    }
    Ok(body)
}

/// A carrier: takes messages in aggregate order and says which it has
/// (acknowledged, in the order given).
#[tonic::async_trait]
pub(crate) trait Carrier: Send + Sync + std::fmt::Debug {
    /// The kinds of message it carries.
    fn kinds(&self) -> Vec<&'static str>;

    /// Sends `messages`; returns the ids acknowledged.
    async fn send(&self, messages: &[Message]) -> Vec<String>;

    /// The carrier as one that applies messages in this process, on the
    /// database of the outbox: then a relay round can apply and mark in one
    /// transaction.
    fn in_place(&self) -> Option<&InProcess> {
        None
    }
}

/// The carrier of one process: hands each message to the consumer of its
/// route and acknowledges what it handled. A message that waits for its
/// predecessor is not acknowledged, and neither is the rest of its
/// aggregate (the inbox's cursor holds them back), until the next round.
/// Its consumers keep their inbox in the relay's database, so a round
/// applies its batch and marks it published in one transaction
/// ([`MessagingStore::relay_in_place`]); a round with a message that cannot
/// be read or applied goes through [`Inbox::handle`], a message at a time
/// where it must, to record the failure.
#[derive(Debug)]
pub(crate) struct InProcess {
    pub(crate) consumers: Vec<Inbox>,
}

impl InProcess {
    /// The consumer of `message` and its effect, or why there is none.
    fn read(&self, message: &Message) -> Result<(&'static str, Effect), String> {
        let inbox = self
            .consumers
            .iter()
            .find(|c| c.route.kind == message.kind)
            .ok_or_else(|| format!("no consumer here reads kind {:?}", message.kind))?;
        read(&inbox.route, message).map(|effect| (inbox.route.consumer, effect))
    }

    /// Counts what became of a round applied in place, as each consumer
    /// would have counted its part.
    fn count(&self, done: &InPlace) {
        for (message, (consumer, effect, handled)) in done.relayed.batch.iter().zip(&done.outcomes) {
            if let Some(inbox) = self.consumers.iter().find(|c| c.route.consumer == *consumer) {
                inbox.count(message, *handled, effect);
            }
        }
    }
}

#[tonic::async_trait]
impl Carrier for InProcess {
    fn kinds(&self) -> Vec<&'static str> {
        self.consumers.iter().map(|c| c.route.kind).collect()
    }

    async fn send(&self, messages: &[Message]) -> Vec<String> {
        let mut acked = Vec::with_capacity(messages.len());
        for consumer in &self.consumers {
            let mine: Vec<Message> = messages.iter().filter(|m| m.kind == consumer.route.kind).cloned().collect();
            if mine.is_empty() {
                continue;
            }
            let handled = consumer.handle(&mine).await;
            acked.extend(mine.into_iter().zip(handled).filter(|(_, d)| *d == Delivery::Done).map(|(m, _)| m.id));
        }
        acked
    }

    fn in_place(&self) -> Option<&InProcess> {
        Some(self)
    }
}

/// Moves messages from the outbox to a carrier.
#[derive(Debug)]
pub(crate) struct Relay {
    pub(crate) store: Arc<dyn MessagingStore>,
    pub(crate) carrier: Arc<dyn Carrier>,
    /// Its name on claims (unique per process).
    pub(crate) name: String,
    pub(crate) metrics: Arc<Metrics>,
}

impl Relay {
    /// Relays what waits at start, then until the server stops: at once
    /// when woken, else every [`POLL`].
    pub(crate) async fn run(self, wake: Arc<Notify>, mut stopping: watch::Receiver<bool>) {
        loop {
            if let Err(e) = self.drain().await {
                tracing::warn!(error = %e, "the relay cannot reach the outbox; it tries again");
            }
            tokio::select! {
                () = wake.notified() => {}
                () = tokio::time::sleep(POLL) => {}
                _ = stopping.wait_for(|s| *s) => return,
            }
        }
    }

    /// Relays what is waiting, round after round.
    async fn drain(&self) -> Result<(), StoreError> {
        let kinds = self.carrier.kinds();
        let round = Round { relay: &self.name, kinds: &kinds, limit: BATCH, claim: CLAIM, retry: RETRY };
        // The carrier's time in the round, for the metrics.
        let sending = Arc::new(std::sync::Mutex::new(Duration::ZERO));
        let send: &Sender<'_> = &|batch| {
            let carrier = self.carrier.clone();
            let sending = sending.clone();
            Box::pin(async move {
                let started = Instant::now();
                let acked = carrier.send(batch).await;
                *sending.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = started.elapsed();
                acked
            })
        };
        loop {
            let started = Instant::now();
            let (relayed, sent) = match self.round_in_place(&round).await? {
                Some(relayed) => relayed,
                None => {
                    let relayed = self.store.relay_round(&round, send).await?;
                    (relayed, *sending.lock().unwrap_or_else(std::sync::PoisonError::into_inner))
                }
            };
            if relayed.batch.is_empty() {
                return Ok(());
            }
            self.metrics.relayed(relayed.batch.len(), started.elapsed(), sent);
            let acked: std::collections::HashSet<&str> = relayed.acked.iter().map(String::as_str).collect();
            for route in crate::store::messaging::ROUTES {
                let sent =
                    relayed.batch.iter().filter(|m| m.kind == route.kind && acked.contains(m.id.as_str())).count();
                self.metrics.messages_published(route.consumer, sent);
            }
            if relayed.held_back() {
                // What waits is taken again after RETRY, by the next poll.
                return Ok(());
            }
        }
    }

    /// A round applied and marked in one transaction, with the time spent
    /// applying; `None` where the carrier is not in this process, or the
    /// round is for the consumers to take a message at a time.
    async fn round_in_place(&self, round: &Round<'_>) -> Result<Option<(Relayed, Duration)>, StoreError> {
        let Some(local) = self.carrier.in_place() else { return Ok(None) };
        let read = |m: &Message| local.read(m);
        let Some(done) = self.store.relay_in_place(round, &read).await? else { return Ok(None) };
        local.count(&done);
        Ok(Some((done.relayed, done.applying)))
    }
}

/// Wakes the relay (`outbox`) whenever a transaction of any process has
/// written to the outbox (PostgreSQL's notifications on
/// [`OUTBOX_CHANNEL`](crate::store::messaging::OUTBOX_CHANNEL)), until the
/// server stops: so a relay starts at once on what another process wrote
/// (a trading replica's trades, a contract process's changes) rather than
/// at its next poll. A lost connection is made again; what was announced
/// meanwhile the relay finds at its next poll.
pub(crate) async fn announcements(url: String, outbox: Arc<Notify>, mut stopping: watch::Receiver<bool>) {
    use sqlx::postgres::PgListener;
    loop {
        let connect = async {
            let mut listener = PgListener::connect(&url).await?;
            listener.listen(crate::store::messaging::OUTBOX_CHANNEL).await?;
            Ok::<_, sqlx::Error>(listener)
        };
        let listener = tokio::select! {
            listener = connect => listener,
            _ = stopping.wait_for(|s| *s) => return,
        };
        match listener {
            Ok(mut listener) => loop {
                tokio::select! {
                    heard = listener.recv() => match heard {
                        Ok(_) => outbox.notify_one(),
                        Err(e) => {
                            tracing::warn!(error = %e, "lost the outbox's announcements; listening again");
                            break;
                        }
                    },
                    _ = stopping.wait_for(|s| *s) => return,
                }
            },
            Err(e) => tracing::warn!(error = %e, "cannot listen for the outbox's announcements; the relay polls"),
        }
        tokio::select! {
            () = tokio::time::sleep(POLL) => {}
            _ = stopping.wait_for(|s| *s) => return,
        }
    }
}

/// Compares the outbox with the inbox of `route`'s consumer until the
/// server stops, every third of `grace`: what was published more than
/// `grace` ago and not handled is sent again (the carrier lost it), counted
/// and logged. Also prunes what was handled longer than `retain` ago.
pub(crate) async fn reconcile(
    route: Route,
    store: Arc<dyn MessagingStore>,
    metrics: Arc<Metrics>,
    grace: Duration,
    retain: Duration,
    mut stopping: watch::Receiver<bool>,
) {
    let retain = SignedDuration::try_from(retain).unwrap_or(SignedDuration::from_hours(168));
    let period = (grace / 3).max(Duration::from_secs(1));
    let grace = SignedDuration::try_from(grace).unwrap_or(SignedDuration::from_secs(30));
    let name = route.consumer;
    loop {
        tokio::select! {
            () = tokio::time::sleep(period) => {}
            _ = stopping.wait_for(|s| *s) => return,
        }
        let now = Timestamp::now();
        match store.unhandled(&route, now - grace, 1_000).await {
            Ok(missing) if missing.is_empty() => metrics.set_drift(name, 0),
            Ok(missing) => {
                metrics.set_drift(name, missing.len());
                tracing::warn!(
                    route = name,
                    missing = missing.len(),
                    first = %missing[0],
                    "published messages the consumer never handled: sending them again"
                );
                match store.republish(&missing).await {
                    Ok(()) => metrics.messages_repaired(name, missing.len()),
                    Err(e) => tracing::warn!(error = %e, "the reconciler cannot mark messages for sending again"),
                }
            }
            Err(e) => tracing::warn!(route = name, error = %e, "the reconciler cannot read the outbox"),
        }
        match (store.backlog().await, store.dead_count(name).await) {
            (Ok(backlog), Ok(dead)) => metrics.set_messaging(name, backlog, dead),
            (Err(e), _) | (_, Err(e)) => tracing::warn!(error = %e, "the reconciler cannot count the backlog"),
        }
        // What is handled and older than the retention goes, a batch at a
        // time (one transaction each, so that none holds the database for
        // long), batch after batch while they come full: a pass keeps up
        // with any steady flow of messages.
        let (mut outbox, mut inbox) = (0, 0);
        loop {
            match store.prune(&route, now - retain, PRUNE_BATCH).await {
                Ok((o, i)) => {
                    metrics.pruned("outbox", o);
                    metrics.pruned("inbox", i);
                    (outbox, inbox) = (outbox + o, inbox + i);
                    if o.max(i) < PRUNE_BATCH as u64 || *stopping.borrow() {
                        break;
                    }
                    tokio::task::yield_now().await;
                }
                Err(e) => {
                    tracing::warn!(route = name, error = %e, "the reconciler cannot prune handled messages");
                    break;
                }
            }
        }
        if outbox + inbox > 0 {
            tracing::info!(route = name, outbox, inbox, "pruned handled messages past messaging.retain_hours");
        }
    }
}

/// Rows of each table one pruning transaction deletes at most: some 50 ms
/// of the writer (SQLite 3.40 deleted 1,000 of 400,000 in 48 ms), after which a
/// trading batch can take its turn.
const PRUNE_BATCH: usize = 1_000;

/// NATS JetStream as the carrier between processes: a relay publishes each
/// message with its outbox id and a hash of its payload as `Nats-Msg-Id`
/// (the stream drops a re-publish inside its duplicate window, and the
/// inbox ignores one after it) on its route's subject for its aggregate's partition
/// (`volta.STREAM.trade.P`, `volta.STREAM.contract.P`), and the processes
/// of the consuming service ([`consume_route`](nats::consume_route))
/// consume the partitions, each from a durable consumer of its own
/// (`settlement-P`, `positions-P`), acknowledging each message once handled.
///
/// A partition is consumed by one replica at a time: the replica that holds
/// its lease (a PostgreSQL advisory lock). Replicas share the partitions
/// evenly: each counts the replicas running (holders of a shared lease) and
/// takes at most its fair share, and one holding more than that lets the
/// surplus go, so a replica that starts gets partitions from the others and
/// the partitions of one that dies (its leases go with its connection) are
/// taken by the rest.
pub(crate) mod nats {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    use async_nats::jetstream::{self, AckKind};
    use tokio::sync::watch;
    use tokio_stream::StreamExt as _;

    use super::{Carrier, Delivery, Inbox, Message, Route};
    use crate::store::messaging::ROUTES;
    use crate::store::{Lease, Store, advisory_key, fnv1a};
    use crate::telemetry::Metrics;

    /// Headers carrying the outbox row beside the payload.
    const AGGREGATE: &str = "Volta-Aggregate";
    const SEQ: &str = "Volta-Seq";
    const TENANT: &str = "Volta-Tenant";
    const KIND: &str = "Volta-Kind";
    const ID: &str = "Volta-Id";

    /// Messages pulled at once, and how long a pull waits for them.
    const PULL: usize = 512;
    const PULL_WAIT: Duration = Duration::from_millis(500);

    /// How long JetStream waits for an acknowledgement before delivering
    /// again, and after a refusal (a message before its predecessor, or a
    /// failure).
    const ACK_WAIT: Duration = Duration::from_secs(30);
    const NAK_DELAY: Duration = Duration::from_secs(1);
    /// The first delay of a message that came before its predecessor,
    /// doubled on each delivery up to [`NAK_DELAY`]: its predecessor is
    /// usually milliseconds behind, but one that is lost (until the
    /// reconciler sends it again) must not make its successors spin.
    const EARLY_DELAY: Duration = Duration::from_millis(20);

    /// How long a message that came early (its `delivered`th delivery)
    /// waits before it comes again.
    fn early_delay(delivered: i64) -> Duration {
        let doublings = u32::try_from(delivered.saturating_sub(1).clamp(0, 16)).unwrap_or(16);
        EARLY_DELAY.saturating_mul(1 << doublings).min(NAK_DELAY)
    }

    /// The stream's duplicate window: a message published twice within it
    /// is stored once.
    const DUPLICATE_WINDOW: Duration = Duration::from_secs(120);

    /// Messages are kept this long (the database is the record; the
    /// reconciler sends again what the stream lost).
    const MAX_AGE: Duration = Duration::from_secs(7 * 24 * 3600);

    /// How often a replica counts the replicas, checks its leases, and
    /// tries for a partition it does not hold.
    const REBALANCE: Duration = Duration::from_secs(2);

    /// A connection to JetStream with the messaging stream in place.
    #[derive(Debug, Clone)]
    pub(crate) struct JetStream {
        context: jetstream::Context,
        stream: String,
        partitions: u32,
    }

    impl JetStream {
        /// Connects to `url` and makes sure stream `stream` exists with a
        /// subject per route and partition (`volta.STREAM.trade.P`).
        ///
        /// # Errors
        /// An unreachable server, or one without JetStream.
        pub(crate) async fn connect(url: &str, stream: &str, partitions: u32) -> anyhow::Result<Self> {
            use anyhow::Context as _;
            let client = async_nats::ConnectOptions::new()
                .connection_timeout(Duration::from_secs(5))
                .name("volta")
                .connect(url)
                .await
                .with_context(|| format!("cannot reach NATS at {url} (messaging.nats_url)"))?;
            let context = jetstream::new(client);
            let config = jetstream::stream::Config {
                name: stream.to_owned(),
                subjects: ROUTES.iter().map(|r| format!("volta.{stream}.{}.*", r.topic)).collect(),
                storage: jetstream::stream::StorageType::File,
                duplicate_window: DUPLICATE_WINDOW,
                max_age: MAX_AGE,
                ..Default::default()
            };
            let failed = || format!("cannot open the JetStream stream {stream} at {url} (is JetStream on?)");
            let mut existing = context.get_or_create_stream(config.clone()).await.with_context(failed)?;
            // A stream of an earlier layout (fewer subjects) takes the
            // current subjects; what it held unhandled, the reconciler sends
            // again.
            let info = existing.info().await.with_context(failed)?;
            if info.config.subjects != config.subjects {
                context.update_stream(config).await.with_context(failed)?;
            }
            Ok(Self { context, stream: stream.to_owned(), partitions })
        }

        /// The subject of a route's partition.
        fn subject(&self, route: &Route, partition: u32) -> String {
            format!("volta.{}.{}.{partition}", self.stream, route.topic)
        }
    }

    /// The partition of an aggregate (a market): the same for every
    /// message of it, so that one consumer sees them in order.
    pub(crate) fn partition(aggregate: &str, partitions: u32) -> u32 {
        let key = fnv1a(aggregate);
        u32::try_from(key % u64::from(partitions.max(1))).unwrap_or(0)
    }

    #[tonic::async_trait]
    impl Carrier for JetStream {
        fn kinds(&self) -> Vec<&'static str> {
            ROUTES.iter().map(|r| r.kind).collect()
        }

        async fn send(&self, messages: &[Message]) -> Vec<String> {
            // Publish all, then wait for the acknowledgements: what the
            // stream acknowledged (stored, or known as a duplicate) is sent.
            let mut pending = Vec::with_capacity(messages.len());
            for m in messages {
                let Some(route) = Route::of(&m.kind) else {
                    tracing::warn!(id = %m.id, kind = %m.kind, "a message of no route stays in the outbox");
                    continue;
                };
                let nats_id = nats_id(m);
                let publish = jetstream::message::PublishMessage::build()
                    .payload(m.payload.clone().into())
                    .message_id(&nats_id)
                    .header(ID, m.id.as_str())
                    .header(AGGREGATE, m.aggregate.as_str())
                    .header(SEQ, m.seq.to_string().as_str())
                    .header(TENANT, m.tenant.as_str())
                    .header(KIND, m.kind.as_str());
                let subject = self.subject(&route, partition(&m.aggregate, self.partitions));
                match self.context.send_publish(subject, publish).await {
                    Ok(ack) => pending.push((m, ack)),
                    Err(e) => {
                        tracing::warn!(id = %m.id, error = %e, "cannot publish to JetStream; later");
                        break;
                    }
                }
            }
            let mut acked = Vec::with_capacity(pending.len());
            for (m, ack) in pending {
                match ack.await {
                    Ok(_) => acked.push(m.id.clone()),
                    Err(e) => tracing::warn!(id = %m.id, error = %e, "JetStream did not acknowledge; later"),
                }
            }
            acked
        }
    }

    /// The id the stream knows a message by (`Nats-Msg-Id`, which it drops
    /// as a repeat within its duplicate window): the outbox id with a hash
    /// of the payload, so that a relay's re-publish of a row is dropped
    /// but a different message under the same id is not (a database reset
    /// or restored from a backup numbers its trades again from where it
    /// stands); and a send the reconciler asked for gets an id of its own,
    /// or the stream would drop it too.
    fn nats_id(m: &Message) -> String {
        let body = fnv1a(&m.payload);
        if m.sends == 0 { format!("{}@{body:016x}", m.id) } else { format!("{}@{body:016x}#{}", m.id, m.sends) }
    }

    /// The outbox row a delivered message carries.
    fn message_of(delivered: &async_nats::Message) -> Message {
        let header = |name: &str| {
            delivered.headers.as_ref().and_then(|h| h.get(name)).map(|v| v.as_str().to_owned()).unwrap_or_default()
        };
        Message {
            id: header(ID),
            tenant: header(TENANT),
            aggregate: header(AGGREGATE),
            seq: header(SEQ).parse().unwrap_or(0),
            kind: header(KIND),
            payload: String::from_utf8_lossy(&delivered.payload).into_owned(),
            headers: "{}".to_owned(),
            sends: 0,
        }
    }

    type Consumer = jetstream::consumer::Consumer<jetstream::consumer::pull::Config>;

    /// Binds the durable consumer of one partition of a route.
    ///
    /// # Errors
    /// JetStream refuses the consumer.
    pub(crate) async fn bind(js: &JetStream, route: &Route, partition: u32) -> anyhow::Result<Consumer> {
        use anyhow::Context as _;
        let stream = js.context.get_stream(&js.stream).await.context("the messaging stream")?;
        let name = format!("{}-{partition}", route.consumer);
        stream
            .get_or_create_consumer(
                &name,
                jetstream::consumer::pull::Config {
                    durable_name: Some(name.clone()),
                    filter_subject: js.subject(route, partition),
                    ack_policy: jetstream::consumer::AckPolicy::Explicit,
                    ack_wait: ACK_WAIT,
                    max_ack_pending: 20_000,
                    ..Default::default()
                },
            )
            .await
            .with_context(|| format!("the JetStream consumer {name}"))
    }

    /// What the replicas of a consuming service share: the partitions this
    /// one holds, and its fair share of them.
    #[derive(Debug)]
    struct Share {
        route: &'static str,
        partitions: usize,
        held: AtomicUsize,
        fair: AtomicUsize,
        metrics: Arc<Metrics>,
    }

    impl Share {
        /// Whether this replica may take one more partition.
        fn may_take(&self) -> bool {
            self.held.load(Ordering::SeqCst) < self.fair.load(Ordering::SeqCst)
        }

        fn took(&self) {
            self.held.fetch_add(1, Ordering::SeqCst);
            self.metrics.partition_taken(self.route);
        }

        /// Gives one partition up if this replica holds more than its fair
        /// share (one partition at a time, whichever asks first).
        fn surplus(&self) -> bool {
            let fair = self.fair.load(Ordering::SeqCst);
            let given =
                self.held.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |h| (h > fair).then(|| h - 1)).is_ok();
            if given {
                self.metrics.partition_given(self.route);
            }
            given
        }

        fn lost(&self) {
            self.held.fetch_sub(1, Ordering::SeqCst);
            self.metrics.partition_given(self.route);
        }
    }

    /// Consumes a route's partitions over JetStream until the server stops,
    /// sharing them with the other replicas of the consuming service (see
    /// the module's documentation).
    ///
    /// # Errors
    /// JetStream refuses a consumer, or the database cannot be reached at
    /// start (the server then does not start).
    pub(crate) async fn consume_route(
        js: JetStream,
        store: Store,
        inbox: Arc<Inbox>,
        metrics: Arc<Metrics>,
        stopping: watch::Receiver<bool>,
    ) -> anyhow::Result<()> {
        let route = *inbox.route();
        let partitions = js.partitions;
        // Bound before SERVING, so that a refused consumer stops the start.
        let consumers: Vec<Consumer> = {
            let mut bound = Vec::new();
            for p in 0..partitions {
                bound.push(bind(&js, &route, p).await?);
            }
            bound
        };
        let members = advisory_key(&format!("volta-{}/{}/replicas", route.consumer, js.stream));
        let member = store.lease(members, true).await?;
        let share = Arc::new(Share {
            route: route.consumer,
            partitions: partitions as usize,
            held: AtomicUsize::new(0),
            fair: AtomicUsize::new(0),
            metrics,
        });
        // The first share is known before any partition is tried, so that a
        // replica starts consuming at once.
        let replicas = store.holders(members).await?;
        share.fair.store(share.partitions.div_ceil(replicas.max(1)), Ordering::SeqCst);
        tokio::spawn(count_replicas(store.clone(), member, members, share.clone(), stopping.clone()));
        for (p, consumer) in (0..partitions).zip(consumers) {
            let lease = advisory_key(&format!("volta-{}/{}/{p}", route.consumer, js.stream));
            tokio::spawn(partition_loop(
                p,
                lease,
                consumer,
                store.clone(),
                inbox.clone(),
                share.clone(),
                stopping.clone(),
            ));
        }
        Ok(())
    }

    /// Keeps this replica counted among the route's replicas and its fair
    /// share up to date.
    async fn count_replicas(
        store: Store,
        mut member: Option<Lease>,
        key: i64,
        share: Arc<Share>,
        mut stopping: watch::Receiver<bool>,
    ) {
        loop {
            let present = match member.as_mut() {
                Some(lease) => lease.is_held().await,
                None => false,
            };
            if !present {
                member = store.lease(key, true).await.unwrap_or_else(|e| {
                    tracing::warn!(route = share.route, error = %e, "cannot join the consumer's replicas; retrying");
                    None
                });
            }
            match store.holders(key).await {
                Ok(replicas) => {
                    let fair = share.partitions.div_ceil(replicas.max(1));
                    if share.fair.swap(fair, Ordering::SeqCst) != fair {
                        tracing::info!(route = share.route, replicas, fair, "the partitions are shared anew");
                    }
                }
                Err(e) => tracing::warn!(route = share.route, error = %e, "cannot count the consumer's replicas"),
            }
            tokio::select! {
                () = tokio::time::sleep(REBALANCE) => {}
                _ = stopping.wait_for(|s| *s) => return,
            }
        }
    }

    /// Why a replica stopped consuming a partition.
    enum Stopped {
        /// The server is stopping.
        Server,
        /// Its lease is lost (the database connection went).
        Lost,
        /// It held more than its fair share: another replica takes it.
        Surplus,
    }

    /// One partition, as long as the server runs: taken when free and
    /// within this replica's share, consumed while held.
    async fn partition_loop(
        partition: u32,
        key: i64,
        consumer: Consumer,
        store: Store,
        inbox: Arc<Inbox>,
        share: Arc<Share>,
        mut stopping: watch::Receiver<bool>,
    ) {
        loop {
            if *stopping.borrow() {
                return;
            }
            let lease = if share.may_take() {
                store.lease(key, false).await.unwrap_or_else(|e| {
                    tracing::warn!(route = share.route, partition, error = %e, "cannot take a partition's lease");
                    None
                })
            } else {
                None
            };
            let Some(mut lease) = lease else {
                tokio::select! {
                    () = tokio::time::sleep(REBALANCE) => {}
                    _ = stopping.wait_for(|s| *s) => return,
                }
                continue;
            };
            share.took();
            tracing::info!(route = share.route, partition, "consuming a partition");
            let stopped = consume(&consumer, &inbox, &mut lease, &share, &mut stopping).await;
            drop(lease);
            match stopped {
                Stopped::Server => return,
                Stopped::Lost => {
                    share.lost();
                    tracing::warn!(route = share.route, partition, "lost a partition's lease (database connection)");
                }
                Stopped::Surplus => {
                    tracing::info!(route = share.route, partition, "handed a partition to another replica");
                    // Leave it to the others for a while.
                    tokio::time::sleep(REBALANCE * 3).await;
                }
            }
        }
    }

    /// Pulls a partition's messages and hands them to the consumer: each
    /// handled one acknowledged, each refused one sent back for later.
    /// Between pulls, at most every [`REBALANCE`], checks that the lease is
    /// still held and within this replica's share.
    async fn consume(
        consumer: &Consumer,
        inbox: &Inbox,
        lease: &mut Lease,
        share: &Share,
        stopping: &mut watch::Receiver<bool>,
    ) -> Stopped {
        let mut checked = tokio::time::Instant::now();
        loop {
            if *stopping.borrow() {
                return Stopped::Server;
            }
            if checked.elapsed() >= REBALANCE {
                checked = tokio::time::Instant::now();
                if !lease.is_held().await {
                    return Stopped::Lost;
                }
                if share.surplus() {
                    return Stopped::Surplus;
                }
            }
            let batch = tokio::select! {
                batch = consumer.fetch().max_messages(PULL).expires(PULL_WAIT).messages() => batch,
                _ = stopping.wait_for(|s| *s) => return Stopped::Server,
            };
            let mut delivered = Vec::new();
            match batch {
                Ok(mut batch) => {
                    while let Some(next) = batch.next().await {
                        match next {
                            Ok(m) => delivered.push(m),
                            Err(e) => {
                                tracing::warn!(error = %e, "a pull from JetStream failed");
                                break;
                            }
                        }
                    }
                }
                Err(e) => {
                    tracing::warn!(error = %e, "cannot pull from JetStream; retrying");
                    tokio::time::sleep(NAK_DELAY).await;
                    continue;
                }
            }
            if delivered.is_empty() {
                continue;
            }
            let messages: Vec<Message> = delivered.iter().map(|d| message_of(d)).collect();
            let handled = inbox.handle(&messages).await;
            if handled.contains(&Delivery::Done) {
                crate::failpoint::pass("consumer.after_apply");
            }
            for (d, delivery) in delivered.iter().zip(handled) {
                let kind = match delivery {
                    Delivery::Done => AckKind::Ack,
                    Delivery::Early => AckKind::Nak(Some(early_delay(d.info().map_or(1, |i| i.delivered)))),
                    Delivery::Failed => AckKind::Nak(Some(NAK_DELAY)),
                };
                if let Err(e) = d.ack_with(kind).await {
                    // Not acknowledged: JetStream delivers it again after
                    // its ack wait, and the inbox ignores it then.
                    tracing::warn!(error = %e, "cannot acknowledge to JetStream");
                }
            }
        }
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn the_stream_drops_a_repeat_but_not_another_message_under_the_same_id() {
            let message = Message {
                id: "trade/acme/park/1".into(),
                tenant: "acme".into(),
                aggregate: "trading/acme/park".into(),
                seq: 1,
                kind: crate::store::messaging::TRADE.into(),
                payload: r#"{"trade":{"id":1,"at":"2026-12-05T10:00:00Z"}}"#.into(),
                headers: "{}".into(),
                sends: 0,
            };
            let id = nats_id(&message);
            assert!(id.starts_with("trade/acme/park/1@"), "{id}");
            // The row read again (a consumer's delivery carries no headers).
            let again = Message { headers: r#"{"content-type":"application/json"}"#.into(), ..message.clone() };
            assert_eq!(nats_id(&again), id, "a re-publish of the row is a repeat");
            let after_reset = Message { payload: message.payload.replace("10:00", "10:05"), ..message.clone() };
            assert_ne!(nats_id(&after_reset), id, "another trade 1 is another message");
            let resent = Message { sends: 2, ..message };
            assert_eq!(nats_id(&resent), format!("{id}#2"), "the reconciler's send is not dropped");
        }

        #[test]
        fn an_early_message_comes_again_soon_then_less_often() {
            let ms = |n| early_delay(n).as_millis();
            assert_eq!([ms(1), ms(2), ms(3), ms(6)], [20, 40, 80, 640]);
            // Capped at the delay of a failure, whatever the count says.
            assert_eq!([ms(7), ms(1_000), ms(i64::MAX)], [1_000; 3]);
            assert_eq!([ms(0), ms(-5)], [20, 20]);
        }
    }
}
