//! `cpo erase` on `file://`: after a campaign with simulated outcomes and a sharded run, one customer is removed
//! from every object that held them — no object of the store still carries their id — while every other
//! customer stays, a second erase finds nothing, and the rewritten incoming file starts no new run.

use cpo_common::keys::Key;
use cpo_common::store::DynStore;
use cpo_e2e::*;

/// Keys of every object whose bytes contain `needle`.
async fn holding(store: &DynStore, needle: &str) -> Vec<String> {
    let mut out = Vec::new();
    for prefix in ["incoming/", "runs/", "audit/", "erasure/", "cache/"] {
        for o in store.list(&Key::new(prefix).unwrap()).await.unwrap() {
            let body = store.get(&Key::new(o.key.clone()).unwrap()).await.unwrap();
            if body.windows(needle.len()).any(|w| w == needle.as_bytes()) {
                out.push(o.key);
            }
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn erase_removes_one_customer_from_every_customer_level_object() {
    let s = Scratch::new();
    let input = s.customers(300, 3);
    cpo::cmd::run::run(run_args(&s.store_url(), &input, true)).await.expect("campaign with outcomes");
    let mut sharded = run_args(&s.store_url(), &s.customers(200, 4), false);
    sharded.sharded = true;
    cpo::cmd::run::run(sharded).await.expect("sharded campaign");
    let store = s.store();
    let (gone, kept) = ("C00000007", "C00000008");
    let before = holding(&store, gone).await;
    assert!(before.len() >= 8, "the customer is in both inputs and both runs: {before:?}");

    let e = cpo::cmd::erase::erase(store.as_ref(), gone, false).await.unwrap();
    eprintln!("rewrote {} of {} objects, {} rows", e.rewritten.len(), e.scanned, e.rows);
    assert_eq!(holding(&store, gone).await, Vec::<String>::new(), "an object still holds the erased id");
    assert!(e.rewritten.keys().any(|k| k.ends_with("/segment/sketch-00000.json")), "{:?}", e.rewritten);
    for part in ["incoming/weekly/", "/customers/members-", "/assignments/", "/send/part-", "/outcomes/", "/ingest/"] {
        assert!(e.rewritten.keys().any(|k| k.contains(part)), "nothing rewritten under {part}: {:?}", e.rewritten);
    }
    // Everyone else is still there, and the erasure is idempotent.
    assert!(holding(&store, kept).await.len() >= before.len() - 1);
    let again = cpo::cmd::erase::erase(store.as_ref(), gone, false).await.unwrap();
    assert!(again.rewritten.is_empty(), "{:?}", again.rewritten);

    // The rewritten drop is not a new drop: the trigger starts nothing for it.
    let starter = cpo::local::LocalStarter::new(cpo_common::Ctx::new(store.clone()), None);
    for key in e.rewritten.keys().filter(|k| k.starts_with("incoming/")) {
        let started = cpo_trigger::start_for_key(store.as_ref(), &starter, key, &Default::default()).await.unwrap();
        assert!(started.is_none(), "{key} started a run");
    }
}
