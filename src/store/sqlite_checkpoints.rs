//! Checkpoints of the SQLite write-ahead log (sqlite.org/wal.html "Checkpointing") off the
//! writer's thread, with the log kept bounded.
//!
//! SQLite's automatic checkpoint runs inside the COMMIT of whichever connection crosses its
//! threshold: here always the one writer, so the group that crossed it waited for the copy of
//! the whole log into the database file and its fsync, and every queued group behind it too.
//! A profile of the writer thread in a SQLite soak (perf, 8 s, minute 2 of the careplan
//! workload) had 24 % of its time in `walCheckpoint` under `sqlite3WalDefaultHook`.
//!
//! Now the writer's automatic checkpoint is off, and:
//!
//! * a background thread with a connection of its own runs PASSIVE checkpoints (they copy what
//!   no reader still needs, never wait, and run beside the writer's commits), woken after each
//!   group and at most once per [`WalPolicy::pass_interval`];
//! * a PASSIVE checkpointer alone never catches up with a busy writer: SQLite restarts the
//!   log from its beginning only when a write begins with every frame already copied, so
//!   under constant writes the log grows without bound (measured before: 16 GB after 200k
//!   resources). The bound is the writer's: after each group it looks at the log file's size,
//!   and past [`WalPolicy::limit_bytes`] it runs a RESTART checkpoint itself (copying what the
//!   background passes have not, waiting for readers to leave the old log). The same size is
//!   the writer's `journal_size_limit`, so the file is cut back to it at the first commit
//!   after a restart: the file is over the limit only when the log itself is.
//! * a background pass holds SQLite's checkpoint lock, and a checkpoint that finds it taken
//!   fails at once (SQLite never waits for that lock). When a restart simply gave up and left
//!   it to the next group, the log grew on past the limit for as long as passes kept
//!   colliding: up to 19 MB in a 10-minute SQLite soak (the file peaking at 83 MiB), and a
//!   CI machine with slow fsyncs saw the 64 MiB test log 2.7 MB over. So the two take turns
//!   on a lock of this process first ([`CheckpointTurn`]): a restart that is due waits for
//!   the pass in progress (which has by then copied most of the log) and then runs. The price:
//!   the one writer stalls for the rest of that pass (its copy and fsync; a pass copies at
//!   most what was written since the last, at least a quarter of a second apart), once per
//!   restart — where before the log grew instead.
//!
//! The log is therefore at most the limit plus one group, except while a reader still reads
//! the old log (a restart waits 200 ms for it, then tries again a second later). The old
//! automatic checkpoint never waited for readers; a restart holds the write lock while it
//! waits, hence the short wait.

