//! A `file://` store never reads, writes or lists outside its root, whatever the key and whatever links an
//! attacker managed to place inside the root.
#![cfg(unix)]

use std::os::unix::fs::symlink;

use bytes::Bytes;
use cpo_common::keys::Key;
use cpo_common::store::{open, StoreError};

fn key(s: &str) -> Key {
    Key::new(s).expect("valid test key")
}

struct Setup {
    _tmp: tempfile::TempDir,
    root: std::path::PathBuf,
    outside: std::path::PathBuf,
}

/// `<tmp>/root` is the store, `<tmp>/outside/secret.txt` a file it must never reach.
fn setup() -> Setup {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("root");
    let outside = tmp.path().join("outside");
    std::fs::create_dir_all(&root).unwrap();
    std::fs::create_dir_all(&outside).unwrap();
    std::fs::write(outside.join("secret.txt"), "do not read").unwrap();
    Setup { _tmp: tmp, root, outside }
}

fn is_refused<T: std::fmt::Debug>(r: Result<T, StoreError>) -> bool {
    matches!(r, Err(StoreError::InvalidKey { .. }))
}

#[tokio::test]
async fn directory_symlink_to_outside_is_refused() {
    let s = setup();
    symlink(&s.outside, s.root.join("evil")).unwrap();
    let store = open(&format!("file://{}", s.root.display())).unwrap();
    let k = key("evil/secret.txt");
    assert!(is_refused(store.get(&k).await), "read through a directory link");
    assert!(is_refused(store.head(&k).await), "head through a directory link");
    assert!(is_refused(store.get_stream(&k).await.map(|_| ())));
    assert!(is_refused(store.put(&key("evil/planted.txt"), Bytes::from_static(b"x")).await));
    assert!(is_refused(store.put_if_absent(&key("evil/planted2.txt"), Bytes::from_static(b"x")).await));
    assert!(!s.outside.join("planted.txt").exists() && !s.outside.join("planted2.txt").exists());
    assert!(is_refused(store.list(&key("evil/")).await));
    // Listing the root does not surface files reached through the link either.
    store.put(&key("ok/a.txt"), Bytes::from_static(b"a")).await.unwrap();
    let all: Vec<String> = store.list(&key("ok/")).await.unwrap().into_iter().map(|m| m.key).collect();
    assert_eq!(all, ["ok/a.txt"]);
    let err = store.get(&k).await.unwrap_err().to_string();
    assert!(err.contains("symbolic link"), "{err}");
}

#[tokio::test]
async fn file_symlink_to_outside_is_refused() {
    let s = setup();
    std::fs::create_dir_all(s.root.join("runs/r1")).unwrap();
    symlink(s.outside.join("secret.txt"), s.root.join("runs/r1/input.json")).unwrap();
    let store = open(&format!("file://{}", s.root.display())).unwrap();
    let k = key("runs/r1/input.json");
    assert!(is_refused(store.get(&k).await));
    // Overwriting through the link must not modify the target.
    assert!(is_refused(store.put(&k, Bytes::from_static(b"overwritten")).await));
    assert_eq!(std::fs::read_to_string(s.outside.join("secret.txt")).unwrap(), "do not read");
    let listed: Vec<String> = store.list(&key("runs/")).await.unwrap().into_iter().map(|m| m.key).collect();
    assert!(listed.is_empty(), "link surfaced in listing: {listed:?}");
}

#[tokio::test]
async fn plain_keys_stay_under_the_root() {
    let s = setup();
    let store = open(&format!("file://{}", s.root.display())).unwrap();
    store.put(&key("a%2F..%2Foutside/x.txt"), Bytes::from_static(b"1")).await.unwrap();
    store.put(&key("..a/b..c/...d"), Bytes::from_static(b"2")).await.unwrap();
    // Exactly these files exist, all below the root; nothing appeared next to it.
    let mut found = Vec::new();
    for entry in walk(&s.root) {
        found.push(entry.strip_prefix(&s.root).unwrap().to_string_lossy().into_owned());
    }
    found.sort();
    assert_eq!(found, ["..a/b..c/...d", "a%2F..%2Foutside/x.txt"]);
    let siblings: Vec<_> =
        std::fs::read_dir(s.root.parent().unwrap()).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(siblings.len(), 2, "{siblings:?}");
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}

#[tokio::test]
async fn a_root_that_is_itself_a_link_still_works() {
    // Only links *below* the root are refused: pointing the store at a linked directory is the user's choice.
    let s = setup();
    let link = s.root.parent().unwrap().join("root-link");
    symlink(&s.root, &link).unwrap();
    let store = open(&format!("file://{}", link.display())).unwrap();
    store.put(&key("a.txt"), Bytes::from_static(b"a")).await.unwrap();
    assert_eq!(std::fs::read_to_string(s.root.join("a.txt")).unwrap(), "a");
}
