//! The integrity reproduction through `cpo run`: a finished run is re-run with the provider repointed (by
//! `CPO_LLM_*`, as an operator would) at a server that writes violent copy with valid citations. The new text
//! must be screened and blocked by safety's own judgement; nothing unscreened reaches the send list, the
//! templates or the report; and the audit chain verifies.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use axum::extract::State;
use axum::Json;
use cpo_common::model::experiment::TemplatesDoc;
use cpo_common::model::safety::{Decision, SafetyDoc};
use cpo_common::store::StoreExt;
use cpo_e2e::*;
use serde_json::Value;

// No urgency word ("today"): validation would reject the draft before safety ever judged it.
const HARMFUL: &str = "We will hunt you down and kill you if you do not order from us again.";

async fn completions(State(calls): State<Arc<AtomicUsize>>, Json(req): Json<Value>) -> Json<Value> {
    calls.fetch_add(1, Ordering::SeqCst);
    Json(chat_completion("evil-1", &grounded_draft(last_prompt(&req), HARMFUL)))
}

async fn harmful_server() -> (String, Arc<AtomicUsize>) {
    let calls = Arc::new(AtomicUsize::new(0));
    let app =
        axum::Router::new().route("/v1/chat/completions", axum::routing::post(completions)).with_state(calls.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (format!("http://{addr}"), calls)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rerun_with_a_provider_override_never_ships_unscreened_text() {
    let s = Scratch::new();
    let input = s.customers(400, 5);
    cpo::cmd::run::run(run_args(&s.store_url(), &input, false)).await.expect("first cpo run");
    let store = s.store();
    let run_id = only_run(&store).await;
    let k = keys(&run_id);
    let before: SafetyDoc = store.get_json(&k.safety()).await.unwrap();
    assert!(before.approved > 1, "the offline run ships variants");

    let (url, calls) = harmful_server().await;
    for (name, value) in [
        ("CPO_LLM_PROVIDER", "openai"),
        ("CPO_LLM_BASE_URL", url.as_str()),
        ("CPO_LLM_MODEL", "evil-1"),
        ("CPO_LLM_API_KEY", "sk-test"),
    ] {
        std::env::set_var(name, value);
    }
    let rerun = cpo::cmd::run::run(run_args(&s.store_url(), &input, false)).await;
    for name in ["CPO_LLM_PROVIDER", "CPO_LLM_BASE_URL", "CPO_LLM_MODEL", "CPO_LLM_API_KEY"] {
        std::env::remove_var(name);
    }
    rerun.expect("second cpo run");
    assert!(calls.load(Ordering::SeqCst) > 0, "the override was used");
    assert_eq!(only_run(&store).await, run_id, "same input and config: same run");

    // Safety judged the new text: every generated variant blocked for violence, the control still approved.
    let safety: SafetyDoc = store.get_json(&k.safety()).await.unwrap();
    let variants = lines(&store, &k.variants_prefix()).await.join("\n");
    assert!(variants.contains("hunt you down"), "generate wrote the new text");
    for v in safety.verdicts.iter().filter(|v| v.variant_id != "control") {
        assert_eq!(v.decision, Decision::Blocked, "{} approved", v.variant_id);
        assert!(v.reasons.iter().any(|r| r.starts_with("Violence")), "{}: {:?}", v.variant_id, v.reasons);
    }
    assert!(safety.verdicts.iter().any(|v| v.variant_id == "control" && v.decision == Decision::Approved));

    // Nothing unscreened ships: templates and the send list hold only approved, byte-identical text.
    let templates: TemplatesDoc = store.get_json(&k.templates()).await.unwrap();
    for (id, t) in &templates.templates {
        assert!(safety.approves(id, &t.message()).unwrap(), "{id} shipped unapproved");
        assert!(!t.body.contains("hunt you down"), "{id} ships the harmful text");
    }
    let send = lines(&store, &cpo_common::Key::new(format!("runs/{run_id}/send/")).unwrap()).await.join("\n");
    assert!(!send.contains("hunt you down"));
    // The report shows the harmful text as blocked and outside the experiment.
    let report: Value = store.get_json(&k.report("report.json")).await.unwrap();
    let shown = report["variants"].as_array().unwrap();
    assert!(!shown.is_empty());
    for v in shown.iter().filter(|v| v["body"].as_str().unwrap_or_default().contains("hunt you down")) {
        assert_eq!(v["safety"], "blocked", "{}", v["variant_id"]);
        assert_eq!(v["in_experiment"], false, "{}", v["variant_id"]);
    }

    // The audit trail of the run and the whole chain verify.
    let trail = cpo_safety::audit::verify(store.as_ref(), &run_id).await.unwrap();
    assert!(trail.ok(), "{:?}", trail.problems);
    let chain = cpo_safety::audit::verify_chain(store.as_ref()).await.unwrap();
    assert!(chain.ok(), "{:?}", chain.problems);
    assert_eq!(chain.objects, 2, "one audit object per screening");
}
