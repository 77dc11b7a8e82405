//! When the query planner's statistics are refreshed as the database grows, on both backends:
//! SQLite has no autovacuum-analyze, and PostgreSQL's is off on some clusters and lags a
//! database that grows fast. A database that grows from empty in one process otherwise keeps
//! planning for empty tables — measured on SQLite: a care plan's search with its goal,
//! Provenance and PHQ-9s took 10 ms a request at 1,000 patients until a restart gathered
//! statistics, then 2 ms (PostgreSQL: `postgres_statistics.rs`). Statistics are refreshed
//! when the versions written since reach a quarter of the resources there were (at least
//! [`AnalyzeSchedule::MIN_GROWTH`]), so their cost stays a small fraction of the writes'.

/// Counts the versions written since the statistics were last gathered.
pub(super) struct AnalyzeSchedule {
    /// Resources when the statistics were last gathered (approximately: versions count).
    base: u64,
    /// Versions written since.
    since: u64,
}

impl AnalyzeSchedule {
    pub(super) const MIN_GROWTH: u64 = 1_000;

    /// A schedule for a database of `rows` resources, with statistics gathered for them.
    pub(super) fn new(rows: u64) -> Self {
        AnalyzeSchedule {
            base: rows,
            since: 0,
        }
    }

    /// Count `written` versions; true when the statistics are due now.
    pub(super) fn record(&mut self, written: u64) -> bool {
        self.since += written;
        if self.since < (self.base / 4).max(Self::MIN_GROWTH) {
            return false;
        }
        self.base += self.since;
        self.since = 0;
        true
    }
}

#[cfg(test)]
mod tests {
    use super::AnalyzeSchedule;

    #[test]
    fn statistics_are_refreshed_as_the_database_grows_by_a_quarter() {
        let mut from_empty = AnalyzeSchedule::new(0);
        assert!(!from_empty.record(999));
        assert!(from_empty.record(1), "1,000 versions on an empty database");
        assert!(!from_empty.record(999));
        assert!(
            from_empty.record(1),
            "a quarter of 1,000 is less than the minimum"
        );
        let mut large = AnalyzeSchedule::new(100_000);
        assert!(!large.record(24_999));
        assert!(large.record(1), "a quarter of 100,000");
        assert!(!large.record(31_249), "now a quarter of 125,000");
        assert!(large.record(1));
    }
}
