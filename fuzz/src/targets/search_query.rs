//! Target `search_query`: a search request (R4 search.html) as the server compiles it before any
//! query runs — the query string decoded as axum decodes it, parsed by crates/fhir-search-query
//! against the R4 registry, its filters translated into store clauses
//! (`rest::search::compile_search`).
//!
//! Input: `Type?query`, optionally preceded by `!` for `Prefer: handling=strict`.
//!
//! Invariant beyond "no panic, no 500": the self link of an accepted search (the parameters the
//! server reports it applied, `self_link_params`) parses back, strictly, to the same request
//! (without the ignored parameters) — paging links and `Bundle.link[self]` depend on it.

use super::{assert_not_internal, BASE};
use coplan::rest::search::compile_search;
use coplan::rest::search::params::R4SearchParams;
use fhir_search_query::self_link_params;

pub fn check(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let (strict, text) = match text.strip_prefix('!') {
        Some(rest) => (true, rest),
        None => (false, text),
    };
    let (resource_type, query) = text.split_once('?').unwrap_or((text, ""));
    let pairs: Vec<(String, String)> = form_urlencoded::parse(query.as_bytes())
        .into_owned()
        .collect();
    let params = R4SearchParams::default();
    let request = match compile_search(&params, BASE, resource_type, &pairs, strict) {
        Ok((request, _clauses)) => request,
        Err(e) => return assert_not_internal(&e, "compile_search"),
    };
    let link = self_link_params(&request);
    let again = match compile_search(&params, BASE, resource_type, &link, true) {
        Ok((again, _)) => again,
        Err(e) => panic!("the self link {link:?} of an accepted search does not parse: {e:?}"),
    };
    let mut applied = request;
    applied.unknown.clear();
    assert_eq!(
        again, applied,
        "the self link {link:?} parses to another search"
    );
}
