//! The caps on open connections (issue 17 §3, H1): at most `max_connections` in total and
//! `max_connections_per_address` from one address (keyed as [`super::address_key`] does: IPv6
//! by its /64). `http/server.rs` asks before it serves an accepted connection and closes it at
//! once when refused; the [`ConnectionGuard`] it holds for the connection's life gives the
//! place back when dropped, however the connection ends.

use super::address_key;
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

/// Why a connection was not taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConnectionRefused {
    /// `max_connections` are open.
    Total,
    /// `max_connections_per_address` are open from this address.
    Address,
}

/// The open connections, counted in total and per address.
pub struct Connections {
    max_total: u32,
    max_per_address: u32,
    open: Arc<Mutex<Open>>,
}

#[derive(Default)]
struct Open {
    total: u32,
    by_address: HashMap<IpAddr, u32>,
}

/// One open connection; dropping it closes its place.
pub struct ConnectionGuard {
    open: Arc<Mutex<Open>>,
    address: IpAddr,
}

impl Connections {
    pub fn new(max_total: u32, max_per_address: u32) -> Self {
        Connections {
            max_total,
            max_per_address,
            open: Arc::default(),
        }
    }

    /// Take a place for a connection from `peer`, unless a cap is reached.
    pub fn open(&self, peer: IpAddr) -> Result<ConnectionGuard, ConnectionRefused> {
        let address = address_key(peer);
        // A poisoned lock (a panic while holding it; nothing in here panics) must not stop
        // the server: its counts are still whole, so go on with them.
        let mut open = self.open.lock().unwrap_or_else(|p| p.into_inner());
        if open.total >= self.max_total {
            return Err(ConnectionRefused::Total);
        }
        let from_address = open.by_address.get(&address).copied().unwrap_or(0);
        if from_address >= self.max_per_address {
            return Err(ConnectionRefused::Address);
        }
        open.total += 1;
        open.by_address.insert(address, from_address + 1);
        Ok(ConnectionGuard {
            open: self.open.clone(),
            address,
        })
    }

    /// Connections open now: in total, and the number of addresses they come from.
    pub fn counts(&self) -> (u32, usize) {
        let open = self.open.lock().unwrap_or_else(|p| p.into_inner());
        (open.total, open.by_address.len())
    }
}

impl Drop for ConnectionGuard {
    fn drop(&mut self) {
        let mut open = self.open.lock().unwrap_or_else(|p| p.into_inner());
        open.total = open.total.saturating_sub(1);
        if let Some(count) = open.by_address.get_mut(&self.address) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                open.by_address.remove(&self.address);
            }
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
        let connections = Connections::new(100, 2);
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
        let connections = Connections::new(3, 2);
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
        let connections = Connections::new(100, 1);
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
}
