#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::*;
use crate::clock::ManualTicker;
use crate::config::ConfigLayer;
use std::net::Ipv6Addr;

fn throttle(settings: &[(&str, u32)]) -> (Throttle, Arc<ManualTicker>) {
    let mut layer = ConfigLayer::default();
    for (name, value) in settings {
        layer = layer.set(name, value);
    }
    let config = layer.resolve().expect("config");
    let ticker = Arc::new(ManualTicker::default());
    (Throttle::with_ticker(&config, ticker.clone()), ticker)
}

fn client(id: &str, subject: &str) -> Caller {
    Caller::Client {
        client_id: id.into(),
        subject: subject.into(),
    }
}

#[test]
fn a_burst_then_the_rate_then_a_refusal_that_says_when() {
    let (limits, ticker) = throttle(&[("sign_in_requests_per_second", 2), ("sign_in_burst", 3)]);
    let peer: IpAddr = "192.0.2.7".parse().unwrap();
    for _ in 0..3 {
        limits.sign_in(Some(peer)).expect("within the burst");
    }
    let refused = limits.sign_in(Some(peer)).unwrap_err();
    assert_eq!(refused.reason, Reason::Rate);
    assert_eq!(
        refused.retry_after,
        Duration::from_millis(500),
        "one request per 500 ms"
    );
    assert_eq!(refused.retry_after_seconds(), 1, "rounded up");
    // Another address has its own bucket.
    limits
        .sign_in(Some("192.0.2.8".parse().unwrap()))
        .expect("other address");
    // Time passing refills the bucket at the rate.
    ticker.advance(Duration::from_millis(499));
    assert!(limits.sign_in(Some(peer)).is_err());
    ticker.advance(Duration::from_millis(1));
    limits.sign_in(Some(peer)).expect("one more after 500 ms");
    assert!(limits.sign_in(Some(peer)).is_err());
}

#[test]
fn retry_after_rounds_up_to_whole_seconds() {
    let throttled = |millis| Throttled {
        retry_after: Duration::from_millis(millis),
        reason: Reason::Rate,
    };
    assert_eq!(throttled(0).retry_after_seconds(), 1);
    assert_eq!(throttled(1_000).retry_after_seconds(), 1);
    assert_eq!(throttled(1_001).retry_after_seconds(), 2);
    assert_eq!(throttled(59_500).retry_after_seconds(), 60);
}

#[test]
fn clients_are_limited_per_client_and_user() {
    let (limits, _ticker) = throttle(&[("api_requests_per_second", 1), ("api_burst", 1)]);
    let first = limits.api(client("app", "alex")).expect("first");
    drop(first);
    let refused = limits
        .api(client("app", "alex"))
        .err()
        .expect("second refused");
    assert_eq!(refused.reason, Reason::Rate);
    limits
        .api(client("app", "jordan"))
        .expect("another user of the same app has their own limit");
    limits
        .api(client("other-app", "alex"))
        .expect("the same user in another app too");
}

#[test]
fn requests_in_progress_are_capped_per_caller_and_given_back() {
    let (limits, _ticker) = throttle(&[("max_concurrent_requests_per_client", 2)]);
    let a = limits.api(client("app", "alex")).expect("1");
    let b = limits.api(client("app", "alex")).expect("2");
    let refused = limits
        .api(client("app", "alex"))
        .err()
        .expect("3rd refused");
    assert_eq!(refused.reason, Reason::Concurrency);
    assert!(refused.message().contains("in progress"));
    let other = limits.api(client("app", "jordan")).expect("another caller");
    drop(a);
    let c = limits.api(client("app", "alex")).expect("room again");
    drop((b, c, other));
    assert_eq!(
        limits.in_progress.callers(),
        0,
        "no entry outlives its requests"
    );
}

#[test]
fn without_a_peer_address_nothing_is_limited_by_address() {
    let (limits, _ticker) =
        throttle(&[("anonymous_requests_per_second", 1), ("anonymous_burst", 1)]);
    for _ in 0..5 {
        limits.anonymous(None).expect("in-process");
    }
    let peer = Some("198.51.100.1".parse().unwrap());
    limits.anonymous(peer).expect("first");
    assert!(limits.anonymous(peer).is_err());
}

