//! Request throttling (issue 17 §3): rate limits per client and per address, and a cap on each
//! client's requests in progress. Plain Rust — `http/throttle.rs` says who a request is from and
//! turns a refusal into a 429 with `Retry-After` (RFC 6585 §4).
//!
//! Three rate limits, each a GCRA bucket per key (`governor`):
//! - **api**: authenticated FHIR API requests, per [`Caller`] (the token's client and user);
//! - **anonymous**: requests without a valid token (the FHIR API's 401s, metadata, discovery,
//!   the authorization server's pages), per address, so guessing tokens is slow;
//! - **sign_in**: every `POST /auth/…` (sign-in, consent, token, introspection, revocation,
//!   launch), per address, strict, so guessing passwords and client secrets is slow.
//!
//! And one per account ([`AccountLimit`]): sign-in attempts at one username or client id from
//! any address, so a guess spread over many addresses is slow too.
//!
//! The caps on open connections ([`Connections`]) are counted here too, for `http/server.rs`.
//!
//! Addresses are the TCP peer's: IPv4 whole, IPv6 by its /64 (one host usually holds a whole
//! /64). A request without a peer address (the router driven in-process) is not limited by
//! address. Keys idle long enough to have refilled are dropped by [`Throttle::forget_idle`].

mod account;
mod connections;
mod in_progress;
mod rate;
mod refused;

pub use account::{Account, AccountLimit};
pub use connections::{ConnectionGuard, ConnectionRefused, Connections};
pub use in_progress::{InProgress, InProgressGuard};
pub use rate::RateLimit;

use crate::clock::{SystemTicker, Ticker};
use crate::config::Config;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

/// Whom a limit counts a request against.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Caller {
    /// An access token's client and the user it acts for (its subject; for a backend service,
    /// the client itself): two patients using one app do not share a limit.
    Client { client_id: String, subject: String },
    /// The peer address (see [`address_key`]): without access control, or without a token.
    Address(IpAddr),
}

/// The address a limit keys `peer` by: IPv4 as it is, IPv6 by its /64 network.
pub fn address_key(peer: IpAddr) -> IpAddr {
    match peer {
        IpAddr::V4(v4) => IpAddr::V4(v4),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let bits = u128::from(v6) & !((1u128 << 64) - 1);
                IpAddr::V6(std::net::Ipv6Addr::from(bits))
            }
        },
    }
}

/// A refused request: over a rate, or too many in progress. The client may try again after
/// `retry_after`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Throttled {
    pub retry_after: Duration,
    pub reason: Reason,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    /// More requests than the rate allows.
    Rate,
    /// More requests in progress at once than the cap.
    Concurrency,
}

impl Throttled {
    /// `Retry-After` in whole seconds, rounded up, at least 1.
    pub fn retry_after_seconds(&self) -> u64 {
        let d = self.retry_after;
        let whole = d.as_secs() + u64::from(d.subsec_nanos() > 0);
        whole.max(1)
    }

    /// What the client is told (no key, no figures about other clients).
    pub fn message(&self) -> String {
        match self.reason {
            Reason::Rate => format!(
                "too many requests; try again in {} s",
                self.retry_after_seconds()
            ),
            Reason::Concurrency => {
                "too many requests in progress at once from this client; wait for one to finish"
                    .to_string()
            }
        }
    }
}

/// The server's limits and their state (shared by every request).
pub struct Throttle {
    api: Option<RateLimit<Caller>>,
    anonymous: Option<RateLimit<IpAddr>>,
    sign_in: Option<RateLimit<IpAddr>>,
    account: Option<AccountLimit>,
    /// Addresses the anonymous limit refused, whose unverified tokens wait ([`refused`]).
    refused: refused::RefusedAddresses,
    in_progress: InProgress,
}

impl Throttle {
    /// The configured limits, measured on the real monotonic clock.
    pub fn from_config(config: &Config) -> Self {
        Self::with_ticker(config, Arc::new(SystemTicker::default()))
    }

