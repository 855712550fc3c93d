//! The contract service's tables and [`ContractStore`], the only way the
//! service reaches them.
//!
//! - Contracts keep a header row (parties, state) and one immutable row per
//!   version of their terms; a change writes a new version row and bumps
//!   the header's row version, so two concurrent changes cannot both land.
//! - Readings are rows per (meter, interval, revision): a load gets the
//!   next revision and a correction is simply a later row; nothing is
//!   updated in place.
//! - Daily rollups (per contract, local day and TOU period) are rebuilt by
//!   the domain's ledger in the same transaction as whatever changed them
//!   (readings, terms, allocations, index prices), so statistics read them
//!   instead of intervals and never disagree with them.
//! - Settlements are immutable rows; a re-run with other inputs is a new
//!   row of the next sequence and the old one is marked superseded.
//!
//! Energy is stored in integer Wh and money as decimal text, so both
//! backends keep them exact.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use jiff::Timestamp;
use jiff::civil::Date;
use rust_decimal::Decimal;
use sqlx::{AnyConnection, Row as _};
use volta_contracts::allocation::Allocation;
use volta_contracts::ledger::{IndexPrices, Portfolio};
use volta_contracts::rollup::{self, DailyRollup};
use volta_contracts::settlement::Settlement;
use volta_contracts::statistics::{self, TouLine, Volume};
use volta_contracts::{
    Contract, ContractError, ContractId, Energy, Granularity, MeterId, MeteringPoint, Party, PartyId, Period, Price,
    Quality, Reading, ReadingLog, State, TermVersion,
};

use super::{Schema, Store, StoreError, placeholders, values};

/// The contract service's tables.
pub const CONTRACTS: Schema = Schema { service: "contracts", migrations: MIGRATIONS };

const MIGRATIONS: &[(i64, &str)] = &[(
    1,
    "CREATE TABLE contracts_parties (tenant TEXT NOT NULL, id TEXT NOT NULL, name TEXT NOT NULL, role TEXT NOT NULL,
        PRIMARY KEY (tenant, id));
    CREATE TABLE contracts_meters (tenant TEXT NOT NULL, id TEXT NOT NULL, body TEXT NOT NULL, PRIMARY KEY (tenant, id));
    CREATE TABLE contracts_contracts (tenant TEXT NOT NULL, id TEXT NOT NULL, seller TEXT NOT NULL, buyer TEXT NOT NULL,
        state TEXT NOT NULL, terminated_on TEXT, row_version BIGINT NOT NULL, created_at TEXT NOT NULL,
        updated_at TEXT NOT NULL, PRIMARY KEY (tenant, id));
    CREATE INDEX contracts_by_buyer ON contracts_contracts (tenant, buyer);
    CREATE INDEX contracts_by_seller ON contracts_contracts (tenant, seller);
    CREATE TABLE contracts_terms (tenant TEXT NOT NULL, contract TEXT NOT NULL, version BIGINT NOT NULL,
        valid_from TEXT NOT NULL, terms TEXT NOT NULL, recorded_at TEXT NOT NULL, PRIMARY KEY (tenant, contract, version));
    CREATE TABLE contracts_contract_meters (tenant TEXT NOT NULL, contract TEXT NOT NULL, meter TEXT NOT NULL,
        position BIGINT NOT NULL, PRIMARY KEY (tenant, contract, meter));
    CREATE INDEX contracts_contract_meters_by_meter ON contracts_contract_meters (tenant, meter);
    CREATE TABLE contracts_allocations (tenant TEXT NOT NULL, meter TEXT NOT NULL, body TEXT NOT NULL,
        PRIMARY KEY (tenant, meter));
    CREATE TABLE contracts_requests (tenant TEXT NOT NULL, request_key TEXT NOT NULL, operation TEXT NOT NULL,
        contract TEXT NOT NULL, recorded_at TEXT NOT NULL, PRIMARY KEY (tenant, request_key));
    CREATE TABLE contracts_loads (tenant TEXT NOT NULL, revision BIGINT NOT NULL, source TEXT NOT NULL,
        row_count BIGINT NOT NULL, loaded_at TEXT NOT NULL, PRIMARY KEY (tenant, revision));
    CREATE TABLE contracts_readings (tenant TEXT NOT NULL, meter TEXT NOT NULL, start_s BIGINT NOT NULL,
        revision BIGINT NOT NULL, energy_wh BIGINT NOT NULL, quality BIGINT NOT NULL,
        PRIMARY KEY (tenant, meter, start_s, revision));
    CREATE TABLE contracts_prices (tenant TEXT NOT NULL, market_index TEXT NOT NULL, start_s BIGINT NOT NULL,
        price TEXT NOT NULL, PRIMARY KEY (tenant, market_index, start_s));
    CREATE TABLE contracts_rollups (tenant TEXT NOT NULL, contract TEXT NOT NULL, day TEXT NOT NULL,
        period BIGINT NOT NULL, version BIGINT NOT NULL, contracted_wh BIGINT NOT NULL, delivered_wh BIGINT NOT NULL,
        amount TEXT, intervals BIGINT NOT NULL, estimated BIGINT NOT NULL, missing BIGINT NOT NULL,
        revision BIGINT NOT NULL, PRIMARY KEY (tenant, contract, day, period));
    CREATE INDEX contracts_rollups_by_day ON contracts_rollups (tenant, day);
    CREATE TABLE contracts_settlements (tenant TEXT NOT NULL, contract TEXT NOT NULL, period_first TEXT NOT NULL,
        period_end TEXT NOT NULL, sequence BIGINT NOT NULL, input_hash TEXT NOT NULL, superseded BIGINT NOT NULL,
        body TEXT NOT NULL, created_at TEXT NOT NULL, PRIMARY KEY (tenant, contract, period_first, period_end, sequence))",
),
    // Daily totals per party (as buyer or seller) and for the whole
    // portfolio (`scope` ''), so that their statistics read a row a day.
    (
        2,
        "CREATE TABLE contracts_totals (tenant TEXT NOT NULL, scope TEXT NOT NULL, day TEXT NOT NULL,
            contracted_wh BIGINT NOT NULL, delivered_wh BIGINT NOT NULL, intervals BIGINT NOT NULL,
            missing BIGINT NOT NULL, PRIMARY KEY (tenant, scope, day));
        INSERT INTO contracts_totals (tenant, scope, day, contracted_wh, delivered_wh, intervals, missing)
            SELECT tenant, '', day, SUM(contracted_wh), SUM(delivered_wh), SUM(intervals), SUM(missing)
            FROM contracts_rollups GROUP BY tenant, day;
        INSERT INTO contracts_totals (tenant, scope, day, contracted_wh, delivered_wh, intervals, missing)
            SELECT tenant, scope, day, SUM(contracted_wh), SUM(delivered_wh), SUM(intervals), SUM(missing) FROM (
                SELECT r.tenant, 'party:' || c.buyer AS scope, r.day, r.contracted_wh, r.delivered_wh, r.intervals, r.missing
                FROM contracts_rollups r JOIN contracts_contracts c ON c.tenant = r.tenant AND c.id = r.contract
                UNION ALL
                SELECT r.tenant, 'party:' || c.seller AS scope, r.day, r.contracted_wh, r.delivered_wh, r.intervals, r.missing
                FROM contracts_rollups r JOIN contracts_contracts c ON c.tenant = r.tenant AND c.id = r.contract
            ) AS by_party GROUP BY tenant, scope, day",
    ),
];

