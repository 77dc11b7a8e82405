//! The authorization server's storage contract on every backend: single-use tickets (exactly one
//! of many concurrent consumers wins; replays are told apart from unknown tickets), expiry,
//! revocation, client-assertion `jti` replay, login throttling windows, clients and users,
//! signing key rotation, and the grants users approved (listed, extended, taken back whole).

use coplan::store::auth::{kind, AuthStore, Consumed, GrantRow, SigningKeyRow, UserRow};
use coplan::testing::{backends, TestDatabase};
use std::sync::Arc;

async fn each_store<F, Fut>(story: F)
where
    F: Fn(Arc<dyn AuthStore>) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    for backend in backends() {
        let db = TestDatabase::new(backend).await;
        story(db.store.auth()).await;
        db.cleanup().await;
    }
}

#[tokio::test]
async fn tickets_are_consumed_exactly_once_and_expire() {
    each_store(|store| async move {
        store
            .put_ticket(kind::CODE, "h1", "{\"a\":1}", 100)
            .await
            .expect("put");
        assert_eq!(
            store
                .ticket(kind::CODE, "h1", 50)
                .await
                .expect("get")
                .as_deref(),
            Some("{\"a\":1}")
        );
        assert_eq!(
            store.ticket(kind::REFRESH, "h1", 50).await.expect("get"),
            None,
            "kinds are separate"
        );
        assert_eq!(
            store
                .consume_ticket(kind::CODE, "h1", 50)
                .await
                .expect("consume"),
            Consumed::Fresh("{\"a\":1}".into())
        );
        assert_eq!(
            store
                .consume_ticket(kind::CODE, "h1", 51)
                .await
                .expect("consume"),
            Consumed::AlreadyUsed("{\"a\":1}".into())
        );
        assert_eq!(store.ticket(kind::CODE, "h1", 52).await.expect("get"), None);
        assert_eq!(
            store
                .consume_ticket(kind::CODE, "nope", 50)
                .await
                .expect("consume"),
            Consumed::Missing
        );
        // Expired unused tickets are missing.
        store
            .put_ticket(kind::LAUNCH, "h2", "x", 100)
            .await
            .expect("put");
        assert_eq!(
            store
                .consume_ticket(kind::LAUNCH, "h2", 100)
                .await
                .expect("consume"),
            Consumed::Missing
        );
        // Purging drops expired tickets.
        store.purge_expired(101).await.expect("purge");
        store
            .put_ticket(kind::SESSION, "s", "v1", 500)
            .await
            .expect("put");
        store
            .put_ticket(kind::SESSION, "s", "v2", 500)
            .await
            .expect("replace");
        assert_eq!(
            store
                .ticket(kind::SESSION, "s", 100)
                .await
                .expect("get")
                .as_deref(),
            Some("v2")
        );
        store
            .delete_ticket(kind::SESSION, "s")
            .await
            .expect("delete");
        assert_eq!(
            store.ticket(kind::SESSION, "s", 100).await.expect("get"),
            None
        );

        // Many concurrent consumers: exactly one fresh.
        store
            .put_ticket(kind::REFRESH, "race", "r", 1000)
            .await
            .expect("put");
        let mut tasks = Vec::new();
        for _ in 0..8 {
            let store = store.clone();
            tasks.push(tokio::spawn(async move {
                store.consume_ticket(kind::REFRESH, "race", 10).await
            }));
        }
        let mut fresh = 0;
        for task in tasks {
            match task.await.expect("task").expect("consume") {
                Consumed::Fresh(_) => fresh += 1,
                Consumed::AlreadyUsed(_) => {}
                Consumed::Missing => panic!("the ticket exists"),
            }
        }
        assert_eq!(fresh, 1);
    })
    .await;
}

#[tokio::test]
async fn revocations_jtis_and_throttling() {
    each_store(|store| async move {
        assert!(!store.any_revoked(&["a", "b"]).await.expect("check"));
        assert!(store.revoke("b", 100).await.expect("revoke"));
        assert!(
            !store
                .revoke("b", 100)
                .await
                .expect("revoking twice is fine"),
            "nothing new the second time"
        );
        assert!(
            !store.revoke("b", 50).await.expect("shorter"),
            "never shortened"
        );
        assert!(store.revoke("e", 50).await.expect("revoke"));
        assert!(store.revoke("e", 90).await.expect("longer"), "extended");
        assert!(store.any_revoked(&["a", "b"]).await.expect("check"));
        store.purge_expired(100).await.expect("purge");
        assert!(!store.any_revoked(&["b"]).await.expect("check"));

        assert!(store.remember_jti("c1", "j", 100).await.expect("first"));
        assert!(!store.remember_jti("c1", "j", 100).await.expect("replay"));
        assert!(store
            .remember_jti("c2", "j", 100)
            .await
            .expect("another client's jti"));

        // Failures count within a window; a new window starts afresh.
        assert_eq!(
            store
                .record_login_failure("amy", 1000, 100)
                .await
                .expect("fail"),
            1
        );
        assert_eq!(
            store
                .record_login_failure("amy", 1001, 101)
                .await
                .expect("fail"),
            2
        );
        assert_eq!(store.login_failures("amy", 101).await.expect("count"), 2);
        assert_eq!(
            store
                .login_failures("amy", 1000)
                .await
                .expect("window over"),
            0
        );
        assert_eq!(
            store
                .record_login_failure("amy", 2000, 1000)
                .await
                .expect("new window"),
            1
        );
        store.clear_login_failures("amy").await.expect("clear");
        assert_eq!(store.login_failures("amy", 0).await.expect("count"), 0);
    })
    .await;
}

