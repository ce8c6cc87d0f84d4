//! The report step end to end on a realistic run in a `mem://` store: both actions, figures agreeing across
//! HTML, Markdown and JSON, escaping, no PII, the manifest written last and complete, SIMULATED on top.

mod common;

use common::*;
use cpo_common::model::experiment::{Decision, Metric};
use cpo_common::model::manifest::{Manifest, RunStatus};
use cpo_common::store::{Store, StoreExt};
use cpo_common::{ErrorKind, StepInput};
use cpo_report::{fmt, Report};

fn input(action: &str) -> StepInput {
    StepInput {
        run_id: RUN_ID.into(),
        campaign: Some("weekly".into()),
        action: Some(action.into()),
        ..Default::default()
    }
}

struct Outputs {
    html: String,
    md: String,
    json: Report,
    manifest: Manifest,
}

async fn outputs(store: &Recording) -> Outputs {
    let k = keys();
    Outputs {
        html: text(store, &k.report("index.html")).await,
        md: text(store, &k.report("report.md")).await,
        json: store.get_json(&k.report("report.json")).await.unwrap(),
        manifest: store.get_json(&k.manifest()).await.unwrap(),
    }
}

#[tokio::test]
async fn campaign_report_awaits_outcomes_and_shows_the_campaign() {
    let store = Recording::new();
    campaign_run(store.as_ref()).await;
    store.take_puts();
    let out = cpo_report::handle(input("campaign"), &ctx(store.clone())).await.unwrap();
    assert_eq!(out.counts["verdict"], "awaiting_outcomes");
    assert_eq!(out.keys["html"], keys().report("index.html").to_string());
    let o = outputs(&store).await;

    assert_eq!(o.json.status, RunStatus::AwaitingOutcomes);
    assert!(o.json.experiment.is_none());
    assert!(!o.json.simulated);
    assert!(o.json.summary.headline.starts_with("Awaiting outcomes"), "{}", o.json.summary.headline);
    assert!(o.html.contains("Awaiting outcomes: the send list for 1,000 customers is ready"));
    assert!(o.md.contains("Awaiting outcomes: the send list for 1,000 customers is ready"));
    assert!(!o.html.contains("SIMULATED") && !o.md.contains("SIMULATED"));

    // Segments, arm sizes from the assign step, and the send list.
    assert_eq!(o.json.segments.len(), 3);
    assert_eq!(o.json.arm_counts_source, "step_record");
    let counts = arm_counts();
    for s in &o.json.segment_arms {
        for (arm, n) in o.json.arm_names.iter().zip(&s.counts) {
            assert_eq!(counts[&s.segment].get(arm).copied().unwrap_or(0), *n, "{} {arm}", s.segment);
        }
    }
    // Champions' urgent variant was blocked: Champions has no urgent customers.
    let champions = o.json.segment_arms.iter().find(|s| s.segment == "Champions").unwrap();
    let urgent = o.json.arm_names.iter().position(|a| a == "urgent").unwrap();
    assert_eq!(champions.counts[urgent], 0);
    assert_eq!(o.json.send.rows, 1000);
    assert_eq!(o.json.send.parts, 1);
    assert_eq!(o.json.send.templates, vec!["champions-friendly".to_string(), "control".to_string()]);
    for a in &o.json.arms {
        let cell = format!(
            "<td data-label=\"arm\">{}</td><td class=\"n\" data-label=\"customers\">{}</td>",
            a.arm,
            fmt::int(a.n)
        );
        assert!(o.html.contains(&cell), "html lacks {cell}");
        assert!(o.md.contains(&format!("| {} | {} |", a.arm, fmt::int(a.n))), "md lacks arm {}", a.arm);
    }

    // Variants with their citations (doc id, retrieved title, quote), the blocked and the rejected one.
    assert_eq!(o.json.variants.len(), 9);
    let order: Vec<_> = o.json.variants.iter().map(|v| (v.segment.clone().unwrap(), v.tone.clone().unwrap())).collect();
    let expected: Vec<_> =
        SEGMENTS.iter().flat_map(|s| TONES.iter().map(move |t| (s.to_string(), t.to_string()))).collect();
    assert_eq!(order, expected, "variants in segments.json order, tones as configured");
    let blocked = o.json.variants.iter().find(|v| v.variant_id == blocked_id()).unwrap();
    assert_eq!(blocked.safety.as_deref(), Some("blocked"));
    assert!(!blocked.in_experiment);
    assert_eq!(o.json.safety.blocked, 1);
    assert_eq!(o.json.safety.rejected, 1);
    assert_eq!(o.json.variants.iter().filter(|v| v.in_experiment).count(), 7);
    let cited = &o.json.variants[0].citations[0];
    assert_eq!((cited.doc_id.as_str(), cited.title.as_deref()), ("DOC-007", Some(HOSTILE_TITLE)));
    assert!(o.html.contains("DOC-007") && o.md.contains("DOC-007"));
    assert!(o.html.contains("Our winter boots are waterproof."));
    assert!(o.html.contains("urgency: false scarcity"));
    assert!(o.html.contains("body has 12 words; at least 40 required"));

    // Cost from the generate steps' counts, timings from the step records.
    let c = &o.json.cost;
    assert_eq!(c.provider_calls, 9);
    assert_eq!(c.prompt_tokens, 2700);
    assert!((c.cost_usd - 9.0 * 0.000117).abs() < 1e-12);
    assert!(o.html.contains(&fmt::usd(c.cost_usd)) && o.md.contains(&fmt::usd(c.cost_usd)));
    assert_eq!(o.json.timings.first().map(|t| t.step.as_str()), Some("segment"));
    assert_eq!(o.json.total_ms, 1200 + 300 + 3 * 450 + 800 + 2100);
    let step_time = fmt::duration_ms(o.json.total_ms);
    assert!(o.html.contains(&step_time) && o.md.contains(&step_time));

    // Four charts on a campaign report? Two: segment sizes and safety outcomes (no results yet).
    assert_eq!(o.html.matches("<svg").count(), 2);
    assert_eq!(o.manifest.status, RunStatus::AwaitingOutcomes);
    assert_eq!(o.manifest.report_action, "campaign");
}

