//! Welfare-maximising clearing over a network, on HiGHS.
//!
//! The market operator accepts the orders that maximise the gains from
//! trade (what buyers would pay minus what sellers ask minus the grid fees
//! of the flows), subject to each node's balance in each interval and the
//! lines' capacities:
//!
//! - **Simple orders** (a step of a curve) are divisible: any share of
//!   their quantity may be accepted.
//! - **Block orders** are all or nothing over several intervals, one
//!   binary each: a MILP.
//! - **The network** is a transport model: energy flows over lines up to
//!   their capacity in each direction, paying a grid fee per kWh moved;
//!   Kirchhoff's voltage law is not imposed (for the radial networks of
//!   most microgrids and parks the two coincide). Free lines would let the
//!   welfare carry any loop flow, so the flows reported are those of a
//!   second LP: the least energy moved (after fees) that serves the same
//!   injections.
//! - **Prices.** The price at a node in an interval is the dual of its
//!   balance: what one more kWh there would be worth. With blocks, the
//!   duals are those of the LP with every block fixed at its decision.
//!   Without congestion and fees every node has one price; a congested
//!   line splits them.
//! - **Grid fee.** A flat fee per kWh traded (the market's, beside the
//!   lines' fees) lowers what every bid is worth to the welfare by the fee;
//!   the nodal prices are then what buyers pay, and sellers receive them
//!   less the fee, as in a call auction.
//! - **Payment.** Every accepted kWh settles at its node's price. Blocks
//!   are not forbidden to lose money at those prices: a block accepted
//!   below its asking (or above its bid) is *paradoxically accepted* and
//!   its loss, the uplift it needs, is reported; a block rejected though the
//!   prices would have paid it is *paradoxically rejected*, and reported.
//!
//! Energies are solved in kWh and reported rounded to the Wh; prices to the
//! tick (a millionth per kWh).

use std::collections::{BTreeMap, HashMap};

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use volta_contracts::{Energy, PartyId};
use volta_lp::{Col, Integrality, Lin, Lp, Outcome, Row, Settings};

use crate::error::TradingError;
pub use crate::network::{Line, Network, NodeId};
use crate::order::{OrderId, Side, Trade};
use crate::price::{Price, amount};
use crate::product::ProductId;

/// A divisible order: one step of a participant's curve in one interval.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Step {
    /// Its number.
    pub id: OrderId,
    /// Who places it.
    pub participant: PartyId,
    /// The interval.
    pub product: ProductId,
    /// Where.
    pub node: NodeId,
    /// Buy or sell.
    pub side: Side,
    /// The limit per kWh.
    pub price: Price,
    /// The energy, Wh, positive.
    pub quantity: Energy,
}

/// An all-or-nothing order over several intervals at one node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Block {
    /// Its number.
    pub id: OrderId,
    /// Who places it.
    pub participant: PartyId,
    /// Where.
    pub node: NodeId,
    /// Buy or sell.
    pub side: Side,
    /// The limit per kWh, over the whole block.
    pub price: Price,
    /// The energy in each of its intervals, Wh, positive.
    pub profile: Vec<(ProductId, Energy)>,
}

/// The book to clear.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Book {
    /// Divisible orders.
    pub steps: Vec<Step>,
    /// Block orders.
    pub blocks: Vec<Block>,
}

/// The price of a node in an interval.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodalPrice {
    /// The interval.
    pub product: ProductId,
    /// The node.
    pub node: NodeId,
    /// The price per kWh buyers pay (sellers receive it less the grid fee).
    pub price: Price,
}

/// A line's flow in an interval (positive: from `from` to `to`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Flow {
    /// The interval.
    pub product: ProductId,
    /// The line.
    pub line: String,
    /// The energy, Wh.
    pub energy: Energy,
    /// Whether it is at the line's capacity.
    pub congested: bool,
}

