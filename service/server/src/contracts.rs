//! `volta.contracts.v1.ContractService`: contracts, meters and readings of
//! the caller's tenant, and the statistics and settlements computed from
//! them. Reads need the viewer role; changes, loads and stored settlements
//! the operator role.

use std::sync::Arc;

use tokio_stream::StreamExt as _;
use tonic::{Request, Response, Status, Streaming};
use volta_api::contracts as convert;
use volta_api::pb::contracts as pb;
use volta_api::status::{self as errors, Reason};
use volta_contracts::settlement::settle;
use volta_contracts::{Contract, ContractId};
use volta_engine::Cancel;
use volta_forecasting::{ForecastError, ModelSpec};

use crate::auth::{Caller, Role};
use crate::budget::Budget;
use crate::dead_letters;
use crate::messaging::SETTLEMENT;
use crate::projection::{self, ProjectionError};
use crate::store::contracts::{Applied, ContractStore, ContractStoreError, Scope};
use crate::store::messaging::MessagingStore;
use crate::{MAX_REQUEST_ID_CHARS, Shared};

/// Buckets a statistics page holds when the caller does not say.
const DEFAULT_PAGE: usize = 366;

/// The most buckets of one page.
const MAX_PAGE: usize = 10_000;

/// The contract service.
pub(crate) struct Contracts {
    shared: Shared,
    store: Arc<dyn ContractStore>,
    /// The market ledger and the dead letters of settlement.
    messages: Arc<dyn MessagingStore>,
    /// Woken when a contract changes (its message is in the outbox).
    outbox: Arc<tokio::sync::Notify>,
}

impl Contracts {
    pub(crate) fn new(
        shared: Shared,
        store: Arc<dyn ContractStore>,
        messages: Arc<dyn MessagingStore>,
        outbox: Arc<tokio::sync::Notify>,
    ) -> Self {
        Self { shared, store, messages, outbox }
    }

    /// Wakes the relay when a change was stored: its message waits in the
    /// outbox for the trading service's view of positions.
    fn announce<T>(&self, applied: &Applied<T>) {
        if matches!(applied, Applied::Now(_)) {
            self.outbox.notify_one();
        }
    }

    fn period(
        &self,
        first: Option<volta_api::pb::common::Date>,
        last: Option<volta_api::pb::common::Date>,
    ) -> Result<volta_contracts::Period, Status> {
        let max = i32::try_from(self.shared.limits.max_period_days).unwrap_or(i32::MAX);
        convert::period(first, last, max)
    }
}

/// Runs a store change that rebuilds rollups (CPU work between its
/// queries: a month of 1 000 contracts takes tens of seconds) with the
/// runtime told that this worker is busy, so that other calls move to the
/// other workers instead of waiting behind it.
fn rebuilding<T>(work: impl Future<Output = T>) -> T {
    tokio::task::block_in_place(|| tokio::runtime::Handle::current().block_on(work))
}

/// A store failure as a status; `field` prefixes a refused field's path.
fn failed(err: ContractStoreError, field: &str) -> Status {
    match err {
        ContractStoreError::Store(e) => crate::store::unavailable(&e),
        ContractStoreError::Refused(e) => errors::contract(&e, field),
        ContractStoreError::NotFound { what, id } => errors::error(Reason::ContractNotFound, format!("no {what} {id}")),
        e @ (ContractStoreError::Exists { .. } | ContractStoreError::KeyReused { .. }) => {
            errors::error(Reason::AlreadyExists, e.to_string())
        }
        e @ ContractStoreError::Concurrent(_) => errors::error(Reason::ConcurrentChange, e.to_string()),
        ContractStoreError::Reading { index, error } => errors::contract(&error, &format!("readings[{index}]")),
    }
}

/// An optional request id: at most [`MAX_REQUEST_ID_CHARS`] printable characters.
fn request_id(id: &str) -> Result<Option<&str>, Status> {
    if id.is_empty() {
        return Ok(None);
    }
    if id.chars().count() > MAX_REQUEST_ID_CHARS || id.chars().any(char::is_control) {
        return Err(errors::invalid("request_id", format!("at most {MAX_REQUEST_ID_CHARS} printable characters")));
    }
    Ok(Some(id))
}

