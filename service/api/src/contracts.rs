//! Conversions between `volta.contracts.v1` and the contracts domain. Each
//! request message is destructured whole, so a field added to the proto
//! cannot be silently ignored; errors name the request field
//! (`meter.time_zone`, `readings[41].start`, `terms.band.upper`).

use jiff::civil::Date;
use tonic::Status;
use volta_contracts::allocation::{Allocation, Claim, Take};
use volta_contracts::settlement::Settlement;
use volta_contracts::statistics::{TouLine, Volume};
use volta_contracts::{
    Contract, ContractError, ContractId, Energy, Granularity, Location, MeterId, MeteringPoint, Party, PartyId,
    Percent, Period, Price, Quality, Reading, Role, State, Technology, Terms,
};

use crate::pb::common;
use crate::pb::contracts as pb;
use crate::status;
use crate::time;

/// A domain refusal at request field `field`.
fn refused(field: &str) -> impl Fn(ContractError) -> Status + '_ {
    move |e| status::contract(&e, field)
}

/// A contract id from request field `field`.
///
/// # Errors
/// INVALID_ARGUMENT on the field for an empty or malformed id.
pub fn contract_id(field: &str, id: String) -> Result<ContractId, Status> {
    ContractId::new(id).map_err(|e| status::invalid(field, without_kind(&e)))
}

/// A meter id from request field `field`.
///
/// # Errors
/// INVALID_ARGUMENT on the field for an empty or malformed id.
pub fn meter_id(field: &str, id: String) -> Result<MeterId, Status> {
    MeterId::new(id).map_err(|e| status::invalid(field, without_kind(&e)))
}

/// A party id from request field `field`.
///
/// # Errors
/// INVALID_ARGUMENT on the field for an empty or malformed id.
pub fn party_id(field: &str, id: String) -> Result<PartyId, Status> {
    PartyId::new(id).map_err(|e| status::invalid(field, without_kind(&e)))
}

/// An id error's reason without the id kind the domain prefixes.
fn without_kind(e: &ContractError) -> String {
    match e {
        ContractError::Invalid { reason, .. } => reason.clone(),
        other @ (ContractError::Precision { .. }
        | ContractError::Number { .. }
        | ContractError::Transition { .. }
        | ContractError::NoTerms { .. }
        | ContractError::MissingPrice { .. }) => other.to_string(),
    }
}

/// A required date.
///
/// # Errors
/// INVALID_ARGUMENT when missing or not a date.
pub fn date(field: &str, d: Option<common::Date>) -> Result<Date, Status> {
    let d = d.ok_or_else(|| status::invalid(field, "required".into()))?;
    time::date(field, &d)
}

/// The days `first` to `last` (inclusive), at most `max_days` of them.
///
/// # Errors
/// INVALID_ARGUMENT on `first`/`last` when missing, reversed or too long.
pub fn period(first: Option<common::Date>, last: Option<common::Date>, max_days: i32) -> Result<Period, Status> {
    let first = date("first", first)?;
    let last = date("last", last)?;
    if last < first {
        return Err(status::invalid("last", format!("{last} is before first ({first})")));
    }
    let days = first.until(last).map_or(i32::MAX, |s| s.get_days());
    if days >= max_days {
        return Err(status::invalid("last", format!("{} days asked; at most {max_days}", days + 1)));
    }
    let end = last.tomorrow().map_err(|e| status::invalid("last", e.to_string()))?;
    Period::new(first, end).map_err(refused(""))
}

