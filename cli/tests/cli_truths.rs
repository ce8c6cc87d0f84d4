//! What the `cpo` command tells its user is true: a cached re-run says it reused work, an unknown campaign is
//! an error, `cpo runs` shows failed runs as failed, every command finds the store in `CPO_STORE`, `--json`
//! failures are JSON, logs carry no colour codes into a pipe, and every subcommand's help has examples.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

fn cpo(cwd: &Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_cpo"));
    for var in ["CPO_STORE", "CPO_LLM_PROVIDER", "CPO_LLM_BASE_URL", "CPO_LLM_MODEL", "CPO_LLM_API_KEY", "RUST_LOG"] {
        c.env_remove(var);
    }
    // Relative default stores land in the test's own directory, never in the checkout.
    c.current_dir(cwd);
    c
}

fn customers(dir: &Path, n: usize) -> PathBuf {
    let path = dir.join("customers.csv");
    let out = cpo(dir).args(["gen", "customers", "--n", &n.to_string(), "--seed", "5", "--out"]).arg(&path).output();
    assert!(out.unwrap().status.success());
    path
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn ok(what: &str, out: &Output) {
    assert!(out.status.success(), "{what}: exit {:?}\n{}", out.status.code(), text(&out.stderr));
}

fn json(what: &str, out: &Output) -> Value {
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{what}: stdout is not JSON ({e}): {}", text(&out.stdout)))
}

#[test]
fn a_cached_rerun_says_it_reused_every_step_and_the_provider_calls_saved() {
    let tmp = tempfile::tempdir().unwrap();
    let input = customers(tmp.path(), 150);
    let store = format!("file://{}", tmp.path().join("store").display());
    let run = |json: bool| {
        let mut c = cpo(tmp.path());
        c.args(["run", "--store", &store, "--input"]).arg(&input);
        if json {
            c.arg("--json");
        }
        c.output().unwrap()
    };
    let first = run(true);
    ok("first run", &first);
    let first = json("first run", &first);
    assert_eq!(first["reused"]["steps"], 0, "{first}");
    let ran = first["reused"]["of"].as_u64().unwrap();
    assert!(ran >= 5, "{first}");

    let second = run(true);
    ok("second run", &second);
    let second = json("second run", &second);
    assert_eq!(second["reused"]["steps"].as_u64(), Some(ran), "every step reused: {second}");
    assert_eq!(second["reused"]["of"].as_u64(), Some(ran), "{second}");
    assert!(second["reused"]["provider_calls_saved"].as_u64().is_some(), "{second}");

    let again = run(false);
    ok("third run", &again);
    let summary = text(&again.stdout);
    let line =
        summary.lines().find(|l| l.starts_with("reused")).unwrap_or_else(|| panic!("no reused line:\n{summary}"));
    assert!(line.contains(&format!("{ran} of {ran} steps")) && line.contains("provider call"), "{line}");
}

#[test]
fn an_unknown_campaign_is_an_error_naming_the_campaigns_found() {
    let tmp = tempfile::tempdir().unwrap();
    let input = customers(tmp.path(), 50);
    let root = tmp.path().join("store");
    let store = format!("file://{}", root.display());
    let out = cpo(tmp.path()).args(["run", "--store", &store, "--campaign", "nosuch", "--input"]).arg(&input).output();
    let out = out.unwrap();
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("\"nosuch\"") && stderr.contains("campaigns found"), "{stderr}");
    assert!(!root.join("incoming/nosuch").exists(), "nothing is stored for a campaign that does not exist");
    assert!(!root.join("runs").exists(), "no run is started");

    // With --json the failure is the same JSON `cpo sfn run` prints.
    let out = cpo(tmp.path())
        .args(["run", "--json", "--store", &store, "--campaign", "nosuch", "--input"])
        .arg(&input)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let doc = json("run --json", &out);
    assert_eq!(doc["error"], "Cpo.InputInvalid", "{doc}");
    assert!(doc["cause"].as_str().unwrap().contains("campaigns found"), "{doc}");
}

