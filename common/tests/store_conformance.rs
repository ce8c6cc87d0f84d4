//! One conformance suite, four backends: every check below runs against `file://`, `mem://`, S3 (moto) and
//! Azure Blob (Azurite). The cloud variants need `scripts/emulators.sh start` and fail (never skip) without it.

use bytes::Bytes;
use cpo_common::keys::Key;
use cpo_common::store::emulators::{unique_prefix, EmulatorEnv};
use cpo_common::store::{open, ByteStream, DynStore, PutOutcome, StoreError, StoreExt, PART_SIZE};
use futures::{StreamExt, TryStreamExt};
use sha2::{Digest, Sha256};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    File,
    Mem,
    S3,
    Azure,
}

struct Backend {
    store: DynStore,
    kind: Kind,
    _dir: Option<tempfile::TempDir>,
}

fn backend(kind: Kind, test: &str) -> Backend {
    let (url, dir) = match kind {
        Kind::File => {
            let dir = tempfile::tempdir().expect("tempdir");
            (format!("file://{}", dir.path().join("root").display()), Some(dir))
        }
        Kind::Mem => ("mem://".to_string(), None),
        Kind::S3 => (EmulatorEnv::require().s3_url(&unique_prefix(test)), None),
        Kind::Azure => (EmulatorEnv::require().az_url(&unique_prefix(test)), None),
    };
    let store = open(&url).unwrap_or_else(|e| panic!("open {url}: {e}"));
    Backend { store, kind, _dir: dir }
}

fn key(s: &str) -> Key {
    Key::new(s).expect("valid test key")
}

async fn get_put_overwrite(b: Backend) {
    let s = b.store.as_ref();
    let k = key("runs/r1/segments.json");
    let meta = s.put(&k, Bytes::from_static(b"first")).await.unwrap();
    assert_eq!(meta.size, 5);
    assert_eq!(meta.key, "runs/r1/segments.json");
    assert_eq!(s.get(&k).await.unwrap(), Bytes::from_static(b"first"));
    s.put(&k, Bytes::from_static(b"second, longer")).await.unwrap();
    assert_eq!(s.get(&k).await.unwrap(), Bytes::from_static(b"second, longer"));
    let head = s.head(&k).await.unwrap().expect("head after put");
    assert_eq!(head.size, 14);
    assert_eq!(head.key, "runs/r1/segments.json", "keys come back relative to the store's prefix");
    // Empty objects and JSON round trips.
    let e = key("runs/r1/empty");
    s.put(&e, Bytes::new()).await.unwrap();
    assert_eq!(s.get(&e).await.unwrap().len(), 0);
    let j = key("runs/r1/doc.json");
    s.put_json(&j, &serde_json::json!({"a": [1, 2]})).await.unwrap();
    let v: serde_json::Value = s.get_json(&j).await.unwrap();
    assert_eq!(v["a"][1], 2);
}

async fn put_if_absent_twice(b: Backend) {
    let s = b.store.as_ref();
    let k = key("runs/r1/input.json");
    assert_eq!(s.put_if_absent(&k, Bytes::from_static(b"one")).await.unwrap(), PutOutcome::Created);
    assert_eq!(s.put_if_absent(&k, Bytes::from_static(b"two")).await.unwrap(), PutOutcome::AlreadyExists);
    assert_eq!(s.get(&k).await.unwrap(), Bytes::from_static(b"one"), "the first write wins");
    // Concurrent creators: exactly one wins.
    let k2 = key("runs/r1/steps/segment.json");
    let attempts = (0..4).map(|i| {
        let store = b.store.clone();
        let k2 = k2.clone();
        tokio::spawn(async move { store.put_if_absent(&k2, Bytes::from(format!("writer {i}"))).await })
    });
    let mut created = 0;
    for a in futures::future::join_all(attempts).await {
        if a.expect("task").expect("put_if_absent") == PutOutcome::Created {
            created += 1;
        }
    }
    assert_eq!(created, 1, "exactly one concurrent put_if_absent creates the object");
}

