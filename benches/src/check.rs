//! The settlement benchmarks' history checker and latency reader: the
//! trade tapes summed per participant against the contract service's
//! market ledger, exactly; and quantiles of the settlement latency
//! histogram summed over processes.

use std::collections::BTreeMap;

use jiff::Timestamp;
use rust_decimal::Decimal;
use tonic::transport::Channel;
use volta_api::pb::contracts as cpb;
use volta_api::pb::trading as tpb;

type Trading = tpb::trading_service_client::TradingServiceClient<Channel>;
type Ledger = cpb::contract_service_client::ContractServiceClient<Channel>;

/// Bought Wh, sold Wh, paid, received, trade sides: per participant.
pub type Positions = BTreeMap<String, (i64, i64, Decimal, Decimal, i64)>;

/// An amount as the services send it (0 if it does not read, which the
/// comparison then shows).
fn money(text: &str) -> Decimal {
    text.parse().unwrap_or_default()
}

/// Adds the whole trade tape of `market` to `positions` (the admin, or an
/// unauthenticated loopback caller, sees both sides of every trade);
/// returns its number of trades.
///
/// # Errors
/// A page that cannot be read.
pub async fn add_tape(client: &mut Trading, market: &str, positions: &mut Positions) -> Result<usize, tonic::Status> {
    let (mut after, mut count) = (0, 0);
    loop {
        let request = tpb::ListTradesRequest { market_id: market.to_owned(), after_trade_id: after, page_size: 1000 };
        let page = client.list_trades(request).await?.into_inner();
        for t in &page.trades {
            count += 1;
            let buyer = positions.entry(t.buyer_id.clone()).or_default();
            buyer.0 += t.quantity_wh;
            buyer.2 += money(&t.amount);
            buyer.4 += 1;
            let seller = positions.entry(t.seller_id.clone()).or_default();
            seller.1 += t.quantity_wh;
            seller.3 += money(&t.seller_amount);
            seller.4 += 1;
        }
        match page.trades.last() {
            Some(last) => after = last.trade_id,
            None => return Ok(count),
        }
    }
}

/// The market ledger's positions of every participant over deliveries in
/// `[from, until)`.
///
/// # Errors
/// The call fails.
pub async fn ledger(client: &mut Ledger, from: Timestamp, until: Timestamp) -> Result<Positions, tonic::Status> {
    let request = cpb::MarketPositionsRequest {
        participant_id: String::new(),
        delivery_from: Some(volta_api::time::timestamp(from)),
        delivery_until: Some(volta_api::time::timestamp(until)),
    };
    Ok(client
        .market_positions(request)
        .await?
        .into_inner()
        .positions
        .into_iter()
        .map(|p| (p.participant_id, (p.bought_wh, p.sold_wh, money(&p.paid), money(&p.received), p.trades)))
        .collect())
}

/// The cumulative buckets of the settlement latency histogram summed over
/// the Prometheus `texts` of several processes: (upper bound s, count).
#[must_use]
pub fn latency_buckets<'a>(texts: impl IntoIterator<Item = &'a String>) -> Vec<(f64, f64)> {
    buckets("volta_settlement_latency_seconds", texts)
}

/// The cumulative buckets of (unlabelled) histogram `metric` summed over
/// the Prometheus `texts` of several processes: (upper bound, count).
#[must_use]
pub fn buckets<'a>(metric: &str, texts: impl IntoIterator<Item = &'a String>) -> Vec<(f64, f64)> {
    let prefix = format!("{metric}_bucket{{le=\"");
    let mut out: Vec<(f64, f64)> = Vec::new();
    for text in texts {
        for rest in text.lines().filter_map(|l| l.strip_prefix(prefix.as_str())) {
            let Some((le, count)) = rest.split_once("\"} ") else { continue };
            let le = if le == "+Inf" { f64::INFINITY } else { le.parse().unwrap_or(f64::NAN) };
            let count: f64 = count.trim().parse().unwrap_or(0.0);
            match out.iter_mut().find(|(b, _)| *b == le) {
                Some(slot) => slot.1 += count,
                None => out.push((le, count)),
            }
        }
    }
    out.sort_by(|a, b| a.0.total_cmp(&b.0));
    out
}

/// The bucket bound at quantile `q` of cumulative `buckets`: an upper
/// bound of the quantile.
#[must_use]
pub fn bucket_quantile(buckets: &[(f64, f64)], q: f64) -> f64 {
    let total = buckets.last().map_or(0.0, |b| b.1);
    buckets.iter().find(|(_, n)| *n >= q * total).map_or(f64::NAN, |b| b.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histograms_of_processes_add_up_and_quantiles_are_bucket_bounds() {
        let a = "volta_settlement_latency_seconds_bucket{le=\"0.01\"} 50\n\
                 volta_settlement_latency_seconds_bucket{le=\"0.05\"} 98\n\
                 volta_settlement_latency_seconds_bucket{le=\"+Inf\"} 100\n"
            .to_owned();
        let b = a.replace("} 50", "} 0").replace("} 98", "} 0");
        let buckets = latency_buckets([&a, &b]);
        assert_eq!(buckets, [(0.01, 50.0), (0.05, 98.0), (f64::INFINITY, 200.0)]);
        assert!((bucket_quantile(&buckets, 0.25) - 0.01).abs() < 1e-12);
        assert!((bucket_quantile(&buckets, 0.49) - 0.05).abs() < 1e-12);
        assert!(bucket_quantile(&buckets, 0.99).is_infinite());
    }
}
