//! The caps on open connections (issue 17 §3, H1): at most `max_connections` in total,
//! `max_connections_per_address` from one address (keyed as [`super::address_key`] does: IPv6
//! by its /64) and, for IPv6, `max_connections_per_ipv6_site` from one /48 — a site's usual
//! allocation holds 65,536 /64s, enough to fill the total cap 256 at a time without it.
//! `http/server.rs` asks before it serves an accepted connection and closes it at once when
//! refused; the [`ConnectionGuard`] it holds for the connection's life gives the place back
//! when dropped, however the connection ends.

use super::address_key;
use std::collections::HashMap;
use std::net::{IpAddr, Ipv6Addr};
use std::sync::{Arc, Mutex};

/// Why a connection was not taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConnectionRefused {
    /// `max_connections` are open.
    Total,
    /// `max_connections_per_address` are open from this address.
    Address,
    /// `max_connections_per_ipv6_site` are open from this address's /48.
    Site,
}

/// The open connections, counted in total, per address and per IPv6 site.
pub struct Connections {
    max_total: u32,
    max_per_address: u32,
    max_per_site: u32,
    open: Arc<Mutex<Open>>,
}

#[derive(Default)]
struct Open {
    total: u32,
    /// Per address key, and per IPv6 /48 (the key's first 48 bits; an IPv4 address has none).
    by_address: HashMap<IpAddr, u32>,
}

/// One open connection; dropping it closes its place.
pub struct ConnectionGuard {
    open: Arc<Mutex<Open>>,
    address: IpAddr,
    site: Option<IpAddr>,
}

/// The /48 an IPv6 address key is in (`None` for IPv4), as a key apart from every /64's: the
/// /64 key of a /48's first network equals the /48 itself, so the site key sets the low bit,
/// which no /64 key has.
fn site_key(address: IpAddr) -> Option<IpAddr> {
    match address {
        IpAddr::V4(_) => None,
        IpAddr::V6(v6) => {
            let bits = u128::from(v6) & !((1u128 << 80) - 1);
            Some(IpAddr::V6(Ipv6Addr::from(bits | 1)))
        }
    }
}

/// Take one from `key`'s count, dropping the entry at zero.
fn release(by_address: &mut HashMap<IpAddr, u32>, key: IpAddr) {
    if let Some(count) = by_address.get_mut(&key) {
        *count = count.saturating_sub(1);
        if *count == 0 {
            by_address.remove(&key);
        }
    }
}

impl Connections {
    pub fn new(max_total: u32, max_per_address: u32, max_per_site: u32) -> Self {
        Connections {
            max_total,
            max_per_address,
            max_per_site,
            open: Arc::default(),
        }
    }

    /// Take a place for a connection from `peer`, unless a cap is reached.
    pub fn open(&self, peer: IpAddr) -> Result<ConnectionGuard, ConnectionRefused> {
        let address = address_key(peer);
        let site = site_key(address);
        // A poisoned lock (a panic while holding it; nothing in here panics) must not stop
        // the server: its counts are still whole, so go on with them.
        let mut open = self.open.lock().unwrap_or_else(|p| p.into_inner());
        if open.total >= self.max_total {
            return Err(ConnectionRefused::Total);
        }
        let count = |key: &IpAddr| open.by_address.get(key).copied().unwrap_or(0);
        if count(&address) >= self.max_per_address {
            return Err(ConnectionRefused::Address);
        }
        if site.is_some_and(|site| count(&site) >= self.max_per_site) {
            return Err(ConnectionRefused::Site);
        }
        open.total += 1;
        for key in std::iter::once(address).chain(site) {
            *open.by_address.entry(key).or_insert(0) += 1;
        }
        Ok(ConnectionGuard {
            open: self.open.clone(),
            address,
            site,
        })
    }

    /// Connections open now: in total, and the number of addresses and IPv6 sites they come
    /// from.
    pub fn counts(&self) -> (u32, usize) {
        let open = self.open.lock().unwrap_or_else(|p| p.into_inner());
        (open.total, open.by_address.len())
    }
}

impl Drop for ConnectionGuard {
    fn drop(&mut self) {
        let mut open = self.open.lock().unwrap_or_else(|p| p.into_inner());
        open.total = open.total.saturating_sub(1);
        release(&mut open.by_address, self.address);
        if let Some(site) = self.site {
            release(&mut open.by_address, site);
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn each_address_has_its_cap_and_gets_its_places_back() {
        let connections = Connections::new(100, 2, 100);
        let a = connections.open(ip("192.0.2.1")).expect("1st");
        let b = connections.open(ip("192.0.2.1")).expect("2nd");
        assert_eq!(
            connections.open(ip("192.0.2.1")).err(),
            Some(ConnectionRefused::Address)
        );
        let other = connections.open(ip("192.0.2.2")).expect("another address");
        assert_eq!(connections.counts(), (3, 2));
        drop(a);
        let c = connections.open(ip("192.0.2.1")).expect("a place again");
        drop((b, c, other));
        assert_eq!(
            connections.counts(),
            (0, 0),
            "no entry outlives its connections"
        );
    }

    #[test]
    fn the_total_cap_counts_every_address() {
        let connections = Connections::new(3, 2, 100);
        let held: Vec<_> = ["192.0.2.1", "192.0.2.2", "192.0.2.3"]
            .into_iter()
            .map(|a| connections.open(ip(a)).expect("within the total"))
            .collect();
        assert_eq!(
            connections.open(ip("192.0.2.4")).err(),
            Some(ConnectionRefused::Total)
        );
        drop(held);
        connections.open(ip("192.0.2.4")).expect("room again");
    }

    #[test]
    fn ipv6_addresses_share_a_cap_per_64() {
        let connections = Connections::new(100, 1, 100);
        let _held = connections.open(ip("2001:db8:1:2::1")).expect("1st");
        assert_eq!(
            connections.open(ip("2001:db8:1:2:ffff::9")).err(),
            Some(ConnectionRefused::Address),
            "the same /64"
        );
        connections
            .open(ip("2001:db8:1:3::1"))
            .expect("another /64");
    }

    #[test]
    fn an_ipv6_site_has_a_cap_across_its_networks() {
        let connections = Connections::new(100, 2, 3);
        let held: Vec<_> = ["2001:db8:5::1", "2001:db8:5::2", "2001:db8:5:1::1"]
            .into_iter()
            .map(|a| connections.open(ip(a)).expect("within the site's cap"))
            .collect();
        assert_eq!(
            connections.open(ip("2001:db8:5:ffff::1")).err(),
            Some(ConnectionRefused::Site),
            "another /64 of the same /48"
        );
        connections
            .open(ip("2001:db8:6::1"))
            .expect("another /48 has its own");
        connections
            .open(ip("192.0.2.1"))
            .expect("IPv4 has no site cap");
        drop(held);
        let again = connections
            .open(ip("2001:db8:5:ffff::1"))
            .expect("room again");
        drop(again);
        assert_eq!(
            connections.counts(),
            (0, 0),
            "no entry outlives its connections"
        );
    }
}