#[tokio::test]
async fn experiment_report_has_results_decision_and_agreeing_figures() {
    let store = Recording::new();
    campaign_run(store.as_ref()).await;
    cpo_report::handle(input("campaign"), &ctx(store.clone())).await.unwrap();
    analysis_run(store.as_ref(), false).await;
    let out = cpo_report::handle(input("experiment"), &ctx(store.clone())).await.unwrap();
    assert_eq!(out.counts["verdict"], "ship");
    let o = outputs(&store).await;
    let analysis = analysis_doc(false);
    let e = o.json.experiment.as_ref().unwrap();

    assert_eq!(o.json.status, RunStatus::Analyzed);
    assert_eq!(e.decision, Decision::Ship);
    assert_eq!(e.primary_metric, Metric::Click);
    assert!(o.json.summary.headline.starts_with("Ship friendly: "), "{}", o.json.summary.headline);
    assert!(o.html.contains(&format!("<div class=\"headline\">{}</div>", o.json.summary.headline)));
    assert!(o.md.contains(&format!("**{}**", cpo_report::render::md_escape(&o.json.summary.headline))));
    assert!(!o.html.contains("SIMULATED"));

    // Every analysis row is in report.json unchanged, and its figures read the same in HTML and Markdown.
    let all: Vec<_> = e.overall.iter().chain(e.by_segment.iter().flat_map(|s| &s.rows)).collect();
    assert_eq!(all.len(), analysis.results.len());
    for r in &analysis.results {
        assert!(all.contains(&r), "row {} {} {:?} missing from report.json", r.arm, r.metric, r.segment);
    }
    for r in &e.overall {
        let figures = [
            fmt::int(r.n),
            fmt::int(r.successes),
            fmt::pct(r.rate),
            format!("{} – {}", fmt::pct(r.ci_low), fmt::pct(r.ci_high)),
            r.lift.map(fmt::signed_pct).unwrap_or(fmt::NA.into()),
            r.p_holm.or(r.p_bh).map(fmt::pvalue).unwrap_or(fmt::NA.into()),
            r.prob_beat_control.map(fmt::prob).unwrap_or(fmt::NA.into()),
        ];
        let html_row = format!(
            "<td data-label=\"metric\">{}</td><td data-label=\"arm\">{}</td><td class=\"n\" data-label=\"customers\">{}</td>\
             <td class=\"n\" data-label=\"with event\">{}</td><td class=\"n\" data-label=\"rate (95% CI)\">{}<br><small>{}</small></td>",
            r.metric, r.arm, figures[0], figures[1], figures[2], figures[3]
        );
        assert!(o.html.contains(&html_row), "html lacks {html_row}");
        let md_start =
            format!("| {} | {} | {} | {} | {} ({}) |", r.metric, r.arm, figures[0], figures[1], figures[2], figures[3]);
        assert!(o.md.contains(&md_start), "md lacks {md_start}");
        for f in &figures[4..] {
            assert!(o.html.contains(f.as_str()) && o.md.contains(f.as_str()), "{f} missing");
        }
    }
    let ingest =
        "1,312 rows in 1 file(s), 1,309 accepted, 3 rejected, 11 duplicates; 310 assigned customers with events; \
                  4 events of 2 customers who were never assigned (ignored). Events: click 67, open 302.";
    assert!(o.html.contains(ingest) && o.md.contains(ingest), "outcomes summary missing");
    let friendly = e.overall.iter().find(|r| r.arm == "friendly" && r.metric == Metric::Click).unwrap();
    let lift_ci = format!(
        "{} ({}, {})",
        fmt::signed_pct(friendly.lift.unwrap()),
        fmt::signed_pct(friendly.lift_ci_low.unwrap()),
        fmt::signed_pct(friendly.lift_ci_high.unwrap())
    );
    assert!(o.md.contains(&lift_ci), "lift CI {lift_ci} missing");
    let lift_ci_html = format!(
        "{}<br><small>{}, {}</small>",
        fmt::signed_pct(friendly.lift.unwrap()),
        fmt::signed_pct(friendly.lift_ci_low.unwrap()),
        fmt::signed_pct(friendly.lift_ci_high.unwrap())
    );
    assert!(o.html.contains(&lift_ci_html), "lift CI {lift_ci_html} missing");
    assert!(o.html.contains(&fmt::pp(0.0317)) && o.md.contains(&fmt::pp(0.0317)), "MDE missing");
    assert!(o.html.contains(&fmt::pvalue(analysis.srm_p_value)) && o.md.contains(&fmt::pvalue(analysis.srm_p_value)));
    assert!(o.html.contains("mde_click") && o.md.contains("mde\\_click"));
    let extra: Vec<&str> = e.extra.keys().map(String::as_str).collect();
    assert_eq!(
        extra,
        [
            "blocked_variants",
            "mde_click",
            "power.friendly.mde",
            "power.friendly.power_at_observed",
            "srm.per_segment.Loyal <script>alert('segment')</script>"
        ],
        "extra flattened to dotted scalars; lists of objects left out"
    );
    assert!(o.html.contains("<th>power.friendly.mde</th><td>0.0123</td>"));
    assert!(o.html.contains("<td>champions-urgent, &lt;x&gt;</td>"));
    assert!(o.md.contains("| power.friendly.mde | 0.0123 |"));

    // All four charts: rates with CI, lift vs control, segment sizes, safety outcomes.
    assert_eq!(o.html.matches("<svg").count(), 4);
    assert!(o.html.contains("Click rate per arm with 95% intervals"));
    assert_eq!(o.manifest.status, RunStatus::Analyzed);
    assert_eq!(o.manifest.report_action, "experiment");
    assert!(o.manifest.steps.iter().any(|s| s.step == "report-campaign"));
    assert!(o.manifest.steps.iter().any(|s| s.step == "report-experiment"));
}