#[tonic::async_trait]
impl pb::contract_service_server::ContractService for Contracts {
    async fn put_party(&self, request: Request<pb::PutPartyRequest>) -> Result<Response<pb::PutPartyResponse>, Status> {
        let caller = Caller::of(&request)?;
        caller.require(Role::Operator)?;
        let pb::PutPartyRequest { party } = request.into_inner();
        let party = convert::party(party)?;
        self.store.put_party(&caller.tenant, &party).await.map_err(|e| failed(e, "party"))?;
        Ok(Response::new(pb::PutPartyResponse {}))
    }

    async fn put_meter(&self, request: Request<pb::PutMeterRequest>) -> Result<Response<pb::PutMeterResponse>, Status> {
        let caller = Caller::of(&request)?;
        caller.require(Role::Operator)?;
        let pb::PutMeterRequest { meter } = request.into_inner();
        let meter = convert::meter(meter)?;
        self.store.put_meter(&caller.tenant, &meter).await.map_err(|e| failed(e, "meter"))?;
        Ok(Response::new(pb::PutMeterResponse {}))
    }

    async fn create_contract(
        &self,
        request: Request<pb::CreateContractRequest>,
    ) -> Result<Response<pb::CreateContractResponse>, Status> {
        let caller = Caller::of(&request)?;
        caller.require(Role::Operator)?;
        let pb::CreateContractRequest { request_id: key, contract_id, seller_id, buyer_id, meter_ids, terms } =
            request.into_inner();
        let key = request_id(&key)?;
        let id = convert::contract_id("contract_id", contract_id)?;
        let seller = convert::party_id("seller_id", seller_id)?;
        let buyer = convert::party_id("buyer_id", buyer_id)?;
        let meters = meter_ids
            .into_iter()
            .enumerate()
            .map(|(i, m)| convert::meter_id(&format!("meter_ids[{i}]"), m))
            .collect::<Result<Vec<_>, _>>()?;
        let terms = convert::terms("terms", terms)?;
        let contract = Contract::draft(id, seller, buyer, meters, terms).map_err(|e| errors::contract(&e, ""))?;
        let applied =
            rebuilding(self.store.create_contract(&caller.tenant, key, &contract)).map_err(|e| failed(e, ""))?;
        self.announce(&applied);
        let created = matches!(applied, Applied::Now(_));
        let contract = applied.into_inner();
        tracing::info!(contract = %contract.id(), created, "contract created");
        Ok(Response::new(pb::CreateContractResponse { contract: Some(convert::contract_message(&contract)), created }))
    }

    async fn amend_contract(
        &self,
        request: Request<pb::AmendContractRequest>,
    ) -> Result<Response<pb::AmendContractResponse>, Status> {
        let caller = Caller::of(&request)?;
        caller.require(Role::Operator)?;
        let pb::AmendContractRequest { request_id: key, contract_id, valid_from, terms } = request.into_inner();
        let key = request_id(&key)?;
        let id = convert::contract_id("contract_id", contract_id)?;
        let valid_from = convert::date("valid_from", valid_from)?;
        let terms = convert::terms("terms", terms)?;
        let change = move |c: &mut Contract| c.amend(valid_from, terms.clone()).map(|_| ());
        let applied = rebuilding(self.store.change_contract(&caller.tenant, key, &id, "amend", &change))
            .map_err(|e| failed(e, ""))?;
        self.announce(&applied);
        let amended = matches!(applied, Applied::Now(_));
        Ok(Response::new(pb::AmendContractResponse {
            contract: Some(convert::contract_message(&applied.into_inner())),
            amended,
        }))
    }

