//! Several `cpo run` processes on one `file://` store at once (docs/architecture.md, Integrity §4 and §7): each reports
//! its own run, computed from its own input, and no input overwrites another.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use serde_json::Value;

fn cpo() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_cpo"));
    // Nothing from the caller's environment may change the runs (store, providers).
    for var in ["CPO_STORE", "CPO_LLM_PROVIDER", "CPO_LLM_BASE_URL", "CPO_LLM_MODEL", "CPO_LLM_API_KEY"] {
        c.env_remove(var);
    }
    c
}

/// `cpo gen customers --n N --seed S --out DIR/customers.csv`: every file has the same name.
fn customers(dir: &Path, n: usize, seed: u64) -> PathBuf {
    let path = dir.join("customers.csv");
    let out = cpo()
        .args(["gen", "customers", "--n", &n.to_string(), "--seed", &seed.to_string(), "--out"])
        .arg(&path)
        .output()
        .expect("cpo gen");
    assert!(out.status.success(), "cpo gen: {}", String::from_utf8_lossy(&out.stderr));
    path
}

fn spawn_run(input: &Path, store: &str) -> Child {
    cpo()
        .args(["run", "--store", store, "--json", "--input"])
        .arg(input)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn cpo run")
}

/// The `--json` summary of a finished `cpo run`.
fn summary(child: Child, what: &str) -> Value {
    let out = child.wait_with_output().expect("wait for cpo run");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{what}: cpo run failed: {stderr}");
    assert!(!stderr.contains("panicked"), "{what}: {stderr}");
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!("{what}: stdout is not the JSON summary ({e}): {}", String::from_utf8_lossy(&out.stdout))
    })
}

fn run_input(root: &Path, run_id: &str) -> Value {
    let path = root.join("runs").join(run_id).join("input.json");
    serde_json::from_slice(&std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))).unwrap()
}

/// The bytes the run's recorded input key holds in the store.
fn stored_input(root: &Path, run_id: &str) -> Vec<u8> {
    let key = run_input(root, run_id)["input"]["key"].as_str().unwrap().to_string();
    std::fs::read(root.join(&key)).unwrap_or_else(|e| panic!("{key}: {e}"))
}

#[test]
fn two_processes_with_same_named_files_each_report_their_own_run() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("store");
    let store = format!("file://{}", root.display());
    let (a_dir, b_dir) = (tmp.path().join("a"), tmp.path().join("b"));
    std::fs::create_dir_all(&a_dir).unwrap();
    std::fs::create_dir_all(&b_dir).unwrap();
    // Different sizes, so a summary of the other file's run shows in the customer count too.
    let a = customers(&a_dir, 300, 1);
    let b = customers(&b_dir, 240, 2);

    let (ra, rb) = (spawn_run(&a, &store), spawn_run(&b, &store));
    let (sa, sb) = (summary(ra, "a"), summary(rb, "b"));
    let (ida, idb) = (sa["run_id"].as_str().unwrap(), sb["run_id"].as_str().unwrap());
    assert_ne!(ida, idb, "two different inputs, one run");
    assert_eq!(sa["customers"], 300, "a reported: {sa}");
    assert_eq!(sb["customers"], 240, "b reported: {sb}");
    // Each run's recorded input is exactly the file that process was given.
    assert_eq!(stored_input(&root, ida), std::fs::read(&a).unwrap());
    assert_eq!(stored_input(&root, idb), std::fs::read(&b).unwrap());
    assert_ne!(run_input(&root, ida)["input"]["key"], run_input(&root, idb)["input"]["key"]);

    // An identical re-run is the same run (idempotent), and leaves the stored inputs as they were.
    let again = summary(spawn_run(&a, &store), "a again");
    assert_eq!(again["run_id"], ida);
    let incoming: Vec<String> = std::fs::read_dir(root.join("incoming/weekly"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(incoming.len(), 2, "one stored copy per distinct input: {incoming:?}");
}

#[test]
fn eight_concurrent_runs_on_one_store_all_complete() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("store");
    let store = format!("file://{}", root.display());
    let files: Vec<(PathBuf, usize)> = (0..8)
        .map(|i| {
            let dir = tmp.path().join(format!("in{i}"));
            std::fs::create_dir_all(&dir).unwrap();
            let n = 200 + 10 * i;
            (customers(&dir, n, 100 + i as u64), n)
        })
        .collect();
    let children: Vec<Child> = files.iter().map(|(f, _)| spawn_run(f, &store)).collect();
    let mut ids = Vec::new();
    for (i, (child, (file, n))) in children.into_iter().zip(&files).enumerate() {
        let s = summary(child, &format!("run {i}"));
        assert_eq!(s["customers"], *n as u64, "run {i} reported another run: {s}");
        let id = s["run_id"].as_str().unwrap().to_string();
        assert_eq!(stored_input(&root, &id), std::fs::read(file).unwrap(), "run {i}");
        assert!(root.join("runs").join(&id).join("report/index.html").is_file(), "run {i}: no report");
        ids.push(id);
    }
    let mut unique = ids.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), 8, "{ids:?}");
}

#[test]
fn a_run_ignores_an_unfinished_upload_left_in_the_store() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("store");
    let store = format!("file://{}", root.display());
    let input = customers(tmp.path(), 200, 9);
    // What a killed upload leaves behind: the temporary of object_store's local file system.
    let incoming = root.join("incoming/weekly");
    std::fs::create_dir_all(&incoming).unwrap();
    std::fs::write(incoming.join("customers.csv#1"), b"customer_id,recency_days\nX1,").unwrap();

    let s = summary(spawn_run(&input, &store), "run");
    let id = s["run_id"].as_str().unwrap();
    assert_eq!(s["customers"], 200, "{s}");
    let key = run_input(&root, id)["input"]["key"].as_str().unwrap().to_string();
    assert!(!key.contains('#'), "{key}");
    assert_eq!(stored_input(&root, id), std::fs::read(&input).unwrap());
}