#[tokio::test]
async fn simulated_outcomes_are_labelled_on_top() {
    let store = Recording::new();
    campaign_run(store.as_ref()).await;
    analysis_run(store.as_ref(), true).await;
    cpo_report::handle(input("experiment"), &ctx(store.clone())).await.unwrap();
    let o = outputs(&store).await;
    assert!(o.json.simulated && o.manifest.simulated);
    let body = &o.html[o.html.find("<main>").unwrap()..];
    assert!(body.find("SIMULATED").unwrap() < body.find("<h1>").unwrap(), "banner must come before the title");
    assert!(o.html.contains("<title>[SIMULATED]"));
    assert!(o.md.lines().next().unwrap().contains("**SIMULATED**"));
}

#[tokio::test]
async fn untrusted_text_is_escaped_everywhere() {
    let store = Recording::new();
    campaign_run(store.as_ref()).await;
    analysis_run(store.as_ref(), false).await;
    cpo_report::handle(input("experiment"), &ctx(store.clone())).await.unwrap();
    let o = outputs(&store).await;
    // No raw markup from a segment name, a generated body, a document title or a quote.
    for raw in ["<script", "<img", "<b>Boots", "<free>", "onerror=alert(1)>"] {
        assert!(!o.html.contains(raw), "HTML contains raw {raw}");
        assert!(!o.md.contains(raw), "Markdown contains raw {raw}");
    }
    assert!(o.html.contains("&lt;script&gt;console.error(&#x27;xss-body&#x27;)&lt;&#x2f;script&gt;"));
    assert!(o.html.contains("Loyal &lt;script&gt;alert(&#x27;segment&#x27;)&lt;&#x2f;script&gt;"));
    assert!(o.html.contains("Winter &lt;b&gt;Boots&lt;&#x2f;b&gt; &amp; &quot;Jackets&quot;"));
    // In SVG labels too (the segment chart and the safety chart name segments).
    let svgs: String =
        o.html.match_indices("<svg").map(|(i, _)| &o.html[i..i + o.html[i..].find("</svg>").unwrap()]).collect();
    assert!(svgs.contains("Loyal &lt;script&gt;"));
    // Markdown: neither HTML nor Markdown structure survives (table pipes, emphasis, links).
    assert!(o.md.contains("Loyal &lt;script&gt;alert\\('segment'\\)&lt;/script&gt;"));
    assert!(o.md.contains("Winter &lt;b&gt;Boots&lt;/b&gt; &amp; &quot;Jackets&quot; \\| guide"));
    assert!(o.md.contains("Hi {{first\\_name}}"), "merge fields stay as text");
    // The JSON keeps the original text (it is data, escaped by whoever renders it).
    assert!(o.json.variants.iter().any(|v| v.body == HOSTILE_BODY));
}

