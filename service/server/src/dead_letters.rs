//! The admin's hands on a route's dead letters, shared by the services
//! that consume a route: the contract service lists and retries those of
//! settlement, the trading service those of its view of positions. Each
//! service maps the result onto its own API's messages.

use std::sync::Arc;

use tonic::Status;
use volta_api::status::{self as errors, Reason};

use crate::auth::{Caller, Role};
use crate::messaging::{Inbox, Retried, Route};
use crate::store::messaging::{DeadLetter, MessagingStore};
use crate::telemetry::Metrics;

/// Dead letters a page holds when the caller does not say.
const DEFAULT_PAGE: usize = 100;

/// The most dead letters of one page.
const MAX_PAGE: usize = 1_000;

/// The largest corrected payload a retry takes.
const MAX_PAYLOAD_BYTES: usize = 64 * 1024;

/// The longest message id a retry names.
const MAX_MESSAGE_ID_CHARS: usize = 512;

/// The dead letters of `route` in the caller's tenant, newest first
/// (admin).
///
/// # Errors
/// PERMISSION_DENIED for a caller below admin, INVALID_ARGUMENT for a bad
/// page size, UNAVAILABLE when the database fails.
pub(crate) async fn list(
    store: &dyn MessagingStore,
    route: &Route,
    caller: &Caller,
    page_size: i32,
) -> Result<Vec<DeadLetter>, Status> {
    caller.require(Role::Admin)?;
    let limit = volta_api::time::page_size(page_size, DEFAULT_PAGE, MAX_PAGE)?;
    store.dead_letters(route.consumer, &caller.tenant, limit).await.map_err(|e| crate::store::unavailable(&e))
}

/// Applies dead letter `message_id` of `route` again (admin), with the
/// payload it was received with or `payload` when not empty: `Ok(None)`
/// when applied, `Ok(Some(error))` when it failed again.
///
/// # Errors
/// PERMISSION_DENIED below admin, INVALID_ARGUMENT naming the field for a
/// missing or oversized id or payload (checked before the database is
/// asked), MESSAGE_NOT_FOUND for no such dead letter, UNAVAILABLE when the
/// database fails.
pub(crate) async fn retry(
    store: Arc<dyn MessagingStore>,
    metrics: Arc<Metrics>,
    route: Route,
    caller: &Caller,
    message_id: &str,
    payload: String,
) -> Result<Option<String>, Status> {
    caller.require(Role::Admin)?;
    if message_id.is_empty() {
        return Err(errors::invalid("message_id", "missing".to_owned()));
    }
    if message_id.chars().count() > MAX_MESSAGE_ID_CHARS {
        return Err(errors::over_limit("message_id", "characters", "a message id", MAX_MESSAGE_ID_CHARS));
    }
    if payload.len() > MAX_PAYLOAD_BYTES {
        return Err(errors::over_limit("payload", "bytes", "a corrected payload", MAX_PAYLOAD_BYTES));
    }
    let name = route.consumer;
    let inbox = Inbox::new(route, store, metrics);
    let payload = (!payload.is_empty()).then_some(payload);
    match inbox.retry(&caller.tenant, message_id, payload).await.map_err(|e| crate::store::unavailable(&e))? {
        Retried::Applied => Ok(None),
        Retried::Failed(error) => Ok(Some(error)),
        Retried::NotFound => Err(errors::error(
            Reason::MessageNotFound,
            format!("no dead letter {} of {name}", errors::shown(message_id)),
        )),
    }
}
