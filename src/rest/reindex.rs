//! Reindexing (search.html, issue "reindex on demand"): recompute the search index rows of
//! every current resource, after the search parameter registry or extraction changed. Versions
//! are not touched; a resource changed concurrently is skipped, since its own write indexed it.

use super::FhirService;
use crate::error::{FhirError, FhirResult};
use crate::store::{Expected, StoreError, VersionWrite, WriteMethod};
use serde_json::Value;

/// Resources read per page while reindexing.
const PAGE: u32 = 500;

impl FhirService {
    /// Reindex every current resource; `progress(done)` is called after each page, and the
    /// planner's statistics are refreshed at the end. Returns how many resources were reindexed.
    pub async fn reindex(&self, progress: impl Fn(u64)) -> FhirResult<u64> {
        let mut after: Option<(String, String)> = None;
        let mut done = 0u64;
        loop {
            let page = self.store.current_page(after.clone(), PAGE).await?;
            let Some(last) = page.last() else { break };
            after = Some((last.resource_type.clone(), last.id.clone()));
            for row in &page {
                let Some(body) = &row.version.body else {
                    continue;
                };
                let resource: Value = serde_json::from_slice(body).map_err(FhirError::internal)?;
                let index = self.search_params.index_rows(&resource)?;
                let write = VersionWrite {
                    resource_type: row.resource_type.clone(),
                    id: row.id.clone(),
                    expected: Expected::Reindex(row.version.version_id),
                    version_id: row.version.version_id,
                    last_updated_us: row.version.last_updated_us,
                    method: WriteMethod::Update,
                    body: None,
                    index,
                };
                match self.store.commit_versions(&[write]).await {
                    Ok(()) => done += 1,
                    Err(StoreError::Conflict { .. }) => {}
                    Err(other) => return Err(FhirError::from(other)),
                }
            }
            progress(done);
        }
        self.store.refresh_statistics().await?;
        Ok(done)
    }
}
