//! The `cpo` process ends cleanly whatever happens: a failed run exits 1 with one `error:` line and no panic
//! text (docs/architecture.md, "The cpo command"), and a reader that stops early (`cpo run | head -1`) ends it quietly.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

fn cpo() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_cpo"));
    for var in ["CPO_STORE", "CPO_LLM_PROVIDER", "CPO_LLM_BASE_URL", "CPO_LLM_MODEL", "CPO_LLM_API_KEY"] {
        c.env_remove(var);
    }
    c
}

fn customers(dir: &Path, n: usize) -> PathBuf {
    let path = dir.join("customers.csv");
    let out = cpo().args(["gen", "customers", "--n", &n.to_string(), "--seed", "3", "--out"]).arg(&path).output();
    assert!(out.unwrap().status.success());
    path
}

fn no_panic(what: &str, out: &Output) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    for noise in ["panicked", "thread '", "stack backtrace", "RUST_BACKTRACE"] {
        assert!(!stderr.contains(noise), "{what}: {noise:?} on stderr:\n{stderr}");
    }
}

/// Run `cmd` with its standard output closed before it writes anything: every write meets EPIPE.
fn with_stdout_closed(mut cmd: Command) -> Output {
    let mut child = cmd.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().expect("spawn cpo");
    drop(child.stdout.take());
    child.wait_with_output().expect("wait for cpo")
}

/// A port nothing listens on: connections are refused at once.
fn refused_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

#[test]
fn a_provider_failure_exits_1_with_one_error_line_and_no_panic() {
    let tmp = tempfile::tempdir().unwrap();
    let input = customers(tmp.path(), 300);
    // Few provider retries, and the state machine's Retry waits scaled to nothing: the run fails in seconds,
    // with handler retries still sleeping in other Map iterations when it does.
    let bundled = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../examples/campaigns/weekly.yaml"));
    let campaign = bundled.unwrap().replace("max_concurrency: 4,", "max_concurrency: 4, max_retries: 1,");
    assert!(campaign.contains("max_retries: 1"));
    let campaign_file = tmp.path().join("weekly.yaml");
    std::fs::write(&campaign_file, campaign).unwrap();

    let out = cpo()
        .args(["run", "--store", &format!("file://{}", tmp.path().join("store").display()), "--input"])
        .arg(&input)
        .arg("--campaign")
        .arg(&campaign_file)
        .env("CPO_LLM_PROVIDER", "openai")
        .env("CPO_LLM_BASE_URL", format!("http://127.0.0.1:{}", refused_port()))
        .env("CPO_LLM_API_KEY", "test-key")
        .env("CPO_TIME_SCALE", "0")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    no_panic("provider failure", &out);
    let errors: Vec<&str> = stderr.lines().filter(|l| l.starts_with("error:")).collect();
    assert_eq!(errors.len(), 1, "{stderr}");
    assert!(errors[0].contains("Cpo.ProviderUnavailable"), "{}", errors[0]);
    assert!(out.stdout.is_empty(), "a failed run prints no summary");
}

#[test]
fn a_reader_that_stops_early_ends_every_printing_command_quietly() {
    let tmp = tempfile::tempdir().unwrap();
    let store = format!("file://{}", tmp.path().join("store").display());
    let input = customers(tmp.path(), 200);
    let run = cpo().args(["run", "--json", "--store", &store, "--input"]).arg(&input).output().unwrap();
    assert!(run.status.success(), "{}", String::from_utf8_lossy(&run.stderr));
    let summary: serde_json::Value = serde_json::from_slice(&run.stdout).unwrap();
    let run_id = summary["run_id"].as_str().unwrap().to_string();
    let hello = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/asl/hello.asl.json");

    let commands: Vec<(&str, Vec<String>)> = vec![
        ("run", vec!["run".into(), "--store".into(), store.clone(), "--input".into(), input.display().to_string()]),
        (
            "run --json",
            vec![
                "run".into(),
                "--json".into(),
                "--store".into(),
                store.clone(),
                "--input".into(),
                input.display().to_string(),
            ],
        ),
        ("runs", vec!["runs".into(), "--store".into(), store.clone()]),
        (
            "render --all",
            vec!["render".into(), "--all".into(), "--store".into(), store.clone(), "--run".into(), run_id.clone()],
        ),
        ("sfn run", vec!["sfn".into(), "run".into(), hello.into(), "--input".into(), r#"{"name": "Ada"}"#.into()]),
        ("safety screen", vec!["safety".into(), "screen".into(), "--text".into(), "Our winter range is in.".into()]),
        ("gen customers", vec!["gen".into(), "customers".into(), "--n".into(), "5000".into()]),
    ];
    for (what, args) in commands {
        let mut cmd = cpo();
        cmd.args(&args);
        let out = with_stdout_closed(cmd);
        no_panic(what, &out);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(0), "{what}: {stderr}");
        assert!(!stderr.contains("error"), "{what}: {stderr}");
    }
}
