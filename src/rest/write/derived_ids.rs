//! The ids of the Observations the server derives from a QuestionnaireResponse (its score and
//! the answers extracted as its members; `score_responses.rs`): `prom-`, 13 hexadecimal digits
//! of the instant of the response's first version, then 27 of a digest of the response's id
//! and the item's key.
//!
//! * The same for every version of the response, so an amendment gives the same Observations
//!   new versions, never duplicates.
//! * In time order, as the ids the generator gives are (UUIDv7): every index keyed by a
//!   resource's id takes a response's ten Observations at its end, not at ten random pages
//!   (the reason the server's Provenance ids begin with their instant too,
//!   `provenance::provenance_id`).
//! * Responses first scored before the ids began with an instant keep the digest alone
//!   (`prom-` and 40 digits): an amendment of one finds its score under that id and goes on
//!   using it. During a rolling upgrade a node of before amending a response scored by a node
//!   of now derives digest ids: the ordered Observations are cancelled (as anything the
//!   amended response no longer gives is) and the response goes on under its digest ids —
//!   one change of ids, never two live copies.

use super::PreparedWrite;
use crate::error::FhirResult;
use crate::rest::provenance::{hex, instant_prefix};
use crate::rest::FhirService;
use sha2::{Digest, Sha256};

/// The prefix of the ids of what the server derives from responses (reserved to it).
pub const DERIVED_PREFIX: &str = "prom-";

/// How the ids of what is derived from one response are made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DerivedIds {
    /// In time order, from the instant the response's first version was written.
    Ordered { first_written_us: i64 },
    /// The digest alone: a response first scored before the ids were ordered.
    Digest,
}

impl DerivedIds {
    /// The id of what is derived from `key` (an item, or the total's linkId) of response
    /// `response_id`.
    pub fn id(self, response_id: &str, key: &str) -> String {
        let digest = hex(&Sha256::digest(format!(
            "QuestionnaireResponse/{response_id}#{key}"
        )));
        match self {
            DerivedIds::Ordered { first_written_us } => format!(
                "{DERIVED_PREFIX}{}{}",
                instant_prefix(first_written_us),
                &digest[..27]
            ),
            DerivedIds::Digest => format!("{DERIVED_PREFIX}{}", &digest[..40]),
        }
    }
}

impl FhirService {
    /// How the ids of what is derived from `w`'s response are made; `total_key` is its
    /// score's linkId. A response written for the first time needs no lookup; an amendment
    /// keeps the digest ids when its score has one, and otherwise takes the instant of the
    /// response's first version (a response without one, which the store never leaves, keeps
    /// the digest too, so its ids stay the same from one version to the next).
    pub(super) async fn derived_ids(
        &self,
        w: &PreparedWrite,
        total_key: &str,
    ) -> FhirResult<DerivedIds> {
        if w.current.is_none() {
            return Ok(DerivedIds::Ordered {
                first_written_us: w.version.last_updated_us,
            });
        }
        let response_id = &w.version.id;
        let digest_score = DerivedIds::Digest.id(response_id, total_key);
        if self
            .store
            .current("Observation", &digest_score)
            .await?
            .is_some()
        {
            return Ok(DerivedIds::Digest);
        }
        Ok(
            match self
                .store
                .version("QuestionnaireResponse", response_id, 1)
                .await?
            {
                Some(first) => DerivedIds::Ordered {
                    first_written_us: first.last_updated_us,
                },
                None => DerivedIds::Digest,
            },
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn derived_ids_sort_by_the_responses_first_version_and_stay_the_same_across_versions() {
        let at = 1_796_611_324_865_000;
        let ordered = DerivedIds::Ordered {
            first_written_us: at,
        };
        let score = ordered.id("qr1", "/44261-6");
        assert_eq!(score.len(), 45);
        assert_eq!(&score[..18], "prom-662022bd169e8");
        assert_eq!(ordered.id("qr1", "/44261-6"), score);
        assert_ne!(ordered.id("qr1", "http://loinc.org|44250-9#0"), score);
        assert_ne!(ordered.id("qr2", "/44261-6")[18..], score[18..]);
        // Responses written later sort after, whatever their ids.
        let ids: Vec<String> = (0..40)
            .map(|k| {
                DerivedIds::Ordered {
                    first_written_us: at + k * 3,
                }
                .id(&format!("r{k}"), "/44261-6")
            })
            .collect();
        let mut sorted = ids.clone();
        sorted.sort();
        assert_eq!(ids, sorted);
        // The digest ids of before, unchanged.
        let digest = DerivedIds::Digest.id("qr1", "/44261-6");
        assert_eq!(digest.len(), 45);
        assert!(digest.starts_with(DERIVED_PREFIX));
        assert_eq!(
            &digest[5..],
            &hex(&Sha256::digest("QuestionnaireResponse/qr1#/44261-6"))[..40]
        );
        assert_ne!(digest, score);
    }
}
