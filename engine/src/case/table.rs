//! Reading profile series from CSV and Parquet files.
//!
//! Files are read once per case, however many profiles refer to them, and
//! every problem is reported as an [`Issue`](super::Issue) with the path of
//! the profile that referred to the file.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use jiff::Timestamp;
use jiff::tz::TimeZone;

use crate::report::IssueCode;
use crate::series::LocalTimes;

/// A problem with a referenced file: its code and message.
pub type SeriesError = (IssueCode, String);

/// One cell of a table.
#[derive(Debug, Clone)]
#[cfg_attr(not(feature = "parquet"), allow(dead_code))]
enum Cell {
    Null,
    Number(f64),
    Text(String),
    Time(Timestamp),
}

/// A file's columns, by name: what a CSV or Parquet file referenced by a
/// case holds.
#[derive(Debug, Default)]
pub struct Table {
    headers: Vec<String>,
    columns: Vec<Vec<Cell>>,
    /// How rows are named in messages: CSV lines start at 2 (after the header).
    first_line: usize,
    row_word: &'static str,
}

impl Table {
    fn column(&self, name: &str, file: &Path) -> Result<&[Cell], SeriesError> {
        let idx = self.headers.iter().position(|h| h == name).ok_or_else(|| {
            (
                IssueCode::MissingColumn,
                format!("{} has no column {name:?} (it has: {})", file.display(), self.headers.join(", ")),
            )
        })?;
        Ok(&self.columns[idx])
    }

    fn row_name(&self, i: usize) -> String {
        format!("{} {}", self.row_word, i + self.first_line)
    }

    /// The numbers of a column. Non-finite values are returned as they are
    /// (the caller reports them with the profile's path).
    ///
    /// # Errors
    /// A missing column, or a cell that is not a number.
    pub fn numbers(&self, name: &str, file: &Path) -> Result<Vec<f64>, SeriesError> {
        self.numbers_impl(name, file, false)
    }

    /// Like [`Table::numbers`], but empty cells become NaN: for tools that
    /// fill gaps themselves.
    ///
    /// # Errors
    /// A missing column, or a cell that is neither a number nor empty.
    pub fn numbers_with_gaps(&self, name: &str, file: &Path) -> Result<Vec<f64>, SeriesError> {
        self.numbers_impl(name, file, true)
    }

    fn numbers_impl(&self, name: &str, file: &Path, gaps: bool) -> Result<Vec<f64>, SeriesError> {
        let cells = self.column(name, file)?;
        cells
            .iter()
            .enumerate()
            .map(|(i, cell)| match cell {
                Cell::Number(v) => Ok(*v),
                Cell::Text(t) => t.trim().parse::<f64>().map_err(|_| {
                    (
                        IssueCode::BadCell,
                        format!("{} column {name:?} {}: {t:?} is not a number", file.display(), self.row_name(i)),
                    )
                }),
                Cell::Null if gaps => Ok(f64::NAN),
                Cell::Null => Err((
                    IssueCode::BadCell,
                    format!("{} column {name:?} {} is empty", file.display(), self.row_name(i)),
                )),
                Cell::Time(_) => Err((
                    IssueCode::BadCell,
                    format!("{} column {name:?} holds timestamps, not numbers", file.display()),
                )),
            })
            .collect()
    }

    /// The instants of a timestamp column, read by the one DST policy of
    /// [`crate::series`]: text without an offset is local time in `tz`, a
    /// repeated fall-back hour is read in file order, a skipped hour refused.
    ///
    /// # Errors
    /// A missing column, or a cell that is not a timestamp.
    pub fn instants(&self, name: &str, file: &Path, tz: &TimeZone) -> Result<Vec<Timestamp>, SeriesError> {
        let cells = self.column(name, file)?;
        let mut local = LocalTimes::new(tz);
        cells
            .iter()
            .enumerate()
            .map(|(i, cell)| {
                let bad = |why: &str| {
                    (IssueCode::BadCell, format!("{} column {name:?} {}: {why}", file.display(), self.row_name(i)))
                };
                match cell {
                    Cell::Time(t) => Ok(*t),
                    Cell::Text(text) => local.parse(text).map_err(|why| bad(&why)),
                    Cell::Null => Err(bad("empty timestamp")),
                    Cell::Number(_) => Err(bad("a number where a timestamp was expected")),
                }
            })
            .collect()
    }
}

/// Reads and caches the files a case refers to.
#[derive(Debug)]
pub(crate) struct SeriesLoader {
    /// `None`: files are refused without looking at the filesystem.
    base_dir: Option<PathBuf>,
    cache: HashMap<PathBuf, Result<Table, SeriesError>>,
}

impl SeriesLoader {
    pub(crate) fn new(base_dir: Option<PathBuf>) -> Self {
        Self { base_dir, cache: HashMap::new() }
    }

    pub(crate) fn table(&mut self, file: &Path) -> Result<&Table, SeriesError> {
        let Some(base) = &self.base_dir else {
            return Err((
                IssueCode::File,
                "series files are not read here: give the values inline (`volta validate --export` inlines them)"
                    .to_owned(),
            ));
        };
        let full = base.join(file);
        self.cache.entry(full.clone()).or_insert_with(|| read_table(&full, file)).as_ref().map_err(Clone::clone)
    }
}