    async fn change_contract_state(
        &self,
        request: Request<pb::ChangeContractStateRequest>,
    ) -> Result<Response<pb::ChangeContractStateResponse>, Status> {
        let caller = Caller::of(&request)?;
        caller.require(Role::Operator)?;
        let pb::ChangeContractStateRequest { request_id: key, contract_id, transition, effective } =
            request.into_inner();
        let key = request_id(&key)?;
        let id = convert::contract_id("contract_id", contract_id)?;
        let transition = pb::Transition::try_from(transition).unwrap_or(pb::Transition::Unspecified);
        let effective = match transition {
            pb::Transition::Terminate => Some(convert::date("effective", effective)?),
            pb::Transition::Unspecified => {
                return Err(errors::invalid("transition", "give the lifecycle step".into()));
            }
            pb::Transition::Sign | pb::Transition::Activate | pb::Transition::Suspend | pb::Transition::Settle => None,
        };
        let change = move |c: &mut Contract| match (transition, effective) {
            (pb::Transition::Sign, _) => c.sign(),
            (pb::Transition::Activate, _) => c.activate(),
            (pb::Transition::Suspend, _) => c.suspend(),
            (pb::Transition::Terminate, Some(on)) => c.terminate(on),
            (pb::Transition::Settle, _) => c.settle(),
            (pb::Transition::Terminate | pb::Transition::Unspecified, _) => Ok(()),
        };
        let operation = transition.as_str_name();
        let applied = self
            .store
            .change_contract(&caller.tenant, key, &id, operation, &change)
            .await
            .map_err(|e| failed(e, ""))?;
        self.announce(&applied);
        let changed = matches!(applied, Applied::Now(_));
        let contract = applied.into_inner();
        tracing::info!(contract = %contract.id(), state = contract.state().name(), changed, "contract state");
        Ok(Response::new(pb::ChangeContractStateResponse {
            contract: Some(convert::contract_message(&contract)),
            changed,
        }))
    }

    async fn get_contract(
        &self,
        request: Request<pb::GetContractRequest>,
    ) -> Result<Response<pb::GetContractResponse>, Status> {
        let caller = Caller::of(&request)?;
        caller.require(Role::Viewer)?;
        let pb::GetContractRequest { contract_id } = request.into_inner();
        let id = convert::contract_id("contract_id", contract_id)?;
        let contract = self.known(&caller, &id).await?;
        Ok(Response::new(pb::GetContractResponse { contract: Some(convert::contract_message(&contract)) }))
    }

    async fn set_allocation(
        &self,
        request: Request<pb::SetAllocationRequest>,
    ) -> Result<Response<pb::SetAllocationResponse>, Status> {
        let caller = Caller::of(&request)?;
        caller.require(Role::Operator)?;
        let allocation = convert::allocation(request.into_inner())?;
        rebuilding(self.store.allocate(&caller.tenant, &allocation)).map_err(|e| failed(e, ""))?;
        Ok(Response::new(pb::SetAllocationResponse {}))
    }

    async fn load_readings(
        &self,
        request: Request<Streaming<pb::LoadReadingsRequest>>,
    ) -> Result<Response<pb::LoadReadingsResponse>, Status> {
        let caller = Caller::of(&request)?;
        caller.require(Role::Operator)?;
        let max = self.shared.limits.max_load_readings;
        let mut stream = request.into_inner();
        let mut source = String::new();
        let mut readings = Vec::new();
        while let Some(chunk) = stream.next().await {
            let pb::LoadReadingsRequest { source: named, readings: chunk } = chunk?;
            if source.is_empty() {
                source = named.chars().take(256).collect();
            }
            if readings.len() + chunk.len() > max {
                return Err(errors::over_limit("readings", "the load has more readings", "max_load_readings", max));
            }
            for message in chunk {
                readings.push(convert::reading(readings.len(), message)?);
            }
        }
        if readings.is_empty() {
            return Err(errors::invalid("readings", "the load has no readings".into()));
        }
        let source = if source.is_empty() { "grpc".to_owned() } else { source };
        let report =
            rebuilding(self.store.load_readings(&caller.tenant, &readings, &source)).map_err(|e| failed(e, ""))?;
        tracing::info!(
            revision = report.revision,
            readings = report.readings,
            contracts = report.contracts,
            "readings loaded"
        );
        Ok(Response::new(pb::LoadReadingsResponse {
            revision: i64::try_from(report.revision).unwrap_or(i64::MAX),
            readings: i64::try_from(report.readings).unwrap_or(i64::MAX),
            contracts: i32::try_from(report.contracts).unwrap_or(i32::MAX),
            rollups: i64::try_from(report.rollups).unwrap_or(i64::MAX),
        }))
    }

    async fn put_index_prices(
        &self,
        request: Request<pb::PutIndexPricesRequest>,
    ) -> Result<Response<pb::PutIndexPricesResponse>, Status> {
        let caller = Caller::of(&request)?;
        caller.require(Role::Operator)?;
        let pb::PutIndexPricesRequest { index, prices } = request.into_inner();
        if index.is_empty() || index.chars().count() > 64 {
            return Err(errors::invalid("index", "name the market index (1 to 64 characters)".into()));
        }
        if prices.len() > self.shared.limits.max_load_readings {
            let max = self.shared.limits.max_load_readings;
            return Err(errors::over_limit("prices", "more prices", "max_load_readings", max));
        }
        let prices = convert::prices(prices)?;
        rebuilding(self.store.put_prices(&caller.tenant, &index, &prices)).map_err(|e| failed(e, ""))?;
        Ok(Response::new(pb::PutIndexPricesResponse {}))
    }