#[test]
fn runs_lists_with_a_header_shows_failed_runs_and_leaves_a_missing_store_alone() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("store");
    let store = format!("file://{}", root.display());

    let empty = cpo(tmp.path()).args(["runs", "--store", &store]).output().unwrap();
    ok("runs on a missing store", &empty);
    assert!(text(&empty.stdout).contains("no runs"), "{}", text(&empty.stdout));
    assert!(!root.exists(), "`cpo runs` created the store directory");
    let empty_json = cpo(tmp.path()).args(["runs", "--json", "--store", &store]).output().unwrap();
    assert_eq!(json("runs --json", &empty_json), serde_json::json!([]));

    // Every row rejected: the run starts, then its segment step fails.
    let bad = tmp.path().join("bad.csv");
    let mut body = String::from("customer_id,recency_days,frequency,monetary\n");
    for i in 0..40 {
        body.push_str(&format!("C{i},not-a-number,x,y\n"));
    }
    std::fs::write(&bad, body).unwrap();
    let failed = cpo(tmp.path()).args(["run", "--store", &store, "--input"]).arg(&bad).output().unwrap();
    assert_eq!(failed.status.code(), Some(1), "{}", text(&failed.stderr));

    let good = customers(tmp.path(), 60);
    ok("good run", &cpo(tmp.path()).args(["run", "--store", &store, "--input"]).arg(&good).output().unwrap());

    let listed = cpo(tmp.path()).args(["runs", "--store", &store]).output().unwrap();
    ok("runs", &listed);
    let listing = text(&listed.stdout);
    let mut lines = listing.lines();
    let header = lines.next().unwrap();
    assert!(header.contains("RUN") && header.contains("STATUS") && header.contains("REPORT"), "{listing}");
    let rows: Vec<&str> = lines.collect();
    assert_eq!(rows.len(), 2, "{listing}");
    let failed_row = rows.iter().find(|r| r.contains("failed")).unwrap_or_else(|| panic!("no failed run:\n{listing}"));
    assert!(!failed_row.contains("index.html"), "a failed run has no report: {failed_row}");
    assert!(rows.iter().any(|r| r.contains("awaiting outcomes") && r.contains("index.html")), "{listing}");

    let rows = json("runs --json", &cpo(tmp.path()).args(["runs", "--json", "--store", &store]).output().unwrap());
    let failed = rows.as_array().unwrap().iter().find(|r| r["status"] == "failed").expect("a failed run");
    assert_eq!(failed["report"], Value::Null);
    assert_eq!(failed["error"], "Cpo.InputInvalid", "{failed}");
}

#[test]
fn audit_verify_reads_cpo_store_and_names_a_missing_run() {
    let tmp = tempfile::tempdir().unwrap();
    let input = customers(tmp.path(), 60);
    let store = format!("file://{}", tmp.path().join("store").display());
    let run = cpo(tmp.path()).args(["run", "--json", "--input"]).arg(&input).env("CPO_STORE", &store).output().unwrap();
    ok("run", &run);
    let run_id = json("run", &run)["run_id"].as_str().unwrap().to_string();

    let verified = cpo(tmp.path()).args(["audit", "verify", &run_id]).env("CPO_STORE", &store).output().unwrap();
    ok("audit verify with CPO_STORE", &verified);
    assert!(text(&verified.stdout).contains("intact"), "{}", text(&verified.stdout));

    let missing = cpo(tmp.path())
        .args(["audit", "verify", "weekly-20260101-0123456789ab"])
        .env("CPO_STORE", &store)
        .output()
        .unwrap();
    assert_eq!(missing.status.code(), Some(1));
    let stderr = text(&missing.stderr);
    assert!(stderr.contains("no such run"), "{stderr}");
    assert!(!stderr.contains("safety step"), "{stderr}");
}

#[test]
fn logs_in_a_pipe_have_no_colour_codes() {
    let tmp = tempfile::tempdir().unwrap();
    let input = customers(tmp.path(), 40);
    let store = format!("file://{}", tmp.path().join("store").display());
    let out = cpo(tmp.path()).args(["-v", "run", "--store", &store, "--input"]).arg(&input).output().unwrap();
    ok("run -v", &out);
    let stderr = text(&out.stderr);
    assert!(stderr.contains("step finished"), "info logs expected:\n{stderr}");
    assert!(!stderr.contains('\u{1b}'), "escape codes in piped logs:\n{stderr}");
}

#[test]
fn every_subcommand_has_examples_in_its_help() {
    let tmp = tempfile::tempdir().unwrap();
    let commands: &[&[&str]] = &[
        &["run"],
        &["analyze"],
        &["sfn", "run"],
        &["gen", "customers"],
        &["safety", "screen"],
        &["safety", "eval"],
        &["audit", "verify"],
        &["render"],
        &["runs"],
        &["erase"],
        &["simulate", "season"],
    ];
    for args in commands {
        let out = cpo(tmp.path()).args(*args).arg("--help").output().unwrap();
        ok(&args.join(" "), &out);
        let help = text(&out.stdout);
        let examples = help.split_once("Examples:").map(|(_, e)| e).unwrap_or_else(|| panic!("{args:?}:\n{help}"));
        assert!(examples.contains(&format!("cpo {}", args.join(" "))), "{args:?} examples:\n{examples}");
    }
}
