//! The contract store on SQLite and PostgreSQL
//! (`VOLTA_TEST_POSTGRES_URL`): every statistic the store answers from its
//! rollups equals the domain's plain scan of the same readings held in
//! memory; loads are all-or-nothing, corrections and amendments rebuild
//! what they touch, request keys make changes idempotent, settlements are
//! immutable and superseded, and no tenant sees another's rows.

mod support;

use std::str::FromStr as _;

use jiff::civil::date;
use jiff::tz::TimeZone;
use jiff::{SignedDuration, Span};
use rust_decimal::Decimal;
use volta_contracts::allocation::{Allocation, Claim, Take};
use volta_contracts::ledger::{IndexPrices, Portfolio};
use volta_contracts::settlement::settle;
use volta_contracts::statistics::{tou_by_scan, volumes_by_scan};
use volta_contracts::terms::{
    Band, BandGranularity, Direction, Kind, MonthVolume, Penalty, PenaltyBase, PriceRule, Quantity, Shape, Terms,
};
use volta_contracts::{
    Contract, ContractError, ContractId, Energy, Granularity, Location, MeterId, MeteringPoint, Party, PartyId,
    Percent, Period, Price, Quality, Reading, ReadingLog, Role, Rounding, Technology,
};
use volta_server::store::Store;
use volta_server::store::contracts::{Applied, ContractStore as _, ContractStoreError, Scope};
use volta_server::store::messaging::{CONTRACT, ContractMessage};

const ZONE: &str = "Europe/Berlin";
const TENANT: &str = "acme";

fn dec(text: &str) -> Decimal {
    Decimal::from_str(text).expect("decimal")
}

fn cid(text: &str) -> ContractId {
    ContractId::new(text).expect("id")
}

fn mid(text: &str) -> MeterId {
    MeterId::new(text).expect("id")
}

fn pid(text: &str) -> PartyId {
    PartyId::new(text).expect("id")
}

/// The contract messages of `aggregate` in the outbox, in order.
async fn contract_messages(store: &Store, aggregate: &str) -> Vec<ContractMessage> {
    let bodies: Vec<String> =
        sqlx::query_scalar("SELECT payload FROM messaging_outbox WHERE aggregate = $1 AND kind = $2 ORDER BY seq")
            .bind(aggregate)
            .bind(CONTRACT)
            .fetch_all(store.pool())
            .await
            .expect("outbox");
    bodies.iter().map(|b| serde_json::from_str(b).expect("a contract message")).collect()
}

fn meter(id: &str) -> MeteringPoint {
    MeteringPoint {
        id: mid(id),
        party: pid("site"),
        interval_minutes: 15,
        time_zone: ZONE.into(),
        location: Location::Zone("de".into()),
        technology: Technology::Load,
    }
}

/// 2024, `monthly_kwh` a month, flat, at `price`; monthly band -3/+5 %,
/// 5 % of the price as penalty.
fn terms(price: &str, monthly_kwh: i64) -> Terms {
    let mut months = Vec::new();
    let mut month = date(2024, 1, 1);
    while month.year() == 2024 {
        months.push(MonthVolume { month, energy: Energy::from_kwh(monthly_kwh) });
        month = month.checked_add(Span::new().months(1)).expect("month");
    }
    Terms {
        kind: Kind::FixedPrice,
        delivery_first: date(2024, 1, 1),
        delivery_last: date(2024, 12, 31),
        price: PriceRule::Fixed { price: Price::new(dec(price)) },
        quantity: Quantity::Monthly { months },
        shape: Shape::Flat,
        band: Some(Band {
            granularity: BandGranularity::Month,
            lower: Percent::new(dec("3")),
            upper: Percent::new(dec("5")),
        }),
        penalty: Some(Penalty {
            base: PenaltyBase::ContractPrice,
            multiplier: dec("0.05"),
            applies_to: Direction::Both,
            exempt: vec![],
        }),
        currency: "EUR".into(),
        decimals: 2,
        rounding: Rounding::HalfUp,
    }
}

fn contract(id: &str, buyer: &str, meter: &str, price: &str, monthly_kwh: i64) -> Contract {
    Contract::draft(cid(id), pid("grid"), pid(buyer), vec![mid(meter)], terms(price, monthly_kwh)).expect("contract")
}