    async fn volume_statistics(
        &self,
        request: Request<pb::VolumeStatisticsRequest>,
    ) -> Result<Response<pb::VolumeStatisticsResponse>, Status> {
        let caller = Caller::of(&request)?;
        caller.require(Role::Viewer)?;
        let pb::VolumeStatisticsRequest { scope, first, last, granularity, page_size, page_token } =
            request.into_inner();
        let scope = match scope {
            Some(pb::volume_statistics_request::Scope::ContractId(id)) => {
                let id = convert::contract_id("contract_id", id)?;
                self.known(&caller, &id).await?;
                Scope::Contract(id)
            }
            Some(pb::volume_statistics_request::Scope::PartyId(id)) => Scope::Party(convert::party_id("party_id", id)?),
            Some(pb::volume_statistics_request::Scope::Portfolio(true)) => Scope::Portfolio,
            Some(pb::volume_statistics_request::Scope::Portfolio(false)) | None => {
                return Err(errors::invalid("scope", "give a contract_id, a party_id or portfolio = true".into()));
            }
        };
        let period = self.period(first, last)?;
        let granularity = convert::granularity(granularity)?;
        let size = volta_api::time::page_size(page_size, DEFAULT_PAGE, MAX_PAGE)?;
        let offset = if page_token.is_empty() {
            0
        } else {
            page_token
                .parse::<usize>()
                .map_err(|_| errors::invalid("page_token", "not a token of this service".into()))?
        };
        let buckets =
            self.store.volumes(&caller.tenant, &scope, &period, granularity).await.map_err(|e| failed(e, ""))?;
        let page: Vec<pb::VolumeBucket> = buckets.iter().skip(offset).take(size).map(convert::bucket).collect();
        let next = offset + page.len();
        let next_page_token = if next < buckets.len() { next.to_string() } else { String::new() };
        Ok(Response::new(pb::VolumeStatisticsResponse { buckets: page, next_page_token }))
    }

    async fn tou_breakdown(
        &self,
        request: Request<pb::TouBreakdownRequest>,
    ) -> Result<Response<pb::TouBreakdownResponse>, Status> {
        let caller = Caller::of(&request)?;
        caller.require(Role::Viewer)?;
        let pb::TouBreakdownRequest { contract_id, first, last } = request.into_inner();
        let id = convert::contract_id("contract_id", contract_id)?;
        let contract = self.known(&caller, &id).await?;
        let period = self.period(first, last)?;
        let lines = self.store.tou_breakdown(&caller.tenant, &id, &period).await.map_err(|e| failed(e, ""))?;
        let table = contract.latest().terms.tou().cloned();
        let name = |i: usize| table.as_ref().map_or("", |t| t.period_name(i)).to_owned();
        Ok(Response::new(pb::TouBreakdownResponse {
            lines: lines.iter().map(|l| convert::tou_line(l, &name(l.period))).collect(),
        }))
    }

    async fn top_deviators(
        &self,
        request: Request<pb::TopDeviatorsRequest>,
    ) -> Result<Response<pb::TopDeviatorsResponse>, Status> {
        let caller = Caller::of(&request)?;
        caller.require(Role::Viewer)?;
        let pb::TopDeviatorsRequest { first, last, count } = request.into_inner();
        let period = self.period(first, last)?;
        let count = match volta_api::time::unsigned("count", count)? {
            0 => 10,
            n if n > 1000 => return Err(errors::invalid("count", format!("{n}; at most 1000"))),
            n => n,
        };
        let top = self.store.top_deviators(&caller.tenant, &period, count).await.map_err(|e| failed(e, ""))?;
        Ok(Response::new(pb::TopDeviatorsResponse {
            deviators: top
                .into_iter()
                .map(|(id, contracted, delivered)| pb::Deviator {
                    contract_id: id.to_string(),
                    contracted_wh: contracted.wh(),
                    delivered_wh: delivered.wh(),
                    deviation_wh: (delivered - contracted).wh(),
                })
                .collect(),
        }))
    }