/// The PostgreSQL advisory lock that serialises reading loads, so that
/// revisions are handed out one after the other ("vcload" in ASCII).
const LOAD_LOCK: i64 = 0x7663_6c6f_6164;

/// Rows per multi-row INSERT. sqlx's SQLite driver looks each `$N`
/// parameter up by name when it binds, a cost that grows with the
/// statement's parameter count: 1 000 rows of 6 values spent 85 % of a
/// load there; 32 rows keep the lookup small and the statements few.
const ROWS_PER_INSERT: usize = 32;

/// What the contract store refuses, or fails at.
#[derive(Debug, thiserror::Error)]
pub enum ContractStoreError {
    /// The database failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A domain rule refused the change (the field named).
    #[error(transparent)]
    Refused(#[from] ContractError),
    /// Something asked for does not exist (for this tenant).
    #[error("no {what} {id}")]
    NotFound {
        /// `contract`, `meter`, ...
        what: &'static str,
        /// Its id.
        id: String,
    },
    /// An id that exists already.
    #[error("{what} {id} exists already")]
    Exists {
        /// `contract`, ...
        what: &'static str,
        /// Its id.
        id: String,
    },
    /// A request key used before for another operation or contract.
    #[error("request key {key:?} was used for {operation} of contract {contract}")]
    KeyReused {
        /// The key.
        key: String,
        /// What it was used for.
        operation: String,
        /// On which contract.
        contract: String,
    },
    /// The contract changed since it was read (another change landed first).
    #[error("contract {0} changed concurrently; read it again and retry")]
    Concurrent(String),
    /// A reading of a load is refused; nothing of the load is kept.
    #[error("readings[{index}]: {error}")]
    Reading {
        /// Its position in the load.
        index: usize,
        /// Why.
        error: ContractError,
    },
}

fn query(action: &'static str) -> impl FnOnce(sqlx::Error) -> ContractStoreError {
    move |source| ContractStoreError::Store(StoreError::Query { action, source })
}

/// Which contracts a statistic covers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    /// One contract.
    Contract(ContractId),
    /// Every contract a party buys or sells under.
    Party(PartyId),
    /// Every contract of the tenant.
    Portfolio,
}

/// What a load of readings did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadReport {
    /// The revision the load got.
    pub revision: u64,
    /// Readings stored.
    pub readings: usize,
    /// Contracts whose rollups were rebuilt.
    pub contracts: usize,
    /// Rollup rows written.
    pub rollups: usize,
}

/// Whether a change was made now or found made by an earlier call with
/// the same request key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Applied<T> {
    /// Made by this call.
    Now(T),
    /// Made before, by a call with the same key; the current state.
    Before(T),
}

impl<T> Applied<T> {
    /// The value, either way.
    pub fn into_inner(self) -> T {
        match self {
            Self::Now(value) | Self::Before(value) => value,
        }
    }
}

/// A settlement as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredSettlement {
    /// 1 for the first run of the period, then 2, ...
    pub sequence: i64,
    /// Whether a later run supersedes it.
    pub superseded: bool,
    /// When it was stored.
    pub created_at: String,
    /// The settlement.
    pub settlement: Settlement,
}

/// A change to a contract: applied to the stored contract in the store's
/// transaction.
pub type Change<'a> = &'a (dyn Fn(&mut Contract) -> Result<(), ContractError> + Send + Sync);

/// What the contract service keeps, per tenant.
#[tonic::async_trait]
pub trait ContractStore: Send + Sync + std::fmt::Debug {
    /// Adds or replaces a party.
    async fn put_party(&self, tenant: &str, party: &Party) -> Result<(), ContractStoreError>;

    /// Adds or replaces a metering point.
    async fn put_meter(&self, tenant: &str, meter: &MeteringPoint) -> Result<(), ContractStoreError>;

    /// Stores a new contract and its rollups (contracted, nothing
    /// delivered yet); with a `key` used before for it, returns it as it
    /// is now instead.
    async fn create_contract(
        &self,
        tenant: &str,
        key: Option<&str>,
        contract: &Contract,
    ) -> Result<Applied<Contract>, ContractStoreError>;

    /// Applies `change` (an amendment, a lifecycle step) to a stored
    /// contract, rebuilding its rollups when its terms changed; `operation`
    /// names it for the request key.
    async fn change_contract(
        &self,
        tenant: &str,
        key: Option<&str>,
        id: &ContractId,
        operation: &str,
        change: Change<'_>,
    ) -> Result<Applied<Contract>, ContractStoreError>;

    /// A contract.
    async fn contract(&self, tenant: &str, id: &ContractId) -> Result<Option<Contract>, ContractStoreError>;

    /// Sets how a meter is shared, and rebuilds the rollups of its contracts.
    async fn allocate(&self, tenant: &str, allocation: &Allocation) -> Result<(), ContractStoreError>;

    /// Stores a load of readings as the next revision and rebuilds the
    /// rollups they touch, in one transaction: all of it or nothing.
    async fn load_readings(
        &self,
        tenant: &str,
        readings: &[Reading],
        source: &str,
    ) -> Result<LoadReport, ContractStoreError>;

    /// Sets market index prices, and rebuilds the rollups of contracts priced by it.
    async fn put_prices(
        &self,
        tenant: &str,
        index: &str,
        prices: &[(Timestamp, Price)],
    ) -> Result<(), ContractStoreError>;

    /// Contracted against delivered per bucket of `period`, from rollups.
    async fn volumes(
        &self,
        tenant: &str,
        scope: &Scope,
        period: &Period,
        granularity: Granularity,
    ) -> Result<Vec<Volume>, ContractStoreError>;

    /// A contract's daily rollups within `period`.
    async fn rollups(
        &self,
        tenant: &str,
        id: &ContractId,
        period: &Period,
    ) -> Result<Vec<DailyRollup>, ContractStoreError>;

    /// A contract's TOU breakdown over `period`, from rollups.
    async fn tou_breakdown(
        &self,
        tenant: &str,
        id: &ContractId,
        period: &Period,
    ) -> Result<Vec<TouLine>, ContractStoreError>;

    /// The `n` contracts whose delivery deviates most (in absolute kWh) from
    /// their contracted volume over `period`: id, contracted, delivered.
    async fn top_deviators(
        &self,
        tenant: &str,
        period: &Period,
        n: usize,
    ) -> Result<Vec<(ContractId, Energy, Energy)>, ContractStoreError>;

    /// What settling `id` over `period` reads: the contract with its meters,
    /// allocations and co-claimants, the readings and the index prices.
    async fn settlement_inputs(
        &self,
        tenant: &str,
        id: &ContractId,
        period: &Period,
    ) -> Result<(Portfolio, ReadingLog, IndexPrices), ContractStoreError>;

    /// Every revision of the readings of `meters` from `from` (inclusive)
    /// to `to` (exclusive); a meter of another tenant has none.
    async fn readings(
        &self,
        tenant: &str,
        meters: &[MeterId],
        from: Timestamp,
        to: Timestamp,
    ) -> Result<ReadingLog, ContractStoreError>;

    /// Stores a settlement: the same inputs as the latest run of its period
    /// return that run; other inputs are the next run, superseding it.
    async fn put_settlement(
        &self,
        tenant: &str,
        settlement: &Settlement,
    ) -> Result<Applied<StoredSettlement>, ContractStoreError>;

    /// Every run of a contract's settlements, oldest first.
    async fn settlements(&self, tenant: &str, id: &ContractId) -> Result<Vec<StoredSettlement>, ContractStoreError>;
}

fn now() -> String {
    super::stored_time(Timestamp::now())
}

