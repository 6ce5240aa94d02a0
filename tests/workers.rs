//! Shared workers: leases on every backend, and `orderflow serve` processes
//! splitting 100 shops on PostgreSQL and on MySQL, one of them killed.

mod support;

use std::time::Duration;

use orderflow::store::{RunRecord, RunStart};

#[tokio::test]
async fn a_lease_is_held_by_one_worker_renewed_released_and_taken_over_once_expired() {
    for test in support::test_stores().await {
        let (store, label) = (&test.store, test.label);
        let ttl = Duration::from_millis(1500);
        let a = store.claim_lease("sync", "s1", "worker-a", ttl).await.unwrap().expect("a free lease is claimed");
        assert_eq!(a.epoch, 1, "{label}");
        assert_eq!(store.claim_lease("sync", "s1", "worker-b", ttl).await.unwrap(), None, "{label}: held by a");
        let other = store.claim_lease("sync", "s2", "worker-b", ttl).await.unwrap();
        assert!(other.is_some(), "{label}: another shop is another lease");
        assert!(store.renew_lease(&a, ttl).await.unwrap(), "{label}: the holder renews");

        // a stops renewing (as a killed process does): b takes over once it expires.
        tokio::time::sleep(ttl + Duration::from_millis(300)).await;
        let b = store.claim_lease("sync", "s1", "worker-b", ttl).await.unwrap().expect("an expired lease is claimed");
        assert_eq!(b.epoch, 2, "{label}: the fencing epoch moves on");
        assert!(!store.renew_lease(&a, ttl).await.unwrap(), "{label}: the old holder learns it lost the lease");
        store.release_lease(&a).await.unwrap();
        let rows = store.leases().await.unwrap();
        let s1 = rows.iter().find(|row| row.shop == "s1").unwrap();
        assert_eq!((s1.holder.as_str(), s1.epoch), ("worker-b", 2), "{label}: the old holder's release is ignored");
        assert!(s1.expires_at > chrono::Utc::now(), "{label}");

        store.release_lease(&b).await.unwrap();
        let c = store.claim_lease("sync", "s1", "worker-c", ttl).await.unwrap();
        assert_eq!(c.map(|c| c.epoch), Some(3), "{label}: a released lease is free at once");
        test.cleanup().await;
    }
}

#[tokio::test]
async fn concurrent_claims_of_one_lease_have_one_winner() {
    for test in support::test_stores().await {
        let claims = (0..8).map(|i| {
            let store = test.store.clone();
            tokio::spawn(async move {
                store.claim_lease("sync", "s1", &format!("worker-{i}"), Duration::from_secs(30)).await.unwrap()
            })
        });
        let mut winners = 0;
        for claim in claims {
            winners += usize::from(claim.await.unwrap().is_some());
        }
        assert_eq!(winners, 1, "{}", test.label);
        test.cleanup().await;
    }
}

#[tokio::test]
async fn runs_record_their_shop_and_worker_and_the_last_start_per_shop() {
    for test in support::test_stores().await {
        let store = &test.store;
        let at = |secs: i64| chrono::DateTime::from_timestamp(1_767_000_000 + secs, 0).unwrap();
        for (id, shop, secs) in [("r1", "a", 0), ("r2", "b", 5), ("r3", "a", 10)] {
            let start = RunStart {
                id: id.into(),
                flow: "sync".into(),
                trigger: "schedule".into(),
                started_at: at(secs),
                shop: Some(shop.into()),
                worker: Some("w1".into()),
            };
            store.insert_run(&start).await.unwrap();
        }
        let runs: Vec<RunRecord> = store.runs_of("sync").await.unwrap();
        assert_eq!(runs.iter().map(|r| r.id.as_str()).collect::<Vec<_>>(), ["r1", "r2", "r3"], "{}", test.label);
        assert_eq!(runs[1].shop.as_deref(), Some("b"));
        assert_eq!(runs[1].worker.as_deref(), Some("w1"));
        let mut last = store.last_run_starts("sync").await.unwrap();
        last.sort();
        assert_eq!(last, [(Some("a".into()), at(10)), (Some("b".into()), at(5))], "{}", test.label);
        test.cleanup().await;
    }
}