#[test]
fn zero_turns_a_limit_off() {
    let (limits, _ticker) = throttle(&[("sign_in_requests_per_second", 0)]);
    let peer = Some("192.0.2.1".parse().unwrap());
    for _ in 0..1_000 {
        limits.sign_in(peer).expect("no limit");
    }
}

#[test]
fn ipv6_addresses_share_a_limit_per_64() {
    let a: IpAddr = "2001:db8:1:2:aaaa::1".parse().unwrap();
    let b: IpAddr = "2001:db8:1:2:bbbb::2".parse().unwrap();
    let c: IpAddr = "2001:db8:1:3::1".parse().unwrap();
    assert_eq!(address_key(a), address_key(b));
    assert_ne!(address_key(a), address_key(c));
    assert_eq!(
        address_key(IpAddr::V6(Ipv6Addr::from([
            0, 0, 0, 0, 0, 0xffff, 0xc000, 0x0201
        ]))),
        "192.0.2.1".parse::<IpAddr>().unwrap(),
        "an IPv4-mapped address is the IPv4 address"
    );
}

#[test]
fn idle_keys_are_forgotten_once_their_bucket_is_full() {
    let (limits, ticker) = throttle(&[
        ("anonymous_requests_per_second", 10),
        ("anonymous_burst", 10),
    ]);
    for n in 0..50u8 {
        limits
            .anonymous(Some(IpAddr::from([10, 0, 0, n])))
            .expect("one each");
    }
    assert_eq!(limits.tracked_keys(), 50);
    limits.forget_idle();
    assert_eq!(limits.tracked_keys(), 50, "not yet refilled");
    ticker.advance(Duration::from_secs(2));
    limits.forget_idle();
    assert_eq!(limits.tracked_keys(), 0);
}

#[test]
fn an_account_gets_its_burst_then_one_attempt_per_interval_from_any_address() {
    let (limits, ticker) = throttle(&[
        ("sign_in_account_interval_seconds", 10),
        ("sign_in_account_burst", 3),
    ]);
    for name in ["amy", "Amy", " AMY "] {
        limits
            .account(Account::User, name)
            .expect("within the burst");
    }
    let refused = limits.account(Account::User, "amy").unwrap_err();
    assert_eq!(refused.reason, Reason::Rate);
    assert_eq!(refused.retry_after, Duration::from_secs(10));
    // Other accounts have their own buckets.
    limits
        .account(Account::User, "jordan")
        .expect("another user");
    // Never refused for longer than the Retry-After said.
    ticker.advance(Duration::from_millis(9_999));
    assert!(limits.account(Account::User, "amy").is_err());
    ticker.advance(Duration::from_millis(1));
    limits
        .account(Account::User, "amy")
        .expect("one more after 10 s");
    assert!(limits.account(Account::User, "amy").is_err());
}

#[test]
fn accounts_back_at_a_full_burst_are_forgotten() {
    let (limits, ticker) = throttle(&[
        ("sign_in_account_interval_seconds", 10),
        ("sign_in_account_burst", 2),
    ]);
    limits.account(Account::User, "backend").expect("1st");
    limits.account(Account::User, "backend").expect("2nd");
    assert!(limits.account(Account::User, "backend").is_err());
    assert_eq!(limits.tracked_keys(), 1);
    ticker.advance(Duration::from_secs(19));
    limits.forget_idle();
    assert_eq!(limits.tracked_keys(), 1, "not yet refilled");
    ticker.advance(Duration::from_secs(1));
    limits.forget_idle();
    assert_eq!(limits.tracked_keys(), 0);
}

#[test]
fn the_account_limit_is_on_by_default_and_zero_turns_it_off() {
    let (limits, _ticker) = throttle(&[]);
    let refused = (0..11)
        .map(|_| limits.account(Account::User, "amy"))
        .filter(Result::is_err)
        .count();
    assert_eq!(refused, 1, "a burst of 10");
    let (limits, _ticker) = throttle(&[("sign_in_account_interval_seconds", 0)]);
    for _ in 0..1_000 {
        assert!(limits.account(Account::User, "amy").is_ok(), "no limit");
    }
}
