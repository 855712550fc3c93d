//! Call auctions: every order of a product collected until the gate
//! closes, then cleared at once.
//!
//! The rules, each stated:
//! - **Price.** Demand at a price is every buy order whose limit is at or
//!   above it (market buys always); supply every sell at or below it
//!   (market sells always). The clearing price is where the curves cross:
//!   where excess demand `demand - supply` turns from positive to negative.
//!   Prices are tried at every limit price and between each two
//!   neighbouring ones (the curves are flat in between). Where the curves
//!   meet along a range of prices (a *vertical overlap*, excess demand zero
//!   over the range), the price is the middle of the range, rounded down to
//!   the tick. Where they meet along a range of volumes at one price (a
//!   *horizontal overlap*: one side's step spans the other's volume), the
//!   price is that step's limit. If demand exceeds supply at every price,
//!   the highest such price; if supply always exceeds demand, the lowest.
//!   The crossing is where the most volume `min(demand, supply)` trades.
//!   Without a limit price on either side, or with no volume at the
//!   crossing, nothing clears and there is no price.
//! - **Acceptance.** At the clearing price, the side with less volume is
//!   filled whole. The longer side is filled in price priority (market
//!   orders first); the price level where it runs out is shared pro rata by
//!   quantity, in whole Wh, the Wh left over by rounding going to the
//!   largest remainders and, at equal remainders, to the earlier order.
//! - **Grid fee.** With a fee per kWh, prices are what buyers pay: a sell's
//!   limit counts as its ask plus the fee (it sells only where a buyer
//!   pays both), and a seller receives what the buyer pays less the fee.
//!   Without a fee, both sides see one price.
//! - **Payment.** Pay-as-clear: every accepted buy at the clearing price,
//!   every accepted sell at the clearing price less the fee. Pay-as-bid:
//!   the same accepted orders, each at its own limit (a market order at the
//!   clearing price, less the fee for a sell); what buyers pay above what
//!   sellers receive and the fees is the operator's surplus, reported.
//! - **Trades.** Accepted buys and sells are paired in priority order (the
//!   best buy with the best sell), so every kWh has a buyer and a seller.
//!   A participant's own buy and sell may both be accepted.

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use volta_contracts::{Energy, PartyId};

use crate::error::TradingError;
use crate::order::{OrderId, Side, Trade, settled};
pub use crate::price::Pricing;
use crate::price::{Price, amount};
use crate::product::ProductId;

/// An order of a call auction.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Bid {
    /// Its number (the earlier wins ties).
    pub id: OrderId,
    /// Who places it.
    pub participant: PartyId,
    /// Buy or sell.
    pub side: Side,
    /// Its limit; none for a market order.
    pub price: Option<Price>,
    /// The energy, Wh, positive.
    pub quantity: Energy,
}

impl Bid {
    /// Its limit in what buyers pay under grid fee `fee`: a sell's ask plus
    /// the fee (it sells only where a buyer pays both); none for a market
    /// order.
    #[must_use]
    pub fn buyers_limit(&self, fee: Price) -> Option<Price> {
        match self.side {
            Side::Buy => self.price,
            Side::Sell => self.price.map(|p| p + fee),
        }
    }
}

/// What one order got.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Fill {
    /// The order.
    pub id: OrderId,
    /// Its side.
    pub side: Side,
    /// The energy accepted, Wh (zero: rejected).
    pub quantity: Energy,
    /// The price per kWh it pays or receives.
    pub price: Price,
}

/// The outcome of a call auction.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Clearing {
    /// The clearing price; none when nothing clears.
    pub price: Option<Price>,
    /// The energy traded, Wh.
    pub volume: Energy,
    /// Demand at the clearing price, Wh.
    pub demand: Energy,
    /// Supply at the clearing price, Wh.
    pub supply: Energy,
    /// Every order's fill, in the order given.
    pub fills: Vec<Fill>,
    /// Buyers paired with sellers.
    pub trades: Vec<Trade>,
    /// What buyers pay, exact.
    pub paid: Decimal,
    /// What sellers receive, exact.
    pub received: Decimal,
    /// The grid fees of the volume traded, exact.
    #[serde(default)]
    pub fees: Decimal,
}

impl Clearing {
    /// Buyers' payments above sellers' receipts and the grid fees (zero
    /// under pay-as-clear).
    #[must_use]
    pub fn surplus(&self) -> Decimal {
        self.paid - self.received - self.fees
    }
}

/// The most orders of one auction.
pub const MAX_BIDS: usize = 10_000_000;