    async fn settle(&self, request: Request<pb::SettleRequest>) -> Result<Response<pb::SettleResponse>, Status> {
        let caller = Caller::of(&request)?;
        let budget = Budget::of(&request);
        let pb::SettleRequest { contract_id, first, last, dry_run } = request.into_inner();
        caller.require(if dry_run { Role::Viewer } else { Role::Operator })?;
        let id = convert::contract_id("contract_id", contract_id)?;
        let period = self.period(first, last)?;
        let (portfolio, readings, prices) =
            self.store.settlement_inputs(&caller.tenant, &id, &period).await.map_err(|e| failed(e, ""))?;
        let cancel = Cancel::new();
        let settlement = self
            .shared
            .offload("settle", &cancel, &budget, move || {
                let ledger =
                    portfolio.ledger(&id, &period, &readings, &prices, None).map_err(|e| errors::contract(&e, ""))?;
                settle(&portfolio, &ledger, &prices).map_err(|e| errors::contract(&e, ""))
            })
            .await?;
        if dry_run {
            return Ok(Response::new(pb::SettleResponse {
                settlement: Some(convert::settlement_message(&settlement, 0, false)),
                created: false,
            }));
        }
        let applied = self.store.put_settlement(&caller.tenant, &settlement).await.map_err(|e| failed(e, ""))?;
        let created = matches!(applied, Applied::Now(_));
        let stored = applied.into_inner();
        tracing::info!(contract = %stored.settlement.contract, sequence = stored.sequence, created, "settled");
        Ok(Response::new(pb::SettleResponse {
            settlement: Some(convert::settlement_message(&stored.settlement, stored.sequence, stored.superseded)),
            created,
        }))
    }

    async fn project_deviation(
        &self,
        request: Request<pb::ProjectDeviationRequest>,
    ) -> Result<Response<pb::ProjectDeviationResponse>, Status> {
        let caller = Caller::of(&request)?;
        caller.require(Role::Viewer)?;
        let budget = Budget::of(&request);
        let pb::ProjectDeviationRequest { contract_id, first, last, as_of, levels, model, history_days } =
            request.into_inner();
        let id = convert::contract_id("contract_id", contract_id)?;
        let period = self.period(first, last)?;
        let model = if model.is_empty() { "linear" } else { model.as_str() };
        let options = projection::Options {
            cut: volta_api::time::instant("as_of", as_of)?,
            levels: convert::levels(&levels)?,
            model: ModelSpec::from_name(model).map_err(|e| errors::forecast(&e, &|_| "model".to_owned()))?,
            history_days: if history_days == 0 {
                projection::DEFAULT_HISTORY_DAYS
            } else {
                usize::try_from(history_days).unwrap_or(usize::MAX)
            },
        };
        let budgets = projection::Budgets {
            max_horizon_steps: self.shared.limits.max_horizon_steps,
            max_history_steps: self.shared.limits.max_series_steps,
        };
        let inputs = projection::inputs(&*self.store, &caller.tenant, &id, &period, &options, budgets)
            .await
            .map_err(projection_failed)?;
        let cancel = Cancel::new();
        let token = cancel.clone();
        let projected = self
            .shared
            .offload("project", &cancel, &budget, move || {
                projection::run(&inputs, &id, &period, &options, &token).map_err(projection_failed)
            })
            .await?;
        Ok(Response::new(convert::projection_message(
            &projected.projection,
            &projected.analogs,
            &projected.currency,
            projected.model,
            projected.history_from,
        )))
    }

    async fn list_settlements(
        &self,
        request: Request<pb::ListSettlementsRequest>,
    ) -> Result<Response<pb::ListSettlementsResponse>, Status> {
        let caller = Caller::of(&request)?;
        caller.require(Role::Viewer)?;
        let pb::ListSettlementsRequest { contract_id } = request.into_inner();
        let id = convert::contract_id("contract_id", contract_id)?;
        self.known(&caller, &id).await?;
        let runs = self.store.settlements(&caller.tenant, &id).await.map_err(|e| failed(e, ""))?;
        Ok(Response::new(pb::ListSettlementsResponse {
            settlements: runs
                .iter()
                .map(|r| convert::settlement_message(&r.settlement, r.sequence, r.superseded))
                .collect(),
        }))
    }