/// Reads a `.csv` or `.parquet` file; `shown` is the name used in messages.
///
/// # Errors
/// A file that is missing, unreadable or of another type.
pub fn read_table(full: &Path, shown: &Path) -> Result<Table, SeriesError> {
    if !full.is_file() {
        return Err((
            IssueCode::File,
            format!("file {} not found (paths are relative to the case file)", shown.display()),
        ));
    }
    match full.extension().and_then(|e| e.to_str()).map(str::to_ascii_lowercase).as_deref() {
        Some("csv") => read_csv(full, shown),
        Some("parquet" | "pq") => read_parquet(full, shown),
        _ => Err((IssueCode::File, format!("{}: only .csv and .parquet files are supported", shown.display()))),
    }
}

fn read_csv(full: &Path, shown: &Path) -> Result<Table, SeriesError> {
    let io = |e: &dyn std::fmt::Display| (IssueCode::File, format!("cannot read {}: {e}", shown.display()));
    let mut reader = csv::ReaderBuilder::new().trim(csv::Trim::All).from_path(full).map_err(|e| io(&e))?;
    let headers: Vec<String> = reader.headers().map_err(|e| io(&e))?.iter().map(str::to_owned).collect();
    let mut columns: Vec<Vec<Cell>> = vec![Vec::new(); headers.len()];
    for record in reader.records() {
        let record = record.map_err(|e| io(&e))?;
        for (col, field) in columns.iter_mut().zip(record.iter()) {
            col.push(if field.is_empty() { Cell::Null } else { Cell::Text(field.to_owned()) });
        }
    }
    Ok(Table { headers, columns, first_line: 2, row_word: "line" })
}

#[cfg(feature = "parquet")]
#[expect(clippy::wildcard_enum_match_arm, reason = "only timestamp logical types matter here")]
fn read_parquet(full: &Path, shown: &Path) -> Result<Table, SeriesError> {
    use parquet::basic::{LogicalType, TimeUnit};
    use parquet::file::reader::{FileReader, SerializedFileReader};
    use parquet::record::Field;

    let io = |e: &dyn std::fmt::Display| (IssueCode::File, format!("cannot read {}: {e}", shown.display()));
    let file = std::fs::File::open(full).map_err(|e| io(&e))?;
    let reader = SerializedFileReader::new(file).map_err(|e| io(&e))?;
    let schema = reader.metadata().file_metadata().schema_descr_ptr();
    let headers: Vec<String> = schema.columns().iter().map(|c| c.name().to_owned()).collect();
    let mut columns: Vec<Vec<Cell>> = vec![Vec::new(); headers.len()];
    for row in reader.get_row_iter(None).map_err(|e| io(&e))? {
        let row = row.map_err(|e| io(&e))?;
        for (i, (_, field)) in row.get_column_iter().enumerate() {
            let Some(col) = columns.get_mut(i) else { continue };
            let tz_unit = schema.column(i).logical_type_ref().and_then(|t| match t {
                LogicalType::Timestamp(ts) => Some(ts.unit),
                _ => None,
            });
            let cell = match (field, tz_unit) {
                (Field::Null, _) => Cell::Null,
                (Field::TimestampMillis(v), _) => ts_from(*v, 1_000),
                (Field::TimestampMicros(v), _) => ts_from(*v, 1_000_000),
                (Field::Long(v), Some(TimeUnit::NANOS)) => ts_from(*v, 1_000_000_000),
                (Field::Long(v), Some(TimeUnit::MICROS)) => ts_from(*v, 1_000_000),
                (Field::Long(v), Some(TimeUnit::MILLIS)) => ts_from(*v, 1_000),
                (Field::Double(v), _) => Cell::Number(*v),
                (Field::Float(v), _) => Cell::Number(f64::from(*v)),
                (Field::Long(v), None) => Cell::Number(*v as f64),
                (Field::Int(v), _) => Cell::Number(f64::from(*v)),
                (Field::Short(v), _) => Cell::Number(f64::from(*v)),
                (Field::Str(s), _) => Cell::Text(s.clone()),
                (other, _) => Cell::Text(other.to_string()),
            };
            col.push(cell);
        }
    }
    Ok(Table { headers, columns, first_line: 0, row_word: "row" })
}

#[cfg(feature = "parquet")]
fn ts_from(value: i64, per_second: i64) -> Cell {
    let secs = value.div_euclid(per_second);
    let frac = value.rem_euclid(per_second);
    let nanos = i32::try_from(frac * (1_000_000_000 / per_second)).unwrap_or(0);
    Timestamp::new(secs, nanos).map_or(Cell::Null, Cell::Time)
}

#[cfg(not(feature = "parquet"))]
fn read_parquet(_full: &Path, shown: &Path) -> Result<Table, SeriesError> {
    Err((
        IssueCode::File,
        format!("{}: this build of volta-engine reads no Parquet (enable its `parquet` feature)", shown.display()),
    ))
}
