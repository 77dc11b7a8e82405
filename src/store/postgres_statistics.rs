//! The query planner's statistics on PostgreSQL as the database grows through the API.
//! Autovacuum analyzes tables when it is on, but it is off on some clusters (this project's
//! test machine among them: a 30-minute care-plan soak there grew a database to 1.4 GB whose
//! tables had never been analyzed) and lags a database that grows fast; searches right after a
//! bulk load were measured at 0.6–4.5 s without statistics against ~5 ms with them. So each
//! node counts the versions it commits and, on the schedule of `analyze_schedule.rs` (a
//! quarter of growth), runs `ANALYZE` of the resource and index tables in the background, one
//! at a time, never on a request's path; a node that starts on tables never analyzed gathers
//! their statistics at once. `ANALYZE` samples (30,000 rows a table by default), so it costs
//! about the same at any size (the tables of the 1.4 GB database above took ~5 s on a loaded
//! machine).

use super::analyze_schedule::AnalyzeSchedule;
use super::StoreResult;
use sqlx::PgPool;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

/// When this node refreshes the statistics, and whether it is doing so now.
pub(super) struct GrowthStatistics {
    schedule: Mutex<AnalyzeSchedule>,
    running: Arc<AtomicBool>,
}

impl GrowthStatistics {
    /// A schedule that counts from an empty database until [`Self::start`] reads the estimate.
    pub(super) fn new() -> GrowthStatistics {
        GrowthStatistics {
            schedule: Mutex::new(AnalyzeSchedule::new(0)),
            running: Arc::new(AtomicBool::new(false)),
        }
    }

    /// Count from the planner's own estimate of the resources (`pg_class.reltuples`), after the
    /// migrations; tables never analyzed are analyzed now (in the background).
    pub(super) async fn start(&self, pool: &PgPool) {
        // -1 for a table never analyzed (PostgreSQL 14 on).
        let estimate: Option<f32> = sqlx::query_scalar(
            "SELECT reltuples FROM pg_class WHERE oid = to_regclass('resource_current')",
        )
        .fetch_optional(pool)
        .await
        .unwrap_or_else(|e| {
            tracing::warn!(error = %e, "the planner's row estimate could not be read");
            None
        });
        if let Ok(mut schedule) = self.schedule.lock() {
            *schedule = AnalyzeSchedule::new(rows(estimate));
        }
        if estimate.is_some_and(|n| n < 0.0) {
            self.refresh(pool);
        }
    }

    /// Count `written` versions just committed; refresh the statistics when they are due.
    pub(super) fn committed(&self, pool: &PgPool, written: usize) {
        let due = self
            .schedule
            .lock()
            .is_ok_and(|mut schedule| schedule.record(written as u64));
        if due {
            self.refresh(pool);
        }
    }

    /// `ANALYZE` in a task of its own, unless one is running already.
    fn refresh(&self, pool: &PgPool) {
        if self.running.swap(true, Ordering::AcqRel) {
            return;
        }
        let (pool, running) = (pool.clone(), Arc::clone(&self.running));
        tokio::spawn(async move {
            if let Err(e) = analyze(&pool).await {
                tracing::warn!(error = %e, "PostgreSQL statistics could not be refreshed");
            }
            running.store(false, Ordering::Release);
        });
    }

    /// Whether a refresh is running now (for tests).
    #[cfg(test)]
    pub(super) fn running(&self) -> bool {
        self.running.load(Ordering::Acquire)
    }
}

/// Resources from the planner's estimate (none when unknown or never analyzed).
fn rows(estimate: Option<f32>) -> u64 {
    match estimate {
        Some(n) if n.is_finite() && n > 0.0 => n as u64,
        _ => 0,
    }
}

/// `ANALYZE` the resource and index tables, on a connection without the statement timeout
/// (given back with it restored).
pub(super) async fn analyze(pool: &PgPool) -> StoreResult<()> {
    let tables = ["resource_current", "resource_version"]
        .into_iter()
        .chain(super::index::INDEX_TABLES)
        .collect::<Vec<_>>()
        .join(", ");
    let mut conn = pool.acquire().await?;
    sqlx::query("SET statement_timeout = 0")
        .execute(&mut *conn)
        .await?;
    let analyzed = sqlx::query(&format!("ANALYZE {tables}"))
        .execute(&mut *conn)
        .await;
    sqlx::query("RESET statement_timeout")
        .execute(&mut *conn)
        .await?;
    analyzed?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::rows;

    #[test]
    fn the_starting_point_is_the_planners_estimate() {
        assert_eq!(rows(Some(125_000.0)), 125_000);
        assert_eq!(rows(Some(-1.0)), 0, "never analyzed");
        assert_eq!(rows(Some(0.0)), 0);
        assert_eq!(rows(None), 0, "no table");
        assert_eq!(rows(Some(f32::NAN)), 0);
    }
}