#[tokio::test]
async fn no_customer_data_in_any_report_output() {
    let store = Recording::new();
    campaign_run(store.as_ref()).await;
    analysis_run(store.as_ref(), true).await;
    cpo_report::handle(input("experiment"), &ctx(store.clone())).await.unwrap();
    let o = outputs(&store).await;
    let json = serde_json::to_string(&o.json).unwrap();
    let manifest = serde_json::to_string(&o.manifest).unwrap();
    for pii in PII {
        for (name, doc) in [("html", &o.html), ("md", &o.md), ("json", &json), ("manifest", &manifest)] {
            assert!(!doc.contains(pii), "{name} contains customer data {pii:?}");
        }
    }
}

#[tokio::test]
async fn arm_sizes_fall_back_to_the_assignments() {
    let store = Recording::new();
    campaign_run(store.as_ref()).await;
    // An assign record without per-segment counts.
    let k = keys();
    let mut rec: cpo_common::step::StepRecord = store.get_json(&k.step("assign")).await.unwrap();
    rec.output.counts.remove("segments");
    store.put_json(&k.step("assign"), &rec).await.unwrap();
    cpo_report::handle(input("campaign"), &ctx(store.clone())).await.unwrap();
    let o = outputs(&store).await;
    assert_eq!(o.json.arm_counts_source, "assignments");
    let counts = arm_counts();
    let total: u64 = counts.values().flat_map(|m| m.values()).sum();
    assert_eq!(o.json.arms.iter().map(|a| a.n).sum::<u64>(), total);
    for s in &o.json.segment_arms {
        assert_eq!(s.total, counts[&s.segment].values().sum::<u64>());
    }
}

#[tokio::test]
async fn manifest_is_written_last_and_lists_every_object() {
    let store = Recording::new();
    campaign_run(store.as_ref()).await;
    analysis_run(store.as_ref(), false).await;
    store.take_puts();
    cpo_report::handle(input("experiment"), &ctx(store.clone())).await.unwrap();
    let puts = store.take_puts();
    let k = keys();
    assert_eq!(puts.last().map(String::as_str), Some(k.manifest().as_str()), "writes: {puts:?}");
    for f in ["index.html", "report.md", "report.json"] {
        assert!(puts.contains(&k.report(f).to_string()));
    }
    assert!(puts.contains(&k.step("report-experiment").to_string()));

    let m: Manifest = store.get_json(&k.manifest()).await.unwrap();
    let listed: Vec<_> =
        store.list(&k.prefix()).await.unwrap().into_iter().filter(|o| o.key != k.manifest().as_str()).collect();
    for o in &listed {
        assert!(m.objects.contains(o), "manifest lacks {} (or its size/etag differ)", o.key);
    }
    let audit = safety_doc().audit_key;
    assert!(m.objects.iter().any(|o| o.key == audit), "manifest lacks the audit object");
    assert_eq!(m.objects.len(), listed.len() + 1);
    assert!(m.objects.iter().all(|o| o.etag.is_some()));
    assert_eq!(m.total_bytes, m.objects.iter().map(|o| o.size).sum::<u64>());
    let steps: Vec<_> = m.steps.iter().map(|s| s.step.as_str()).collect();
    for s in ["segment", "retrieve", "generate-champions", "safety", "assign", "analyze", "report-experiment"] {
        assert!(steps.contains(&s), "manifest lacks step {s}: {steps:?}");
    }
    assert_eq!(m.provider_calls, 9);
    assert!((m.cost_usd - 9.0 * 0.000117).abs() < 1e-12);
    assert_eq!(m.report["html"], k.report("index.html").to_string());
}

