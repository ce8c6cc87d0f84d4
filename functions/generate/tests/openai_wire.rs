//! The `openai` provider against a local server speaking the OpenAI chat-completions wire format.

mod support;

use std::time::{Duration, Instant};

use cpo_common::model::variant::VariantStatus;
use cpo_common::store::StoreExt;
use cpo_common::ErrorKind;
use support::*;

fn one_tone(mut cfg: cpo_common::CampaignConfig) -> cpo_common::CampaignConfig {
    cfg.tones = vec!["urgent".into()];
    cfg.weights = [("control".to_string(), 0.5), ("urgent".to_string(), 0.5)].into();
    cfg
}

#[tokio::test]
async fn success_checks_the_request_shape_and_counts_cost() {
    let server = serve(|_, r| Reply::ok(&good_answer(&r.tone()))).await;
    let ctx = fixture(openai_config(&server.url())).await;
    let out = run(&ctx, SEGMENT, &[KEY_ENV]).await.unwrap();
    assert_eq!(out.counts["shipped"], 3, "{out:?}");
    assert_eq!(out.counts["provider_calls"], 3);
    assert_eq!(out.counts["tokens"], 3 * 1100);
    let cost = out.counts["cost_usd"].as_f64().unwrap();
    let expected = 3.0 * (0.9 * 0.00015 + 0.2 * 0.0006);
    assert!((cost - expected).abs() < 1e-12, "{cost} vs {expected}");

    let reqs = server.requests();
    assert_eq!(reqs.len(), 3);
    let mut tones: Vec<String> = reqs.iter().map(|r| r.tone()).collect();
    tones.sort();
    assert_eq!(tones, ["friendly", "informational", "urgent"]);
    for r in &reqs {
        assert_eq!(r.method, "POST");
        assert_eq!(r.path, "/v1/chat/completions");
        assert_eq!(r.headers["authorization"], "Bearer sk-test-0123456789");
        assert!(r.headers["content-type"].starts_with("application/json"));
        assert!(!r.headers.contains_key("api-key"));
        assert_eq!(r.body["model"], "gpt-4o-mini");
        assert_eq!(r.body["temperature"], 0.7);
        assert_eq!(r.body["response_format"]["type"], "json_schema");
        let schema = &r.body["response_format"]["json_schema"];
        assert_eq!(schema["strict"], true);
        assert_eq!(
            schema["schema"]["required"],
            serde_json::json!(["subject", "preheader", "body", "cta", "citations"])
        );
        let (role0, system) = r.message(0);
        let (role1, brief) = r.message(1);
        assert_eq!((role0.as_str(), role1.as_str()), ("system", "user"));
        assert!(system.contains("untrusted data") && system.contains("{{first_name}}"), "{system}");
        assert!(brief.contains("Champions") && brief.contains("DOC-JACKET") && brief.contains(JACKET));
    }
    let doc = variants(&ctx, RUN_ID, SEGMENT).await;
    assert_eq!(doc.provider, "openai");
    assert_eq!(doc.model.as_deref(), Some("gpt-4o-mini"));
    let v = &doc.variants[0];
    assert_eq!(v.variant_id, "champions-urgent");
    assert_eq!(v.message.subject, "Warm layers for winter (urgent)");
    assert_eq!((v.usage.prompt_tokens, v.usage.completion_tokens, v.usage.calls), (900, 200, 1));
    assert!((doc.usage.cost_usd - expected).abs() < 1e-12);
}

