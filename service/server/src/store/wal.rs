//! SQLite's write-ahead log, copied back into the database file beside the
//! writer rather than by it.
//!
//! By default SQLite copies the log into the database file (a checkpoint)
//! in the commit that takes the log past 1,000 pages, on the committing
//! connection. The store has one writer, and under the trading benchmark's
//! 200 clients it logs about 23,000 pages a second (a batch of the market's
//! sequencer dirties a page per participant in each participant-keyed
//! index), so every few batches waited for a checkpoint before its orders
//! could be acknowledged. Here the writer never checkpoints
//! (`wal_autocheckpoint = 0`, set on each of its connections by [`WRITER`])
//! and a task of the store's ([`Checkpoints`]) does it on a connection of
//! its own, every [`EVERY`]:
//! - a PASSIVE checkpoint copies what no reader still needs, beside the
//!   writer and the readers, blocking neither;
//! - a log copied in full still grows unless a commit begins while no
//!   reader is in it (only then does SQLite start it again from its
//!   beginning), which a writer that never pauses rarely leaves; so past
//!   [`Limits::try_from`] pages the round asks for that moment (RESTART)
//!   without waiting for it, and past [`Limits::wait_from`] waits for it.
//!
//! Measured (`trading-load --clients 200`, release, five runs back to back
//! with the build before): 10 to 16 % more calls a second, p50 15 % lower,
//! p99 unchanged (docs/trading.md has the numbers).
//!
//! Durability is unchanged: a commit is durable once its frames are in the
//! log (and, with `synchronous = FULL`, synced); a checkpoint only moves
//! them, syncing the file before the log starts again.

use std::time::Duration;

use sqlx::pool::Pool;
use sqlx::{Any, AnyConnection};

/// Settings of each writing connection to a SQLite file: no checkpoints
/// in its commits. (A page cache of 64 MiB instead of SQLite's 2 MiB, to
/// hold a batch's hot index pages, measured slower in the trading
/// benchmark, alone and with this, and was not kept.)
pub(super) const WRITER: &[&str] = &["PRAGMA wal_autocheckpoint = 0"];

/// Settings of the checkpointing connection: it never waits for a lock
/// unless told to (see [`Limits::wait_from`]).
pub(super) const CHECKPOINTER: &[&str] = &["PRAGMA busy_timeout = 0"];

/// How often the log is copied back.
pub(super) const EVERY: Duration = Duration::from_millis(100);

/// When a round tries to have the log start again from its beginning,
/// in log pages (4 KiB each).
#[derive(Debug, Clone, Copy)]
pub(super) struct Limits {
    /// From this size a round tries, without waiting: if the writer is
    /// between transactions and no reader is in the log, the next commit
    /// starts it again; else the round gives up at once.
    pub(super) try_from: i64,
    /// From this size a round waits (up to five seconds) for that moment,
    /// holding off the writer meanwhile: the last resort against a log
    /// that would otherwise grow without end.
    pub(super) wait_from: i64,
}

/// 16 MiB and 256 MiB. Under the trading benchmark a restart that waited
/// for its moment at 16,384 pages held the writer off for 6 to 370 ms each
/// time (26 times in 20 s); asked for without waiting, from 4,096 pages, it
/// happened 41 times in 119 tries, and none had to wait.
pub(super) const LIMITS: Limits = Limits { try_from: 4_096, wait_from: 65_536 };

/// The task that checkpoints a SQLite file's log; it ends when the last
/// clone of its store is dropped.
#[derive(Debug)]
pub(super) struct Checkpoints(tokio::task::JoinHandle<()>);

impl Checkpoints {
    /// Starts checkpointing on `pool`'s connection to the file (not the
    /// writer's, and set up with [`CHECKPOINTER`]).
    pub(super) fn start(pool: Pool<Any>, limits: Limits) -> Self {
        Self(tokio::spawn(async move {
            loop {
                tokio::time::sleep(EVERY).await;
                let Ok(mut conn) = pool.acquire().await else { continue };
                if let Err(e) = checkpoint(&mut conn, limits).await {
                    tracing::debug!(error = %e, "a checkpoint of the SQLite log failed; the next one tries again");
                }
            }
        }))
    }
}

impl Drop for Checkpoints {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// What a checkpoint found: the log's pages, how many of them are now in
/// the database file, and whether the next commit starts the log again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Log {
    pub(super) pages: i64,
    pub(super) copied: i64,
    pub(super) restarts: bool,
}

/// One round: a passive checkpoint (it copies what no reader still needs,
/// beside the writer and the readers), then as `limits` say.
///
/// # Errors
/// A database error.
pub(super) async fn checkpoint(conn: &mut AnyConnection, limits: Limits) -> Result<Log, sqlx::Error> {
    let log = run(conn, Mode::Passive).await?;
    if log.pages < limits.try_from {
        return Ok(log);
    }
    let tried = run(conn, Mode::Restart).await?;
    if tried.restarts || log.pages < limits.wait_from {
        return Ok(tried);
    }
    sqlx::query("PRAGMA busy_timeout = 5000").execute(&mut *conn).await?;
    let waited = run(conn, Mode::Restart).await;
    sqlx::query("PRAGMA busy_timeout = 0").execute(&mut *conn).await?;
    waited
}

