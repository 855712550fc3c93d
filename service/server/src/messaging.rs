//! Exactly-once settlement between the services: every trade the trading
//! service stores reaches the contract service's market ledger once.
//!
//! The guarantee rests on the database, not on a carrier:
//! 1. **Outbox.** The trading store writes a message per trade in the
//!    transaction that stores the trade ([`crate::store::messaging`]).
//! 2. **Relay.** A [`Relay`] claims unpublished messages, hands them to the
//!    carrier, and marks published only what the carrier acknowledged;
//!    the rest is released and claimed again after [`RETRY`]. A relay that
//!    dies holding a claim loses it when the claim expires ([`CLAIM`]).
//! 3. **Carrier.** In one process ([`InProcess`]) the carrier hands each
//!    message to the consumer directly and acknowledges it once handled.
//! 4. **Inbox.** The [`Settlement`] consumer applies a message in one
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
//! in a second delivery the inbox ignores, never in a lost or doubled
//! effect.

use std::sync::Arc;
use std::time::Duration;

use jiff::{SignedDuration, Timestamp};
use tokio::sync::{Notify, watch};

use crate::store::StoreError;
use crate::store::messaging::{Handled, Message, MessagingStore, TRADE, TradeMessage};
use crate::telemetry::Metrics;

/// The settlement consumer's name in the inbox.
pub(crate) const SETTLEMENT: &str = "settlement";

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

/// The settlement consumer: trades into the contract service's market
/// ledger.
#[derive(Debug, Clone)]
pub(crate) struct Settlement {
    store: Arc<dyn MessagingStore>,
    metrics: Arc<Metrics>,
}

impl Settlement {
    pub(crate) fn new(store: Arc<dyn MessagingStore>, metrics: Arc<Metrics>) -> Self {
        Self { store, metrics }
    }