/// A party.
///
/// # Errors
/// INVALID_ARGUMENT naming `party.*`.
pub fn party(message: Option<pb::Party>) -> Result<Party, Status> {
    let pb::Party { id, name, role } = message.ok_or_else(|| status::invalid("party", "required".into()))?;
    let role = match pb::PartyRole::try_from(role) {
        Ok(pb::PartyRole::Generator) => Role::Generator,
        Ok(pb::PartyRole::Retailer) => Role::Retailer,
        Ok(pb::PartyRole::Consumer) => Role::Consumer,
        Ok(pb::PartyRole::Prosumer) => Role::Prosumer,
        Ok(pb::PartyRole::GridOperator) => Role::GridOperator,
        Ok(pb::PartyRole::Unspecified) | Err(_) => {
            return Err(status::invalid("party.role", "give the party's role".into()));
        }
    };
    if name.chars().count() > 256 {
        return Err(status::invalid("party.name", "at most 256 characters".into()));
    }
    Ok(Party { id: party_id("party.id", id)?, name, role })
}

/// A metering point.
///
/// # Errors
/// INVALID_ARGUMENT naming `meter.*`.
pub fn meter(message: Option<pb::MeteringPoint>) -> Result<MeteringPoint, Status> {
    let pb::MeteringPoint { id, party_id: party, interval_minutes, time_zone, location, technology } =
        message.ok_or_else(|| status::invalid("meter", "required".into()))?;
    let location = match location {
        Some(pb::metering_point::Location::Node(node)) => Location::Node(node),
        Some(pb::metering_point::Location::Zone(zone)) => Location::Zone(zone),
        None => return Err(status::invalid("meter.location", "give a node or a zone".into())),
    };
    let technology = match pb::Technology::try_from(technology) {
        Ok(pb::Technology::Solar) => Technology::Solar,
        Ok(pb::Technology::Wind) => Technology::Wind,
        Ok(pb::Technology::Hydro) => Technology::Hydro,
        Ok(pb::Technology::Storage) => Technology::Storage,
        Ok(pb::Technology::Thermal) => Technology::Thermal,
        Ok(pb::Technology::Load) => Technology::Load,
        Ok(pb::Technology::Unspecified) | Err(_) => {
            return Err(status::invalid("meter.technology", "give what is behind the meter".into()));
        }
    };
    let point = MeteringPoint {
        id: meter_id("meter.id", id)?,
        party: party_id("meter.party_id", party)?,
        interval_minutes: u32::try_from(interval_minutes).unwrap_or(0),
        time_zone,
        location,
        technology,
    };
    point.check().map_err(refused("meter"))?;
    Ok(point)
}

/// Terms from their document, checked.
///
/// # Errors
/// INVALID_ARGUMENT naming the field's path under `field`.
pub fn terms(field: &str, message: Option<pb::ContractTerms>) -> Result<Terms, Status> {
    let pb::ContractTerms { format } = message.ok_or_else(|| status::invalid(field, "required".into()))?;
    let at = |path: String, reason: String| {
        let path = if path.is_empty() || path == "." { field.to_owned() } else { format!("{field}.{path}") };
        status::bad_request(status::Reason::InvalidField, format!("{path}: {reason}"), [(path, reason)])
    };
    let terms: Terms = match format {
        Some(pb::contract_terms::Format::Json(text)) => {
            let mut reader = serde_json::Deserializer::from_str(&text);
            serde_path_to_error::deserialize(&mut reader)
                .map_err(|e| at(e.path().to_string(), e.inner().to_string()))?
        }
        Some(pb::contract_terms::Format::Toml(text)) => {
            let value: toml::Table = toml::from_str(&text).map_err(|e| at(String::new(), e.message().to_owned()))?;
            serde_path_to_error::deserialize(toml::Value::Table(value))
                .map_err(|e| at(e.path().to_string(), e.inner().message().to_owned()))?
        }
        None => return Err(status::invalid(field, "give the terms as JSON or TOML".into())),
    };
    terms.check().map_err(refused(field))?;
    Ok(terms)
}