/// Clears `bids` of `product` under `pricing`, with grid fee `fee` per kWh
/// (zero: none).
///
/// # Errors
/// A quantity that is not positive or too large, a price beyond the
/// library's bounds, a repeated id, or more than [`MAX_BIDS`] orders; each
/// named by its position; a fee that is negative or beyond the bounds.
pub fn clear(product: &ProductId, bids: &[Bid], pricing: Pricing, fee: Price) -> Result<Clearing, TradingError> {
    check(bids)?;
    crate::price::check_fee(fee)?;
    // Each order's limit in what the buyer pays: a sell's ask plus the fee.
    let limit: Vec<Option<Price>> = bids.iter().map(|b| b.buyers_limit(fee)).collect();
    // Priority order of each side: market orders first, then by price, then by id.
    // (ids are unique, so the order is total and an unstable sort is exact).
    let rank: Vec<(bool, i64, OrderId)> = bids
        .iter()
        .zip(&limit)
        .map(|(b, l)| match (b.side, l) {
            (_, None) => (false, 0, b.id),
            (Side::Buy, Some(p)) => (true, -p.micros(), b.id),
            (Side::Sell, Some(p)) => (true, p.micros(), b.id),
        })
        .collect();
    let (mut buys, mut sells): (Vec<usize>, Vec<usize>) = (0..bids.len()).partition(|&i| bids[i].side == Side::Buy);
    buys.sort_unstable_by_key(|&i| rank[i]);
    sells.sort_unstable_by_key(|&i| rank[i]);

    let limits = distinct_limits(&limit, &buys, &sells);
    // Every limit, and a price between each two neighbours.
    let mut candidates = Vec::with_capacity(2 * limits.len());
    for (k, p) in limits.iter().enumerate() {
        if k > 0 {
            candidates.push(limits[k - 1].midpoint(*p));
        }
        candidates.push(*p);
    }
    candidates.dedup();
    let demand_at = |p: Price| -> Energy {
        buys.iter().take_while(|&&i| limit[i].is_none_or(|l| l >= p)).map(|&i| bids[i].quantity).sum()
    };
    let supply_at = |p: Price| -> Energy {
        sells.iter().take_while(|&&i| limit[i].is_none_or(|l| l <= p)).map(|&i| bids[i].quantity).sum()
    };
    let curves = curves(bids, &limit, &buys, &sells, &candidates);
    let nothing = |demand, supply| Clearing {
        price: None,
        volume: Energy::ZERO,
        demand,
        supply,
        fills: bids
            .iter()
            .map(|b| Fill { id: b.id, side: b.side, quantity: Energy::ZERO, price: Price::ZERO })
            .collect(),
        trades: Vec::new(),
        paid: Decimal::ZERO,
        received: Decimal::ZERO,
        fees: Decimal::ZERO,
    };
    // Excess demand is non-increasing in the price: find where it crosses zero.
    let excess: Vec<i64> = curves.iter().map(|(d, s)| d.wh() - s.wh()).collect();
    let zero: Vec<Price> = candidates.iter().zip(&excess).filter(|(_, e)| **e == 0).map(|(p, _)| *p).collect();
    let last_short = candidates.iter().zip(&excess).filter(|(_, e)| **e > 0).map(|(p, _)| *p).next_back();
    let first_long = candidates.iter().zip(&excess).find(|(_, e)| **e < 0).map(|(p, _)| *p);
    let is_limit = |p: Price| limits.binary_search(&p).is_ok();
    let (low, high) = match (zero.first(), zero.last(), last_short, first_long) {
        (Some(&low), Some(&high), _, _) => (low, high),
        // A step between: its limit is the price.
        (_, _, Some(a), Some(b)) => {
            let p = if is_limit(b) { b } else { a };
            (p, p)
        }
        (_, _, Some(a), None) => (a, a),
        (_, _, None, Some(b)) => (b, b),
        (_, _, None, None) => return Ok(nothing(Energy::ZERO, Energy::ZERO)),
    };
    let price = low.midpoint(high);
    let (demand, supply) = (demand_at(price), supply_at(price));
    let volume = demand.min(supply);
    if volume.is_zero() {
        return Ok(nothing(demand, supply));
    }

    let mut accepted = vec![Energy::ZERO; bids.len()];
    for (side, order) in [(Side::Buy, &buys), (Side::Sell, &sells)] {
        let eligible: Vec<usize> = order
            .iter()
            .copied()
            .take_while(|&i| match (side, limit[i]) {
                (_, None) => true,
                (Side::Buy, Some(l)) => l >= price,
                (Side::Sell, Some(l)) => l <= price,
            })
            .collect();
        ration(bids, &eligible, volume, &mut accepted);
    }
    let settle_price = |b: &Bid| {
        let at_price = settled(b.side, price, fee);
        match pricing {
            Pricing::PayAsClear => at_price,
            Pricing::PayAsBid => b.price.unwrap_or(at_price),
        }
    };
    let fills: Vec<Fill> = bids
        .iter()
        .zip(&accepted)
        .map(|(b, q)| Fill { id: b.id, side: b.side, quantity: *q, price: settle_price(b) })
        .collect();
    // Summed exactly in 1e-9 of the currency (Wh × millionths per kWh),
    // then made a decimal once.
    let (mut paid, mut received) = (0_i128, 0_i128);
    for f in &fills {
        let value = i128::from(f.quantity.wh()) * i128::from(f.price.micros());
        match f.side {
            Side::Buy => paid += value,
            Side::Sell => received += value,
        }
    }
    let (paid, received) = (nano(paid), nano(received));
    let trades = pair(product, bids, &buys, &sells, &accepted, &settle_price, fee);
    let fees = amount(volume, fee);
    Ok(Clearing { price: Some(price), volume, demand, supply, fills, trades, paid, received, fees })
}

