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
//! 5. **Reconciler.** Every [`RECONCILE_PERIOD`] the [`reconcile`] task
//!    compares what was published with what the consumer handled, by id,
//!    sends again what is missing after [`GRACE`], and reports the drift.
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

/// How often the reconciler compares the outbox with the inbox.
const RECONCILE_PERIOD: Duration = Duration::from_secs(10);

/// How long a published message may take to be handled before the
/// reconciler sends it again.
const GRACE: SignedDuration = SignedDuration::from_secs(30);

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

/// Compares the outbox with the settlement inbox until the server stops:
/// what was published more than [`GRACE`] ago and not handled is sent
/// again (the carrier lost it), counted and logged.
pub(crate) async fn reconcile(
    store: Arc<dyn MessagingStore>,
    metrics: Arc<Metrics>,
    mut stopping: watch::Receiver<bool>,
) {
    loop {
        tokio::select! {
            () = tokio::time::sleep(RECONCILE_PERIOD) => {}
            _ = stopping.wait_for(|s| *s) => return,
        }
        let now = Timestamp::now();
        match store.unhandled(SETTLEMENT, now - GRACE, 1_000).await {
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
    }
}