/// A contract as sent.
#[must_use]
pub fn contract_message(contract: &Contract) -> pb::Contract {
    let state = match contract.state() {
        State::Draft => pb::ContractState::Draft,
        State::Signed => pb::ContractState::Signed,
        State::Active => pb::ContractState::Active,
        State::Suspended => pb::ContractState::Suspended,
        State::Terminated => pb::ContractState::Terminated,
        State::Settled => pb::ContractState::Settled,
    };
    pb::Contract {
        contract_id: contract.id().to_string(),
        seller_id: contract.seller().to_string(),
        buyer_id: contract.buyer().to_string(),
        meter_ids: contract.meters().iter().map(ToString::to_string).collect(),
        state: state.into(),
        terminated_on: contract.terminated_on().map(time::date_message),
        versions: contract
            .versions()
            .iter()
            .map(|v| pb::TermVersion {
                version: i32::try_from(v.version).unwrap_or(i32::MAX),
                valid_from: Some(time::date_message(v.valid_from)),
                terms_json: serde_json::to_string(&v.terms).unwrap_or_default(),
            })
            .collect(),
    }
}

/// A meter's allocation.
///
/// # Errors
/// INVALID_ARGUMENT naming `claims[i].*`.
pub fn allocation(request: pb::SetAllocationRequest) -> Result<Allocation, Status> {
    let pb::SetAllocationRequest { meter_id: meter, claims } = request;
    let claims = claims
        .into_iter()
        .enumerate()
        .map(|(i, pb::Claim { contract_id: contract, take, share_percent })| {
            let field = format!("claims[{i}]");
            let take = match pb::Take::try_from(take) {
                Ok(pb::Take::UpToContracted) => Take::UpToContracted,
                Ok(pb::Take::Remainder) => Take::Remainder,
                Ok(pb::Take::Share) => {
                    Take::Share { share: Percent::new(decimal(&format!("{field}.share_percent"), &share_percent)?) }
                }
                Ok(pb::Take::Unspecified) | Err(_) => {
                    return Err(status::invalid(&format!("{field}.take"), "give what the contract takes".into()));
                }
            };
            Ok(Claim { contract: contract_id(&format!("{field}.contract_id"), contract)?, take })
        })
        .collect::<Result<Vec<_>, Status>>()?;
    let allocation = Allocation { meter: meter_id("meter_id", meter)?, claims };
    allocation.check().map_err(refused(""))?;
    Ok(allocation)
}

/// Decimal text.
///
/// # Errors
/// INVALID_ARGUMENT on `field`.
pub fn decimal(field: &str, text: &str) -> Result<rust_decimal::Decimal, Status> {
    text.trim().parse().map_err(|_| status::invalid(field, format!("{} is not a decimal number", status::shown(text))))
}

/// Reading `index` of a load (its position across the whole stream).
///
/// # Errors
/// INVALID_ARGUMENT naming `readings[index].*`.
pub fn reading(index: usize, message: pb::Reading) -> Result<Reading, Status> {
    let pb::Reading { meter_id: meter, start, energy_wh, quality } = message;
    let field = |name: &str| format!("readings[{index}].{name}");
    let start =
        time::instant(&field("start"), start)?.ok_or_else(|| status::invalid(&field("start"), "required".into()))?;
    let quality = match pb::Quality::try_from(quality) {
        Ok(pb::Quality::Unspecified | pb::Quality::Measured) => Quality::Measured,
        Ok(pb::Quality::Estimated) => Quality::Estimated,
        Ok(pb::Quality::Substituted) => Quality::Substituted,
        Ok(pb::Quality::Missing) => Quality::Missing,
        Err(_) => return Err(status::invalid(&field("quality"), format!("{quality} is not a quality"))),
    };
    if energy_wh < 0 {
        return Err(status::invalid(&field("energy_wh"), format!("{energy_wh} is negative")));
    }
    Ok(Reading { meter: meter_id(&field("meter_id"), meter)?, start, energy: Energy::from_wh(energy_wh), quality })
}