/// An amount in 1e-9 of the currency as a decimal.
fn nano(value: i128) -> Decimal {
    Decimal::from_i128_with_scale(value, 9).normalize()
}

fn check(bids: &[Bid]) -> Result<(), TradingError> {
    crate::at_most("bids", bids.len(), MAX_BIDS)?;
    for (i, b) in bids.iter().enumerate() {
        if b.quantity <= Energy::ZERO || b.quantity > crate::order::MAX_QUANTITY {
            return Err(TradingError::invalid(
                format!("bids[{i}].quantity"),
                format!("{} kWh; positive and at most {} kWh", b.quantity, crate::order::MAX_QUANTITY),
            ));
        }
        if b.price.is_some_and(|p| p.micros().abs() > Price::LIMIT.micros()) {
            return Err(TradingError::invalid(format!("bids[{i}].price"), format!("beyond ±{}", Price::LIMIT)));
        }
    }
    // Repeated ids: none when they come in increasing order (a book read
    // in the order it was written), else by sorting (cheaper than hashing
    // every id); the later of two is named.
    if bids.windows(2).all(|w| w[0].id < w[1].id) {
        return Ok(());
    }
    let mut ids: Vec<(OrderId, usize)> = bids.iter().enumerate().map(|(i, b)| (b.id, i)).collect();
    ids.sort_unstable();
    if let Some(pair) = ids.windows(2).find(|w| w[0].0 == w[1].0) {
        let (id, i) = pair[1];
        return Err(TradingError::invalid(format!("bids[{i}].id"), format!("{id} is repeated")));
    }
    Ok(())
}

/// The distinct limits of both sides, increasing: the two priority orders
/// merged (buys come by decreasing limit after their market orders, sells
/// by increasing limit after theirs), with no sort of their own.
fn distinct_limits(limit: &[Option<Price>], buys: &[usize], sells: &[usize]) -> Vec<Price> {
    let mut up_buys = buys.iter().rev().map_while(|&i| limit[i]).peekable();
    let mut up_sells = sells.iter().skip_while(|&&i| limit[i].is_none()).filter_map(|&i| limit[i]).peekable();
    let mut merged: Vec<Price> = Vec::with_capacity(buys.len() + sells.len());
    loop {
        let next = match (up_buys.peek(), up_sells.peek()) {
            (Some(b), Some(s)) if b <= s => up_buys.next(),
            (_, Some(_)) => up_sells.next(),
            (Some(_), None) => up_buys.next(),
            (None, None) => break,
        };
        if let Some(p) = next
            && merged.last() != Some(&p)
        {
            merged.push(p);
        }
    }
    merged
}