    /// Handles one delivery of each of `messages` (in aggregate order):
    /// for each, true when it may be acknowledged (applied now, handled
    /// before, or dead), false when it must come again (its predecessor has
    /// not been handled, or it failed). The readable ones are applied in one
    /// transaction; if that fails, one by one, so that only the failing one
    /// fails.
    pub(crate) async fn handle(&self, messages: &[Message]) -> Vec<bool> {
        let now = Timestamp::now();
        let mut acked = vec![false; messages.len()];
        let mut readable = Vec::with_capacity(messages.len());
        for (i, m) in messages.iter().enumerate() {
            match read(m) {
                Ok(trade) => readable.push((i, trade)),
                Err(error) => acked[i] = self.fail(m, &error, now).await,
            }
        }
        let batch: Vec<(&Message, &TradeMessage)> = readable.iter().map(|(i, t)| (&messages[*i], t)).collect();
        match self.store.settle_trades(SETTLEMENT, &batch, now).await {
            Ok(handled) => {
                for ((i, trade), handled) in readable.iter().zip(handled) {
                    acked[*i] = self.count(&messages[*i], handled, trade, now);
                }
            }
            Err(_) if batch.len() > 1 => {
                for (i, trade) in &readable {
                    let m = &messages[*i];
                    acked[*i] = match self.store.settle_trade(SETTLEMENT, m, trade, now).await {
                        Ok(handled) => self.count(m, handled, trade, now),
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

    /// Counts what became of a message; whether it may be acknowledged.
    fn count(&self, message: &Message, handled: Handled, trade: &TradeMessage, now: Timestamp) -> bool {
        match handled {
            Handled::Applied => {
                self.metrics.message("applied");
                self.metrics.settled(now.duration_since(trade.trade.at).as_secs_f64());
                true
            }
            Handled::Duplicate => {
                self.metrics.message("duplicate");
                true
            }
            Handled::Early { expected } => {
                tracing::debug!(id = %message.id, expected, "message before its predecessor: later");
                self.metrics.message("deferred");
                false
            }
        }
    }

    /// Records a failed attempt; whether the message may be acknowledged
    /// (it is dead).
    async fn fail(&self, message: &Message, error: &str, now: Timestamp) -> bool {
        self.metrics.message("failed");
        match self.store.failed(SETTLEMENT, message, error, now).await {
            Ok(true) => {
                tracing::error!(id = %message.id, error, "message dead after repeated failures");
                self.metrics.message("dead");
                true
            }
            Ok(false) => {
                tracing::warn!(id = %message.id, error, "message failed; it comes again");
                false
            }
            Err(store) => {
                tracing::warn!(id = %message.id, error, store = %store, "message failed, and so did recording it");
                false
            }
        }
    }
}

/// A message's trade, or why it is not one the settlement consumer reads.
fn read(message: &Message) -> Result<TradeMessage, String> {
    if message.kind != TRADE {
        return Err(format!("kind {:?} is not one the settlement consumer reads", message.kind));
    }
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

/// A carrier: takes messages in aggregate order and says which it has
/// (acknowledged, in the order given).
#[tonic::async_trait]
pub(crate) trait Carrier: Send + Sync + std::fmt::Debug {
    /// Sends `messages`; returns the ids acknowledged.
    async fn send(&self, messages: &[Message]) -> Vec<String>;
}

/// The carrier of one process: hands the messages to the consumer and
/// acknowledges what it handled. A message that waits for its predecessor
/// is not acknowledged, and neither is the rest of its aggregate (the
/// inbox's cursor holds them back), until the next round.
#[derive(Debug)]
pub(crate) struct InProcess {
    pub(crate) consumer: Settlement,
}

#[tonic::async_trait]
impl Carrier for InProcess {
    async fn send(&self, messages: &[Message]) -> Vec<String> {
        let handled = self.consumer.handle(messages).await;
        messages.iter().zip(handled).filter(|(_, ok)| *ok).map(|(m, _)| m.id.clone()).collect()
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

    /// Relays what is waiting, batch after batch.
    async fn drain(&self) -> Result<(), StoreError> {
        loop {
            let now = Timestamp::now();
            let batch = self.store.claim(&self.name, now, now + CLAIM, BATCH).await?;
            if batch.is_empty() {
                return Ok(());
            }
            let acked = self.carrier.send(&batch).await;
            if !acked.is_empty() {
                crate::failpoint::pass("relay.after_send");
            }
            let later: Vec<String> = batch.iter().filter(|m| !acked.contains(&m.id)).map(|m| m.id.clone()).collect();
            self.store.published(&acked, Timestamp::now()).await?;
            self.metrics.messages_published(acked.len());
            if !later.is_empty() {
                self.store.release(&later, Timestamp::now() + RETRY).await?;
                // What waits is claimed again after RETRY, by the next poll.
                return Ok(());
            }
        }
    }
}

/// Compares the outbox with the settlement inbox until the server stops,
/// every third of `grace`: what was published more than `grace` ago and
/// not handled is sent again (the carrier lost it), counted and logged.
pub(crate) async fn reconcile(
    store: Arc<dyn MessagingStore>,
    metrics: Arc<Metrics>,
    grace: Duration,
    retain: Duration,
    mut stopping: watch::Receiver<bool>,
) {
    let retain = SignedDuration::try_from(retain).unwrap_or(SignedDuration::from_hours(168));
    let period = (grace / 3).max(Duration::from_secs(1));
    let grace = SignedDuration::try_from(grace).unwrap_or(SignedDuration::from_secs(30));
    loop {
        tokio::select! {
            () = tokio::time::sleep(period) => {}
            _ = stopping.wait_for(|s| *s) => return,
        }
        let now = Timestamp::now();
        match store.unhandled(SETTLEMENT, now - grace, 1_000).await {
            Ok(missing) if missing.is_empty() => metrics.set_drift(0),
            Ok(missing) => {
                metrics.set_drift(missing.len());
                tracing::warn!(
                    missing = missing.len(),
                    first = %missing[0],
                    "published messages the settlement ledger never handled: sending them again"
                );
                match store.republish(&missing).await {
                    Ok(()) => metrics.messages_repaired(missing.len()),
                    Err(e) => tracing::warn!(error = %e, "the reconciler cannot mark messages for sending again"),
                }
            }
            Err(e) => tracing::warn!(error = %e, "the reconciler cannot read the outbox"),
        }
        match (store.backlog().await, store.dead_count(SETTLEMENT).await) {
            (Ok(backlog), Ok(dead)) => metrics.set_messaging(backlog, dead),
            (Err(e), _) | (_, Err(e)) => tracing::warn!(error = %e, "the reconciler cannot count the backlog"),
        }
        // What is handled and older than the retention goes, a batch at a
        // time, so that one pass never holds the database for long.
        match store.prune(SETTLEMENT, now - retain, PRUNE_BATCH).await {
            Ok((outbox, inbox)) => {
                metrics.pruned("outbox", outbox);
                metrics.pruned("inbox", inbox);
                if outbox + inbox > 0 {
                    tracing::info!(outbox, inbox, "pruned handled messages past messaging.retain_hours");
                }
            }
            Err(e) => tracing::warn!(error = %e, "the reconciler cannot prune handled messages"),
        }
    }
}

/// Rows of each table one reconciliation pass prunes at most.
const PRUNE_BATCH: usize = 5_000;

/// NATS JetStream as the carrier between processes: the trading process's
/// relay publishes each message with its outbox id as `Nats-Msg-Id` (the
/// stream drops a re-publish inside its duplicate window, and the inbox
/// ignores one after it) on its market's partition, and the contract
/// processes' [`ledger`](nats::ledger) consumes the partitions, each from a
/// durable consumer of its own, acknowledging each message once handled.
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

    use super::{Carrier, Message, Settlement};
    use crate::store::{Lease, Store, advisory_key};
    use crate::telemetry::Metrics;

    /// The durable consumers of the settlement ledger: `settlement-P`.
    const CONSUMER: &str = "settlement";

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

    /// The stream's duplicate window: a message published twice within it
    /// is stored once.
    const DUPLICATE_WINDOW: Duration = Duration::from_secs(120);

    /// Messages are kept this long (the database is the record; the
    /// reconciler sends again what the stream lost).
    const MAX_AGE: Duration = Duration::from_secs(7 * 24 * 3600);

    /// How often a replica counts the replicas, checks its leases, and
    /// tries for a partition it does not hold.
    const REBALANCE: Duration = Duration::from_secs(2);

    /// A connection to JetStream with the settlement stream in place.
    #[derive(Debug, Clone)]
    pub(crate) struct JetStream {
        context: jetstream::Context,
        stream: String,
        partitions: u32,
    }

    impl JetStream {
        /// Connects to `url` and makes sure stream `stream` exists with a
        /// subject per partition (`volta.STREAM.trade.P`).
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
                subjects: vec![format!("volta.{stream}.trade.*")],
                storage: jetstream::stream::StorageType::File,
                duplicate_window: DUPLICATE_WINDOW,
                max_age: MAX_AGE,
                ..Default::default()
            };
            let failed = || format!("cannot open the JetStream stream {stream} at {url} (is JetStream on?)");
            let mut existing = context.get_or_create_stream(config.clone()).await.with_context(failed)?;
            // A stream of an earlier layout (one subject) takes the
            // partitions' subjects; what it held unhandled, the reconciler
            // sends again.
            let info = existing.info().await.with_context(failed)?;
            if info.config.subjects != config.subjects {
                context.update_stream(config).await.with_context(failed)?;
            }
            Ok(Self { context, stream: stream.to_owned(), partitions })
        }

        /// The subject of a partition.
        fn subject(&self, partition: u32) -> String {
            format!("volta.{}.trade.{partition}", self.stream)
        }
    }

    /// The partition of an aggregate (a market): the same for every
    /// message of it, so that one consumer sees them in order.
    pub(crate) fn partition(aggregate: &str, partitions: u32) -> u32 {
        let key = advisory_key(aggregate).cast_unsigned();
        u32::try_from(key % u64::from(partitions.max(1))).unwrap_or(0)
    }

    #[tonic::async_trait]
    impl Carrier for JetStream {
        async fn send(&self, messages: &[Message]) -> Vec<String> {
            // Publish all, then wait for the acknowledgements: what the
            // stream acknowledged (stored, or known as a duplicate) is sent.
            let mut pending = Vec::with_capacity(messages.len());
            for m in messages {
                // A send the reconciler asked for gets an id of its own, or
                // the stream would drop it as a repeat inside its window.
                let nats_id = if m.sends == 0 { m.id.clone() } else { format!("{}#{}", m.id, m.sends) };
                let publish = jetstream::message::PublishMessage::build()
                    .payload(m.payload.clone().into())
                    .message_id(&nats_id)
                    .header(ID, m.id.as_str())
                    .header(AGGREGATE, m.aggregate.as_str())
                    .header(SEQ, m.seq.to_string().as_str())
                    .header(TENANT, m.tenant.as_str())
                    .header(KIND, m.kind.as_str());
                let subject = self.subject(partition(&m.aggregate, self.partitions));
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

    /// Binds the durable consumer of one partition of the ledger.
    ///
    /// # Errors
    /// JetStream refuses the consumer.
    pub(crate) async fn bind(js: &JetStream, partition: u32) -> anyhow::Result<Consumer> {
        use anyhow::Context as _;
        let stream = js.context.get_stream(&js.stream).await.context("the settlement stream")?;
        let name = format!("{CONSUMER}-{partition}");
        stream
            .get_or_create_consumer(
                &name,
                jetstream::consumer::pull::Config {
                    durable_name: Some(name.clone()),
                    filter_subject: js.subject(partition),
                    ack_policy: jetstream::consumer::AckPolicy::Explicit,
                    ack_wait: ACK_WAIT,
                    max_ack_pending: 20_000,
                    ..Default::default()
                },
            )
            .await
            .with_context(|| format!("the settlement consumer {name}"))
    }

    /// What the replicas of the ledger share: the partitions this one
    /// holds, and its fair share of them.
    #[derive(Debug)]
    struct Share {
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
            let held = self.held.fetch_add(1, Ordering::SeqCst) + 1;
            self.metrics.set_partitions_held(held);
        }

        /// Gives one partition up if this replica holds more than its fair
        /// share (one partition at a time, whichever asks first).
        fn surplus(&self) -> bool {
            let fair = self.fair.load(Ordering::SeqCst);
            let given =
                self.held.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |h| (h > fair).then(|| h - 1)).is_ok();
            if given {
                self.metrics.set_partitions_held(self.held.load(Ordering::SeqCst));
            }
            given
        }

        fn lost(&self) {
            let held = self.held.fetch_sub(1, Ordering::SeqCst).saturating_sub(1);
            self.metrics.set_partitions_held(held);
        }
    }

    /// Consumes the market ledger's partitions over JetStream until the
    /// server stops, sharing them with the other replicas of the contract
    /// service (see the module's documentation).
    ///
    /// # Errors
    /// JetStream refuses a consumer, or the database cannot be reached at
    /// start (the server then does not start).
    pub(crate) async fn ledger(
        js: JetStream,
        store: Store,
        settlement: Arc<Settlement>,
        metrics: Arc<Metrics>,
        stopping: watch::Receiver<bool>,
    ) -> anyhow::Result<()> {
        let partitions = js.partitions;
        // Bound before SERVING, so that a refused consumer stops the start.
        let consumers: Vec<Consumer> = {
            let mut bound = Vec::new();
            for p in 0..partitions {
                bound.push(bind(&js, p).await?);
            }
            bound
        };
        let members = advisory_key(&format!("volta-ledger/{}/replicas", js.stream));
        let member = store.lease(members, true).await?;
        let share = Arc::new(Share {
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
            let lease = advisory_key(&format!("volta-ledger/{}/{p}", js.stream));
            tokio::spawn(partition_loop(
                p,
                lease,
                consumer,
                store.clone(),
                settlement.clone(),
                share.clone(),
                stopping.clone(),
            ));
        }
        Ok(())
    }

    /// Keeps this replica counted among the ledger's replicas and its fair
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
                    tracing::warn!(error = %e, "cannot join the ledger's replicas; retrying");
                    None
                });
            }
            match store.holders(key).await {
                Ok(replicas) => {
                    let fair = share.partitions.div_ceil(replicas.max(1));
                    if share.fair.swap(fair, Ordering::SeqCst) != fair {
                        tracing::info!(replicas, fair, "the ledger's partitions are shared anew");
                    }
                }
                Err(e) => tracing::warn!(error = %e, "cannot count the ledger's replicas"),
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
        settlement: Arc<Settlement>,
        share: Arc<Share>,
        mut stopping: watch::Receiver<bool>,
    ) {
        loop {
            if *stopping.borrow() {
                return;
            }
            let lease = if share.may_take() {
                store.lease(key, false).await.unwrap_or_else(|e| {
                    tracing::warn!(partition, error = %e, "cannot take a ledger partition's lease");
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
            tracing::info!(partition, "consuming a partition of the market ledger");
            let stopped = consume(&consumer, &settlement, &mut lease, &share, &mut stopping).await;
            drop(lease);
            match stopped {
                Stopped::Server => return,
                Stopped::Lost => {
                    share.lost();
                    tracing::warn!(partition, "lost a ledger partition's lease (database connection)");
                }
                Stopped::Surplus => {
                    tracing::info!(partition, "handed a partition of the market ledger to another replica");
                    // Leave it to the others for a while.
                    tokio::time::sleep(REBALANCE * 3).await;
                }
            }
        }
    }

    /// Pulls a partition's messages and hands them to the ledger: each
    /// handled one acknowledged, each refused one sent back for later.
    /// Between pulls, at most every [`REBALANCE`], checks that the lease is
    /// still held and within this replica's share.
    async fn consume(
        consumer: &Consumer,
        settlement: &Settlement,
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
            let handled = settlement.handle(&messages).await;
            for (d, ok) in delivered.iter().zip(handled) {
                let kind = if ok { AckKind::Ack } else { AckKind::Nak(Some(NAK_DELAY)) };
                if let Err(e) = d.ack_with(kind).await {
                    // Not acknowledged: JetStream delivers it again after
                    // its ack wait, and the inbox ignores it then.
                    tracing::warn!(error = %e, "cannot acknowledge to JetStream");
                }
            }
        }
    }
}