/// Index prices.
///
/// # Errors
/// INVALID_ARGUMENT naming `prices[i].*`.
pub fn prices(prices: Vec<pb::IndexPrice>) -> Result<Vec<(jiff::Timestamp, Price)>, Status> {
    prices
        .into_iter()
        .enumerate()
        .map(|(i, pb::IndexPrice { start, price })| {
            let field = format!("prices[{i}]");
            let start = time::instant(&format!("{field}.start"), start)?
                .ok_or_else(|| status::invalid(&format!("{field}.start"), "required".into()))?;
            Ok((start, Price::new(decimal(&format!("{field}.price"), &price)?)))
        })
        .collect()
}

/// A granularity (month by default).
///
/// # Errors
/// INVALID_ARGUMENT for an unknown value.
pub fn granularity(value: i32) -> Result<Granularity, Status> {
    match pb::Granularity::try_from(value) {
        Ok(pb::Granularity::Day) => Ok(Granularity::Day),
        Ok(pb::Granularity::Month | pb::Granularity::Unspecified) => Ok(Granularity::Month),
        Ok(pb::Granularity::Year) => Ok(Granularity::Year),
        Err(_) => Err(status::invalid("granularity", format!("{value} is not a granularity"))),
    }
}

/// A volume bucket as sent.
#[must_use]
pub fn bucket(v: &Volume) -> pb::VolumeBucket {
    pb::VolumeBucket {
        label: v.label.clone(),
        first: Some(time::date_message(v.bucket.first())),
        last: Some(time::date_message(v.bucket.last())),
        contracted_wh: v.contracted.wh(),
        delivered_wh: v.delivered.wh(),
        deviation_wh: v.deviation().wh(),
        completion_percent: v.completion().map(|c| c.to_string()).unwrap_or_default(),
        intervals: i64::try_from(v.intervals).unwrap_or(i64::MAX),
        missing_intervals: i64::try_from(v.missing).unwrap_or(i64::MAX),
    }
}

/// A TOU line as sent, its period named from `names` (`all` without a table).
#[must_use]
pub fn tou_line(line: &TouLine, name: &str) -> pb::TouLine {
    pb::TouLine {
        period: if name.is_empty() { "all".to_owned() } else { name.to_owned() },
        contracted_wh: line.contracted.wh(),
        delivered_wh: line.delivered.wh(),
        amount: line.amount.map(|a| a.normalize().to_string()).unwrap_or_default(),
        average_price: line.average_price(6).map(|p| p.to_string()).unwrap_or_default(),
    }
}

/// A settlement as sent.
#[must_use]
pub fn settlement_message(s: &Settlement, sequence: i64, superseded: bool) -> pb::Settlement {
    let text = |d: rust_decimal::Decimal| d.normalize().to_string();
    pb::Settlement {
        contract_id: s.contract.to_string(),
        first: Some(time::date_message(s.period.first())),
        last: Some(time::date_message(s.period.last())),
        versions: s.versions.iter().map(|v| i32::try_from(*v).unwrap_or(i32::MAX)).collect(),
        readings_revision: i64::try_from(s.readings_revision).unwrap_or(i64::MAX),
        contracted_wh: s.contracted.wh(),
        delivered_wh: s.delivered.wh(),
        deviation_up_wh: s.deviation_up.wh(),
        deviation_down_wh: s.deviation_down.wh(),
        within_band_kwh: text(s.within_band),
        penalty_kwh: text(s.penalty_volume),
        energy_amount: text(s.energy_amount),
        penalty_amount: text(s.penalty_amount),
        rule: s.rule.clone(),
        lines: s
            .lines
            .iter()
            .map(|l| pb::SettlementLine {
                first: Some(time::date_message(l.band.bucket.first())),
                last: Some(time::date_message(l.band.bucket.last())),
                start: l.band.start.map(time::timestamp),
                contracted_wh: l.band.contracted.wh(),
                delivered_wh: l.band.delivered.wh(),
                lower_kwh: text(l.band.lower),
                upper_kwh: text(l.band.upper),
                over_kwh: text(l.band.over),
                under_kwh: text(l.band.under),
                version: i32::try_from(l.version).unwrap_or(i32::MAX),
                penalty_price: text(l.base_price),
                penalty_kwh: text(l.penalty_volume),
                penalty_amount: text(l.penalty_amount),
            })
            .collect(),
        missing_intervals: i64::try_from(s.missing_intervals).unwrap_or(i64::MAX),
        statement: Some(pb::Statement {
            currency: s.statement.currency.clone(),
            energy: s.statement.energy.to_string(),
            penalty: s.statement.penalty.to_string(),
            total: s.statement.total.to_string(),
        }),
        input_hash: s.input_hash.clone(),
        sequence,
        superseded,
    }
}