/// What a block got.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BlockResult {
    /// The block.
    pub id: OrderId,
    /// Accepted or not.
    pub accepted: bool,
    /// Its value at the nodal prices minus its limit, over its energy: what
    /// it gains (a buyer: limit minus prices; a seller: prices minus limit).
    pub surplus: Decimal,
    /// Accepted at a loss (its uplift is `-surplus`).
    pub paradoxically_accepted: bool,
    /// Rejected though the prices would have paid it.
    pub paradoxically_rejected: bool,
}

/// The outcome of a welfare clearing.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Welfare {
    /// The gains from trade, per the objective.
    pub welfare: f64,
    /// Each step's accepted energy, in the order given.
    pub steps: Vec<(OrderId, Energy)>,
    /// Each block's decision.
    pub blocks: Vec<BlockResult>,
    /// The price of every node in every interval.
    pub prices: Vec<NodalPrice>,
    /// Every line's flow in every interval.
    pub flows: Vec<Flow>,
    /// What accepted buyers pay at their nodal prices, exact.
    pub paid: Decimal,
    /// What accepted sellers receive, exact.
    pub received: Decimal,
    /// The flat grid fee per kWh it cleared with.
    #[serde(default)]
    pub grid_fee: Price,
    /// The flat grid fees of the energy traded, exact (the lines' fees are
    /// in what buyers pay above what sellers receive, beside these).
    #[serde(default)]
    pub fees: Decimal,
    /// Seconds in HiGHS (the MILP and the priced LP).
    pub solve_seconds: f64,
}

/// The most orders of one welfare clearing (steps plus blocks).
pub const MAX_ORDERS: usize = 1_000_000;

/// The most intervals of one block.
pub const MAX_BLOCK_LENGTH: usize = 96 * 7;

