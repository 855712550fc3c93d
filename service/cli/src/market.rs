//! `volta market`: clear a book of orders offline.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context as _, anyhow, bail};
use jiff::Timestamp;
use volta_contracts::{Energy, PartyId};
use volta_trading::welfare::{self, Block, Network, Step};
use volta_trading::{Bid, Price, Pricing, ProductId, Side};

pub(super) const LONG_ABOUT: &str = "\
Clear a book of orders offline, by one of the market's mechanisms:

  pay-as-clear  a call auction per interval: one price where supply and demand
                cross, everyone at it
  pay-as-bid    the same acceptance, everyone at their own limit
  welfare       the gains from trade maximised on HiGHS over a network of nodes
                and lines (capacities, grid fees), block orders all or nothing,
                a price per node and interval from the duals

The orders are CSV with a header: id,participant,start,node,side,price,kwh and
an optional block column (rows sharing a block id form one all-or-nothing
block over their intervals, welfare only). `start` is the interval's start in
RFC 3339 with its offset, `price` per kWh (at most six decimals), `kwh` at
most three decimals. The network (welfare) is TOML: nodes = [...] and
[[lines]] with id, from, to, capacity_kwh and an optional fee per kWh.

Every mechanism can charge a flat grid fee per kWh traded (--grid-fee; under
welfare on top of the lines' fees): prices are then what buyers pay, a sell
counts at its ask plus the fee, and sellers receive the price less the fee. The rules of each mechanism, ties and
rationing included, are in docs/trading.md.";

pub(super) const AFTER_HELP: &str = "\
Examples:
  volta market clear orders.csv --mechanism pay-as-clear --plot curves.png
  volta market clear orders.csv --grid-fee 0.03
  volta market clear orders.csv --mechanism welfare --network park.toml --fills fills.csv";

/// Arguments of `volta market`.
#[derive(Debug, clap::Args)]
pub(super) struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, clap::Subcommand)]
enum Command {
    /// Clear a book of orders (CSV) by a mechanism.
    Clear {
        /// The orders.
        orders: PathBuf,
        /// The mechanism.
        #[arg(long, value_enum, default_value_t = Mechanism::PayAsClear)]
        mechanism: Mechanism,
        /// The network (welfare): nodes and lines, TOML. Default: every node of the orders joined by nothing.
        #[arg(long, value_name = "TOML")]
        network: Option<PathBuf>,
        /// Minutes of an interval (the product length).
        #[arg(long, default_value_t = 60)]
        minutes: i64,
        /// A flat grid fee per kWh traded, paid by buyers on top of what sellers receive (under welfare, beside the lines' fees).
        #[arg(long, value_name = "PRICE", default_value = "0")]
        grid_fee: Price,
        /// Write every order's accepted energy and price to this CSV.
        #[arg(long, value_name = "CSV")]
        fills: Option<PathBuf>,
        /// Draw the supply and demand curves of the first interval, with the clearing point, to this PNG.
        #[arg(long, value_name = "PNG")]
        plot: Option<PathBuf>,
        /// Clear every interval this many times in a row (a call auction; 1 to 1000) and report on stderr the first
        /// clearing's time and the median of the others: the cold call and the steady state, for benchmarks. The
        /// result is the same each time.
        #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..=1000))]
        repeat: u16,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Mechanism {
    PayAsClear,
    PayAsBid,
    Welfare,
}

/// One row of an orders file.
#[derive(Debug, Clone)]
struct Row {
    id: u64,
    participant: PartyId,
    product: ProductId,
    start: Timestamp,
    node: String,
    side: Side,
    price: Price,
    quantity: Energy,
    block: Option<String>,
}

pub(super) fn run(args: &Args) -> anyhow::Result<ExitCode> {
    let Command::Clear { orders, mechanism, network, minutes, grid_fee, fills, plot, repeat } = &args.command;
    volta_trading::price::check_fee(*grid_fee).context("--grid-fee")?;
    if ![5, 10, 15, 30, 60].contains(minutes) {
        bail!("--minutes {minutes}: one of 5, 10, 15, 30, 60");
    }
    let rows = read(orders, *minutes)?;
    let mut products: Vec<(Timestamp, ProductId)> = rows.iter().map(|r| (r.start, r.product.clone())).collect();
    products.sort();
    products.dedup();
    let mut out: Vec<(u64, Energy, Price)> = Vec::new();
    match mechanism {
        Mechanism::PayAsClear | Mechanism::PayAsBid => {
            if network.is_some() {
                bail!("--network is for --mechanism welfare; a call auction clears one zone");
            }
            if let Some(r) = rows.iter().find(|r| r.block.is_some()) {
                bail!("order {}: blocks clear only under --mechanism welfare", r.id);
            }
            let nodes: std::collections::BTreeSet<&str> = rows.iter().map(|r| r.node.as_str()).collect();
            if nodes.len() > 1 {
                bail!(
                    "a call auction clears one zone; the orders are at nodes {nodes:?}: use --mechanism welfare --network FILE"
                );
            }
            let pricing = if *mechanism == Mechanism::PayAsBid { Pricing::PayAsBid } else { Pricing::PayAsClear };
            say!(
                "{:<28} {:>10} {:>14} {:>14} {:>14} {:>12}",
                "interval",
                "price",
                "volume kWh",
                "demand kWh",
                "supply kWh",
                "surplus"
            );
            let mut clearing = std::time::Duration::ZERO;
            // The time of each repetition after the first, over all intervals.
            let mut again = vec![std::time::Duration::ZERO; usize::from(*repeat) - 1];
            let mut fees = rust_decimal::Decimal::ZERO;
            for (i, (_, product)) in products.iter().enumerate() {
                let bids: Vec<Bid> = rows
                    .iter()
                    .filter(|r| &r.product == product)
                    .map(|r| Bid {
                        id: r.id,
                        participant: r.participant.clone(),
                        side: r.side,
                        price: Some(r.price),
                        quantity: r.quantity,
                    })
                    .collect();
                let started = std::time::Instant::now();
                let c = volta_trading::clear(product, &bids, pricing, *grid_fee)?;
                clearing += started.elapsed();
                for time in &mut again {
                    let started = std::time::Instant::now();
                    std::hint::black_box(volta_trading::clear(product, &bids, pricing, *grid_fee)?);
                    *time += started.elapsed();
                }
                say!(
                    "{:<28} {:>10} {:>14} {:>14} {:>14} {:>12}",
                    product.as_str(),
                    c.price.map_or_else(|| "none".to_owned(), |p| p.to_string()),
                    c.volume,
                    c.demand,
                    c.supply,
                    c.surplus().round_dp(6)
                );
                out.extend(c.fills.iter().map(|f| (f.id, f.quantity, f.price)));
                fees += c.fees;
                if i == 0
                    && let Some(path) = plot
                {
                    // In what buyers pay: a sell at its ask plus the fee.
                    let shown: Vec<Bid> =
                        bids.iter().map(|b| Bid { price: b.buyers_limit(*grid_fee), ..b.clone() }).collect();
                    crate::report::market::curves(product.as_str(), &shown, *grid_fee, c.price, c.volume, path)?;
                    eprintln!("plot: {}", path.display());
                }
            }
            if *grid_fee != Price::ZERO {
                say!("grid fees {} ({grid_fee} per kWh; prices are what buyers pay)", fees.normalize());
            }
            eprintln!("cleared {} orders in {:.3} ms", rows.len(), clearing.as_secs_f64() * 1e3);
            if !again.is_empty() {
                again.sort();
                let median = again[again.len() / 2];
                eprintln!("then {} times more: median {:.3} ms", again.len(), median.as_secs_f64() * 1e3);
            }
        }
        Mechanism::Welfare => {
            if *repeat > 1 {
                bail!("--repeat times a call auction; a welfare clearing reports its solver's time");
            }
            let network = match network {
                Some(path) => read_network(path)?,
                None => {
                    let nodes: std::collections::BTreeSet<String> = rows.iter().map(|r| r.node.clone()).collect();
                    Network { nodes: nodes.into_iter().collect(), lines: Vec::new() }
                }
            };
            let (book, members) = book(&rows)?;
            let w = welfare::clear(&network, &book, *grid_fee, &volta_lp::Settings::default())?;
            say!(
                "welfare {:.6}; buyers pay {}, sellers receive {} ({:.2} s)",
                w.welfare,
                w.paid.round_dp(6).normalize(),
                w.received.round_dp(6).normalize(),
                w.solve_seconds
            );
            if *grid_fee != Price::ZERO {
                say!("grid fees {} ({grid_fee} per kWh; prices are what buyers pay)", w.fees.normalize());
            }
            say!("{:<28} {:<12} {:>10}", "interval", "node", "price");
            for p in &w.prices {
                say!("{:<28} {:<12} {:>10}", p.product.as_str(), p.node, p.price);
            }
            for f in w.flows.iter().filter(|f| f.congested) {
                say!("congested: line {} in {} ({} kWh)", f.line, f.product.as_str(), f.energy);
            }
            for b in &w.blocks {
                if b.paradoxically_accepted {
                    say!("block {}: accepted at a loss of {} (uplift)", b.id, (-b.surplus).round_dp(6));
                }
                if b.paradoxically_rejected {
                    say!("block {}: rejected though the prices would pay it {}", b.id, b.surplus.round_dp(6));
                }
            }
            let price_of: BTreeMap<(&str, &str), Price> =
                w.prices.iter().map(|p| ((p.product.as_str(), p.node.as_str()), p.price)).collect();
            let mut accepted: BTreeMap<u64, Energy> = w.steps.iter().copied().collect();
            for (ids, result) in members.iter().zip(&w.blocks) {
                for id in ids {
                    let r = rows.iter().find(|r| r.id == *id).context("block row")?;
                    accepted.insert(*id, if result.accepted { r.quantity } else { Energy::ZERO });
                }
            }
            for r in &rows {
                let price = price_of[&(r.product.as_str(), r.node.as_str())];
                let price = volta_trading::order::settled(r.side, price, *grid_fee);
                out.push((r.id, accepted.get(&r.id).copied().unwrap_or(Energy::ZERO), price));
            }
        }
    }
    if let Some(path) = fills {
        let mut w = csv::Writer::from_path(path).with_context(|| format!("{}", path.display()))?;
        w.write_record(["id", "kwh", "price"])?;
        for (id, e, p) in &out {
            w.write_record([id.to_string(), e.to_string(), p.to_string()])?;
        }
        w.flush()?;
        eprintln!("fills: {}", path.display());
    }
    Ok(ExitCode::SUCCESS)
}

/// The welfare book of `rows`, and the rows of each block: rows without a
/// block are steps; the rows of a block form it (one node, side, price and
/// participant; its id is its smallest row id).
fn book(rows: &[Row]) -> anyhow::Result<(welfare::Book, Vec<Vec<u64>>)> {
    let mut steps = Vec::new();
    let mut blocks: BTreeMap<String, Vec<&Row>> = BTreeMap::new();
    for r in rows {
        match &r.block {
            None => steps.push(Step {
                id: r.id,
                participant: r.participant.clone(),
                product: r.product.clone(),
                node: r.node.clone(),
                side: r.side,
                price: r.price,
                quantity: r.quantity,
            }),
            Some(b) => blocks.entry(b.clone()).or_default().push(r),
        }
    }
    let mut out = Vec::new();
    let mut members_of = Vec::new();
    for (name, members) in blocks {
        let first = members[0];
        if let Some(other) = members.iter().find(|m| {
            m.node != first.node || m.side != first.side || m.price != first.price || m.participant != first.participant
        }) {
            bail!(
                "block {name}: order {} differs from order {} in node, side, price or participant; a block has one of each",
                other.id,
                first.id
            );
        }
        out.push(Block {
            id: members.iter().map(|m| m.id).min().unwrap_or(first.id),
            participant: first.participant.clone(),
            node: first.node.clone(),
            side: first.side,
            price: first.price,
            profile: members.iter().map(|m| (m.product.clone(), m.quantity)).collect(),
        });
        members_of.push(members.iter().map(|m| m.id).collect());
    }
    Ok((welfare::Book { steps, blocks: out }, members_of))
}

fn read(path: &Path, minutes: i64) -> anyhow::Result<Vec<Row>> {
    let mut reader = csv::ReaderBuilder::new()
        .trim(csv::Trim::All)
        .from_path(path)
        .with_context(|| format!("cannot read {}", path.display()))?;
    let headers = reader.headers()?.clone();
    let column = |name: &str| headers.iter().position(|h| h == name);
    let need = |name: &str| {
        column(name).ok_or_else(|| {
            anyhow!("{}: no column {name:?} (header: {})", path.display(), headers.iter().collect::<Vec<_>>().join(","))
        })
    };
    let (id, participant, start, node, side, price, kwh) =
        (need("id")?, need("participant")?, need("start")?, need("node")?, need("side")?, need("price")?, need("kwh")?);
    let block = column("block");
    let mut rows = Vec::new();
    for (i, record) in reader.records().enumerate() {
        let line = i + 2;
        let record = record.with_context(|| format!("{}:{line}", path.display()))?;
        let field = |k: usize, name: &str| -> anyhow::Result<&str> {
            record.get(k).ok_or_else(|| anyhow!("{}:{line}: column {} ({name}) is missing", path.display(), k + 1))
        };
        let bad = |k: usize, name: &str, e: &dyn std::fmt::Display| {
            anyhow!("{}:{line}: column {} ({name}): {e}", path.display(), k + 1)
        };
        let when: Timestamp = field(start, "start")?.parse().map_err(|e| bad(start, "start", &e))?;
        rows.push(Row {
            id: field(id, "id")?.parse().map_err(|e| bad(id, "id", &e))?,
            participant: PartyId::new(field(participant, "participant")?)
                .map_err(|e| bad(participant, "participant", &e))?,
            product: ProductId::of(when, minutes),
            start: when,
            node: field(node, "node")?.to_owned(),
            side: match field(side, "side")? {
                "buy" => Side::Buy,
                "sell" => Side::Sell,
                other => return Err(bad(side, "side", &format!("{other:?}; buy or sell"))),
            },
            price: field(price, "price")?.parse().map_err(|e| bad(price, "price", &e))?,
            quantity: field(kwh, "kwh")?.parse().map_err(|e| bad(kwh, "kwh", &e))?,
            block: block.and_then(|k| record.get(k)).filter(|b| !b.is_empty()).map(str::to_owned),
        });
    }
    Ok(rows)
}

/// A network file.
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct NetworkFile {
    nodes: Vec<String>,
    #[serde(default)]
    lines: Vec<LineEntry>,
}

#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct LineEntry {
    id: String,
    from: String,
    to: String,
    capacity_kwh: Energy,
    #[serde(default)]
    fee: Option<Price>,
}

fn read_network(path: &Path) -> anyhow::Result<Network> {
    let text = std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    let file: NetworkFile = toml::from_str(&text).with_context(|| format!("{}", path.display()))?;
    Ok(Network {
        nodes: file.nodes,
        lines: file
            .lines
            .into_iter()
            .map(|l| welfare::Line {
                id: l.id,
                from: l.from,
                to: l.to,
                capacity: l.capacity_kwh,
                fee: l.fee.unwrap_or(Price::ZERO),
            })
            .collect(),
    })
}
