//! The market's matching loop and call auctions, through the library:
//!
//! - `continuous/submit`: a stream of orders into one product's book (80 %
//!   good-till-cancelled limits around a drifting mid price, 10 %
//!   immediate-or-cancel, 5 % fill-or-kill, 5 % market; one cancellation
//!   for every five orders), in orders per second;
//! - `auction/<n>`: a pay-as-clear call auction of `n` bids, 1,000 to
//!   1,000,000.
//!
//! Run with `cargo bench -p volta-benches --bench market`.

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use jiff::{SignedDuration, Timestamp};
use volta_contracts::{Energy, PartyId};
use volta_trading::{Bid, Book, Kind, Order, Price, Pricing, Product, ProductId, Side, TimeInForce, clear};

/// A fixed pseudo-random sequence (the same orders every run).
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
        self.0 >> 33
    }
}

fn product() -> Product {
    let start: Timestamp = "2024-06-03T12:00:00Z".parse().expect("instant");
    Product {
        id: ProductId::of(start, 15),
        delivery_start: start,
        delivery_end: start + SignedDuration::from_mins(15),
        gate_open: start - SignedDuration::from_hours(24),
        gate_close: start - SignedDuration::from_mins(5),
        min_price: Price::from_micros(-500_000),
        max_price: Price::from_micros(4_000_000),
        grid_fee: Price::ZERO,
    }
}

/// What the stream does at each step.
enum Step {
    Submit(Order),
    Cancel(u64),
}

fn stream(n: usize) -> Vec<Step> {
    let mut rng = Lcg(42);
    let parties: Vec<PartyId> = (0..200).map(|i| PartyId::new(format!("p{i}")).expect("id")).collect();
    let placed: Timestamp = "2024-06-03T11:00:00Z".parse().expect("instant");
    let product = product().id;
    let mut mid = 100_000_i64;
    let mut out = Vec::with_capacity(n + n / 5);
    for i in 0..n {
        mid = (mid + (rng.next() % 3) as i64 * 100 - 100).clamp(50_000, 200_000);
        let side = if rng.next().is_multiple_of(2) { Side::Buy } else { Side::Sell };
        let offset = (rng.next() % 20) as i64 * 500;
        // Resting orders on their own side of the mid, takers across it.
        let price = Price::from_micros(match side {
            Side::Buy => mid - 2_000 + offset / 2,
            Side::Sell => mid + 2_000 - offset / 2,
        });
        let kind = match rng.next() % 20 {
            0..=15 => Kind::Limit { price, time_in_force: TimeInForce::Gtc },
            16 | 17 => Kind::Limit { price, time_in_force: TimeInForce::Ioc },
            18 => Kind::Limit { price, time_in_force: TimeInForce::Fok },
            _ => Kind::Market,
        };
        out.push(Step::Submit(Order {
            id: i as u64 + 1,
            participant: parties[(rng.next() % 200) as usize].clone(),
            product: product.clone(),
            side,
            kind,
            quantity: Energy::from_wh(1_000 + (rng.next() % 50) as i64 * 100),
            placed,
        }));
        if i % 5 == 4 {
            out.push(Step::Cancel(i as u64 + 1 - rng.next() % 50));
        }
    }
    out
}

fn bids(n: usize) -> Vec<Bid> {
    let mut rng = Lcg(7);
    let parties: Vec<PartyId> = (0..1000).map(|i| PartyId::new(format!("p{i}")).expect("id")).collect();
    (0..n)
        .map(|i| {
            let side = if rng.next().is_multiple_of(2) { Side::Buy } else { Side::Sell };
            let base = if side == Side::Buy { 120_000 } else { 80_000 };
            Bid {
                id: i as u64,
                participant: parties[i % 1000].clone(),
                side,
                price: Some(Price::from_micros(base - 40_000 + (rng.next() % 800) as i64 * 100)),
                quantity: Energy::from_wh(500 + (rng.next() % 100) as i64 * 50),
            }
        })
        .collect()
}

fn benches(c: &mut Criterion) {
    let mut group = c.benchmark_group("market");
    let n = 200_000;
    let steps = stream(n);
    group.throughput(Throughput::Elements(n as u64));
    group.sample_size(20);
    group.bench_function("continuous/submit", |b| {
        b.iter_batched(
            || Book::new(product()),
            |mut book| {
                let mut traded = 0_i64;
                for step in &steps {
                    match step {
                        Step::Submit(order) => {
                            let done = book.submit(order).expect("valid");
                            traded += done.trades.iter().map(|t| t.quantity.wh()).sum::<i64>();
                        }
                        Step::Cancel(id) => {
                            let _ = book.cancel(*id);
                        }
                    }
                }
                (book, traded)
            },
            BatchSize::LargeInput,
        );
    });
    for size in [1_000, 10_000, 100_000, 1_000_000] {
        let bids = bids(size);
        group.throughput(Throughput::Elements(size as u64));
        group.sample_size(if size >= 100_000 { 10 } else { 30 });
        group.bench_function(format!("auction/{size}"), |b| {
            b.iter(|| clear(&product().id, &bids, Pricing::PayAsClear, Price::ZERO).expect("clears"));
        });
    }
    group.finish();
}

criterion_group!(market, benches);
criterion_main!(market);
