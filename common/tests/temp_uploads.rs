//! A `file://` store writes every object through a temporary `<path>#<n>` file renamed into place
//! (object_store's `LocalFileSystem`). A killed writer leaves that temporary behind: it is never an object —
//! not listed, not a valid key, so never read as an input — and a listing removes it once it is stale.

use std::time::{Duration, SystemTime};

use bytes::Bytes;
use cpo_common::keys::Key;
use cpo_common::store::{open, DynStore};

fn key(s: &str) -> Key {
    Key::new(s).expect("valid test key")
}

async fn listed(store: &DynStore, prefix: &str) -> Vec<String> {
    store.list(&key(prefix)).await.unwrap().into_iter().map(|m| m.key).collect()
}

/// Leave a temporary as a killed upload would, last written `age` ago.
fn leave_temporary(path: &std::path::Path, age: Duration) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, b"customer_id,recency_days\nC1,").unwrap();
    let file = std::fs::File::options().write(true).open(path).unwrap();
    file.set_modified(SystemTime::now() - age).unwrap();
}

#[tokio::test]
async fn unfinished_uploads_are_never_objects() {
    let tmp = tempfile::tempdir().unwrap();
    let store = open(&format!("file://{}", tmp.path().display())).unwrap();
    store.put(&key("incoming/weekly/customers.csv"), Bytes::from_static(b"customer_id\nC1\n")).await.unwrap();
    store.put(&key("incoming/weekly/week#48.csv"), Bytes::from_static(b"customer_id\nC2\n")).await.unwrap();
    store.put(&key("runs/r1/customers/members-00000.jsonl"), Bytes::from_static(b"{}\n")).await.unwrap();
    let fresh = Duration::from_secs(5);
    for temp in [
        "incoming/weekly/customers.csv#1",
        "incoming/weekly/other.csv#12",
        // A name with a '#' of its own: its temporary is `<name>#<n>` all the same.
        "incoming/weekly/week#48.csv#2",
        "runs/r1/customers/members-00001.jsonl#3",
    ] {
        leave_temporary(&tmp.path().join(temp), fresh);
    }

    assert_eq!(
        listed(&store, "incoming/weekly/").await,
        ["incoming/weekly/customers.csv", "incoming/weekly/week#48.csv"]
    );
    assert_eq!(listed(&store, "runs/r1/").await, ["runs/r1/customers/members-00000.jsonl"]);
    assert_eq!(listed(&store, "runs/").await, ["runs/r1/customers/members-00000.jsonl"]);

    // Not a key on any backend: nothing can name one, so nothing reads one as an input.
    for temp in ["incoming/weekly/customers.csv#1", "incoming/weekly/week#48.csv#2", "runs/r1#7/x.json"] {
        let err = Key::new(temp).unwrap_err().to_string();
        assert!(err.contains("#<digits>"), "{temp}: {err}");
    }
    assert!(Key::new("incoming/weekly/week#48.csv").is_ok());
    assert!(Key::new("incoming/weekly/a#.csv").is_ok());
    // A fresh temporary may be an upload in progress: it stays on disk.
    assert!(tmp.path().join("incoming/weekly/customers.csv#1").exists());
}

#[tokio::test]
async fn a_listing_removes_stale_temporaries_under_its_prefix() {
    let tmp = tempfile::tempdir().unwrap();
    let store = open(&format!("file://{}", tmp.path().display())).unwrap();
    store.put(&key("runs/r1/segments.json"), Bytes::from_static(b"{}")).await.unwrap();
    let stale = tmp.path().join("runs/r1/customers/members-00001.jsonl#1");
    let fresh = tmp.path().join("runs/r1/customers/members-00002.jsonl#1");
    let elsewhere = tmp.path().join("incoming/weekly/customers.csv#4");
    leave_temporary(&stale, Duration::from_secs(2 * 3600));
    leave_temporary(&fresh, Duration::from_secs(1));
    leave_temporary(&elsewhere, Duration::from_secs(2 * 3600));

    assert_eq!(listed(&store, "runs/r1/").await, ["runs/r1/segments.json"]);
    assert!(!stale.exists(), "a temporary untouched for hours is a dead upload's leftover");
    assert!(fresh.exists(), "a recent temporary may still be written");
    assert!(elsewhere.exists(), "outside the listed prefix");
}