async fn list_by_prefix(b: Backend) {
    let s = b.store.as_ref();
    for k in ["x/a.json", "x/b/c.json", "x/b/d/e.json", "xy/f.json", "y.json"] {
        s.put(&key(k), Bytes::from(k.to_string())).await.unwrap();
    }
    let keys = |v: Vec<cpo_common::ObjectMeta>| v.into_iter().map(|m| m.key).collect::<Vec<_>>();
    assert_eq!(keys(s.list(&key("x/")).await.unwrap()), ["x/a.json", "x/b/c.json", "x/b/d/e.json"]);
    assert_eq!(
        keys(s.list(&key("x")).await.unwrap()),
        ["x/a.json", "x/b/c.json", "x/b/d/e.json"],
        "a prefix is a folder: x does not match xy/"
    );
    assert_eq!(keys(s.list(&key("x/b/")).await.unwrap()), ["x/b/c.json", "x/b/d/e.json"]);
    assert!(s.list(&key("nothing/here/")).await.unwrap().is_empty());
    let listed = s.list(&key("x/b/d/")).await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].size, "x/b/d/e.json".len() as u64);
    assert!(listed[0].etag.is_some(), "list reports versions");
}

async fn head_and_etag(b: Backend) {
    let s = b.store.as_ref();
    let k = key("runs/r1/outcomes/events.csv");
    assert!(s.head(&k).await.unwrap().is_none());
    assert!(!s.exists(&k).await.unwrap());
    s.put(&k, Bytes::from_static(b"a,b\n1,2\n")).await.unwrap();
    let first = s.head(&k).await.unwrap().expect("exists");
    let e1 = first.etag.clone().expect("etag");
    assert!(s.exists(&k).await.unwrap());
    assert_eq!(s.head(&k).await.unwrap().unwrap().etag.as_deref(), Some(e1.as_str()), "etag stable without writes");
    // Same size, different bytes: the version must still change.
    s.put(&k, Bytes::from_static(b"a,b\n3,4\n")).await.unwrap();
    let e2 = s.head(&k).await.unwrap().unwrap().etag.expect("etag");
    assert_ne!(e1, e2, "etag changes when the content changes");
    assert!(s.head(&k).await.unwrap().unwrap().last_modified >= first.last_modified);
}

async fn not_found(b: Backend) {
    let s = b.store.as_ref();
    let k = key("runs/none/input.json");
    assert!(matches!(s.get(&k).await, Err(StoreError::NotFound { .. })));
    assert!(matches!(s.get_stream(&k).await.err(), Some(StoreError::NotFound { .. })));
    assert!(matches!(s.get_range(&k, 0..1).await, Err(StoreError::NotFound { .. })));
    assert!(s.get_opt(&k).await.unwrap().is_none());
    assert!(s.get_json_opt::<serde_json::Value>(&k).await.unwrap().is_none());
    assert!(s.head(&k).await.unwrap().is_none());
    let err = s.get(&k).await.unwrap_err().to_string();
    assert!(err.contains("runs/none/input.json"), "error names the key: {err}");
}

async fn invalid_keys_refused(b: Backend) {
    let s = b.store.as_ref();
    let long = "a/".repeat(600);
    let bad = ["../x", "a/../../b", "/etc/passwd", "a\\..\\b", "a/\u{0}b", "a/\nb", "a//b", "./a", "", &long];
    for raw in bad {
        assert!(Key::new(raw).is_err(), "{raw:?} accepted");
        // Keys arriving inside JSON (events, step inputs) go through the same check.
        let json = serde_json::to_string(raw).unwrap();
        assert!(serde_json::from_str::<Key>(&json).is_err(), "{raw:?} accepted from JSON");
    }
    // Odd but valid keys stay literal: percent signs and dots are not decoded into path separators.
    let odd = key("a%2F..%2F..%2Fescape/..x/.hidden");
    s.put(&odd, Bytes::from_static(b"inside")).await.unwrap();
    assert_eq!(s.get(&odd).await.unwrap(), Bytes::from_static(b"inside"));
    let listed: Vec<String> = s.list(&key("a%2F..%2F..%2Fescape/")).await.unwrap().into_iter().map(|m| m.key).collect();
    assert_eq!(listed, ["a%2F..%2F..%2Fescape/..x/.hidden"]);
}