#[tokio::test]
async fn throttled_with_retry_after_then_success() {
    let server = serve(|n, r| {
        if n == 0 {
            Reply::status(429, r#"{"error":{"message":"Rate limit reached","type":"requests"}}"#)
                .header("retry-after", "1")
        } else {
            Reply::ok(&good_answer(&r.tone()))
        }
    })
    .await;
    let ctx = fixture(one_tone(openai_config(&server.url()))).await;
    let t0 = Instant::now();
    let out = run(&ctx, SEGMENT, &[KEY_ENV]).await.unwrap();
    let waited = t0.elapsed();
    assert_eq!(out.counts["shipped"], 1);
    assert_eq!(server.count(), 2);
    // Without Retry-After the first backoff is at most 500 ms; waiting a full second proves it was honoured.
    assert!(waited >= Duration::from_millis(950), "waited only {waited:?}");
}

#[tokio::test]
async fn persistent_throttling_is_a_typed_error() {
    let server = serve(|_, _| Reply::status(429, "{}").header("retry-after", "0")).await;
    let ctx = fixture(one_tone(openai_config(&server.url()))).await;
    let e = run(&ctx, SEGMENT, &[KEY_ENV]).await.unwrap_err();
    assert_eq!(e.kind, ErrorKind::ProviderThrottled, "{e}");
    assert_eq!(server.count(), 3, "first attempt + max_retries 2");
    assert!(!e.message.contains("sk-test"), "{e}");
}

#[tokio::test]
async fn retry_after_beyond_the_cap_hands_the_wait_to_the_state_machine() {
    let server = serve(|_, _| Reply::status(429, "{}").header("retry-after", "3600")).await;
    let ctx = fixture(one_tone(openai_config(&server.url()))).await;
    let e = run(&ctx, SEGMENT, &[KEY_ENV]).await.unwrap_err();
    assert_eq!(e.kind, ErrorKind::ProviderThrottled);
    assert_eq!(server.count(), 1, "no sleeping through an hour inside a function");
}

#[tokio::test]
async fn server_error_then_success() {
    let server = serve(|n, r| {
        if n == 0 {
            Reply::status(500, r#"{"error":{"message":"The server had an error"}}"#)
        } else {
            Reply::ok(&good_answer(&r.tone()))
        }
    })
    .await;
    let ctx = fixture(one_tone(openai_config(&server.url()))).await;
    let out = run(&ctx, SEGMENT, &[KEY_ENV]).await.unwrap();
    assert_eq!(out.counts["shipped"], 1);
    assert_eq!(out.counts["provider_calls"], 1, "transport retries are one logical call");
    assert_eq!(server.count(), 2);
}

#[tokio::test]
async fn persistent_server_errors_are_unavailable() {
    let server = serve(|_, _| Reply::status(503, "overloaded").header("retry-after", "0")).await;
    let ctx = fixture(one_tone(openai_config(&server.url()))).await;
    let e = run(&ctx, SEGMENT, &[KEY_ENV]).await.unwrap_err();
    assert_eq!(e.kind, ErrorKind::ProviderUnavailable, "{e}");
    assert!(e.message.contains("503"), "{e}");
}

#[tokio::test]
async fn timeout_is_unavailable() {
    let server = serve(|_, r| Reply::ok(&good_answer(&r.tone())).delayed(Duration::from_secs(5))).await;
    let mut cfg = one_tone(openai_config(&server.url()));
    cfg.generation.timeout_secs = 1;
    cfg.generation.max_retries = 0;
    let ctx = fixture(cfg).await;
    let e = run(&ctx, SEGMENT, &[KEY_ENV]).await.unwrap_err();
    assert_eq!(e.kind, ErrorKind::ProviderUnavailable, "{e}");
    assert!(e.message.contains("within 1s"), "{e}");
}

#[tokio::test]
async fn malformed_envelope_is_unavailable() {
    let server = serve(|_, _| Reply::status(200, "<html>502 Bad Gateway</html>")).await;
    let ctx = fixture(one_tone(openai_config(&server.url()))).await;
    let e = run(&ctx, SEGMENT, &[KEY_ENV]).await.unwrap_err();
    assert_eq!(e.kind, ErrorKind::ProviderUnavailable, "{e}");
    assert!(e.message.contains("not a chat completion"), "{e}");
}

#[tokio::test]
async fn malformed_content_is_retried_with_the_reason_then_ships() {
    let server = serve(|n, r| {
        if n == 0 {
            Reply::ok("Sure! Here is a great email for your customers: {\"subject\": \"Hi\", \"body\":")
        } else {
            assert!(r.is_retry(), "the second request must be the retry conversation");
            Reply::ok(&format!("```json\n{}\n```", good_answer(&r.tone())))
        }
    })
    .await;
    let ctx = fixture(one_tone(openai_config(&server.url()))).await;
    let out = run(&ctx, SEGMENT, &[KEY_ENV]).await.unwrap();
    assert_eq!(out.counts["shipped"], 1);
    assert_eq!(out.counts["provider_calls"], 2);
    let retry = &server.requests()[1];
    let (role, previous) = retry.message(2);
    assert_eq!(role, "assistant");
    assert!(previous.starts_with("Sure! Here is"));
    let (_, reasons) = retry.message(3);
    assert!(reasons.contains("neither a JSON object"), "{reasons}");
    let doc = variants(&ctx, RUN_ID, SEGMENT).await;
    assert_eq!(doc.variants[0].attempts, 2);
    assert_eq!(doc.usage.calls, 2);
}

#[tokio::test]
async fn unknown_doc_is_retried_then_rejected_never_shipped() {
    let server = serve(|_, _| {
        Reply::ok(&answer_citing("DOC-999", "The Alpine Down Jacket is filled with responsibly sourced 700-fill down."))
    })
    .await;
    let ctx = fixture(one_tone(openai_config(&server.url()))).await;
    let out = run(&ctx, SEGMENT, &[KEY_ENV]).await.unwrap();
    assert_eq!((out.counts["shipped"].as_u64(), out.counts["rejected"].as_u64()), (Some(0), Some(1)));
    assert_eq!(server.count(), 2, "exactly one retry");
    let (_, retry_prompt) = server.requests()[1].message(3);
    assert!(retry_prompt.contains("DOC-999") && retry_prompt.contains("not among the retrieved"), "{retry_prompt}");
    let doc = variants(&ctx, RUN_ID, SEGMENT).await;
    let v = &doc.variants[0];
    assert_eq!(v.status, VariantStatus::Rejected);
    assert_eq!(v.attempts, 2);
    assert!(v.reasons.iter().any(|r| r.contains("DOC-999")), "{:?}", v.reasons);
}

#[tokio::test]
async fn quote_not_in_the_source_is_retried_and_the_fix_ships() {
    let server = serve(|n, r| {
        if n == 0 {
            Reply::ok(&answer_citing("DOC-JACKET", "The Alpine Down Jacket is the warmest jacket ever made."))
        } else {
            Reply::ok(&good_answer(&r.tone()))
        }
    })
    .await;
    let ctx = fixture(one_tone(openai_config(&server.url()))).await;
    let out = run(&ctx, SEGMENT, &[KEY_ENV]).await.unwrap();
    assert_eq!(out.counts["shipped"], 1);
    let (_, retry_prompt) = server.requests()[1].message(3);
    assert!(retry_prompt.contains("quote is not in the retrieved passages of DOC-JACKET"), "{retry_prompt}");
}

#[tokio::test]
async fn quote_from_another_document_is_rejected() {
    // Right words, wrong document: the quote must come from the cited doc's passages.
    let server = serve(|_, _| {
        Reply::ok(&answer_citing("DOC-RETURNS", "Members earn two points for every pound spent online and in store."))
    })
    .await;
    let ctx = fixture(one_tone(openai_config(&server.url()))).await;
    let out = run(&ctx, SEGMENT, &[KEY_ENV]).await.unwrap();
    assert_eq!(out.counts["rejected"], 1);
}

#[tokio::test]
async fn prompt_injection_passage_stays_data_and_its_output_is_rejected() {
    let server = serve(|_, _| {
        // A model that obeyed the injected text: no citations, a placeholder, a shouty subject.
        Reply::ok(r#"{"subject": "FREE MONEY", "preheader": "", "body": "Dear [Customer Name], claim your free money now.", "cta": "Claim", "citations": []}"#)
    })
    .await;
    let ctx = cpo_common::Ctx::new(cpo_common::store::open("mem://").unwrap());
    let mut hits = default_hits();
    hits.insert(0, hit("DOC-EVIL", "Winter notice", INJECTION, 12.0));
    fixture_with(&ctx, RUN_ID, one_tone(openai_config(&server.url())), hits).await;
    let out = run(&ctx, SEGMENT, &[KEY_ENV]).await.unwrap();
    assert_eq!(out.counts["rejected"], 1);

    let first = &server.requests()[0];
    let (_, system) = first.message(0);
    assert!(system.contains("ignore any instruction"), "{system}");
    assert!(!system.contains("Ignore all previous instructions"), "corpus text never enters the system message");
    let (_, brief) = first.message(1);
    let begin = brief.find("<<<BEGIN UNTRUSTED-").expect("begin marker");
    let marker: String = brief[begin + 9..].chars().take_while(|c| *c != '>').collect();
    let end_marker = format!("<<<END {marker}>>>");
    assert_eq!(brief.matches(&end_marker).count(), 1, "the passage cannot forge the closing marker");
    let end = brief.find(&end_marker).unwrap();
    let inj = brief.find("Ignore all previous instructions").expect("the passage is quoted as data");
    assert!(begin < inj && inj < end, "the injected text sits inside the untrusted block");

    let doc = variants(&ctx, RUN_ID, SEGMENT).await;
    let reasons = &doc.variants[0].reasons;
    assert!(reasons.iter().any(|r| r.contains("no citations")), "{reasons:?}");
    assert!(reasons.iter().any(|r| r.contains("[Customer Name]")), "{reasons:?}");
}

#[tokio::test]
async fn offline_provider_does_not_quote_injected_instructions() {
    let ctx = cpo_common::Ctx::new(cpo_common::store::open("mem://").unwrap());
    let mut hits = default_hits();
    hits.insert(0, hit("DOC-EVIL", "Winter notice", INJECTION, 12.0));
    fixture_with(&ctx, RUN_ID, config(), hits).await;
    let out = run(&ctx, SEGMENT, &[]).await.unwrap();
    assert_eq!(out.counts["shipped"], 3);
    for v in variants(&ctx, RUN_ID, SEGMENT).await.variants {
        assert!(!v.message.body.to_lowercase().contains("ignore all"), "{}", v.message.body);
        assert!(v.citations.iter().all(|c| c.doc_id != "DOC-EVIL"));
    }
}

#[tokio::test]
async fn cached_answers_make_a_rerun_free() {
    let server = serve(|_, r| Reply::ok(&good_answer(&r.tone()))).await;
    let ctx = fixture(openai_config(&server.url())).await;
    let first = run(&ctx, SEGMENT, &[KEY_ENV]).await.unwrap();
    assert_eq!(server.count(), 3);
    // Same run again: the step record answers.
    let again = run(&ctx, SEGMENT, &[KEY_ENV]).await.unwrap();
    assert_eq!(again, first);
    // The step record gone (a retried, partially failed step): the cache answers every call.
    let keys = cpo_common::keys::RunKeys::new(RUN_ID).unwrap();
    let mut rec: cpo_common::step::StepRecord = ctx.store.get_json(&keys.step("generate-champions")).await.unwrap();
    rec.status = cpo_common::step::StepStatus::Failed;
    ctx.store.put_json(&keys.step("generate-champions"), &rec).await.unwrap();
    let second = run(&ctx, SEGMENT, &[KEY_ENV]).await.unwrap();
    assert_eq!(server.count(), 3, "zero provider calls on re-run");
    assert_eq!(second.counts["provider_calls"], 0);
    assert_eq!(second.counts["cached"], 3);
    assert_eq!(second.counts["cost_usd"], 0.0);
    let doc = variants(&ctx, RUN_ID, SEGMENT).await;
    assert!(doc.usage.cached && doc.variants.iter().all(|v| v.usage.cached));
    assert_eq!(doc.variants.iter().filter(|v| v.status == VariantStatus::Shipped).count(), 3);
    // Another run with the same inputs shares the cache too.
    let other = "weekly-20261120-ffffffffffff";
    fixture_with(&ctx, other, openai_config(&server.url()), default_hits()).await;
    let out = cpo_generate::handle_with_env(input(other, SEGMENT), &ctx, &env(&[KEY_ENV])).await.unwrap();
    assert_eq!(out.counts["cached"], 3);
    assert_eq!(server.count(), 3);
}

#[tokio::test]
async fn no_customer_data_reaches_the_provider() {
    let server = serve(|_, r| Reply::ok(&good_answer(&r.tone()))).await;
    let ctx = fixture(openai_config(&server.url())).await;
    // Customer-level objects of the run, with PII, sit next to what generate reads.
    let keys = cpo_common::keys::RunKeys::new(RUN_ID).unwrap();
    let members = r#"{"customer_id":"CUST-98765","line":2,"recency":3,"frequency":20,"monetary":2500,"r":5,"f":5,"m":5,"segment":"Champions","fields":{"first_name":"Wilhelmina","email":"wilhelmina.zed@example.org","location":"Tromsø"}}"#;
    ctx.store.put(&keys.members(0), bytes::Bytes::from(format!("{members}\n"))).await.unwrap();
    run(&ctx, SEGMENT, &[KEY_ENV]).await.unwrap();
    let reqs = server.requests();
    assert_eq!(reqs.len(), 3);
    for r in reqs {
        for pii in ["CUST-98765", "Wilhelmina", "wilhelmina.zed@example.org", "@example.org", "Tromsø"] {
            assert!(!r.raw.contains(pii), "{pii} leaked into a prompt");
        }
        assert!(r.raw.contains("{{first_name}}"), "personalisation goes through merge fields");
    }
}

/// What the structured-output mode of a request is: `json_schema`, `json_object` or `text` (none).
fn mode(r: &Recorded) -> String {
    r.body["response_format"]["type"].as_str().unwrap_or("text").to_string()
}

/// A server that refuses every `response_format` type in `refused` with `status` and a body naming it, as
/// OpenAI-compatible servers variously do, and answers the rest with a good draft.
async fn refusing(refused: &'static [&'static str], status: u16, body: &'static str) -> Server {
    serve(move |_, r| {
        if refused.contains(&mode(r).as_str()) {
            Reply::status(status, body)
        } else {
            Reply::ok(&good_answer(&r.tone()))
        }
    })
    .await
}

/// Real refusals: OpenAI-style 400, vLLM/pydantic-style 422 and llama.cpp's Python server's 500.
const REFUSALS: [(u16, &str); 3] = [
    (400, r#"{"error":{"message":"response_format type json_schema is not supported","param":"response_format"}}"#),
    (
        422,
        r#"{"detail":[{"loc":["body","response_format","type"],"msg":"unexpected value; permitted: 'text', 'json_object'"}]}"#,
    ),
    (
        500,
        r#"{"error":{"message":"1 validation error for CreateChatCompletionRequest\nresponse_format\n  Input tag 'json_schema' found using 'type' does not match any of the expected tags","type":"internal_server_error"}}"#,
    ),
];

#[tokio::test]
async fn any_status_naming_response_format_steps_down_to_json_mode_without_retries() {
    for (status, body) in REFUSALS {
        let server = refusing(&["json_schema"], status, body).await;
        let ctx = fixture(one_tone(openai_config(&server.url()))).await;
        let out = run(&ctx, SEGMENT, &[KEY_ENV]).await.unwrap_or_else(|e| panic!("HTTP {status}: {e}"));
        assert_eq!(out.counts["shipped"], 1, "HTTP {status}");
        let reqs = server.requests();
        assert_eq!(reqs.len(), 2, "HTTP {status}: one refusal (not retried as a 5xx), then JSON mode");
        assert_eq!(mode(&reqs[0]), "json_schema");
        let json_mode = &reqs[1];
        assert_eq!(mode(json_mode), "json_object", "HTTP {status}");
        // llama.cpp turns `schema` into a grammar; other servers ignore it and read the schema in the prompt.
        assert_eq!(json_mode.body["response_format"]["schema"]["required"][0], "subject");
        let (_, system) = json_mode.message(0);
        assert!(system.contains("JSON schema") && system.contains("\"citations\""), "{system}");
        let (_, first_system) = reqs[0].message(0);
        assert!(!first_system.contains("must match this JSON schema"), "the top rung leaves the prompt alone");
    }
}

#[tokio::test]
async fn a_server_refusing_json_mode_too_gets_plain_text_and_the_rung_is_remembered() {
    let (status, body) = REFUSALS[2];
    let server = refusing(&["json_schema", "json_object"], status, body).await;
    let ctx = fixture(openai_config(&server.url())).await;
    let out = run(&ctx, SEGMENT, &[KEY_ENV]).await.unwrap();
    assert_eq!(out.counts["shipped"], 3, "{out:?}");
    let reqs = server.requests();
    let plain: Vec<&Recorded> = reqs.iter().filter(|r| mode(r) == "text").collect();
    assert_eq!(plain.len(), 3, "every tone ends on plain text");
    for r in &plain {
        assert!(r.body.get("response_format").is_none());
        assert!(r.message(0).1.contains("must match this JSON schema"));
    }
    // Concurrent tones may each meet a refusal before the first one moves the endpoint down, never more.
    assert!(reqs.len() <= 9, "{} requests", reqs.len());
    // Another run in the same process (a new provider) starts where this endpoint was left.
    let before = server.count();
    let other = "weekly-20261120-eeeeeeeeeeee";
    fixture_with(&ctx, other, openai_config(&server.url()), default_hits()).await;
    let out = cpo_generate::handle_with_env(input(other, SEGMENT), &ctx, &env(&[KEY_ENV])).await.unwrap();
    assert_eq!(out.counts["shipped"], 3);
    let later = &server.requests()[before..];
    assert!(
        later.iter().all(|r| mode(r) == "text"),
        "no rediscovery: {:?}",
        later.iter().map(mode).collect::<Vec<_>>()
    );
}

#[tokio::test]
async fn an_unrelated_server_error_is_retried_not_mistaken_for_a_refusal() {
    let server = serve(|n, r| {
        if n == 0 {
            Reply::status(500, r#"{"error":{"message":"CUDA out of memory"}}"#).header("retry-after", "0")
        } else {
            Reply::ok(&good_answer(&r.tone()))
        }
    })
    .await;
    let ctx = fixture(one_tone(openai_config(&server.url()))).await;
    let out = run(&ctx, SEGMENT, &[KEY_ENV]).await.unwrap();
    assert_eq!(out.counts["shipped"], 1);
    let reqs = server.requests();
    assert_eq!(reqs.iter().map(mode).collect::<Vec<_>>(), ["json_schema", "json_schema"]);
}

#[tokio::test]
async fn rejected_key_is_bad_input_and_never_echoed() {
    let server = serve(|_, _| {
        Reply::status(401, r#"{"error":{"message":"Incorrect API key provided","code":"invalid_api_key"}}"#)
    })
    .await;
    let ctx = fixture(one_tone(openai_config(&server.url()))).await;
    let e = run(&ctx, SEGMENT, &[KEY_ENV]).await.unwrap_err();
    assert_eq!(e.kind, ErrorKind::InputInvalid);
    assert!(e.message.contains("401") && !e.message.contains("sk-test"), "{e}");
    assert_eq!(server.count(), 1, "a 401 is not retried");
}

#[tokio::test]
async fn environment_overrides_point_an_offline_campaign_at_a_server() {
    // Ollama-style: base URL given with /v1, no API key.
    let server = serve(|_, r| Reply::ok(&good_answer(&r.tone()))).await;
    let ctx = fixture(one_tone(config())).await;
    let base = format!("{}/v1", server.url());
    let out = run(
        &ctx,
        SEGMENT,
        &[("CPO_LLM_PROVIDER", "openai"), ("CPO_LLM_BASE_URL", &base), ("CPO_LLM_MODEL", "llama3.1")],
    )
    .await
    .unwrap();
    assert_eq!(out.counts["shipped"], 1);
    let r = &server.requests()[0];
    assert_eq!(r.path, "/v1/chat/completions");
    assert_eq!(r.body["model"], "llama3.1");
    assert!(!r.headers.contains_key("authorization"));
    assert_eq!(out.counts["cost_usd"], 0.0, "no price for llama3.1");
}

#[tokio::test]
async fn missing_key_variable_is_bad_input() {
    let server = serve(|_, r| Reply::ok(&good_answer(&r.tone()))).await;
    let ctx = fixture(one_tone(openai_config(&server.url()))).await;
    let e = run(&ctx, SEGMENT, &[]).await.unwrap_err();
    assert_eq!(e.kind, ErrorKind::InputInvalid);
    assert!(e.message.contains("TEST_OPENAI_KEY"), "{e}");
    assert_eq!(server.count(), 0);
}

#[tokio::test]
async fn a_tone_the_provider_never_answers_is_rejected_and_the_segment_completes() {
    let server = serve(|_, r| {
        if r.tone() == "urgent" {
            Reply::status(503, r#"{"error":{"message":"overloaded"}}"#).header("retry-after", "0")
        } else {
            Reply::ok(&good_answer(&r.tone()))
        }
    })
    .await;
    let ctx = fixture(openai_config(&server.url())).await;
    let out = run(&ctx, SEGMENT, &[KEY_ENV]).await.unwrap();
    assert_eq!((out.counts["shipped"].as_u64(), out.counts["rejected"].as_u64()), (Some(2), Some(1)), "{out:?}");
    let doc = variants(&ctx, RUN_ID, SEGMENT).await;
    let urgent = doc.variants.iter().find(|v| v.tone == "urgent").unwrap();
    assert_eq!(urgent.status, VariantStatus::Rejected);
    assert!(urgent.reasons[0].contains("provider failed") && urgent.reasons[0].contains("503"), "{:?}", urgent.reasons);
}

#[tokio::test]
async fn a_weak_model_gets_every_draft_rejected_with_reasons_and_the_step_succeeds() {
    // What a tiny local model writes: JSON of the right shape, invented quotes, a made-up document.
    let server = serve(|_, _| {
        Reply::ok(r#"{"subject": "down jacket", "preheader": "", "body": "up down", "cta": "", "citations": [{"doc_id": "12347568-9b0a", "quote": "The down jacket is a classic and iconic item of modern fashion."}]}"#)
    })
    .await;
    let ctx = fixture(openai_config(&server.url())).await;
    let out = run(&ctx, SEGMENT, &[KEY_ENV]).await.unwrap();
    assert_eq!((out.counts["shipped"].as_u64(), out.counts["rejected"].as_u64()), (Some(0), Some(3)));
    for v in variants(&ctx, RUN_ID, SEGMENT).await.variants {
        assert_eq!(v.status, VariantStatus::Rejected);
        assert!(v.reasons.iter().any(|r| r.contains("body has 2 words")), "{:?}", v.reasons);
        assert!(v.reasons.iter().any(|r| r.contains("12347568-9b0a")), "{:?}", v.reasons);
    }
}

#[tokio::test]
async fn a_retry_the_provider_cannot_answer_keeps_the_first_drafts_reasons() {
    let server = serve(|n, _| {
        if n == 0 {
            Reply::ok(&answer_citing(
                "DOC-999",
                "The Alpine Down Jacket is filled with responsibly sourced 700-fill down.",
            ))
        } else {
            Reply::status(503, "overloaded").header("retry-after", "0")
        }
    })
    .await;
    let ctx = fixture(one_tone(openai_config(&server.url()))).await;
    let out = run(&ctx, SEGMENT, &[KEY_ENV]).await.unwrap();
    assert_eq!(out.counts["rejected"], 1);
    let v = &variants(&ctx, RUN_ID, SEGMENT).await.variants[0];
    assert!(v.reasons.iter().any(|r| r.contains("DOC-999")), "{:?}", v.reasons);
    assert!(v.reasons.iter().any(|r| r.contains("retry got no answer")), "{:?}", v.reasons);
}