#[tokio::test]
async fn same_state_is_not_rendered_twice_and_a_new_analysis_is() {
    let store = Recording::new();
    campaign_run(store.as_ref()).await;
    analysis_run(store.as_ref(), false).await;
    cpo_report::handle(input("experiment"), &ctx(store.clone())).await.unwrap();
    store.take_puts();
    cpo_report::handle(input("experiment"), &ctx(store.clone())).await.unwrap();
    assert_eq!(store.take_puts(), Vec::<String>::new(), "an identical re-delivery writes nothing");

    // More outcomes: a new analysis → the report and the manifest are rewritten.
    let mut a = analysis_doc(false);
    a.decision = Decision::NotTrustworthy;
    a.winner = None;
    a.srm_flag = true;
    a.srm_p_value = 0.00001;
    a.decision_reasons = vec!["sample ratio mismatch (p < 0.001)".into()];
    store.put_json(&keys().analysis(), &a).await.unwrap();
    store.take_puts();
    cpo_report::handle(input("experiment"), &ctx(store.clone())).await.unwrap();
    let puts = store.take_puts();
    assert!(puts.contains(&keys().report("index.html").to_string()));
    assert_eq!(puts.last().map(String::as_str), Some(keys().manifest().as_str()));
    let o = outputs(&store).await;
    assert_eq!(o.json.summary.verdict, "not_trustworthy");
    assert!(o.json.summary.headline.starts_with("Not trustworthy: do not act on these results (sample ratio mismatch"));
    assert!(o.html.contains("mismatch: arm sizes differ from the configured split"));
}

#[tokio::test]
async fn missing_optional_documents_are_tolerated() {
    let store = Recording::new();
    let k = keys();
    store.put_json(&k.input(), &run_input()).await.unwrap();
    store.put_json(&k.segments(), &segments_doc()).await.unwrap();
    cpo_report::handle(input("campaign"), &ctx(store.clone())).await.unwrap();
    let o = outputs(&store).await;
    assert_eq!(o.json.segments.len(), 3);
    assert!(o.json.variants.is_empty() && o.json.arms.is_empty());
    assert!(o.html.contains("No customers assigned yet."));
    assert!(o.json.summary.headline.starts_with("Awaiting outcomes"));

    // The experiment report needs an analysis: a clear input error naming the object.
    let err = cpo_report::handle(input("experiment"), &ctx(store.clone())).await.unwrap_err();
    assert_eq!(err.kind, ErrorKind::InputInvalid);
    assert!(err.message.contains("analysis.json not found"), "{}", err.message);
}

#[tokio::test]
async fn bad_input_fails_with_a_clear_error() {
    let store = Recording::new();
    let err = cpo_report::handle(input("campaign"), &ctx(store.clone())).await.unwrap_err();
    assert_eq!(err.kind, ErrorKind::InputInvalid);
    assert!(err.message.contains("input.json"), "{}", err.message);

    let err = cpo_report::handle(input("summary"), &ctx(store.clone())).await.unwrap_err();
    assert_eq!(err.kind, ErrorKind::InputInvalid);
    assert!(err.message.contains("`action`"), "{}", err.message);

    campaign_run(store.as_ref()).await;
    store.put(&keys().safety(), bytes::Bytes::from_static(b"{\"run_id\": 3")).await.unwrap();
    let err = cpo_report::handle(input("campaign"), &ctx(store.clone())).await.unwrap_err();
    assert_eq!(err.kind, ErrorKind::InputInvalid);
    assert!(err.message.contains("safety.json"), "{}", err.message);
}