fn state_from(name: &str) -> Option<State> {
    [State::Draft, State::Signed, State::Active, State::Suspended, State::Terminated, State::Settled]
        .into_iter()
        .find(|s| s.name() == name)
}

fn quality_code(quality: Quality) -> i64 {
    match quality {
        Quality::Measured => 0,
        Quality::Estimated => 1,
        Quality::Substituted => 2,
        Quality::Missing => 3,
    }
}

fn quality_from(code: i64) -> Quality {
    match code {
        0 => Quality::Measured,
        1 => Quality::Estimated,
        2 => Quality::Substituted,
        _ => Quality::Missing,
    }
}

fn corrupt(what: &str, error: impl std::fmt::Display) -> ContractStoreError {
    ContractStoreError::Store(StoreError::Query {
        action: "read stored contract data",
        source: sqlx::Error::Decode(format!("{what}: {error}").into()),
    })
}

fn json<T: serde::Serialize>(value: &T) -> String {
    // Plain data serialises without failing.
    serde_json::to_string(value).unwrap_or_default()
}

fn from_json<T: serde::de::DeserializeOwned>(what: &str, text: &str) -> Result<T, ContractStoreError> {
    serde_json::from_str(text).map_err(|e| corrupt(what, e))
}

/// The stored contract `id` of `tenant` and its header's row version.
async fn load_contract(
    conn: &mut AnyConnection,
    tenant: &str,
    id: &ContractId,
) -> Result<Option<(Contract, i64)>, ContractStoreError> {
    let Some(header) = sqlx::query(
        "SELECT seller, buyer, state, terminated_on, row_version FROM contracts_contracts WHERE tenant = $1 AND id = $2",
    )
    .bind(tenant)
    .bind(id.as_str())
    .fetch_optional(&mut *conn)
    .await
    .map_err(query("read the contract"))?
    else {
        return Ok(None);
    };
    let rows = sqlx::query(
        "SELECT version, valid_from, terms FROM contracts_terms WHERE tenant = $1 AND contract = $2 ORDER BY version",
    )
    .bind(tenant)
    .bind(id.as_str())
    .fetch_all(&mut *conn)
    .await
    .map_err(query("read the contract's terms"))?;
    let mut versions = Vec::with_capacity(rows.len());
    for row in rows {
        let version: i64 = row.try_get("version").map_err(query("read the contract's terms"))?;
        let valid_from: String = row.try_get("valid_from").map_err(query("read the contract's terms"))?;
        let terms: String = row.try_get("terms").map_err(query("read the contract's terms"))?;
        versions.push(TermVersion {
            version: u32::try_from(version).map_err(|e| corrupt("version", e))?,
            valid_from: valid_from.parse().map_err(|e| corrupt("valid_from", e))?,
            terms: from_json("terms", &terms)?,
        });
    }
    let meters: Vec<String> = sqlx::query_scalar(
        "SELECT meter FROM contracts_contract_meters WHERE tenant = $1 AND contract = $2 ORDER BY position",
    )
    .bind(tenant)
    .bind(id.as_str())
    .fetch_all(&mut *conn)
    .await
    .map_err(query("read the contract's meters"))?;
    let read = |column: &str| -> Result<String, ContractStoreError> {
        header.try_get::<String, _>(column).map_err(query("read the contract"))
    };
    let state = read("state")?;
    let terminated_on: Option<String> = header.try_get("terminated_on").map_err(query("read the contract"))?;
    let row_version: i64 = header.try_get("row_version").map_err(query("read the contract"))?;
    let contract = Contract::restore(
        id.clone(),
        PartyId::new(read("seller")?)?,
        PartyId::new(read("buyer")?)?,
        meters.into_iter().map(MeterId::new).collect::<Result<_, _>>()?,
        versions,
        state_from(&state).ok_or_else(|| corrupt("state", state))?,
        terminated_on.map(|d| d.parse::<Date>()).transpose().map_err(|e| corrupt("terminated_on", e))?,
    )?;
    Ok(Some((contract, row_version)))
}