    /// The configured limits, measured on `ticker` (tests pass a `ManualTicker`).
    pub fn with_ticker(config: &Config, ticker: Arc<dyn Ticker>) -> Self {
        Throttle {
            api: RateLimit::new(
                config.api_requests_per_second,
                config.api_burst,
                ticker.clone(),
            ),
            anonymous: RateLimit::new(
                config.anonymous_requests_per_second,
                config.anonymous_burst,
                ticker.clone(),
            ),
            sign_in: RateLimit::new(
                config.sign_in_requests_per_second,
                config.sign_in_burst,
                ticker.clone(),
            ),
            account: AccountLimit::new(
                config.sign_in_account_interval_seconds,
                config.sign_in_account_burst,
                ticker.clone(),
            ),
            refused: refused::RefusedAddresses::new(ticker),
            in_progress: InProgress::new(config.max_concurrent_requests_per_client),
        }
    }

    /// An authenticated FHIR API request of `caller`: counted against its rate, then held
    /// against its cap on requests in progress until the guard is dropped.
    pub fn api(&self, caller: Caller) -> Result<InProgressGuard, Throttled> {
        if let Some(limit) = &self.api {
            limit.check(&caller)?;
        }
        self.in_progress.enter(caller)
    }

    /// A request without a valid token from `peer` (`None`: in-process, not limited),
    /// including one whose token failed verification. A refusal also refuses the address's
    /// tokens that need verifying until it ends ([`Throttle::unverified`]).
    pub fn anonymous(&self, peer: Option<IpAddr>) -> Result<(), Throttled> {
        match (&self.anonymous, peer) {
            (Some(limit), Some(peer)) => {
                let key = address_key(peer);
                limit.check(&key).inspect_err(|throttled| {
                    self.refused.refuse(key, throttled.retry_after);
                })
            }
            _ => Ok(()),
        }
    }

    /// A bearer token from `peer` that needs a signature check (not in the verifier's cache):
    /// refused while the anonymous limit refuses the address, not counted otherwise (only a
    /// failed check counts, through [`Throttle::anonymous`]).
    pub fn unverified(&self, peer: Option<IpAddr>) -> Result<(), Throttled> {
        match (&self.anonymous, peer) {
            (Some(_), Some(peer)) => match self.refused.remaining(address_key(peer)) {
                Some(retry_after) => Err(Throttled {
                    retry_after,
                    reason: Reason::Rate,
                }),
                None => Ok(()),
            },
            _ => Ok(()),
        }
    }

    /// A sign-in, token or other `POST /auth/…` request from `peer`.
    pub fn sign_in(&self, peer: Option<IpAddr>) -> Result<(), Throttled> {
        match (&self.sign_in, peer) {
            (Some(limit), Some(peer)) => limit.check(&address_key(peer)),
            _ => Ok(()),
        }
    }

    /// A sign-in attempt at an account (a username), from any address: counted, or refused
    /// before the credentials are checked.
    pub fn account(&self, account: Account, name: &str) -> Result<(), Throttled> {
        match &self.account {
            Some(limit) => limit.attempt(account, name),
            None => Ok(()),
        }
    }

    /// Drop the state of keys that have been idle long enough to be back at a full burst
    /// (they would start afresh anyway), so memory follows the clients of the last moments,
    /// not every address ever seen.
    pub fn forget_idle(&self) {
        for limit in [&self.anonymous, &self.sign_in].into_iter().flatten() {
            limit.forget_idle();
        }
        if let Some(limit) = &self.api {
            limit.forget_idle();
        }
        if let Some(limit) = &self.account {
            limit.forget_idle();
        }
        self.refused.forget_expired();
    }

    /// How many keys the rate limits hold state for (for tests and diagnostics).
    pub fn tracked_keys(&self) -> usize {
        let by_address: usize = [&self.anonymous, &self.sign_in]
            .into_iter()
            .flatten()
            .map(RateLimit::keys)
            .sum();
        by_address
            + self.api.as_ref().map_or(0, RateLimit::keys)
            + self.account.as_ref().map_or(0, AccountLimit::keys)
            + self.refused.len()
    }
}

#[cfg(test)]
mod tests;