/// SQLite's checkpoints used here.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// Copies what no reader needs, waiting for nothing.
    Passive,
    /// Takes the writer's lock, copies everything, then waits for the
    /// readers to leave the log, so that the next commit starts it again.
    Restart,
}

async fn run(conn: &mut AnyConnection, mode: Mode) -> Result<Log, sqlx::Error> {
    let restart = mode == Mode::Restart;
    let pragma = if restart { "PRAGMA wal_checkpoint(RESTART)" } else { "PRAGMA wal_checkpoint(PASSIVE)" };
    // (blocked, pages in the log, pages copied); -1 and -1 outside WAL mode.
    let (blocked, pages, copied): (i64, i64, i64) = sqlx::query_as(pragma).fetch_one(conn).await?;
    Ok(Log { pages, copied, restarts: restart && blocked == 0 })
}

#[cfg(test)]
mod tests {
    use std::path::Path;
    use std::time::{Duration, Instant};

    use sqlx::Connection as _;

    use super::{CHECKPOINTER, Limits, checkpoint};
    use crate::store::Store;

    const PAGE: u64 = 4096;

    fn url(dir: &Path) -> String {
        format!("sqlite://{}", dir.join("volta.db").display())
    }

    async fn store(dir: &Path) -> Store {
        Store::connect(&url(dir)).await.expect("a store")
    }

    /// Rows `from..from + rows`, about a page each, in one commit.
    async fn write_pages(store: &Store, from: i64, rows: i64) {
        let mut tx = store.pool().begin().await.expect("begin");
        for i in from..from + rows {
            sqlx::query("INSERT INTO t (id, body) VALUES ($1, $2)")
                .bind(i)
                .bind("x".repeat(3_900))
                .execute(&mut *tx)
                .await
                .expect("insert");
        }
        tx.commit().await.expect("commit");
    }

    fn size(path: &Path) -> u64 {
        std::fs::metadata(path).map_or(0, |m| m.len())
    }

    #[tokio::test]
    async fn the_writer_leaves_its_log_to_the_store_s_task_which_copies_it() {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let store = store(dir.path()).await;
        let mut writer = store.pool().acquire().await.expect("the writer");
        let setting = |name: &'static str| sqlx::query_scalar::<_, i64>(name);
        assert_eq!(setting("PRAGMA wal_autocheckpoint").fetch_one(&mut *writer).await.expect("read"), 0);
        drop(writer);
        sqlx::query("CREATE TABLE t (id BIGINT PRIMARY KEY, body TEXT NOT NULL)")
            .execute(store.pool())
            .await
            .expect("create");
        // Past SQLite's own threshold (1,000 pages) in one commit: with its
        // default the commit itself would have copied them.
        write_pages(&store, 0, 2_000).await;
        // The task copies them into the file (in the next 100 ms on an idle
        // machine; the deadline is for a loaded one).
        let file = dir.path().join("volta.db");
        let deadline = Instant::now() + Duration::from_secs(60);
        while size(&file) < 2_000 * PAGE {
            assert!(Instant::now() < deadline, "the log was not copied: the file has {} bytes", size(&file));
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let rows: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM t").fetch_one(store.readers()).await.expect("count");
        assert_eq!(rows, 2_000);
    }

    #[tokio::test]
    async fn a_round_starts_the_log_again_once_no_reader_is_in_it() {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let store = store(dir.path()).await;
        sqlx::query("CREATE TABLE t (id BIGINT PRIMARY KEY, body TEXT NOT NULL)")
            .execute(store.pool())
            .await
            .expect("create");
        let mut conn = sqlx::AnyConnection::connect(&url(dir.path())).await.expect("a connection");
        for setting in CHECKPOINTER {
            sqlx::query(*setting).execute(&mut conn).await.expect("set up");
        }
        let limits = Limits { try_from: 100, wait_from: i64::MAX };
        let count = "SELECT COUNT(*) FROM t";
        write_pages(&store, 0, 200).await;
        // A reader in the log: what it reads must stay there, so the log
        // cannot start again, and the round gives up at once.
        let mut reader = store.readers().begin().await.expect("a read transaction");
        let seen: i64 = sqlx::query_scalar(count).fetch_one(&mut *reader).await.expect("read");
        write_pages(&store, 200, 200).await;
        let round = checkpoint(&mut conn, limits).await.expect("a round");
        assert!(!round.restarts && round.pages >= 400, "{round:?}");
        assert_eq!(sqlx::query_scalar::<_, i64>(count).fetch_one(&mut *reader).await.expect("read"), seen);
        reader.rollback().await.expect("the reader leaves");
        // Now the round has it start again, and the next commit writes
        // from the log's beginning.
        let round = checkpoint(&mut conn, limits).await.expect("a round");
        assert!(round.restarts && round.copied == round.pages, "{round:?}");
        write_pages(&store, 400, 20).await;
        let passive = Limits { try_from: i64::MAX, wait_from: i64::MAX };
        let round = checkpoint(&mut conn, passive).await.expect("a round");
        assert!(round.pages < 100, "the log did not start again: {round:?}");
        assert_eq!(sqlx::query_scalar::<_, i64>(count).fetch_one(store.readers()).await.expect("count"), 420);
    }
}