/// Deterministic pseudo-random bytes (xorshift), so the content has no repeating pattern a backend could
/// mask by deduplication.
fn pattern(len: usize) -> Vec<u8> {
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

async fn large_multipart_and_streaming(b: Backend) {
    let s = b.store.as_ref();
    let k = key("runs/r1/customers/members-00000.jsonl");
    let len = 2 * PART_SIZE + 123_457;
    let data = Bytes::from(pattern(len));
    // Feed it in uneven 1 MiB-ish chunks, as a reader of a big file would.
    let chunks: Vec<Result<Bytes, StoreError>> =
        data.chunks(1_000_003).map(|c| Ok(Bytes::copy_from_slice(c))).collect();
    let body: ByteStream = futures::stream::iter(chunks).boxed();
    let meta = s.put_large(&k, body).await.unwrap();
    assert_eq!(meta.size, len as u64);
    let head = s.head(&k).await.unwrap().expect("exists after put_large");
    assert_eq!(head.size, len as u64);
    if b.kind == Kind::S3 {
        // S3 ETags of multipart objects are `<md5 of part md5s>-<part count>`: proof it went multipart.
        let etag = head.etag.clone().unwrap_or_default();
        assert!(etag.trim_matches('"').ends_with("-3"), "expected a 3-part upload, etag {etag}");
    }

    let mut stream = s.get_stream(&k).await.unwrap();
    let mut hasher = Sha256::new();
    let (mut n, mut pieces) = (0usize, 0usize);
    while let Some(piece) = stream.next().await {
        let piece = piece.unwrap();
        n += piece.len();
        pieces += 1;
        hasher.update(&piece);
    }
    assert_eq!(n, len);
    assert_eq!(hex::encode(hasher.finalize()), hex::encode(Sha256::digest(&data)), "streamed bytes differ");
    if b.kind != Kind::Mem {
        assert!(pieces > 1, "a {len}-byte object should arrive in several pieces, got {pieces}");
    }

    let range = (PART_SIZE as u64 - 10)..(PART_SIZE as u64 + 10);
    let got = s.get_range(&k, range.clone()).await.unwrap();
    assert_eq!(&got[..], &data[range.start as usize..range.end as usize], "range across a part boundary");

    // A failing source aborts the upload: nothing becomes visible.
    let k2 = key("runs/r1/customers/members-00001.jsonl");
    let failing: ByteStream = futures::stream::iter(vec![
        Ok(Bytes::from(vec![1u8; PART_SIZE + 1])),
        Err(StoreError::Decode { key: "source".into(), format: "CSV", reason: "broken input".into() }),
    ])
    .boxed();
    assert!(s.put_large(&k2, failing).await.is_err());
    assert!(s.head(&k2).await.unwrap().is_none(), "a failed upload must leave no object");
    let all: Vec<_> = s.list(&key("runs/r1/customers/")).await.unwrap().into_iter().map(|m| m.key).collect();
    assert_eq!(all, ["runs/r1/customers/members-00000.jsonl"]);
    let _ = s.get_stream(&k).await.unwrap().try_collect::<Vec<_>>().await.unwrap();
}

macro_rules! conformance {
    ($($check:ident),* $(,)?) => {
        mod file {
            $( #[tokio::test] async fn $check() { super::$check(super::backend(super::Kind::File, stringify!($check))).await } )*
        }
        mod mem {
            $( #[tokio::test] async fn $check() { super::$check(super::backend(super::Kind::Mem, stringify!($check))).await } )*
        }
        mod s3 {
            $( #[tokio::test] async fn $check() { super::$check(super::backend(super::Kind::S3, stringify!($check))).await } )*
        }
        mod azure {
            $( #[tokio::test] async fn $check() { super::$check(super::backend(super::Kind::Azure, stringify!($check))).await } )*
        }
    };
}

conformance!(
    get_put_overwrite,
    put_if_absent_twice,
    list_by_prefix,
    head_and_etag,
    not_found,
    invalid_keys_refused,
    large_multipart_and_streaming,
);

#[test]
fn cloud_urls_are_validated() {
    for url in ["s3://", "s3:///prefix", "az://c/../x", "s3://b/a\\b", "gs://b/x", "file"] {
        assert!(open(url).is_err(), "{url} accepted");
    }
}

/// A store whose URL prefix is set never lists or reads objects of a neighbouring prefix.
#[tokio::test]
async fn s3_prefixes_are_isolated() {
    let env = EmulatorEnv::require();
    let base = unique_prefix("isolation");
    let a = open(&env.s3_url(&format!("{base}/a"))).unwrap();
    let ab = open(&env.s3_url(&format!("{base}/ab"))).unwrap();
    a.put(&key("k.json"), Bytes::from_static(b"a")).await.unwrap();
    ab.put(&key("k.json"), Bytes::from_static(b"ab")).await.unwrap();
    assert_eq!(a.get(&key("k.json")).await.unwrap(), Bytes::from_static(b"a"));
    let root = open(&env.s3_url(&base)).unwrap();
    let all: Vec<String> = root.list(&key("a/")).await.unwrap().into_iter().map(|m| m.key).collect();
    assert_eq!(all, ["a/k.json"]);
}