/// Writes `contract`: a new one whole, or a stored one's header (checked
/// against `before`'s row version) and its versions beyond `before`'s count.
async fn write_contract(
    conn: &mut AnyConnection,
    tenant: &str,
    contract: &Contract,
    before: Option<(i64, usize)>,
) -> Result<(), ContractStoreError> {
    let id = contract.id().as_str();
    let stamp = now();
    let terminated = contract.terminated_on().map(|d| d.to_string());
    let stored_versions = match before {
        None => {
            let inserted = sqlx::query(
                "INSERT INTO contracts_contracts \
                 (tenant, id, seller, buyer, state, terminated_on, row_version, created_at, updated_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, 1, $7, $7)",
            )
            .bind(tenant)
            .bind(id)
            .bind(contract.seller().as_str())
            .bind(contract.buyer().as_str())
            .bind(contract.state().name())
            .bind(terminated.as_deref())
            .bind(&stamp)
            .execute(&mut *conn)
            .await;
            if inserted.is_err() {
                return Err(ContractStoreError::Exists { what: "contract", id: id.to_owned() });
            }
            for (position, meter) in contract.meters().iter().enumerate() {
                sqlx::query(
                    "INSERT INTO contracts_contract_meters (tenant, contract, meter, position) VALUES ($1, $2, $3, $4)",
                )
                .bind(tenant)
                .bind(id)
                .bind(meter.as_str())
                .bind(i64::try_from(position).unwrap_or(i64::MAX))
                .execute(&mut *conn)
                .await
                .map_err(query("store the contract's meters"))?;
            }
            0
        }
        Some((row_version, stored)) => {
            let updated = sqlx::query(
                "UPDATE contracts_contracts SET state = $1, terminated_on = $2, row_version = row_version + 1, \
                 updated_at = $3 WHERE tenant = $4 AND id = $5 AND row_version = $6",
            )
            .bind(contract.state().name())
            .bind(terminated.as_deref())
            .bind(&stamp)
            .bind(tenant)
            .bind(id)
            .bind(row_version)
            .execute(&mut *conn)
            .await
            .map_err(query("store the contract"))?;
            if updated.rows_affected() != 1 {
                return Err(ContractStoreError::Concurrent(id.to_owned()));
            }
            stored
        }
    };
    for version in &contract.versions()[stored_versions..] {
        sqlx::query(
            "INSERT INTO contracts_terms (tenant, contract, version, valid_from, terms, recorded_at) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(tenant)
        .bind(id)
        .bind(i64::from(version.version))
        .bind(version.valid_from.to_string())
        .bind(json(&version.terms))
        .bind(&stamp)
        .execute(&mut *conn)
        .await
        .map_err(query("store the contract's terms"))?;
    }
    Ok(())
}

/// Writes the message of change `version` of `contract` (its row version
/// once written) to the outbox inside `tx`: the trading service's view of
/// contract positions follows every change once and in order.
async fn announce(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    tenant: &str,
    contract: &Contract,
    version: i64,
) -> Result<(), ContractStoreError> {
    let mut meters = Vec::with_capacity(contract.meters().len());
    for id in contract.meters() {
        let meter = load_meter(tx, tenant, id)
            .await?
            .ok_or_else(|| ContractStoreError::NotFound { what: "metering point", id: id.to_string() })?;
        meters.push(meter);
    }
    let version = u64::try_from(version).map_err(|e| corrupt("row_version", e))?;
    let message = super::messaging::contract_message(tenant, version, contract, meters);
    Ok(super::messaging::enqueue(tx, &[message], Timestamp::now()).await?)
}

/// The contract a request key was used for, and the operation; `None`
/// for a new key (which is then recorded).
async fn claim_key(
    conn: &mut AnyConnection,
    tenant: &str,
    key: &str,
    operation: &str,
    contract: &ContractId,
) -> Result<bool, ContractStoreError> {
    let seen: Option<(String, String)> =
        sqlx::query_as("SELECT operation, contract FROM contracts_requests WHERE tenant = $1 AND request_key = $2")
            .bind(tenant)
            .bind(key)
            .fetch_optional(&mut *conn)
            .await
            .map_err(query("read the request key"))?;
    match seen {
        Some((op, id)) if op == operation && id == contract.as_str() => Ok(true),
        Some((op, id)) => Err(ContractStoreError::KeyReused { key: key.to_owned(), operation: op, contract: id }),
        None => {
            sqlx::query(
                "INSERT INTO contracts_requests (tenant, request_key, operation, contract, recorded_at) \
                 VALUES ($1, $2, $3, $4, $5)",
            )
            .bind(tenant)
            .bind(key)
            .bind(operation)
            .bind(contract.as_str())
            .bind(now())
            .execute(&mut *conn)
            .await
            .map_err(query("record the request key"))?;
            Ok(false)
        }
    }
}

async fn load_meter(
    conn: &mut AnyConnection,
    tenant: &str,
    id: &MeterId,
) -> Result<Option<MeteringPoint>, ContractStoreError> {
    let body: Option<String> = sqlx::query_scalar("SELECT body FROM contracts_meters WHERE tenant = $1 AND id = $2")
        .bind(tenant)
        .bind(id.as_str())
        .fetch_optional(&mut *conn)
        .await
        .map_err(query("read the meter"))?;
    body.map(|b| from_json("meter", &b)).transpose()
}

async fn load_allocation(
    conn: &mut AnyConnection,
    tenant: &str,
    meter: &MeterId,
) -> Result<Option<Allocation>, ContractStoreError> {
    let body: Option<String> =
        sqlx::query_scalar("SELECT body FROM contracts_allocations WHERE tenant = $1 AND meter = $2")
            .bind(tenant)
            .bind(meter.as_str())
            .fetch_optional(&mut *conn)
            .await
            .map_err(query("read the allocation"))?;
    body.map(|b| from_json("allocation", &b)).transpose()
}

/// The contracts on `meter`.
async fn contracts_on(
    conn: &mut AnyConnection,
    tenant: &str,
    meter: &MeterId,
) -> Result<Vec<ContractId>, ContractStoreError> {
    let ids: Vec<String> = sqlx::query_scalar(
        "SELECT contract FROM contracts_contract_meters WHERE tenant = $1 AND meter = $2 ORDER BY contract",
    )
    .bind(tenant)
    .bind(meter.as_str())
    .fetch_all(&mut *conn)
    .await
    .map_err(query("read the meter's contracts"))?;
    ids.into_iter().map(|id| ContractId::new(id).map_err(ContractStoreError::from)).collect()
}

/// Contract `id` with its meters, their allocations and every contract
/// those allocations serve.
async fn load_portfolio(
    conn: &mut AnyConnection,
    tenant: &str,
    id: &ContractId,
) -> Result<Portfolio, ContractStoreError> {
    let (contract, _) = load_contract(conn, tenant, id)
        .await?
        .ok_or_else(|| ContractStoreError::NotFound { what: "contract", id: id.to_string() })?;
    let mut portfolio = Portfolio::new();
    let mut others: BTreeSet<ContractId> = BTreeSet::new();
    let mut allocations = Vec::new();
    for meter in contract.meters() {
        let point = load_meter(conn, tenant, meter)
            .await?
            .ok_or_else(|| ContractStoreError::NotFound { what: "meter", id: meter.to_string() })?;
        portfolio.add_meter(point)?;
        if let Some(allocation) = load_allocation(conn, tenant, meter).await? {
            others.extend(allocation.claims.iter().map(|c| c.contract.clone()).filter(|c| c != id));
            allocations.push(allocation);
        }
    }
    for other in &others {
        if let Some((c, _)) = load_contract(conn, tenant, other).await? {
            for meter in c.meters() {
                if portfolio.meter(meter).is_none()
                    && let Some(point) = load_meter(conn, tenant, meter).await?
                {
                    portfolio.add_meter(point)?;
                }
            }
            portfolio.add_contract(c)?;
        }
    }
    portfolio.add_contract(contract)?;
    for allocation in allocations {
        portfolio.allocate(allocation)?;
    }
    Ok(portfolio)
}

/// The readings of `meters` from `from` (inclusive) to `to` (exclusive), every revision.
async fn load_readings(
    conn: &mut AnyConnection,
    tenant: &str,
    meters: &[MeterId],
    from: Timestamp,
    to: Timestamp,
) -> Result<ReadingLog, ContractStoreError> {
    let mut log = ReadingLog::new();
    if meters.is_empty() {
        return Ok(log);
    }
    let sql = format!(
        "SELECT meter, start_s, revision, energy_wh, quality FROM contracts_readings \
         WHERE tenant = $1 AND start_s >= $2 AND start_s < $3 AND meter IN ({}) ORDER BY revision",
        placeholders(4, meters.len())
    );
    let mut q = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(tenant).bind(from.as_second()).bind(to.as_second());
    for meter in meters {
        q = q.bind(meter.as_str());
    }
    let rows = q.fetch_all(&mut *conn).await.map_err(query("read the readings"))?;
    let mut by_revision: BTreeMap<i64, Vec<Reading>> = BTreeMap::new();
    for row in rows {
        let read = |e| query("read the readings")(e);
        let meter: String = row.try_get("meter").map_err(read)?;
        let start: i64 = row.try_get("start_s").map_err(read)?;
        let revision: i64 = row.try_get("revision").map_err(read)?;
        let energy: i64 = row.try_get("energy_wh").map_err(read)?;
        let quality: i64 = row.try_get("quality").map_err(read)?;
        by_revision.entry(revision).or_default().push(Reading {
            meter: MeterId::new(meter)?,
            start: Timestamp::from_second(start).map_err(|e| corrupt("start_s", e))?,
            energy: Energy::from_wh(energy),
            quality: quality_from(quality),
        });
    }
    for (revision, readings) in by_revision {
        log.load(u64::try_from(revision).unwrap_or(0), &readings)?;
    }
    Ok(log)
}

async fn load_prices(
    conn: &mut AnyConnection,
    tenant: &str,
    indices: &[String],
    from: Timestamp,
    to: Timestamp,
) -> Result<IndexPrices, ContractStoreError> {
    let mut prices = IndexPrices::new();
    for index in indices {
        let rows: Vec<(i64, String)> = sqlx::query_as(
            "SELECT start_s, price FROM contracts_prices WHERE tenant = $1 AND market_index = $2 \
             AND start_s >= $3 AND start_s < $4",
        )
        .bind(tenant)
        .bind(index)
        .bind(from.as_second())
        .bind(to.as_second())
        .fetch_all(&mut *conn)
        .await
        .map_err(query("read the index prices"))?;
        for (start, price) in rows {
            let start = Timestamp::from_second(start).map_err(|e| corrupt("start_s", e))?;
            prices.insert(index, start, price.parse().map_err(|e| corrupt("price", e))?);
        }
    }
    Ok(prices)
}

/// The instants a period of local days covers in `zone`.
fn instants(period: &Period, zone: &jiff::tz::TimeZone) -> Result<(Timestamp, Timestamp), ContractStoreError> {
    let from = volta_contracts::calendar::local_midnight(period.first(), zone)?.timestamp();
    let to = volta_contracts::calendar::local_midnight(period.end(), zone)?.timestamp();
    Ok((from, to))
}

/// Every delivery day any version of `contract` names, as one period.
fn delivery_span(contract: &Contract) -> Option<Period> {
    let first = contract.versions().iter().map(|v| v.terms.delivery_first).min()?;
    let last = contract.versions().iter().map(|v| v.terms.delivery_last).max()?;
    Period::new(first, last.tomorrow().ok()?).ok()
}

/// Rebuilds contract `id`'s rollups over `within` (its whole delivery when
/// `None`) from its ledger, and moves the portfolio's and its parties'
/// daily totals by the difference; returns the rows written.
async fn rebuild(
    conn: &mut AnyConnection,
    tenant: &str,
    id: &ContractId,
    within: Option<Period>,
) -> Result<usize, ContractStoreError> {
    let portfolio = load_portfolio(conn, tenant, id).await?;
    let contract =
        portfolio.contract(id).ok_or_else(|| ContractStoreError::NotFound { what: "contract", id: id.to_string() })?;
    let Some(delivery) = delivery_span(contract) else { return Ok(0) };
    let span = match within {
        Some(within) => match delivery.intersect(&within) {
            Some(span) => span,
            None => return Ok(0),
        },
        None => delivery,
    };
    let (zone, _) = portfolio.clock(id)?;
    // From the first of the month: tiers count a month's energy from its start.
    let (from, to) = instants(&Period::new(span.first().first_of_month(), span.end())?, &zone)?;
    let meters: Vec<MeterId> = {
        let mut all: BTreeSet<MeterId> = contract.meters().iter().cloned().collect();
        for meter in contract.meters() {
            if let Some(allocation) = portfolio.allocation(meter) {
                for claim in &allocation.claims {
                    if let Some(c) = portfolio.contract(&claim.contract) {
                        all.extend(c.meters().iter().cloned());
                    }
                }
            }
        }
        all.into_iter().collect()
    };
    let readings = load_readings(conn, tenant, &meters, from, to).await?;
    let indices: BTreeSet<String> =
        contract.versions().iter().flat_map(|v| v.terms.indices().into_iter().map(str::to_owned)).collect();
    let prices = load_prices(conn, tenant, &indices.into_iter().collect::<Vec<_>>(), from, to).await?;
    let ledger = portfolio.ledger(id, &span, &readings, &prices, None)?;
    let rollups = rollup::daily(&ledger);
    let old: Vec<(String, i64, i64, i64, i64)> = sqlx::query_as(
        "SELECT day, CAST(SUM(contracted_wh) AS BIGINT), CAST(SUM(delivered_wh) AS BIGINT), \
         CAST(SUM(intervals) AS BIGINT), CAST(SUM(missing) AS BIGINT) FROM contracts_rollups \
         WHERE tenant = $1 AND contract = $2 AND day >= $3 AND day < $4 GROUP BY day",
    )
    .bind(tenant)
    .bind(id.as_str())
    .bind(span.first().to_string())
    .bind(span.end().to_string())
    .fetch_all(&mut *conn)
    .await
    .map_err(query("read the rollups"))?;
    let mut delta: BTreeMap<String, [i64; 4]> = BTreeMap::new();
    for (day, c, d, i, m) in old {
        let row = delta.entry(day).or_default();
        row[0] -= c;
        row[1] -= d;
        row[2] -= i;
        row[3] -= m;
    }
    for r in &rollups {
        let row = delta.entry(r.date.to_string()).or_default();
        row[0] += r.contracted.wh();
        row[1] += r.delivered.wh();
        row[2] += i64::from(r.intervals);
        row[3] += i64::from(r.missing);
    }
    delta.retain(|_, row| row.iter().any(|v| *v != 0));
    let scopes = [String::new(), format!("party:{}", contract.buyer()), format!("party:{}", contract.seller())];
    add_to_totals(conn, tenant, &scopes, &delta).await?;
    sqlx::query("DELETE FROM contracts_rollups WHERE tenant = $1 AND contract = $2 AND day >= $3 AND day < $4")
        .bind(tenant)
        .bind(id.as_str())
        .bind(span.first().to_string())
        .bind(span.end().to_string())
        .execute(&mut *conn)
        .await
        .map_err(query("clear the rollups"))?;
    const COLUMNS: usize = 12;
    for chunk in rollups.chunks(ROWS_PER_INSERT) {
        let sql = format!(
            "INSERT INTO contracts_rollups (tenant, contract, day, period, version, contracted_wh, delivered_wh, amount, \
             intervals, estimated, missing, revision) VALUES {}",
            values(conn, chunk.len(), COLUMNS)
        );
        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
        for r in chunk {
            q = q
                .bind(tenant)
                .bind(id.as_str())
                .bind(r.date.to_string())
                .bind(i64::try_from(r.period).unwrap_or(0))
                .bind(i64::from(r.version))
                .bind(r.contracted.wh())
                .bind(r.delivered.wh())
                .bind(r.amount.map(|a| a.to_string()))
                .bind(i64::from(r.intervals))
                .bind(i64::from(r.estimated))
                .bind(i64::from(r.missing))
                .bind(i64::try_from(r.revision).unwrap_or(i64::MAX));
        }
        q.execute(&mut *conn).await.map_err(query("store the rollups"))?;
    }
    Ok(rollups.len())
}

/// Adds per-day `delta`s (contracted, delivered, intervals, missing) to
/// the daily totals of each of `scopes`, creating the days it lacks.
async fn add_to_totals(
    conn: &mut AnyConnection,
    tenant: &str,
    scopes: &[String],
    delta: &BTreeMap<String, [i64; 4]>,
) -> Result<(), ContractStoreError> {
    const COLUMNS: usize = 7;
    let rows: Vec<(&String, &String, &[i64; 4])> =
        scopes.iter().flat_map(|scope| delta.iter().map(move |(day, d)| (scope, day, d))).collect();
    for chunk in rows.chunks(ROWS_PER_INSERT) {
        let sql = format!(
            "INSERT INTO contracts_totals (tenant, scope, day, contracted_wh, delivered_wh, intervals, missing) VALUES {} \
             ON CONFLICT (tenant, scope, day) DO UPDATE SET \
             contracted_wh = contracts_totals.contracted_wh + excluded.contracted_wh, \
             delivered_wh = contracts_totals.delivered_wh + excluded.delivered_wh, \
             intervals = contracts_totals.intervals + excluded.intervals, \
             missing = contracts_totals.missing + excluded.missing",
            values(conn, chunk.len(), COLUMNS)
        );
        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
        for (scope, day, d) in chunk {
            q = q.bind(tenant).bind(scope.as_str()).bind(day.as_str()).bind(d[0]).bind(d[1]).bind(d[2]).bind(d[3]);
        }
        q.execute(&mut *conn).await.map_err(query("add to the totals"))?;
    }
    Ok(())
}

fn rollup_from(row: &sqlx::any::AnyRow, contract: &ContractId) -> Result<DailyRollup, ContractStoreError> {
    let read = |e| query("read the rollups")(e);
    let day: String = row.try_get("day").map_err(read)?;
    let amount: Option<String> = row.try_get("amount").map_err(read)?;
    let int = |column: &str| -> Result<i64, ContractStoreError> { row.try_get::<i64, _>(column).map_err(read) };
    let small = |column: &str| -> Result<u32, ContractStoreError> {
        u32::try_from(int(column)?).map_err(|e| corrupt(column, e))
    };
    Ok(DailyRollup {
        contract: contract.clone(),
        date: day.parse().map_err(|e| corrupt("day", e))?,
        version: small("version")?,
        period: usize::try_from(int("period")?).map_err(|e| corrupt("period", e))?,
        contracted: Energy::from_wh(int("contracted_wh")?),
        delivered: Energy::from_wh(int("delivered_wh")?),
        amount: amount.map(|a| a.parse::<Decimal>()).transpose().map_err(|e| corrupt("amount", e))?,
        intervals: small("intervals")?,
        estimated: small("estimated")?,
        missing: small("missing")?,
        revision: u64::try_from(int("revision")?).map_err(|e| corrupt("revision", e))?,
    })
}

fn settlement_from(row: &sqlx::any::AnyRow) -> Result<StoredSettlement, ContractStoreError> {
    let read = |e| query("read the settlements")(e);
    let body: String = row.try_get("body").map_err(read)?;
    let superseded: i64 = row.try_get("superseded").map_err(read)?;
    Ok(StoredSettlement {
        sequence: row.try_get("sequence").map_err(read)?,
        superseded: superseded != 0,
        created_at: row.try_get("created_at").map_err(read)?,
        settlement: from_json("settlement", &body)?,
    })
}

#[tonic::async_trait]
impl ContractStore for Store {
    async fn put_party(&self, tenant: &str, party: &Party) -> Result<(), ContractStoreError> {
        let mut tx = self.pool().begin().await.map_err(query("begin"))?;
        sqlx::query("DELETE FROM contracts_parties WHERE tenant = $1 AND id = $2")
            .bind(tenant)
            .bind(party.id.as_str())
            .execute(&mut *tx)
            .await
            .map_err(query("store the party"))?;
        sqlx::query("INSERT INTO contracts_parties (tenant, id, name, role) VALUES ($1, $2, $3, $4)")
            .bind(tenant)
            .bind(party.id.as_str())
            .bind(&party.name)
            .bind(json(&party.role).trim_matches('"').to_owned())
            .execute(&mut *tx)
            .await
            .map_err(query("store the party"))?;
        tx.commit().await.map_err(query("commit"))?;
        Ok(())
    }

    async fn put_meter(&self, tenant: &str, meter: &MeteringPoint) -> Result<(), ContractStoreError> {
        meter.check()?;
        let mut tx = self.pool().begin().await.map_err(query("begin"))?;
        sqlx::query("DELETE FROM contracts_meters WHERE tenant = $1 AND id = $2")
            .bind(tenant)
            .bind(meter.id.as_str())
            .execute(&mut *tx)
            .await
            .map_err(query("store the meter"))?;
        sqlx::query("INSERT INTO contracts_meters (tenant, id, body) VALUES ($1, $2, $3)")
            .bind(tenant)
            .bind(meter.id.as_str())
            .bind(json(meter))
            .execute(&mut *tx)
            .await
            .map_err(query("store the meter"))?;
        tx.commit().await.map_err(query("commit"))?;
        Ok(())
    }

    async fn create_contract(
        &self,
        tenant: &str,
        key: Option<&str>,
        contract: &Contract,
    ) -> Result<Applied<Contract>, ContractStoreError> {
        let mut tx = self.pool().begin().await.map_err(query("begin"))?;
        if let Some(key) = key
            && claim_key(&mut tx, tenant, key, "create", contract.id()).await?
        {
            let (stored, _) = load_contract(&mut tx, tenant, contract.id())
                .await?
                .ok_or_else(|| ContractStoreError::NotFound { what: "contract", id: contract.id().to_string() })?;
            return Ok(Applied::Before(stored));
        }
        for (i, meter) in contract.meters().iter().enumerate() {
            if load_meter(&mut tx, tenant, meter).await?.is_none() {
                return Err(ContractError::invalid(format!("meters[{i}]"), format!("no metering point {meter}")).into());
            }
        }
        write_contract(&mut tx, tenant, contract, None).await?;
        rebuild(&mut tx, tenant, contract.id(), None).await?;
        announce(&mut tx, tenant, contract, 1).await?;
        tx.commit().await.map_err(query("commit"))?;
        Ok(Applied::Now(contract.clone()))
    }

    async fn change_contract(
        &self,
        tenant: &str,
        key: Option<&str>,
        id: &ContractId,
        operation: &str,
        change: Change<'_>,
    ) -> Result<Applied<Contract>, ContractStoreError> {
        let mut tx = self.pool().begin().await.map_err(query("begin"))?;
        let (mut contract, row_version) = load_contract(&mut tx, tenant, id)
            .await?
            .ok_or_else(|| ContractStoreError::NotFound { what: "contract", id: id.to_string() })?;
        if let Some(key) = key
            && claim_key(&mut tx, tenant, key, operation, id).await?
        {
            return Ok(Applied::Before(contract));
        }
        let versions = contract.versions().len();
        let terminated = contract.terminated_on();
        change(&mut contract)?;
        write_contract(&mut tx, tenant, &contract, Some((row_version, versions))).await?;
        if contract.versions().len() != versions || contract.terminated_on() != terminated {
            rebuild(&mut tx, tenant, id, None).await?;
        }
        announce(&mut tx, tenant, &contract, row_version + 1).await?;
        tx.commit().await.map_err(query("commit"))?;
        Ok(Applied::Now(contract))
    }

    async fn contract(&self, tenant: &str, id: &ContractId) -> Result<Option<Contract>, ContractStoreError> {
        let mut conn = self.readers().acquire().await.map_err(query("connect"))?;
        Ok(load_contract(&mut conn, tenant, id).await?.map(|(c, _)| c))
    }

    async fn allocate(&self, tenant: &str, allocation: &Allocation) -> Result<(), ContractStoreError> {
        allocation.check()?;
        let mut tx = self.pool().begin().await.map_err(query("begin"))?;
        let on_meter = contracts_on(&mut tx, tenant, &allocation.meter).await?;
        for (i, claim) in allocation.claims.iter().enumerate() {
            if !on_meter.contains(&claim.contract) {
                return Err(ContractError::invalid(
                    format!("claims[{i}].contract"),
                    format!("{} is not a contract on meter {}", claim.contract, allocation.meter),
                )
                .into());
            }
        }
        sqlx::query("DELETE FROM contracts_allocations WHERE tenant = $1 AND meter = $2")
            .bind(tenant)
            .bind(allocation.meter.as_str())
            .execute(&mut *tx)
            .await
            .map_err(query("store the allocation"))?;
        sqlx::query("INSERT INTO contracts_allocations (tenant, meter, body) VALUES ($1, $2, $3)")
            .bind(tenant)
            .bind(allocation.meter.as_str())
            .bind(json(allocation))
            .execute(&mut *tx)
            .await
            .map_err(query("store the allocation"))?;
        for contract in &on_meter {
            rebuild(&mut tx, tenant, contract, None).await?;
        }
        tx.commit().await.map_err(query("commit"))?;
        Ok(())
    }

    async fn load_readings(
        &self,
        tenant: &str,
        readings: &[Reading],
        source: &str,
    ) -> Result<LoadReport, ContractStoreError> {
        let mut tx = self.pool().begin().await.map_err(query("begin"))?;
        // Check every reading before anything is written.
        let mut meters: HashMap<MeterId, (MeteringPoint, jiff::tz::TimeZone)> = HashMap::new();
        let mut seen = std::collections::HashSet::with_capacity(readings.len());
        for (index, reading) in readings.iter().enumerate() {
            if !meters.contains_key(&reading.meter) {
                let point =
                    load_meter(&mut tx, tenant, &reading.meter).await?.ok_or_else(|| ContractStoreError::Reading {
                        index,
                        error: ContractError::invalid("meter", format!("no metering point {}", reading.meter)),
                    })?;
                let zone = point.zone()?;
                meters.insert(reading.meter.clone(), (point, zone));
            }
            let (meter, zone) = &meters[&reading.meter];
            volta_contracts::readings::check_in(reading, meter, zone)
                .map_err(|error| ContractStoreError::Reading { index, error })?;
            if !seen.insert((&reading.meter, reading.start)) {
                return Err(ContractStoreError::Reading {
                    index,
                    error: ContractError::invalid(
                        "start",
                        format!("meter {} at {} is already in this load", reading.meter, reading.start),
                    ),
                });
            }
        }
        self.lock_in(&mut tx, LOAD_LOCK).await.map_err(query("lock the loads"))?;
        let latest: i64 = sqlx::query_scalar(
            "SELECT CAST(COALESCE(MAX(revision), 0) AS BIGINT) FROM contracts_loads WHERE tenant = $1",
        )
        .bind(tenant)
        .fetch_one(&mut *tx)
        .await
        .map_err(query("read the latest load"))?;
        let revision = latest + 1;
        sqlx::query(
            "INSERT INTO contracts_loads (tenant, revision, source, row_count, loaded_at) VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(tenant)
        .bind(revision)
        .bind(source)
        .bind(i64::try_from(readings.len()).unwrap_or(i64::MAX))
        .bind(now())
        .execute(&mut *tx)
        .await
        .map_err(query("record the load"))?;
        const COLUMNS: usize = 6;
        for chunk in readings.chunks(ROWS_PER_INSERT) {
            let sql = format!(
                "INSERT INTO contracts_readings (tenant, meter, start_s, revision, energy_wh, quality) VALUES {}",
                values(&tx, chunk.len(), COLUMNS)
            );
            let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
            for r in chunk {
                q = q
                    .bind(tenant)
                    .bind(r.meter.as_str())
                    .bind(r.start.as_second())
                    .bind(revision)
                    .bind(r.energy.wh())
                    .bind(quality_code(r.quality));
            }
            q.execute(&mut *tx).await.map_err(query("store the readings"))?;
        }
        // The local days each contract's rollups must be rebuilt over.
        let mut days: HashMap<MeterId, (Date, Date)> = HashMap::new();
        for reading in readings {
            let day = reading.start.to_zoned_datetime(meters[&reading.meter].1.clone()).date();
            let span = days.entry(reading.meter.clone()).or_insert((day, day));
            span.0 = span.0.min(day);
            span.1 = span.1.max(day);
        }
        let mut spans: BTreeMap<ContractId, (Date, Date)> = BTreeMap::new();
        for (meter, (first, last)) in &days {
            for contract in contracts_on(&mut tx, tenant, meter).await? {
                let span = spans.entry(contract).or_insert((*first, *last));
                span.0 = span.0.min(*first);
                span.1 = span.1.max(*last);
            }
        }
        let mut rollups = 0;
        for (contract, (first, last)) in &spans {
            let period = Period::new(*first, last.tomorrow().map_err(|e| corrupt("day", e))?)?;
            rollups += rebuild(&mut tx, tenant, contract, Some(period)).await?;
        }
        tx.commit().await.map_err(query("commit"))?;
        Ok(LoadReport {
            revision: u64::try_from(revision).unwrap_or(0),
            readings: readings.len(),
            contracts: spans.len(),
            rollups,
        })
    }

    async fn put_prices(
        &self,
        tenant: &str,
        index: &str,
        prices: &[(Timestamp, Price)],
    ) -> Result<(), ContractStoreError> {
        if index.is_empty() {
            return Err(ContractError::invalid("index", "name the market index").into());
        }
        let (Some(from), Some(to)) = (prices.iter().map(|p| p.0).min(), prices.iter().map(|p| p.0).max()) else {
            return Ok(());
        };
        let mut tx = self.pool().begin().await.map_err(query("begin"))?;
        for chunk in prices.chunks(ROWS_PER_INSERT) {
            let sql = format!(
                "DELETE FROM contracts_prices WHERE tenant = $1 AND market_index = $2 AND start_s IN ({})",
                placeholders(3, chunk.len())
            );
            let mut q = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(tenant).bind(index);
            for (start, _) in chunk {
                q = q.bind(start.as_second());
            }
            q.execute(&mut *tx).await.map_err(query("store the prices"))?;
            let sql = format!(
                "INSERT INTO contracts_prices (tenant, market_index, start_s, price) VALUES {}",
                values(&tx, chunk.len(), 4)
            );
            let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
            for (start, price) in chunk {
                q = q.bind(tenant).bind(index).bind(start.as_second()).bind(price.to_string());
            }
            q.execute(&mut *tx).await.map_err(query("store the prices"))?;
        }
        // Contracts priced or penalised by the index: their rollups over the prices' days.
        let ids: Vec<String> = sqlx::query_scalar("SELECT id FROM contracts_contracts WHERE tenant = $1 ORDER BY id")
            .bind(tenant)
            .fetch_all(&mut *tx)
            .await
            .map_err(query("read the contracts"))?;
        for id in ids {
            let id = ContractId::new(id)?;
            let Some((contract, _)) = load_contract(&mut tx, tenant, &id).await? else { continue };
            if !contract.versions().iter().any(|v| v.terms.indices().contains(&index)) {
                continue;
            }
            let portfolio = load_portfolio(&mut tx, tenant, &id).await?;
            let (zone, _) = portfolio.clock(&id)?;
            let first = from.to_zoned_datetime(zone.clone()).date();
            let last = to.to_zoned_datetime(zone).date();
            let period = Period::new(first, last.tomorrow().map_err(|e| corrupt("day", e))?)?;
            rebuild(&mut tx, tenant, &id, Some(period)).await?;
        }
        tx.commit().await.map_err(query("commit"))?;
        Ok(())
    }

    async fn volumes(
        &self,
        tenant: &str,
        scope: &Scope,
        period: &Period,
        granularity: Granularity,
    ) -> Result<Vec<Volume>, ContractStoreError> {
        if let Scope::Contract(id) = scope {
            let rollups = self.rollups(tenant, id, period).await?;
            return Ok(statistics::volumes(&rollups, period, granularity));
        }
        let bucket = match granularity {
            Granularity::Day => "day",
            Granularity::Month => "substr(day, 1, 7)",
            Granularity::Year => "substr(day, 1, 4)",
        };
        let scope = match scope {
            Scope::Party(party) => format!("party:{party}"),
            Scope::Portfolio | Scope::Contract(_) => String::new(),
        };
        let sql = format!(
            "SELECT {bucket} AS bucket, CAST(SUM(contracted_wh) AS BIGINT) AS contracted, \
             CAST(SUM(delivered_wh) AS BIGINT) AS delivered, CAST(SUM(intervals) AS BIGINT) AS intervals, \
             CAST(SUM(missing) AS BIGINT) AS missing FROM contracts_totals \
             WHERE tenant = $1 AND scope = $2 AND day >= $3 AND day < $4 GROUP BY {bucket} ORDER BY {bucket}"
        );
        let q = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(tenant)
            .bind(scope)
            .bind(period.first().to_string())
            .bind(period.end().to_string());
        let rows = q.fetch_all(self.readers()).await.map_err(query("sum the rollups"))?;
        let mut sums: HashMap<String, (i64, i64, i64, i64)> = HashMap::new();
        for row in rows {
            let read = |e| query("sum the rollups")(e);
            let label: String = row.try_get("bucket").map_err(read)?;
            let values = (
                row.try_get("contracted").map_err(read)?,
                row.try_get("delivered").map_err(read)?,
                row.try_get("intervals").map_err(read)?,
                row.try_get("missing").map_err(read)?,
            );
            sums.insert(label, values);
        }
        Ok(period
            .buckets(granularity)
            .into_iter()
            .map(|bucket| {
                let label = bucket.label(granularity);
                let (contracted, delivered, intervals, missing) = sums.get(&label).copied().unwrap_or_default();
                Volume {
                    bucket,
                    label,
                    contracted: Energy::from_wh(contracted),
                    delivered: Energy::from_wh(delivered),
                    intervals: u64::try_from(intervals).unwrap_or(0),
                    missing: u64::try_from(missing).unwrap_or(0),
                }
            })
            .collect())
    }

    async fn rollups(
        &self,
        tenant: &str,
        id: &ContractId,
        period: &Period,
    ) -> Result<Vec<DailyRollup>, ContractStoreError> {
        let rows = sqlx::query(
            "SELECT day, period, version, contracted_wh, delivered_wh, amount, intervals, estimated, missing, revision \
             FROM contracts_rollups WHERE tenant = $1 AND contract = $2 AND day >= $3 AND day < $4 ORDER BY day, period",
        )
        .bind(tenant)
        .bind(id.as_str())
        .bind(period.first().to_string())
        .bind(period.end().to_string())
        .fetch_all(self.readers())
        .await
        .map_err(query("read the rollups"))?;
        rows.iter().map(|row| rollup_from(row, id)).collect()
    }

    async fn tou_breakdown(
        &self,
        tenant: &str,
        id: &ContractId,
        period: &Period,
    ) -> Result<Vec<TouLine>, ContractStoreError> {
        Ok(statistics::tou_breakdown(&self.rollups(tenant, id, period).await?, period))
    }

    async fn top_deviators(
        &self,
        tenant: &str,
        period: &Period,
        n: usize,
    ) -> Result<Vec<(ContractId, Energy, Energy)>, ContractStoreError> {
        let limit = i64::try_from(n.min(10_000)).unwrap_or(100);
        let rows: Vec<(String, i64, i64)> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT contract, CAST(SUM(contracted_wh) AS BIGINT), CAST(SUM(delivered_wh) AS BIGINT) FROM contracts_rollups \
             WHERE tenant = $1 AND day >= $2 AND day < $3 GROUP BY contract \
             ORDER BY ABS(SUM(delivered_wh) - SUM(contracted_wh)) DESC, contract LIMIT {limit}"
        )))
        .bind(tenant)
        .bind(period.first().to_string())
        .bind(period.end().to_string())
        .fetch_all(self.readers())
        .await
        .map_err(query("rank the deviations"))?;
        rows.into_iter().map(|(id, c, d)| Ok((ContractId::new(id)?, Energy::from_wh(c), Energy::from_wh(d)))).collect()
    }

    async fn settlement_inputs(
        &self,
        tenant: &str,
        id: &ContractId,
        period: &Period,
    ) -> Result<(Portfolio, ReadingLog, IndexPrices), ContractStoreError> {
        let mut conn = self.readers().acquire().await.map_err(query("connect"))?;
        let portfolio = load_portfolio(&mut conn, tenant, id).await?;
        let (zone, _) = portfolio.clock(id)?;
        let (from, to) = instants(&Period::new(period.first().first_of_month(), period.end())?, &zone)?;
        let contract = portfolio
            .contract(id)
            .ok_or_else(|| ContractStoreError::NotFound { what: "contract", id: id.to_string() })?;
        let mut meters: BTreeSet<MeterId> = contract.meters().iter().cloned().collect();
        for c in portfolio.contracts() {
            meters.extend(c.meters().iter().cloned());
        }
        let readings = load_readings(&mut conn, tenant, &meters.into_iter().collect::<Vec<_>>(), from, to).await?;
        let indices: BTreeSet<String> =
            contract.versions().iter().flat_map(|v| v.terms.indices().into_iter().map(str::to_owned)).collect();
        let prices = load_prices(&mut conn, tenant, &indices.into_iter().collect::<Vec<_>>(), from, to).await?;
        Ok((portfolio, readings, prices))
    }

    async fn readings(
        &self,
        tenant: &str,
        meters: &[MeterId],
        from: Timestamp,
        to: Timestamp,
    ) -> Result<ReadingLog, ContractStoreError> {
        let mut conn = self.readers().acquire().await.map_err(query("connect"))?;
        load_readings(&mut conn, tenant, meters, from, to).await
    }

    async fn put_settlement(
        &self,
        tenant: &str,
        settlement: &Settlement,
    ) -> Result<Applied<StoredSettlement>, ContractStoreError> {
        let mut tx = self.pool().begin().await.map_err(query("begin"))?;
        let first = settlement.period.first().to_string();
        let end = settlement.period.end().to_string();
        let id = settlement.contract.as_str();
        let latest = sqlx::query(
            "SELECT sequence, superseded, created_at, body FROM contracts_settlements WHERE tenant = $1 AND contract = $2 \
             AND period_first = $3 AND period_end = $4 ORDER BY sequence DESC LIMIT 1",
        )
        .bind(tenant)
        .bind(id)
        .bind(&first)
        .bind(&end)
        .fetch_optional(&mut *tx)
        .await
        .map_err(query("read the settlements"))?;
        let latest = latest.as_ref().map(settlement_from).transpose()?;
        if let Some(latest) = &latest
            && latest.settlement.input_hash == settlement.input_hash
        {
            return Ok(Applied::Before(latest.clone()));
        }
        let sequence = latest.as_ref().map_or(1, |l| l.sequence + 1);
        if let Some(latest) = &latest {
            sqlx::query(
                "UPDATE contracts_settlements SET superseded = 1 WHERE tenant = $1 AND contract = $2 AND period_first = $3 \
                 AND period_end = $4 AND sequence = $5",
            )
            .bind(tenant)
            .bind(id)
            .bind(&first)
            .bind(&end)
            .bind(latest.sequence)
            .execute(&mut *tx)
            .await
            .map_err(query("supersede the settlement"))?;
        }
        let created_at = now();
        sqlx::query(
            "INSERT INTO contracts_settlements \
             (tenant, contract, period_first, period_end, sequence, input_hash, superseded, body, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, 0, $7, $8)",
        )
        .bind(tenant)
        .bind(id)
        .bind(&first)
        .bind(&end)
        .bind(sequence)
        .bind(&settlement.input_hash)
        .bind(json(settlement))
        .bind(&created_at)
        .execute(&mut *tx)
        .await
        .map_err(query("store the settlement"))?;
        tx.commit().await.map_err(query("commit"))?;
        Ok(Applied::Now(StoredSettlement { sequence, superseded: false, created_at, settlement: settlement.clone() }))
    }

    async fn settlements(&self, tenant: &str, id: &ContractId) -> Result<Vec<StoredSettlement>, ContractStoreError> {
        let rows = sqlx::query(
            "SELECT sequence, superseded, created_at, body FROM contracts_settlements WHERE tenant = $1 AND contract = $2 \
             ORDER BY period_first, period_end, sequence",
        )
        .bind(tenant)
        .bind(id.as_str())
        .fetch_all(self.readers())
        .await
        .map_err(query("read the settlements"))?;
        rows.iter().map(settlement_from).collect()
    }
}