use super::{StoreError, StoreResult};
use rusqlite::Connection;
use std::cell::Cell;
use std::path::{Path, PathBuf};
use std::sync::{mpsc, Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// How large the write-ahead log may grow and how often it is checkpointed in the background.
#[derive(Debug, Clone, Copy)]
pub(super) struct WalPolicy {
    /// Past this size the writer restarts the log (and the file is cut back to it).
    pub limit_bytes: u64,
    /// Least time between two background passes.
    pub pass_interval: Duration,
}

impl WalPolicy {
    /// 64 MiB (the writer's 8,000-page automatic checkpoint of before, twice) and four passes a
    /// second at most: each pass ends with an fsync of the database file.
    pub(super) const DEFAULT: WalPolicy = WalPolicy {
        limit_bytes: 64 * 1024 * 1024,
        pass_interval: Duration::from_millis(250),
    };
}

/// The writer's side: wakes the background pass and keeps the bound.
pub(super) struct Checkpoints {
    nudge: mpsc::SyncSender<()>,
    wal: PathBuf,
    limit_bytes: u64,
    turn: CheckpointTurn,
    /// After a restart found readers in the old log: not before then again.
    readers_busy_until: Cell<Option<Instant>>,
}

/// The longest a restart waits for readers, holding the write lock.
const RESTART_WAIT: Duration = Duration::from_millis(200);

/// How long after a restart that found readers the next is tried.
const READERS_BACKOFF: Duration = Duration::from_secs(1);

/// The writer connection's busy timeout (`sqlite_writer::start`), restored after a restart.
pub(super) const WRITER_BUSY_TIMEOUT: Duration = Duration::from_secs(10);

impl Checkpoints {
    /// Starts the background checkpointer on its own connection to `path`, and sets the
    /// writer's connection to leave checkpoints to it.
    pub(super) fn start(
        path: &Path,
        writer: &Connection,
        policy: WalPolicy,
    ) -> StoreResult<Checkpoints> {
        let failed = |e: rusqlite::Error| {
            StoreError::Internal(format!("cannot start the SQLite checkpointer: {e}"))
        };
        writer
            .pragma_update(None, "wal_autocheckpoint", 0)
            .map_err(failed)?;
        writer
            .pragma_update(None, "journal_size_limit", policy.limit_bytes)
            .map_err(failed)?;
        let conn = Connection::open(path).map_err(failed)?;
        let (nudge, woken) = mpsc::sync_channel::<()>(1);
        let turn = CheckpointTurn::default();
        let passes_turn = turn.clone();
        std::thread::Builder::new()
            .name("coplan-sqlite-checkpoints".into())
            .spawn(move || passes(conn, woken, policy.pass_interval, passes_turn))
            .map_err(|e| {
                StoreError::Internal(format!("cannot start the SQLite checkpointer: {e}"))
            })?;
        let mut wal = path.as_os_str().to_owned();
        wal.push("-wal");
        Ok(Checkpoints {
            nudge,
            wal: PathBuf::from(wal),
            limit_bytes: policy.limit_bytes,
            turn,
            readers_busy_until: Cell::new(None),
        })
    }

    /// After a group's replies: restart the log here if it has outgrown the limit, then wake
    /// the background pass.
    pub(super) fn after_group(&self, writer: &Connection) {
        let size = std::fs::metadata(&self.wal).map_or(0, |m| m.len());
        let due = self
            .readers_busy_until
            .get()
            .is_none_or(|t| Instant::now() >= t);
        if size > self.limit_bytes && due {
            self.restart(writer, size);
        }
        let _ = self.nudge.try_send(());
    }

    /// A RESTART checkpoint on the writer's connection. It holds the write lock while it waits
    /// for readers to leave the old log, so it waits at most [`RESTART_WAIT`] (not the
    /// connection's 10 s); readers still there put the next attempt off by [`READERS_BACKOFF`]
    /// (the log grows meanwhile: it cannot restart under a reader anyway). It first waits for
    /// a background pass in progress to end; a checkpoint lock held outside this process (a
    /// `sqlite3` shell, say) still makes it fail at once (SQLite answers busy with -1 frames):
    /// the next group tries again.
    fn restart(&self, writer: &Connection, size: u64) {
        let _turn = self.turn.take();
        let outcome = writer
            .busy_timeout(RESTART_WAIT)
            .and_then(|()| checkpoint(writer, "RESTART"));
        if let Err(e) = writer.busy_timeout(WRITER_BUSY_TIMEOUT) {
            tracing::warn!(error = %e, "SQLite busy timeout not restored");
        }
        match outcome {
            Ok((0, _, _)) | Ok((_, -1, _)) => {}
            Ok((_, log, copied)) => {
                tracing::info!(
                    wal_bytes = size,
                    log,
                    copied,
                    "SQLite log restart waits for readers"
                );
                self.readers_busy_until
                    .set(Some(Instant::now() + READERS_BACKOFF));
            }
            Err(e) => tracing::warn!(error = %e, wal_bytes = size, "SQLite log restart failed"),
        }
    }
}

/// Whose turn it is to checkpoint, within this process: the background pass and the writer's
/// restart each hold it while they run, so a restart waits for a pass instead of failing on
/// SQLite's checkpoint lock.
#[derive(Clone, Default)]
struct CheckpointTurn(Arc<Mutex<()>>);

impl CheckpointTurn {
    /// Waits for the turn. The lock guards no data, so a holder that panicked leaves nothing
    /// half-done behind it: a poisoned lock is taken all the same.
    fn take(&self) -> MutexGuard<'_, ()> {
        self.0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// The background thread: a PASSIVE checkpoint each time it is woken, at most once per
/// `interval`, in its turn; it ends when the writer does.
fn passes(conn: Connection, woken: mpsc::Receiver<()>, interval: Duration, turn: CheckpointTurn) {
    let mut last: Option<Instant> = None;
    while woken.recv().is_ok() {
        if let Some(wait) = last.map(|t| interval.saturating_sub(t.elapsed())) {
            std::thread::sleep(wait);
        }
        let outcome = {
            let _turn = turn.take();
            checkpoint(&conn, "PASSIVE")
        };
        if let Err(e) = outcome {
            tracing::warn!(error = %e, "SQLite background checkpoint failed");
        }
        last = Some(Instant::now());
    }
}

/// Runs `PRAGMA wal_checkpoint(mode)`; SQLite answers (busy, frames in the log, frames
/// copied).
fn checkpoint(conn: &Connection, mode: &'static str) -> rusqlite::Result<(i64, i64, i64)> {
    conn.query_row(&format!("PRAGMA wal_checkpoint({mode})"), [], |r| {
        Ok((r.get(0)?, r.get(1)?, r.get(2)?))
    })
}