    async fn market_positions(
        &self,
        request: Request<pb::MarketPositionsRequest>,
    ) -> Result<Response<pb::MarketPositionsResponse>, Status> {
        let caller = Caller::of(&request)?;
        caller.require(Role::Operator)?;
        let pb::MarketPositionsRequest { participant_id, delivery_from, delivery_until } = request.into_inner();
        let admin = caller.role.is_some_and(|r| r >= Role::Admin);
        let participant = match (participant_id.is_empty(), admin) {
            (true, true) => None,
            (true, false) => Some(caller.subject.clone()),
            (false, _) if admin || participant_id == caller.subject => Some(participant_id),
            (false, _) => {
                return Err(errors::error(
                    Reason::RoleRequired,
                    format!("{} reads only its own market positions: only an admin names another", caller.subject),
                ));
            }
        };
        let from = volta_api::time::instant("delivery_from", delivery_from)?
            .ok_or_else(|| errors::invalid("delivery_from", "missing".to_owned()))?;
        let until = volta_api::time::instant("delivery_until", delivery_until)?
            .ok_or_else(|| errors::invalid("delivery_until", "missing".to_owned()))?;
        let days = until.duration_since(from).as_hours() / 24;
        if until <= from {
            return Err(errors::invalid("delivery_until", format!("{until} is not after delivery_from {from}")));
        }
        let max = i64::try_from(self.shared.limits.max_period_days).unwrap_or(i64::MAX);
        if days > max {
            return Err(errors::over_limit(
                "delivery_until",
                "days",
                "a period (limits.max_period_days)",
                usize::try_from(max).unwrap_or(usize::MAX),
            ));
        }
        let positions = self
            .messages
            .market_positions(&caller.tenant, participant.as_deref(), from, until)
            .await
            .map_err(|e| crate::store::unavailable(&e))?;
        Ok(Response::new(pb::MarketPositionsResponse {
            positions: positions
                .into_iter()
                .map(|p| pb::MarketPosition {
                    participant_id: p.participant,
                    bought_wh: p.bought_wh,
                    sold_wh: p.sold_wh,
                    paid: p.paid.normalize().to_string(),
                    received: p.received.normalize().to_string(),
                    trades: i64::try_from(p.trades).unwrap_or(i64::MAX),
                })
                .collect(),
        }))
    }

    async fn list_dead_letters(
        &self,
        request: Request<pb::ListDeadLettersRequest>,
    ) -> Result<Response<pb::ListDeadLettersResponse>, Status> {
        let caller = Caller::of(&request)?;
        let pb::ListDeadLettersRequest { page_size } = request.into_inner();
        let dead = dead_letters::list(&*self.messages, &SETTLEMENT, &caller, page_size).await?;
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
        let failed =
            dead_letters::retry(self.messages.clone(), metrics, SETTLEMENT, &caller, &message_id, payload).await?;
        Ok(Response::new(pb::RetryDeadLetterResponse { applied: failed.is_none(), error: failed.unwrap_or_default() }))
    }
}

/// A projection's failure as a status.
fn projection_failed(err: ProjectionError) -> Status {
    match err {
        ProjectionError::Contract(e) => errors::contract(&e, ""),
        ProjectionError::Store(e) => failed(e, ""),
        ProjectionError::Forecast { meter, error } => {
            let message = format!("meter {meter}: {error}");
            match &error {
                ForecastError::Cancelled { .. } => errors::forecast(&error, &str::to_owned),
                ForecastError::Fit { .. } => errors::error(Reason::DataTooThin, message),
                ForecastError::Option { option, .. } if option == "model" => errors::invalid("model", message),
                ForecastError::Option { .. }
                | ForecastError::Read { .. }
                | ForecastError::MissingColumn { .. }
                | ForecastError::Column { .. }
                | ForecastError::Timestamp { .. }
                | ForecastError::Value { .. }
                | ForecastError::ModelFile(_) => errors::invalid("history_days", message),
            }
        }
        ProjectionError::OverLimit { field, value, limit, max } => {
            errors::over_limit(field, &value.to_string(), limit, max)
        }
    }
}

impl Contracts {
    /// The caller's contract `id`: NOT_FOUND when its tenant has none.
    async fn known(&self, caller: &Caller, id: &ContractId) -> Result<Contract, Status> {
        self.store
            .contract(&caller.tenant, id)
            .await
            .map_err(|e| failed(e, ""))?
            .ok_or_else(|| errors::error(Reason::ContractNotFound, format!("no contract {id}")))
    }
}