/// Levels of a projection from request field `levels`: finite, in (0, 1),
/// increasing, at most [`volta_contracts::projection::MAX_LEVELS`].
///
/// # Errors
/// INVALID_ARGUMENT naming the first bad level.
pub fn levels(levels: &[f64]) -> Result<Vec<f64>, Status> {
    let max = volta_contracts::projection::MAX_LEVELS;
    if levels.len() > max {
        return Err(status::over_limit("levels", &levels.len().to_string(), "levels", max));
    }
    for (i, level) in levels.iter().enumerate() {
        if !(*level > 0.0 && *level < 1.0) {
            return Err(status::invalid(&format!("levels[{i}]"), format!("{level} is not in (0, 1)")));
        }
        if i > 0 && *level <= levels[i - 1] {
            return Err(status::invalid(&format!("levels[{i}]"), format!("{level} does not increase")));
        }
    }
    Ok(levels.to_vec())
}

/// A projection as its response: the projection itself, the days its
/// scenarios replay, the contract's currency, the model and the first day
/// it trained on.
#[must_use]
pub fn projection_message(
    p: &volta_contracts::projection::Projection,
    analogs: &[Date],
    currency: &str,
    model: &str,
    history_from: Date,
) -> pb::ProjectDeviationResponse {
    let text = |d: rust_decimal::Decimal| d.normalize().to_string();
    let outcome = |o: &volta_contracts::projection::Outcome| pb::ProjectedOutcome {
        delivered_wh: o.delivered.wh(),
        deviation_wh: o.deviation.wh(),
        penalty_kwh: text(o.penalty_volume),
        penalty_amount: text(o.penalty_amount),
    };
    pb::ProjectDeviationResponse {
        contract_id: p.contract.to_string(),
        first: Some(time::date_message(p.period.first())),
        last: Some(time::date_message(p.period.last())),
        as_of: Some(time::timestamp(p.cut)),
        contracted_wh: p.contracted.wh(),
        contracted_to_date_wh: p.contracted_to_date.wh(),
        delivered_to_date_wh: p.delivered_to_date.wh(),
        expected: Some(outcome(&p.expected)),
        levels: p
            .levels
            .iter()
            .map(|l| pb::ProjectedLevel { level: l.level, outcome: Some(outcome(&l.outcome)) })
            .collect(),
        expected_penalty: text(p.expected_penalty.round_dp(6)),
        penalty_probability: text(p.penalty_probability.round_dp(6)),
        scenarios: p.outcomes.iter().map(outcome).collect(),
        analogs: analogs.iter().map(|d| time::date_message(*d)).collect(),
        rule: p.rule.clone(),
        assumed: p
            .assumed
            .iter()
            .map(|a| pb::AssumedPrice {
                index: a.index.clone(),
                price: text(a.price.per_kwh()),
                over: i64::try_from(a.over).unwrap_or(i64::MAX),
                intervals: i64::try_from(a.intervals).unwrap_or(i64::MAX),
            })
            .collect(),
        currency: currency.to_owned(),
        model: model.to_owned(),
        history_from: Some(time::date_message(history_from)),
        missing_to_date: i64::try_from(p.missing_to_date).unwrap_or(i64::MAX),
    }
}
