//! Fixtures for the unit tests.

use std::str::FromStr as _;

use jiff::civil::{date, time};
use rust_decimal::Decimal;

use crate::quantity::{Energy, Percent, Price, Rounding};
use crate::terms::{Kind, MonthVolume, PeriodShare, PriceRule, Quantity, Shape, Terms};
use crate::tou::{DayName, TouPeriod, TouRule, TouTable};

/// An id of any kind, known to be valid.
pub(crate) fn id<T: TryFrom<String>>(text: &str) -> T
where
    T::Error: std::fmt::Debug,
{
    T::try_from(text.to_owned()).expect("a valid id")
}

pub(crate) fn dec(text: &str) -> Decimal {
    Decimal::from_str(text).expect("a decimal")
}

/// 2025, 30 000 kWh a month, flat, at `price`; no band.
pub(crate) fn fixed_terms(price: &str) -> Terms {
    Terms {
        kind: Kind::FixedPrice,
        delivery_first: date(2025, 1, 1),
        delivery_last: date(2025, 12, 31),
        price: PriceRule::Fixed { price: Price::new(dec(price)) },
        quantity: Quantity::Monthly {
            months: (1..=12)
                .map(|m| MonthVolume { month: date(2025, m, 1), energy: Energy::from_kwh(30_000) })
                .collect(),
        },
        shape: Shape::Flat,
        band: None,
        penalty: None,
        currency: "CNY".into(),
        decimals: 2,
        rounding: Rounding::HalfUp,
    }
}

/// Every day: peak 08:00-22:00 at 0.30, off-peak 22:00-08:00 at 0.10.
pub(crate) fn tou_table() -> TouTable {
    let all_days = vec![
        DayName::Monday,
        DayName::Tuesday,
        DayName::Wednesday,
        DayName::Thursday,
        DayName::Friday,
        DayName::Saturday,
        DayName::Sunday,
    ];
    let months: Vec<i8> = (1..=12).collect();
    TouTable {
        periods: vec![
            TouPeriod { name: "peak".into(), price: Price::new(dec("0.30")) },
            TouPeriod { name: "off_peak".into(), price: Price::new(dec("0.10")) },
        ],
        rules: vec![
            TouRule {
                months: months.clone(),
                weekdays: all_days.clone(),
                from: time(8, 0, 0, 0),
                to: time(22, 0, 0, 0),
                period: "peak".into(),
            },
            TouRule {
                months,
                weekdays: all_days,
                from: time(22, 0, 0, 0),
                to: time(8, 0, 0, 0),
                period: "off_peak".into(),
            },
        ],
        tiers: vec![],
    }
}

/// A TOU retail contract for 2025: 30 000 kWh a month, 60 % in peak hours.
pub(crate) fn tou_terms() -> Terms {
    Terms {
        kind: Kind::TimeOfUse,
        price: PriceRule::Tou { table: tou_table() },
        shape: Shape::ByTouPeriod {
            shares: vec![
                PeriodShare { period: "peak".into(), share: Percent::new(dec("60")) },
                PeriodShare { period: "off_peak".into(), share: Percent::new(dec("40")) },
            ],
        },
        ..fixed_terms("0")
    }
}