#[tokio::test]
async fn clients_users_and_signing_keys() {
    each_store(|store| async move {
        store.put_client("app", "{\"v\":1}").await.expect("put");
        store.put_client("app", "{\"v\":2}").await.expect("replace");
        assert_eq!(
            store.client("app").await.expect("get").as_deref(),
            Some("{\"v\":2}")
        );
        assert_eq!(store.client("other").await.expect("get"), None);

        let user = UserRow {
            username: "amy".into(),
            password_hash: "$argon2id$x".into(),
            fhir_user: Some("Patient/1".into()),
        };
        store.put_user(&user).await.expect("put");
        assert_eq!(store.user("amy").await.expect("get"), Some(user.clone()));
        assert!(
            !format!("{user:?}").contains("argon2"),
            "Debug redacts the hash"
        );

        let key = |kid: &str, created_at: i64| SigningKeyRow {
            kid: kid.into(),
            alg: "RS256".into(),
            private_der: "AAAA".into(),
            created_at,
            retired_at: None,
            expires_at: None,
        };
        store.add_signing_key(&key("k1", 10)).await.expect("add");
        store.add_signing_key(&key("k2", 20)).await.expect("add");
        assert_eq!(
            store
                .retire_signing_keys("k2", 30, 90)
                .await
                .expect("retire"),
            1
        );
        let keys = store.signing_keys(50).await.expect("list");
        assert_eq!(
            keys.iter().map(|k| k.kid.as_str()).collect::<Vec<_>>(),
            ["k2", "k1"]
        );
        assert_eq!(keys[1].retired_at, Some(30));
        assert_eq!(keys[0].retired_at, None);
        let later = store.signing_keys(90).await.expect("list");
        assert_eq!(
            later.len(),
            1,
            "retired keys go once their tokens have expired"
        );
    })
    .await;
}

#[tokio::test]
async fn grants_are_listed_per_user_and_taken_back_with_their_revocation() {
    each_store(|store| async move {
        let grant = |id: &str, subject: &str, client: &str, expires_at: i64| GrantRow {
            grant_id: id.into(),
            subject: subject.into(),
            client_id: client.into(),
            scope: "launch/patient patient/*.rs".into(),
            patient: Some("p1".into()),
            created_at: 10,
            expires_at,
        };
        for g in [
            grant("g1", "amy", "portal", 100),
            grant("g2", "amy", "portal", 200),
            grant("g3", "amy", "diary", 100),
            grant("g4", "bob", "portal", 100),
        ] {
            store.put_grant(&g).await.expect("put grant");
        }
        let ids = |list: Vec<GrantRow>| list.into_iter().map(|g| g.grant_id).collect::<Vec<_>>();
        assert_eq!(
            ids(store.grants_of("amy", 50).await.expect("list")),
            ["g1", "g2", "g3"]
        );
        assert_eq!(
            ids(store.grants_of("amy", 150).await.expect("list")),
            ["g2"]
        );
        assert_eq!(
            store.grants_of("amy", 50).await.expect("list")[0],
            grant("g1", "amy", "portal", 100)
        );

        // A refresh may extend a grant's listing, never shorten it.
        store
            .put_grant(&grant("g3", "amy", "diary", 300))
            .await
            .expect("extend");
        store
            .put_grant(&grant("g3", "amy", "diary", 120))
            .await
            .expect("extend");
        assert_eq!(
            ids(store.grants_of("amy", 250).await.expect("list")),
            ["g3"]
        );

        // Taking back amy's portal access revokes and unlists exactly her portal grants.
        assert_eq!(
            store
                .revoke_grants("amy", "portal", 1000)
                .await
                .expect("revoke"),
            2
        );
        assert!(store.any_revoked(&["g1"]).await.expect("revoked"));
        assert!(store.any_revoked(&["g2"]).await.expect("revoked"));
        assert!(!store.any_revoked(&["g3", "g4"]).await.expect("revoked"));
        assert_eq!(ids(store.grants_of("amy", 50).await.expect("list")), ["g3"]);
        assert_eq!(ids(store.grants_of("bob", 50).await.expect("list")), ["g4"]);
        assert_eq!(
            store
                .revoke_grants("amy", "portal", 1000)
                .await
                .expect("again"),
            0
        );

        // One grant revoked (a replayed refresh token): unlisted, and revoked for as long as
        // its listed last token lives even when that outlasts the requested revocation.
        store
            .put_grant(&grant("g5", "bob", "diary", 5000))
            .await
            .expect("put");
        store.revoke_grant("g4", 1000).await.expect("revoke one");
        store.revoke_grant("g5", 1000).await.expect("revoke one");
        assert!(store.grants_of("bob", 50).await.expect("list").is_empty());
        // A grant that was never listed (issued before the listing existed) is still revoked.
        store.revoke_grant("g-old", 1000).await.expect("revoke one");
        // A later, shorter revocation never shortens an earlier one.
        store.revoke("g5", 10).await.expect("revoke");
        store.purge_expired(2000).await.expect("purge");
        assert!(store.grants_of("amy", 0).await.expect("list").is_empty());
        assert!(!store
            .any_revoked(&["g1", "g2", "g4", "g-old"])
            .await
            .expect("revoked"));
        assert!(store
            .any_revoked(&["g5"])
            .await
            .expect("g5 lives until 5000"));
        store.purge_expired(5000).await.expect("purge");
        assert!(!store.any_revoked(&["g5"]).await.expect("revoked"));
    })
    .await;
}
