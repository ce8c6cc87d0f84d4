//! The whole pipeline once with its store on S3 (moto) and once on Azure Blob (Azurite), through the `cpo`
//! binary, compared with the same run on `file://`: the report figures must be identical. Needs
//! `scripts/emulators.sh start`; fails (never skips) without it.

use std::path::Path;
use std::process::Command;

use cpo_common::store::emulators::{unique_prefix, EmulatorEnv};
use serde_json::Value;

fn cpo(args: &[&str], env: &[(&str, String)]) -> Value {
    let out = Command::new(env!("CARGO_BIN_EXE_cpo"))
        .args(args)
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .env("RUST_LOG", "warn")
        .output()
        .expect("run cpo");
    assert!(out.status.success(), "cpo {args:?} failed ({}):\n{}", out.status, String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("cpo {args:?}: stdout is not JSON ({e}):\n{}", String::from_utf8_lossy(&out.stdout)))
}

/// The customers file every run uses, in the old system's CSV format: 400 rows from a fixed-seed xorshift, so
/// every run (and every backend) sees byte-identical input.
fn customers(dir: &Path) -> String {
    let mut x: u64 = 0x2545_F491_4F6C_DD1D;
    let mut next = |n: u64| {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x % n
    };
    let (cities, tiers) = (["New York", "Austin", "Denver", "Boston"], ["Bronze", "Silver", "Gold", "Platinum"]);
    let mut csv = String::from(
        "customer_id,age,location,tier,purchase_frequency,avg_order_value,last_engagement_days,\
         historical_open_rate,historical_click_rate\n",
    );
    for i in 0..400 {
        csv.push_str(&format!(
            "C{i:04},{},{},{},{},{}.{:02},{},0.{:02},0.{:02}\n",
            18 + next(60),
            cities[next(4) as usize],
            tiers[next(4) as usize],
            1 + next(30),
            20 + next(400),
            next(100),
            next(365),
            10 + next(60),
            1 + next(20),
        ));
    }
    let path = dir.join("customers.csv");
    std::fs::write(&path, csv).expect("write customers.csv");
    path.display().to_string()
}

/// What a marketer reads off the report: everything in the summary but where it lives.
fn figures(mut summary: Value) -> Value {
    let obj = summary.as_object_mut().expect("summary is an object");
    assert!(obj.remove("run_id").is_some_and(|r| r.as_str().is_some_and(|r| r.starts_with("weekly-"))));
    let report = obj.remove("report").expect("summary names the report");
    assert!(report.is_string(), "the report was written: {report}");
    // What this process reused from an earlier one differs between a first run and a re-run by design.
    assert!(obj.remove("reused").is_some_and(|r| r["of"].as_u64() > Some(0)), "the summary says what was reused");
    summary
}

fn run(store: &str, input: &str, env: &[(&str, String)]) -> Value {
    let summary = cpo(&["run", "--store", store, "--input", input, "--simulate-outcomes", "--json"], env);
    assert!(summary["customers"].as_u64().unwrap_or(0) > 0, "{summary}");
    assert_ne!(summary["decision"], "awaiting_outcomes", "the analysis machine ran: {summary}");
    summary
}

fn baseline(dir: &Path, input: &str) -> Value {
    let store = format!("file://{}", dir.join("store").display());
    figures(run(&store, input, &[]))
}

#[test]
fn s3_run_reports_the_same_figures_as_file() {
    let emu = EmulatorEnv::require();
    let tmp = tempfile::tempdir().unwrap();
    let input = customers(tmp.path());
    let expected = baseline(tmp.path(), &input);
    let env = [
        ("AWS_ENDPOINT_URL", emu.s3_endpoint.clone()),
        ("AWS_ACCESS_KEY_ID", emu.aws_access_key_id.clone()),
        ("AWS_SECRET_ACCESS_KEY", emu.aws_secret_access_key.clone()),
        ("AWS_REGION", emu.aws_region.clone()),
        ("AWS_EC2_METADATA_DISABLED", "true".to_string()),
    ];
    let url = emu.s3_url(&unique_prefix("e2e"));
    let summary = run(&url, &input, &env);
    assert!(summary["report"].as_str().is_some_and(|r| r.starts_with(&url)), "report lives in the bucket: {summary}");
    assert_eq!(figures(summary), expected, "s3:// and file:// disagree");

    // Running again on the same store finds the same run: nothing is recomputed, figures unchanged.
    let again = run(&url, &input, &env);
    // (The campaign report step runs again: the analysis wrote under the run after it — its identity changed.)
    assert!(again["reused"]["steps"].as_u64() > Some(0), "steps reused: {again}");
    assert_eq!(figures(again), expected);
}

#[test]
fn azure_run_reports_the_same_figures_as_file() {
    let emu = EmulatorEnv::require();
    let tmp = tempfile::tempdir().unwrap();
    let input = customers(tmp.path());
    let expected = baseline(tmp.path(), &input);
    let env = [("AZURE_STORAGE_CONNECTION_STRING", emu.azure_connection_string.clone())];
    let url = emu.az_url(&unique_prefix("e2e"));
    let summary = run(&url, &input, &env);
    assert!(
        summary["report"].as_str().is_some_and(|r| r.starts_with(&url)),
        "report lives in the container: {summary}"
    );
    assert_eq!(figures(summary), expected, "az:// and file:// disagree");
}