/// Demand and supply at each candidate price (increasing), in one pass,
/// with each order at its `limit`.
fn curves(
    bids: &[Bid],
    limit: &[Option<Price>],
    buys: &[usize],
    sells: &[usize],
    candidates: &[Price],
) -> Vec<(Energy, Energy)> {
    // Demand at p: market buys plus limits >= p. Walk candidates downwards
    // adding buys (sorted by price descending after the market ones).
    let mut demand = vec![Energy::ZERO; candidates.len()];
    let mut b = 0;
    let mut acc = Energy::ZERO;
    while b < buys.len() && limit[buys[b]].is_none() {
        acc += bids[buys[b]].quantity;
        b += 1;
    }
    for (k, p) in candidates.iter().enumerate().rev() {
        while b < buys.len() && limit[buys[b]].is_some_and(|l| l >= *p) {
            acc += bids[buys[b]].quantity;
            b += 1;
        }
        demand[k] = acc;
    }
    let mut supply = vec![Energy::ZERO; candidates.len()];
    let mut s = 0;
    let mut acc = Energy::ZERO;
    while s < sells.len() && limit[sells[s]].is_none() {
        acc += bids[sells[s]].quantity;
        s += 1;
    }
    for (k, p) in candidates.iter().enumerate() {
        while s < sells.len() && limit[sells[s]].is_some_and(|l| l <= *p) {
            acc += bids[sells[s]].quantity;
            s += 1;
        }
        supply[k] = acc;
    }
    demand.into_iter().zip(supply).collect()
}

/// Fills `eligible` (in priority order) with `volume`: whole price levels
/// while they fit, the level where it runs out pro rata.
fn ration(bids: &[Bid], eligible: &[usize], volume: Energy, accepted: &mut [Energy]) {
    let mut left = volume;
    let mut k = 0;
    while k < eligible.len() && !left.is_zero() {
        let price = bids[eligible[k]].price;
        let end = k + eligible[k..].iter().take_while(|&&i| bids[i].price == price).count();
        let level = &eligible[k..end];
        let total: Energy = level.iter().map(|&i| bids[i].quantity).sum();
        if total <= left {
            for &i in level {
                accepted[i] = bids[i].quantity;
            }
            left -= total;
        } else {
            for (&i, share) in level.iter().zip(pro_rata(bids, level, left, total)) {
                accepted[i] = share;
            }
            left = Energy::ZERO;
        }
        k = end;
    }
}

/// `left` Wh shared among `level` by quantity: floors, then the leftover
/// Wh to the largest remainders, ties to the earlier order.
fn pro_rata(bids: &[Bid], level: &[usize], left: Energy, total: Energy) -> Vec<Energy> {
    let (left, total) = (i128::from(left.wh()), i128::from(total.wh()));
    let mut shares: Vec<(i128, i128)> = level
        .iter()
        .map(|&i| {
            let q = i128::from(bids[i].quantity.wh());
            ((q * left) / total, (q * left) % total)
        })
        .collect();
    let given: i128 = shares.iter().map(|s| s.0).sum();
    let mut order: Vec<usize> = (0..level.len()).collect();
    order.sort_by(|&a, &b| shares[b].1.cmp(&shares[a].1).then(bids[level[a]].id.cmp(&bids[level[b]].id)));
    for &j in order.iter().take(usize::try_from(left - given).unwrap_or(0)) {
        shares[j].0 += 1;
    }
    shares.into_iter().map(|(s, _)| Energy::from_wh(i64::try_from(s).unwrap_or(i64::MAX))).collect()
}

/// Pairs accepted buys with accepted sells in priority order.
fn pair(
    product: &ProductId,
    bids: &[Bid],
    buys: &[usize],
    sells: &[usize],
    accepted: &[Energy],
    price_of: &dyn Fn(&Bid) -> Price,
    fee: Price,
) -> Vec<Trade> {
    let live = |list: &[usize]| list.iter().copied().filter(|&i| !accepted[i].is_zero()).collect::<Vec<_>>();
    let (buys, sells) = (live(buys), live(sells));
    // Each trade uses up a buy or a sell (the last both).
    let mut trades = Vec::with_capacity((buys.len() + sells.len()).saturating_sub(1));
    let (mut bi, mut si) = (0, 0);
    let (mut buy_left, mut sell_left) =
        (buys.first().map_or(Energy::ZERO, |&i| accepted[i]), sells.first().map_or(Energy::ZERO, |&i| accepted[i]));
    while bi < buys.len() && si < sells.len() {
        let (b, s) = (&bids[buys[bi]], &bids[sells[si]]);
        let quantity = buy_left.min(sell_left);
        trades.push(Trade {
            product: product.clone(),
            buy: b.id,
            sell: s.id,
            buyer: b.participant.clone(),
            seller: s.participant.clone(),
            quantity,
            buyer_price: price_of(b),
            seller_price: price_of(s),
            grid_fee: fee,
        });
        buy_left -= quantity;
        sell_left -= quantity;
        if buy_left.is_zero() {
            bi += 1;
            buy_left = buys.get(bi).map_or(Energy::ZERO, |&i| accepted[i]);
        }
        if sell_left.is_zero() {
            si += 1;
            sell_left = sells.get(si).map_or(Energy::ZERO, |&i| accepted[i]);
        }
    }
    trades
}