/// Clears `book` over `network` with a flat grid fee of `fee` per kWh
/// traded (zero: none), maximising welfare.
///
/// # Errors
/// An order at an unknown node, a bad quantity, price or line, or too many
/// orders, each named by its path; a failure of the solver.
pub fn clear(network: &Network, book: &Book, fee: Price, settings: &Settings) -> Result<Welfare, TradingError> {
    check(network, book)?;
    crate::price::check_fee(fee)?;
    let started = std::time::Instant::now();
    let decisions = if book.blocks.is_empty() {
        Vec::new()
    } else {
        let Model { lp, objective, blocks, .. } = Model::build(network, book, fee, Integrality::Integer);
        let s = volta_lp::solve(lp, &objective, settings).map_err(TradingError::Solver)?;
        let x = s.x.ok_or_else(|| TradingError::Solver(format!("no solution found ({:?})", s.outcome)))?;
        blocks.iter().map(|c| x[c.0].round().clamp(0.0, 1.0)).collect()
    };
    // The LP (blocks fixed at their decisions) gives the prices.
    let model = Model::build(network, book, fee, Integrality::Fixed(decisions));
    let Model { lp, objective, steps, blocks, balance, lines: flows, .. } = model;
    let s = volta_lp::solve(lp, &objective, settings).map_err(TradingError::Solver)?;
    if s.outcome != Outcome::Optimal {
        return Err(TradingError::Solver(format!("the priced LP ended {:?}", s.outcome)));
    }
    let (Some(x), Some(duals)) = (s.x, s.duals) else {
        return Err(TradingError::Solver("the priced LP gave no solution".to_owned()));
    };
    let wh = |kwh: f64| Energy::from_wh((kwh * 1000.0).round() as i64);
    let tick = |v: f64| Price::from_micros((v * 1e6).round() as i64);
    let prices: Vec<NodalPrice> = balance
        .iter()
        .map(|((product, node), row)| NodalPrice {
            product: product.clone(),
            node: node.clone(),
            // The dual is what a kWh is worth net of the fee: the seller's.
            price: tick(duals[row.0]) + fee,
        })
        .collect();
    let price_at: HashMap<(&str, &str), Price> =
        prices.iter().map(|p| ((p.product.as_str(), p.node.as_str()), p.price)).collect();

    let step_results: Vec<(OrderId, Energy)> =
        book.steps.iter().zip(&steps).map(|(o, c)| (o.id, wh(x[c.0] * kwh_of(o.quantity)))).collect();
    // What a side pays or receives per kWh at a node's price.
    let settled = |side: Side, price: Price| crate::order::settled(side, price, fee);
    let (mut paid, mut received, mut bought) = (Decimal::ZERO, Decimal::ZERO, Energy::ZERO);
    for (o, (_, e)) in book.steps.iter().zip(&step_results) {
        let value = amount(*e, settled(o.side, price_at[&(o.product.as_str(), o.node.as_str())]));
        match o.side {
            Side::Buy => {
                paid += value;
                bought += *e;
            }
            Side::Sell => received += value,
        }
    }
    let mut block_results = Vec::with_capacity(book.blocks.len());
    for (b, c) in book.blocks.iter().zip(&blocks) {
        let accepted = x[c.0] > 0.5;
        let at_prices: Decimal =
            b.profile.iter().map(|(p, e)| amount(*e, settled(b.side, price_at[&(p.as_str(), b.node.as_str())]))).sum();
        let at_limit: Decimal = b.profile.iter().map(|(_, e)| amount(*e, b.price)).sum();
        let surplus = match b.side {
            Side::Buy => at_limit - at_prices,
            Side::Sell => at_prices - at_limit,
        };
        if accepted {
            match b.side {
                Side::Buy => {
                    paid += at_prices;
                    bought += b.profile.iter().map(|(_, e)| *e).sum();
                }
                Side::Sell => received += at_prices,
            }
        }
        block_results.push(BlockResult {
            id: b.id,
            accepted,
            surplus,
            paradoxically_accepted: accepted && surplus < Decimal::ZERO,
            paradoxically_rejected: !accepted && surplus > Decimal::ZERO,
        });
    }
    // The welfare LP is indifferent to loop flows on free lines: the flows
    // reported are the least energy moved that serves the same injections.
    let mut injection: HashMap<(&str, &str), f64> = HashMap::new();
    for (o, c) in book.steps.iter().zip(&steps) {
        let q = x[c.0] * kwh_of(o.quantity) * if o.side == Side::Sell { 1.0 } else { -1.0 };
        *injection.entry((o.product.as_str(), o.node.as_str())).or_default() += q;
    }
    for (b, c) in book.blocks.iter().zip(&blocks) {
        for (p, e) in &b.profile {
            let q = x[c.0].round() * kwh_of(*e) * if b.side == Side::Sell { 1.0 } else { -1.0 };
            *injection.entry((p.as_str(), b.node.as_str())).or_default() += q;
        }
    }
    let net_flow = least_flows(network, &balance, &flows, &injection, settings)?;
    let flows = flows
        .iter()
        .zip(&net_flow)
        .map(|(((product, line), _), kwh)| {
            let capacity = network.lines.iter().find(|l| &l.id == line).map_or(Energy::ZERO, |l| l.capacity);
            let energy = wh(*kwh);
            Flow {
                product: product.clone(),
                line: line.clone(),
                energy,
                congested: !capacity.is_zero() && energy.abs() >= capacity - Energy::from_wh(1),
            }
        })
        .collect();
    Ok(Welfare {
        welfare: -s.objective.unwrap_or(0.0),
        steps: step_results,
        blocks: block_results,
        prices,
        flows,
        paid,
        received,
        grid_fee: fee,
        fees: amount(bought, fee),
        solve_seconds: started.elapsed().as_secs_f64(),
    })
}

/// An accepted order's energy in one product, to be paired.
struct Leg<'a> {
    id: OrderId,
    participant: &'a PartyId,
    node: &'a str,
    left: Energy,
}

