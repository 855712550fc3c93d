//! Schedules as tables: wide CSV files and a Parquet file.

use std::fs::File;
use std::path::Path;
use std::sync::Arc;

use anyhow::Context as _;
use parquet::basic::{LogicalType, Repetition, TimeUnit, Type as PhysicalType};
use parquet::data_type::{DoubleType, Int64Type};
use parquet::file::properties::WriterProperties;
use parquet::file::writer::SerializedFileWriter;
use parquet::schema::types::Type;
use volta_dispatch::{Detail, Schedule};
use volta_engine::TimeGrid;

/// Named numeric columns over a time grid.
pub(crate) struct Table<'g> {
    grid: &'g TimeGrid,
    columns: Vec<(String, Vec<f64>)>,
}

impl<'g> Table<'g> {
    fn new(grid: &'g TimeGrid) -> Self {
        Self { grid, columns: Vec::new() }
    }

    fn push(&mut self, name: String, values: Vec<f64>) {
        self.columns.push((name, values));
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.columns.is_empty()
    }

    /// Writes `timestamp,col,...` with local ISO 8601 timestamps (offset included).
    pub(crate) fn write_csv(&self, path: &Path) -> anyhow::Result<()> {
        let mut w = csv::Writer::from_path(path).with_context(|| format!("cannot write {}", path.display()))?;
        let mut header = vec!["timestamp".to_owned()];
        header.extend(self.columns.iter().map(|(n, _)| n.clone()));
        w.write_record(&header)?;
        for t in 0..self.grid.len() {
            let mut row = vec![self.grid.stamp(t)];
            row.extend(self.columns.iter().map(|(_, v)| format!("{}", round(v[t]))));
            w.write_record(&row)?;
        }
        w.flush()?;
        Ok(())
    }

    /// Writes a Parquet file: a UTC millisecond `timestamp`, then doubles.
    pub(crate) fn write_parquet(&self, path: &Path) -> anyhow::Result<()> {
        let mut fields = vec![Arc::new(
            Type::primitive_type_builder("timestamp", PhysicalType::INT64)
                .with_repetition(Repetition::REQUIRED)
                .with_logical_type(Some(LogicalType::timestamp(true, TimeUnit::MILLIS)))
                .build()?,
        )];
        for (name, _) in &self.columns {
            fields.push(Arc::new(
                Type::primitive_type_builder(name, PhysicalType::DOUBLE)
                    .with_repetition(Repetition::REQUIRED)
                    .build()?,
            ));
        }
        let schema = Arc::new(Type::group_type_builder("schedule").with_fields(fields).build()?);
        let file = File::create(path).with_context(|| format!("cannot write {}", path.display()))?;
        let props = Arc::new(WriterProperties::builder().build());
        let mut writer = SerializedFileWriter::new(file, schema, props)?;
        let mut group = writer.next_row_group()?;
        let stamps: Vec<i64> = self.grid.instants().map(|t| t.as_millisecond()).collect();
        let mut index = 0;
        while let Some(mut column) = group.next_column()? {
            if index == 0 {
                column.typed::<Int64Type>().write_batch(&stamps, None, None)?;
            } else {
                column.typed::<DoubleType>().write_batch(&self.columns[index - 1].1, None, None)?;
            }
            column.close()?;
            index += 1;
        }
        group.close()?;
        writer.close()?;
        Ok(())
    }
}

/// Rounds to 6 decimals for readable CSV (well below any meaningful kW).
fn round(v: f64) -> f64 {
    let r = (v * 1e6).round() / 1e6;
    if r == 0.0 { 0.0 } else { r }
}

/// Signed flows, one column per asset and bus: `<asset>.<bus>_kw`.
pub(crate) fn flows(schedule: &Schedule) -> Table<'_> {
    let mut table = Table::new(&schedule.grid);
    for asset in &schedule.assets {
        for flow in &asset.flows {
            table.push(format!("{}.{}_kw", asset.id, flow.bus), flow.kw.clone());
        }
    }
    table
}

/// Stored energy per storage, kWh at the end of each step.
pub(crate) fn storage(schedule: &Schedule) -> Table<'_> {
    let mut table = Table::new(&schedule.grid);
    for asset in &schedule.assets {
        if let Detail::Storage { energy_kwh, .. } = &asset.detail {
            table.push(format!("{}_kwh", asset.id), energy_kwh.clone());
        }
    }
    table
}

/// Per unit under commitment: on (1) or off (0), and its rated output.
pub(crate) fn commitment(schedule: &Schedule) -> Table<'_> {
    let mut table = Table::new(&schedule.grid);
    for asset in &schedule.assets {
        if let Detail::Unit { on: Some(on), output_kw, .. } = &asset.detail {
            table.push(format!("{}_on", asset.id), on.iter().map(|&b| f64::from(u8::from(b))).collect());
            table.push(format!("{}_output_kw", asset.id), output_kw.clone());
        }
    }
    table
}

/// Marginal price and unserved energy per bus.
pub(crate) fn prices(schedule: &Schedule) -> Table<'_> {
    let mut table = Table::new(&schedule.grid);
    for bus in &schedule.buses {
        if let Some(price) = &bus.price {
            table.push(format!("{}_price", bus.id), price.clone());
        }
        table.push(format!("{}_unserved_kw", bus.id), bus.unserved_kw.clone());
    }
    table
}

/// `asset,category,amount` lines, then one `total` line per category and the grand total.
pub(crate) fn write_costs(schedule: &Schedule, currency: &str, path: &Path) -> anyhow::Result<()> {
    let mut w = csv::Writer::from_path(path).with_context(|| format!("cannot write {}", path.display()))?;
    w.write_record(["asset", "category", &format!("amount_{currency}")])?;
    for item in &schedule.costs {
        let asset = item.asset.as_ref().map_or("(system)", |a| a.as_str());
        w.write_record([asset, item.category.name(), &round(item.amount).to_string()])?;
    }
    for (category, amount) in schedule.cost_by_category() {
        w.write_record(["total", category.name(), &round(amount).to_string()])?;
    }
    w.write_record(["total", "all", &round(schedule.cost).to_string()])?;
    w.flush()?;
    Ok(())
}