/// Readings of `meter` over `period`, a deterministic pattern; every
/// 997th interval missing, every 501st estimated.
fn readings(meter: &str, period: &Period, salt: u64, scale: i64) -> Vec<Reading> {
    let zone = TimeZone::get(ZONE).expect("zone");
    period
        .intervals(&zone, SignedDuration::from_mins(15))
        .expect("grid")
        .instants()
        .enumerate()
        .filter(|(k, _)| k % 997 != 13)
        .map(|(k, start)| {
            let x = (k as u64).wrapping_mul(6_364_136_223_846_793_005).wrapping_add(salt);
            let wh = scale + i64::try_from((x >> 33) % 500).unwrap_or(0);
            let quality = if k % 501 == 7 { Quality::Estimated } else { Quality::Measured };
            Reading { meter: mid(meter), start, energy: Energy::from_wh(wh), quality }
        })
        .collect()
}

/// What the store holds, kept in memory by the test: the domain's side.
struct Mirror {
    portfolio: Portfolio,
    log: ReadingLog,
}

impl Mirror {
    fn scan(&self, id: &str, period: &Period, granularity: Granularity) -> Vec<volta_contracts::statistics::Volume> {
        let ledger = self.portfolio.ledger(&cid(id), period, &self.log, &IndexPrices::new(), None).expect("ledger");
        volumes_by_scan(&ledger.entries, period, granularity)
    }
}