impl Welfare {
    /// The accepted energy of `book` (the book this clearing was given) as
    /// trades, product by product: each buyer pays its node's price, each
    /// seller receives its node's price less the grid fee, so every side's
    /// energy and money are its own fill at its own node. The pairing is a
    /// bookkeeping of those fills, not a path through the network: buyers
    /// and sellers at the same node are paired first, then the rest, each
    /// list in node order and, within a node, in the book's order. The
    /// fills are rounded to the Wh; a Wh of rounding that leaves one side
    /// longer than the other stays unpaired.
    #[must_use]
    pub fn trades(&self, book: &Book) -> Vec<Trade> {
        let price_at: HashMap<(&str, &str), Price> =
            self.prices.iter().map(|p| ((p.product.as_str(), p.node.as_str()), p.price)).collect();
        let mut legs: BTreeMap<&ProductId, [Vec<Leg<'_>>; 2]> = BTreeMap::new();
        let steps = book.steps.iter().zip(&self.steps).map(|(o, (_, e))| {
            (&o.product, o.side, Leg { id: o.id, participant: &o.participant, node: &o.node, left: *e })
        });
        let blocks = book.blocks.iter().zip(&self.blocks).filter(|(_, r)| r.accepted).flat_map(|(b, r)| {
            b.profile
                .iter()
                .map(move |(p, e)| (p, b.side, Leg { id: r.id, participant: &b.participant, node: &b.node, left: *e }))
        });
        for (product, side, leg) in steps.chain(blocks) {
            if !leg.left.is_zero() {
                legs.entry(product).or_default()[usize::from(side == Side::Sell)].push(leg);
            }
        }
        let mut trades = Vec::new();
        for (product, [mut buys, mut sells]) in legs {
            buys.sort_by(|a, b| a.node.cmp(b.node));
            sells.sort_by(|a, b| a.node.cmp(b.node));
            let mut trade = |b: &Leg<'_>, s: &Leg<'_>, quantity: Energy| {
                let at = |node: &str| price_at.get(&(product.as_str(), node)).copied().unwrap_or(Price::ZERO);
                trades.push(Trade {
                    product: product.clone(),
                    buy: b.id,
                    sell: s.id,
                    buyer: b.participant.clone(),
                    seller: s.participant.clone(),
                    quantity,
                    buyer_price: at(b.node),
                    seller_price: crate::order::settled(Side::Sell, at(s.node), self.grid_fee),
                    grid_fee: self.grid_fee,
                });
            };
            // At each node first (both lists are in node order)...
            let (mut i, mut j) = (0, 0);
            while i < buys.len() && j < sells.len() {
                match buys[i].node.cmp(sells[j].node) {
                    std::cmp::Ordering::Less => i += 1,
                    std::cmp::Ordering::Greater => j += 1,
                    std::cmp::Ordering::Equal => {
                        let q = buys[i].left.min(sells[j].left);
                        trade(&buys[i], &sells[j], q);
                        buys[i].left -= q;
                        sells[j].left -= q;
                        i += usize::from(buys[i].left.is_zero());
                        j += usize::from(sells[j].left.is_zero());
                    }
                }
            }
            // ...then what flows between nodes.
            let (mut i, mut j) = (0, 0);
            loop {
                while i < buys.len() && buys[i].left.is_zero() {
                    i += 1;
                }
                while j < sells.len() && sells[j].left.is_zero() {
                    j += 1;
                }
                if i == buys.len() || j == sells.len() {
                    break;
                }
                let q = buys[i].left.min(sells[j].left);
                trade(&buys[i], &sells[j], q);
                buys[i].left -= q;
                sells[j].left -= q;
            }
        }
        trades
    }
}

/// Per line and interval (in the order of `lines`), the net flow of the
/// least total flow that serves `injection` within the capacities and pays
/// the same fees (fees first, then energy moved).
fn least_flows(
    network: &Network,
    balance: &[((ProductId, NodeId), Row)],
    lines: &[LineFlow],
    injection: &HashMap<(&str, &str), f64>,
    settings: &Settings,
) -> Result<Vec<f64>, TradingError> {
    if lines.is_empty() {
        return Ok(Vec::new());
    }
    let mut lp = Lp::new(Integrality::Integer);
    let mut objective = Lin::new();
    let mut rows: HashMap<(&str, &str), Lin> = balance
        .iter()
        .map(|((p, n), _)| {
            ((p.as_str(), n.as_str()), Lin::constant(injection.get(&(p.as_str(), n.as_str())).copied().unwrap_or(0.0)))
        })
        .collect();
    let mut cols = Vec::with_capacity(lines.len());
    for ((product, id), _) in lines {
        let line = network
            .lines
            .iter()
            .find(|l| &l.id == id)
            .ok_or_else(|| TradingError::invalid("network.lines", id.clone()))?;
        let cap = kwh_of(line.capacity);
        let (forward, backward) = (lp.col(0.0, cap), lp.col(0.0, cap));
        let cost = 1.0 + per_kwh(line.fee) * 1e6;
        objective.add(forward, cost);
        objective.add(backward, cost);
        if let Some(row) = rows.get_mut(&(product.as_str(), line.from.as_str())) {
            row.add(forward, -1.0).add(backward, 1.0);
        }
        if let Some(row) = rows.get_mut(&(product.as_str(), line.to.as_str())) {
            row.add(forward, 1.0).add(backward, -1.0);
        }
        cols.push((forward, backward));
    }
    // Rows with tolerance: the injections are the welfare LP's, within its own.
    for (_, lin) in rows {
        if !lin.is_empty() {
            let mut upper = lin.clone();
            upper.add_constant(-1e-7);
            lp.le(upper, 0.0);
            let mut lower = lin;
            lower.add_constant(1e-7);
            lp.ge(lower, 0.0);
        }
    }
    let s = volta_lp::solve(lp, &objective, settings).map_err(TradingError::Solver)?;
    let x = s.x.ok_or_else(|| TradingError::Solver(format!("no flows serve the clearing ({:?})", s.outcome)))?;
    Ok(cols.iter().map(|(f, b)| x[f.0] - x[b.0]).collect())
}

fn kwh_of(e: Energy) -> f64 {
    e.wh() as f64 / 1000.0
}

fn per_kwh(p: Price) -> f64 {
    p.micros() as f64 / 1e6
}

/// A line's (forward, backward) flow columns in an interval, by (product, line).
type LineFlow = ((ProductId, String), (Col, Col));

/// The problem: one share column per step and block, two flow columns per
/// line and interval, one balance row per node and interval.
struct Model {
    lp: Lp,
    objective: Lin,
    steps: Vec<Col>,
    blocks: Vec<Col>,
    /// Balance rows by (product, node), in a stable order.
    balance: Vec<((ProductId, NodeId), Row)>,
    /// (forward, backward) flow columns by (product, line).
    lines: Vec<LineFlow>,
}

impl Model {
    fn build(network: &Network, book: &Book, fee: Price, integrality: Integrality) -> Self {
        let mut lp = Lp::new(integrality);
        let mut objective = Lin::new();
        // Net injection into each (product, node): sells minus buys.
        let mut injection: Vec<((ProductId, NodeId), Lin)> = Vec::new();
        let mut index: HashMap<(ProductId, NodeId), usize> = HashMap::new();
        let mut products: Vec<ProductId> = book
            .steps
            .iter()
            .map(|s| s.product.clone())
            .chain(book.blocks.iter().flat_map(|b| b.profile.iter().map(|(p, _)| p.clone())))
            .collect();
        products.sort();
        products.dedup();
        for product in &products {
            for node in &network.nodes {
                index.insert((product.clone(), node.clone()), injection.len());
                injection.push(((product.clone(), node.clone()), Lin::new()));
            }
        }
        let sign = |side: Side| match side {
            Side::Buy => -1.0,
            Side::Sell => 1.0,
        };
        // What an order is worth to the welfare per kWh: a bid less the fee.
        let worth = |side: Side, price: Price| match side {
            Side::Buy => per_kwh(price - fee),
            Side::Sell => per_kwh(price),
        };
        let mut steps = Vec::with_capacity(book.steps.len());
        for o in &book.steps {
            let share = lp.col(0.0, 1.0);
            let q = kwh_of(o.quantity);
            // Minimise sells' asks minus buys' bids: the negative welfare.
            objective.add(share, sign(o.side) * worth(o.side, o.price) * q);
            let k = index[&(o.product.clone(), o.node.clone())];
            injection[k].1.add(share, sign(o.side) * q);
            steps.push(share);
        }
        let mut blocks = Vec::with_capacity(book.blocks.len());
        for b in &book.blocks {
            let on = lp.binary();
            let total: f64 = b.profile.iter().map(|(_, e)| kwh_of(*e)).sum();
            objective.add(on, sign(b.side) * worth(b.side, b.price) * total);
            for (p, e) in &b.profile {
                let k = index[&(p.clone(), b.node.clone())];
                injection[k].1.add(on, sign(b.side) * kwh_of(*e));
            }
            blocks.push(on);
        }
        let mut lines = Vec::new();
        for product in &products {
            for line in &network.lines {
                let cap = kwh_of(line.capacity);
                let (forward, backward) = (lp.col(0.0, cap), lp.col(0.0, cap));
                let fee = per_kwh(line.fee);
                objective.add(forward, fee);
                objective.add(backward, fee);
                let (from, to) =
                    (index[&(product.clone(), line.from.clone())], index[&(product.clone(), line.to.clone())]);
                // A forward flow leaves `from` and reaches `to`.
                injection[from].1.add(forward, -1.0).add(backward, 1.0);
                injection[to].1.add(forward, 1.0).add(backward, -1.0);
                lines.push(((product.clone(), line.id.clone()), (forward, backward)));
            }
        }
        // Each node's balance: net injection zero. HiGHS reports the dual of
        // this row, for the minimised negative welfare, as the price of one
        // more kWh injected there (checked against hand-solved books).
        let balance = injection.into_iter().map(|(key, lin)| (key, lp.eq(lin, 0.0))).collect();
        Self { lp, objective, steps, blocks, balance, lines }
    }
}

fn check(network: &Network, book: &Book) -> Result<(), TradingError> {
    crate::at_most("orders", book.steps.len() + book.blocks.len(), MAX_ORDERS)?;
    let nodes = network.check()?;
    let known = |field: String, node: &str| {
        if nodes.contains(node) {
            Ok(())
        } else {
            Err(TradingError::invalid(field, format!("{node:?} is not a node of the network")))
        }
    };
    let quantity = |field: String, e: Energy| crate::order::check_energy(&field, e);
    let price = |field: String, p: Price| {
        if p.micros().abs() > Price::LIMIT.micros() {
            Err(TradingError::invalid(field, format!("beyond ±{}", Price::LIMIT)))
        } else {
            Ok(())
        }
    };
    let mut ids = std::collections::HashSet::new();
    for (i, s) in book.steps.iter().enumerate() {
        known(format!("steps[{i}].node"), &s.node)?;
        quantity(format!("steps[{i}].quantity"), s.quantity)?;
        price(format!("steps[{i}].price"), s.price)?;
        if !ids.insert(s.id) {
            return Err(TradingError::invalid(format!("steps[{i}].id"), format!("{} is repeated", s.id)));
        }
    }
    for (i, b) in book.blocks.iter().enumerate() {
        known(format!("blocks[{i}].node"), &b.node)?;
        price(format!("blocks[{i}].price"), b.price)?;
        if b.profile.is_empty() {
            return Err(TradingError::invalid(format!("blocks[{i}].profile"), "a block spans at least one interval"));
        }
        crate::at_most(&format!("blocks[{i}].profile"), b.profile.len(), MAX_BLOCK_LENGTH)?;
        let mut seen = std::collections::HashSet::new();
        for (k, (p, e)) in b.profile.iter().enumerate() {
            quantity(format!("blocks[{i}].profile[{k}]"), *e)?;
            if !seen.insert(p) {
                return Err(TradingError::invalid(format!("blocks[{i}].profile[{k}]"), format!("{p} is repeated")));
            }
        }
        if !ids.insert(b.id) {
            return Err(TradingError::invalid(format!("blocks[{i}].id"), format!("{} is repeated", b.id)));
        }
    }
    Ok(())
}