async fn exercise(store: &Store) {
    let year = Period::new(date(2024, 1, 1), date(2025, 1, 1)).expect("period");
    let quarter = Period::new(date(2024, 1, 1), date(2024, 4, 1)).expect("period");
    let mut mirror = Mirror { portfolio: Portfolio::new(), log: ReadingLog::new() };

    for (id, role) in [("grid", Role::Retailer), ("shop", Role::Consumer), ("mill", Role::Consumer)] {
        store.put_party(TENANT, &Party { id: pid(id), name: id.to_uppercase(), role }).await.expect("party");
    }
    for id in ["m-shop", "m-mill", "m-shared"] {
        store.put_meter(TENANT, &meter(id)).await.expect("meter");
        mirror.portfolio.add_meter(meter(id)).expect("meter");
    }
    let unknown_meter = contract("ghost", "shop", "m-nowhere", "0.25", 1);
    let error = store.create_contract(TENANT, None, &unknown_meter).await.expect_err("unknown meter");
    assert!(matches!(&error, ContractStoreError::Refused(e) if e.to_string().starts_with("meters[0]")), "{error}");

    // Creation is idempotent by key; a key reused for another contract is refused.
    let shop = contract("shop-2024", "shop", "m-shop", "0.25", 30_000);
    assert!(matches!(store.create_contract(TENANT, Some("k-shop"), &shop).await.expect("create"), Applied::Now(_)));
    assert!(matches!(store.create_contract(TENANT, Some("k-shop"), &shop).await.expect("again"), Applied::Before(_)));
    let mill = contract("mill-2024", "mill", "m-mill", "0.22", 20_000);
    let reused = store.create_contract(TENANT, Some("k-shop"), &mill).await.expect_err("reused key");
    assert!(matches!(reused, ContractStoreError::KeyReused { .. }), "{reused}");
    store.create_contract(TENANT, None, &mill).await.expect("create");
    assert!(matches!(store.create_contract(TENANT, None, &mill).await, Err(ContractStoreError::Exists { .. })));
    let base = contract("base", "shop", "m-shared", "0.08", 9_000);
    let rest = contract("rest", "mill", "m-shared", "0.06", 1_000);
    for c in [&shop, &mill, &base, &rest] {
        store.create_contract(TENANT, None, c).await.ok();
        mirror.portfolio.add_contract(c.clone()).expect("contract");
    }
    assert_eq!(store.contract(TENANT, &cid("shop-2024")).await.expect("read").as_ref(), Some(&shop));

    // Before any reading: the contracted volume, nothing delivered, every interval missing.
    let before =
        store.volumes(TENANT, &Scope::Contract(cid("shop-2024")), &year, Granularity::Month).await.expect("stats");
    assert_eq!(before.len(), 12);
    assert!(before.iter().all(|v| v.contracted == Energy::from_kwh(30_000) && v.delivered.is_zero()));
    assert_eq!(before, mirror.scan("shop-2024", &year, Granularity::Month));

    // A shared meter: base up to its volume, rest the remainder.
    let allocation = Allocation {
        meter: mid("m-shared"),
        claims: vec![
            Claim { contract: cid("base"), take: Take::UpToContracted },
            Claim { contract: cid("rest"), take: Take::Remainder },
        ],
    };
    store.allocate(TENANT, &allocation).await.expect("allocate");
    mirror.portfolio.allocate(allocation).expect("allocate");

    // Load 1: a quarter of readings on every meter.
    let mut load = readings("m-shop", &quarter, 1, 10_000);
    load.extend(readings("m-mill", &quarter, 2, 7_000));
    load.extend(readings("m-shared", &quarter, 3, 3_000));
    let report = store.load_readings(TENANT, &load, "quarter.csv").await.expect("load");
    assert_eq!((report.revision, report.readings, report.contracts), (1, load.len(), 4));
    mirror.log.load(1, &load).expect("mirror");

    // A bad load keeps nothing: one reading off the 15-minute grid.
    let mut bad = readings("m-shop", &Period::day(date(2024, 4, 1)), 4, 10_000);
    bad[5].start += SignedDuration::from_mins(7);
    let error = store.load_readings(TENANT, &bad, "bad.csv").await.expect_err("off the grid");
    assert!(matches!(&error, ContractStoreError::Reading { index: 5, .. }), "{error}");
    let unknown = vec![Reading { meter: mid("m-x"), ..bad[0].clone() }];
    assert!(matches!(
        store.load_readings(TENANT, &unknown, "x.csv").await,
        Err(ContractStoreError::Reading { index: 0, .. })
    ));

    // Load 2: a late correction of one day (the spring DST day) on m-shop.
    let correction: Vec<Reading> = readings("m-shop", &Period::day(date(2024, 3, 31)), 9, 20_000)
        .into_iter()
        .map(|r| Reading { quality: Quality::Substituted, ..r })
        .collect();
    let report = store.load_readings(TENANT, &correction, "fix.csv").await.expect("correction");
    assert_eq!((report.revision, report.contracts), (2, 1), "the failed loads took no revision");
    mirror.log.load(2, &correction).expect("mirror");

    // An amendment from 15 March: a new price and volume, rollups rebuilt.
    let amend = |c: &mut Contract| c.amend(date(2024, 3, 15), terms("0.27", 36_000)).map(|_| ());
    let amended =
        store.change_contract(TENANT, Some("k-amend"), &cid("shop-2024"), "amend", &amend).await.expect("amend");
    let amended = amended.into_inner();
    assert_eq!(amended.versions().len(), 2);
    assert!(matches!(
        store.change_contract(TENANT, Some("k-amend"), &cid("shop-2024"), "amend", &amend).await.expect("again"),
        Applied::Before(c) if c.versions().len() == 2
    ));
    let sign = |c: &mut Contract| c.sign();
    store.change_contract(TENANT, None, &cid("shop-2024"), "sign", &sign).await.expect("sign");
    let refused =
        store.change_contract(TENANT, None, &cid("shop-2024"), "sign", &sign).await.expect_err("signed twice");
    assert!(matches!(refused, ContractStoreError::Refused(ContractError::Transition { .. })), "{refused}");
    let stored = store.contract(TENANT, &cid("shop-2024")).await.expect("read").expect("present");
    assert_eq!(stored.state(), volta_contracts::State::Signed);
    // Each change that was stored is announced once, in its transaction,
    // numbered from 1: created, amended, signed (not the retry, not the
    // refusal).
    let announced = contract_messages(store, "contracts/acme/shop-2024").await;
    assert_eq!(announced.iter().map(|m| m.version).collect::<Vec<_>>(), [1, 2, 3]);
    assert_eq!(announced[1].contract.versions().len(), 2);
    assert_eq!(announced[2].contract, stored);
    assert_eq!(announced[2].meters.iter().map(|m| m.id.as_str()).collect::<Vec<_>>(), ["m-shop"]);
    let mut mirrored = shop.clone();
    mirrored.amend(date(2024, 3, 15), terms("0.27", 36_000)).expect("amend");
    mirror.portfolio.add_contract(mirrored).expect("contract");

    // Every statistic from rollups equals the plain scan, at every granularity.
    for id in ["shop-2024", "mill-2024", "base", "rest"] {
        for granularity in [Granularity::Day, Granularity::Month, Granularity::Year] {
            let stored = store.volumes(TENANT, &Scope::Contract(cid(id)), &year, granularity).await.expect("stats");
            assert_eq!(stored, mirror.scan(id, &year, granularity), "{id} {granularity:?}");
        }
        let odd = Period::new(date(2024, 2, 10), date(2024, 3, 20)).expect("period");
        let ledger = mirror.portfolio.ledger(&cid(id), &odd, &mirror.log, &IndexPrices::new(), None).expect("ledger");
        let tou = store.tou_breakdown(TENANT, &cid(id), &odd).await.expect("tou");
        assert_eq!(tou, tou_by_scan(&ledger.entries, &odd), "{id}");
    }
    // The shared meter is handed out whole.
    let shared: Energy = load.iter().filter(|r| r.meter == mid("m-shared")).map(|r| r.energy).sum();
    let delivered = |v: &[volta_contracts::statistics::Volume]| -> Energy { v.iter().map(|x| x.delivered).sum() };
    let base_q =
        store.volumes(TENANT, &Scope::Contract(cid("base")), &quarter, Granularity::Year).await.expect("stats");
    let rest_q =
        store.volumes(TENANT, &Scope::Contract(cid("rest")), &quarter, Granularity::Year).await.expect("stats");
    assert_eq!(delivered(&base_q) + delivered(&rest_q), shared);

    // A party's and the portfolio's volumes are the sums of their contracts'.
    let mut shop_sum = Energy::ZERO;
    let mut all_sum = Energy::ZERO;
    for id in ["shop-2024", "mill-2024", "base", "rest"] {
        let v = mirror.scan(id, &year, Granularity::Year);
        all_sum += delivered(&v);
        if id == "shop-2024" || id == "base" {
            shop_sum += delivered(&v);
        }
    }
    let by_party = store.volumes(TENANT, &Scope::Party(pid("shop")), &year, Granularity::Month).await.expect("stats");
    assert_eq!(delivered(&by_party), shop_sum);
    let portfolio = store.volumes(TENANT, &Scope::Portfolio, &year, Granularity::Year).await.expect("stats");
    assert_eq!(delivered(&portfolio), all_sum);

    // Top deviators over the quarter, by absolute deviation.
    let top = store.top_deviators(TENANT, &quarter, 2).await.expect("top");
    let mut expected: Vec<(Energy, String)> = ["shop-2024", "mill-2024", "base", "rest"]
        .iter()
        .map(|id| {
            let v = mirror.scan(id, &quarter, Granularity::Year);
            let c: Energy = v.iter().map(|x| x.contracted).sum();
            ((delivered(&v) - c).abs(), (*id).to_owned())
        })
        .collect();
    expected.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
    assert_eq!(top.iter().map(|t| t.0.to_string()).collect::<Vec<_>>(), [expected[0].1.clone(), expected[1].1.clone()]);

    // Settlements: the same inputs return the stored run; a correction makes run 2.
    let february = Period::month_of(date(2024, 2, 1));
    let (p, log, prices) = store.settlement_inputs(TENANT, &cid("shop-2024"), &february).await.expect("inputs");
    let ledger = p.ledger(&cid("shop-2024"), &february, &log, &prices, None).expect("ledger");
    let first = settle(&p, &ledger, &prices).expect("settle");
    let mirror_ledger =
        mirror.portfolio.ledger(&cid("shop-2024"), &february, &mirror.log, &IndexPrices::new(), None).expect("ledger");
    assert_eq!(
        first,
        settle(&mirror.portfolio, &mirror_ledger, &IndexPrices::new()).expect("settle"),
        "store inputs = memory"
    );
    assert!(matches!(store.put_settlement(TENANT, &first).await.expect("put"), Applied::Now(s) if s.sequence == 1));
    assert!(
        matches!(store.put_settlement(TENANT, &first).await.expect("again"), Applied::Before(s) if s.sequence == 1)
    );
    let fix: Vec<Reading> = readings("m-shop", &Period::day(date(2024, 2, 29)), 11, 30_000);
    store.load_readings(TENANT, &fix, "leap-day.csv").await.expect("load 3");
    let (p, log, prices) = store.settlement_inputs(TENANT, &cid("shop-2024"), &february).await.expect("inputs");
    let ledger = p.ledger(&cid("shop-2024"), &february, &log, &prices, None).expect("ledger");
    let second = settle(&p, &ledger, &prices).expect("settle");
    assert_ne!(second.input_hash, first.input_hash);
    assert_eq!(second.readings_revision, 3);
    assert!(matches!(store.put_settlement(TENANT, &second).await.expect("put"), Applied::Now(s) if s.sequence == 2));
    let runs = store.settlements(TENANT, &cid("shop-2024")).await.expect("runs");
    assert_eq!(runs.iter().map(|r| (r.sequence, r.superseded)).collect::<Vec<_>>(), [(1, true), (2, false)]);
    assert_eq!(runs[0].settlement, first, "a superseded run is kept as it was");

    // The daily totals, kept by differences, equal a fresh sum of the rollups.
    let kept: Vec<(String, String, i64, i64, i64, i64)> = sqlx::query_as(
        "SELECT scope, day, contracted_wh, delivered_wh, intervals, missing FROM contracts_totals \
         WHERE tenant = $1 AND (contracted_wh <> 0 OR delivered_wh <> 0 OR intervals <> 0) ORDER BY scope, day",
    )
    .bind(TENANT)
    .fetch_all(store.pool())
    .await
    .expect("totals");
    let fresh: Vec<(String, String, i64, i64, i64, i64)> = sqlx::query_as(
        "SELECT scope, day, CAST(SUM(c) AS BIGINT), CAST(SUM(d) AS BIGINT), CAST(SUM(i) AS BIGINT), CAST(SUM(m) AS BIGINT) \
         FROM (SELECT '' AS scope, day, contracted_wh AS c, delivered_wh AS d, intervals AS i, missing AS m \
               FROM contracts_rollups WHERE tenant = $1 \
               UNION ALL SELECT 'party:' || k.buyer, r.day, r.contracted_wh, r.delivered_wh, r.intervals, r.missing \
               FROM contracts_rollups r JOIN contracts_contracts k ON k.tenant = r.tenant AND k.id = r.contract WHERE r.tenant = $1 \
               UNION ALL SELECT 'party:' || k.seller, r.day, r.contracted_wh, r.delivered_wh, r.intervals, r.missing \
               FROM contracts_rollups r JOIN contracts_contracts k ON k.tenant = r.tenant AND k.id = r.contract WHERE r.tenant = $1) AS t \
         GROUP BY scope, day ORDER BY scope, day",
    )
    .bind(TENANT)
    .fetch_all(store.pool())
    .await
    .expect("fresh sums");
    assert_eq!(kept.len(), fresh.len());
    assert!(kept == fresh, "the kept totals drifted from the rollups");

    // Another tenant sees nothing of this one.
    assert!(store.contract("globex", &cid("shop-2024")).await.expect("read").is_none());
    let theirs = store.volumes("globex", &Scope::Portfolio, &year, Granularity::Year).await.expect("stats");
    assert!(theirs.iter().all(|v| v.contracted.is_zero() && v.delivered.is_zero()));
    assert!(store.settlements("globex", &cid("shop-2024")).await.expect("runs").is_empty());
    assert!(matches!(
        store.change_contract("globex", None, &cid("shop-2024"), "sign", &sign).await,
        Err(ContractStoreError::NotFound { .. })
    ));
    assert!(store.top_deviators("globex", &year, 5).await.expect("top").is_empty());
}

#[tokio::test]
async fn sqlite_answers_from_rollups_what_a_scan_answers() {
    let dir = tempfile::tempdir().expect("tempdir");
    let url = format!("sqlite://{}", dir.path().join("contracts.db").display());
    exercise(&Store::open(&url).await.expect("open")).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_answers_from_rollups_what_a_scan_answers() {
    let Some(db) = support::Scratch::create().await else { return };
    let url = db.url.clone();
    let store = Store::open(&url).await.expect("open");
    exercise(&store).await;
    store.pool().close().await;
    db.drop_database().await;
}
