//! Semantics of the ASL runner on small definitions: input/output processing, Retry, Catch, Choice, Map,
//! Parallel, Wait, Fail and the context object.

#[path = "asl/support.rs"]
mod support;

use std::sync::atomic::Ordering;
use std::sync::Arc;

use cpo::asl::Event;
use serde_json::{json, Value};
use support::*;

// ---------- input and output processing (the developer guide's examples) ----------

#[tokio::test]
async fn input_result_output_paths_follow_the_spec_example() {
    let fake = Arc::new(Fake::new(|_, input, _| {
        Ok(json!(input["val1"].as_i64().unwrap_or(0) + input["val2"].as_i64().unwrap_or(0)))
    }));
    let input = json!({"title": "Numbers to add", "numbers": {"val1": 3, "val2": 4}});
    let def = single(json!({"Type": "Task", "Resource": "add", "InputPath": "$.numbers", "ResultPath": "$.sum"}));
    let out = run(def, input.clone(), fake.clone()).await.unwrap();
    assert_eq!(out, json!({"title": "Numbers to add", "numbers": {"val1": 3, "val2": 4}, "sum": 7}));
    assert_eq!(fake.calls()[0].1, json!({"val1": 3, "val2": 4}));

    let def = single(
        json!({"Type": "Task", "Resource": "add", "InputPath": "$.numbers", "ResultPath": "$.sum", "OutputPath": "$.sum"}),
    );
    assert_eq!(run(def, input, fake).await.unwrap(), json!(7));
}

#[tokio::test]
async fn result_path_null_discards_and_dollar_replaces() {
    let fake = Arc::new(Fake::new(|_, _, _| Ok(json!("result"))));
    let input = json!({"keep": 1});
    let discard = single(json!({"Type": "Task", "Resource": "r", "ResultPath": null}));
    assert_eq!(run(discard, input.clone(), fake.clone()).await.unwrap(), input);
    let replace = single(json!({"Type": "Task", "Resource": "r"}));
    assert_eq!(run(replace, input.clone(), fake.clone()).await.unwrap(), json!("result"));
    let nested = single(json!({"Type": "Task", "Resource": "r", "ResultPath": "$.a.b"}));
    assert_eq!(run(nested, input, fake).await.unwrap(), json!({"keep": 1, "a": {"b": "result"}}));
}

#[tokio::test]
async fn result_path_into_a_scalar_is_a_result_path_match_failure() {
    let fake = Arc::new(Fake::new(|_, _, _| Ok(json!(1))));
    let def = single(json!({"Type": "Task", "Resource": "r", "ResultPath": "$.a.b"}));
    let err = run(def, json!({"a": "text"}), fake).await.unwrap_err();
    assert_eq!(err.error, "States.ResultPathMatchFailure");
    assert!(err.cause.contains("$.a.b"), "{}", err.cause);
}

#[tokio::test]
async fn input_and_output_path_null_give_empty_objects() {
    let fake = Arc::new(Fake::echo());
    let def = single(json!({"Type": "Task", "Resource": "r", "InputPath": null, "ResultPath": "$.got"}));
    let out = run(def, json!({"x": 1}), fake.clone()).await.unwrap();
    assert_eq!(fake.calls()[0].1, json!({}));
    assert_eq!(out, json!({"x": 1, "got": {}}));
    let def = single(json!({"Type": "Pass", "OutputPath": null}));
    assert_eq!(run(def, json!({"x": 1}), fake).await.unwrap(), json!({}));
}

#[tokio::test]
async fn missing_input_path_is_a_terminal_runtime_error() {
    let def = json!({"StartAt": "T", "States": {
        "T": {"Type": "Task", "Resource": "r", "InputPath": "$.missing", "End": true,
              "Retry": [{"ErrorEquals": ["States.ALL"]}],
              "Catch": [{"ErrorEquals": ["States.ALL"], "Next": "Caught"}]},
        "Caught": {"Type": "Succeed"}}});
    let fake = Arc::new(Fake::echo());
    let err = run(def, json!({}), fake.clone()).await.unwrap_err();
    assert_eq!(err.error, "States.Runtime");
    assert_eq!(fake.call_count(), 0, "States.Runtime is neither retried nor caught");
}

#[tokio::test]
async fn parameters_result_selector_and_context() {
    let fake = Arc::new(Fake::new(|_, _, _| Ok(json!({"Payload": {"n": 5}, "StatusCode": 200}))));
    let def = json!({"StartAt": "T", "States": {"T": {
        "Type": "Task", "Resource": "r",
        "Parameters": {"fixed": "x", "from.$": "$.a", "nested": {"exec.$": "$$.Execution.Name", "state.$": "$$.State.Name"},
                       "list": [{"v.$": "$.a"}], "sm.$": "$$.StateMachine.Name", "orig.$": "$$.Execution.Input.a",
                       "entered.$": "$$.State.EnteredTime"},
        "ResultSelector": {"n.$": "$.Payload.n", "code.$": "$.StatusCode"},
        "ResultPath": "$.res", "End": true}}});
    let out = run(def, json!({"a": 1}), fake.clone()).await.unwrap();
    let sent = &fake.calls()[0].1;
    assert_eq!(sent["fixed"], "x");
    assert_eq!(sent["from"], 1);
    assert_eq!(sent["nested"], json!({"exec": "test-exec", "state": "T"}));
    assert_eq!(sent["list"], json!([{"v": 1}]));
    assert_eq!(sent["sm"], "test");
    assert_eq!(sent["orig"], 1);
    assert!(sent["entered"].as_str().unwrap().ends_with('Z'));
    assert_eq!(out, json!({"a": 1, "res": {"n": 5, "code": 200}}));
}

#[tokio::test]
async fn a_parameter_path_that_matches_nothing_is_states_runtime() {
    let def = single(json!({"Type": "Pass", "Parameters": {"x.$": "$.nope"}}));
    let err = run(def, json!({"a": 1}), Arc::new(Fake::echo())).await.unwrap_err();
    assert_eq!(err.error, "States.Runtime");
    assert!(err.cause.contains("'$.nope'") && err.cause.contains("'x.$'"), "{}", err.cause);
}

#[tokio::test]
async fn pass_result_and_parameters() {
    let fake = Arc::new(Fake::echo());
    let def = single(json!({"Type": "Pass", "Result": {"x-datum": 0.381018, "y-datum": 622.2269926397355},
                            "ResultPath": "$.coords"}));
    let out = run(def, json!({"georefOf": "Home"}), fake.clone()).await.unwrap();
    assert_eq!(out, json!({"georefOf": "Home", "coords": {"x-datum": 0.381018, "y-datum": 622.2269926397355}}));
    let def = single(json!({"Type": "Pass", "Parameters": {"who.$": "$.georefOf"}}));
    assert_eq!(run(def, json!({"georefOf": "Home"}), fake).await.unwrap(), json!({"who": "Home"}));
}

// ---------- Retry ----------

fn flaky(def_retry: Value, fail_times: usize, error: &'static str) -> (Value, Arc<Fake>) {
    let fake =
        Arc::new(Fake::new(move |_, _, n| if n < fail_times { Err(fail(error, "boom")) } else { Ok(json!("ok")) }));
    (single(json!({"Type": "Task", "Resource": "r", "Retry": def_retry})), fake)
}

#[tokio::test]
async fn retry_defaults_are_one_second_three_attempts_rate_two() {
    let (def, fake) = flaky(json!([{"ErrorEquals": ["E"]}]), 3, "E");
    let (out, events) = run_events(def, json!({}), fake.clone()).await;
    assert_eq!(out.unwrap(), json!("ok"));
    assert_eq!(fake.call_count(), 4);
    assert_eq!(sleeps(&events), vec![1.0, 2.0, 4.0]);

    let (def, fake) = flaky(json!([{"ErrorEquals": ["E"]}]), 4, "E");
    let err = run(def, json!({}), fake.clone()).await.unwrap_err();
    assert_eq!(err.error, "E");
    assert_eq!(fake.call_count(), 4, "1 attempt + 3 retries");
}

#[tokio::test]
async fn retry_backoff_max_delay_and_zero_attempts() {
    let retry = json!([{"ErrorEquals": ["E"], "IntervalSeconds": 3, "MaxAttempts": 4, "BackoffRate": 1.5}]);
    let (def, fake) = flaky(retry, 4, "E");
    let (_, events) = run_events(def, json!({}), fake).await;
    assert_eq!(sleeps(&events), vec![3.0, 4.5, 6.75, 10.125]);

    let retry = json!([{"ErrorEquals": ["E"], "IntervalSeconds": 2, "MaxAttempts": 5, "MaxDelaySeconds": 5}]);
    let (def, fake) = flaky(retry, 5, "E");
    let (_, events) = run_events(def, json!({}), fake).await;
    assert_eq!(sleeps(&events), vec![2.0, 4.0, 5.0, 5.0, 5.0]);

    let (def, fake) = flaky(json!([{"ErrorEquals": ["E"], "MaxAttempts": 0}, {"ErrorEquals": ["States.ALL"]}]), 1, "E");
    assert!(run(def, json!({}), fake.clone()).await.is_err());
    assert_eq!(fake.call_count(), 1, "MaxAttempts 0 never retries; the first matching retrier decides");
}

#[tokio::test]
async fn full_jitter_draws_below_the_computed_delay() {
    let retry = json!([{"ErrorEquals": ["E"], "IntervalSeconds": 10, "MaxAttempts": 3, "JitterStrategy": "FULL"}]);
    let (def, fake) = flaky(retry, 3, "E");
    let (_, events) = run_events(def, json!({}), fake).await;
    let s = sleeps(&events);
    assert_eq!(s.len(), 3);
    for (d, max) in s.iter().zip([10.0, 20.0, 40.0]) {
        assert!(*d >= 0.0 && *d <= max, "{d} > {max}");
    }
    assert!(s != vec![10.0, 20.0, 40.0]);
}

#[tokio::test]
async fn retriers_count_separately_as_in_the_spec_scenario() {
    // Errors ErrorA, ErrorB, ErrorC, ErrorB: waits 1, 2 (first retrier), 5 (second), then the first retrier is
    // spent and the Catch takes over.
    let seq = ["ErrorA", "ErrorB", "ErrorC", "ErrorB"];
    let fake = Arc::new(Fake::new(move |_, _, n| Err(fail(seq.get(n).copied().unwrap_or("ErrorB"), "x"))));
    let def = json!({"StartAt": "X", "States": {
        "X": {"Type": "Task", "Resource": "r", "Next": "Y",
              "Retry": [{"ErrorEquals": ["ErrorA", "ErrorB"], "IntervalSeconds": 1, "BackoffRate": 2.0, "MaxAttempts": 2},
                        {"ErrorEquals": ["ErrorC"], "IntervalSeconds": 5}],
              "Catch": [{"ErrorEquals": ["States.ALL"], "Next": "Z"}]},
        "Y": {"Type": "Pass", "End": true},
        "Z": {"Type": "Pass", "Result": "caught", "End": true}}});
    let (out, events) = run_events(def, json!({}), fake.clone()).await;
    assert_eq!(out.unwrap(), json!("caught"));
    assert_eq!(fake.call_count(), 4);
    assert_eq!(sleeps(&events), vec![1.0, 2.0, 5.0]);
    let retries: Vec<u32> = events
        .iter()
        .filter_map(|e| if let Event::Retry { attempt, .. } = e { Some(*attempt) } else { None })
        .collect();
    assert_eq!(retries, vec![1, 2, 3]);
}

#[tokio::test]
async fn task_failed_matches_task_errors_but_not_timeouts() {
    let (def, fake) = flaky(json!([{"ErrorEquals": ["States.TaskFailed"], "MaxAttempts": 1}]), 1, "Lambda.Unknown");
    assert_eq!(run(def, json!({}), fake.clone()).await.unwrap(), json!("ok"));
    assert_eq!(fake.call_count(), 2);
    let (def, fake) = flaky(json!([{"ErrorEquals": ["States.TaskFailed"], "MaxAttempts": 1}]), 1, "States.Timeout");
    assert_eq!(run(def, json!({}), fake.clone()).await.unwrap_err().error, "States.Timeout");
    assert_eq!(fake.call_count(), 1);
}

#[tokio::test(start_paused = true)]
async fn timeout_seconds_raises_states_timeout() {
    struct Hang;
    #[async_trait::async_trait]
    impl cpo::asl::TaskInvoker for Hang {
        async fn invoke(&self, _: &str, _: Value) -> Result<Value, cpo::asl::Failure> {
            std::future::pending().await
        }
        async fn read_items(&self, _: &str, _: &Value, _: &Value) -> Result<Vec<Value>, cpo::asl::Failure> {
            Ok(vec![])
        }
    }
    let def = json!({"StartAt": "T", "States": {
        "T": {"Type": "Task", "Resource": "r", "TimeoutSeconds": 30, "End": true,
              "Catch": [{"ErrorEquals": ["States.Timeout"], "ResultPath": "$.err", "Next": "C"}]},
        "C": {"Type": "Pass", "End": true}}});
    let m = machine(def);
    let opts = cpo::asl::Options { execution_name: "t".into(), time_scale: 0.0, on_event: None };
    let out = cpo::asl::execute(&m, json!({"in": 1}), Arc::new(Hang), &opts).await.unwrap();
    assert_eq!(out["err"]["Error"], "States.Timeout");
    assert_eq!(out["in"], 1);
}

// ---------- Catch ----------

#[tokio::test]
async fn catch_with_result_path_keeps_the_input() {
    let fake = Arc::new(Fake::new(|_, _, _| Err(fail("java.lang.Exception", "it broke"))));
    let def = json!({"StartAt": "T", "States": {
        "T": {"Type": "Task", "Resource": "r", "Next": "Done",
              "Catch": [{"ErrorEquals": ["java.lang.Exception"], "ResultPath": "$.error-info", "Next": "Recovery"},
                        {"ErrorEquals": ["States.ALL"], "Next": "End"}]},
        "Recovery": {"Type": "Pass", "End": true},
        "End": {"Type": "Pass", "End": true},
        "Done": {"Type": "Succeed"}}});
    let out = run(def, json!({"orig": true}), fake).await.unwrap();
    assert_eq!(out, json!({"orig": true, "error-info": {"Error": "java.lang.Exception", "Cause": "it broke"}}));
}

#[tokio::test]
async fn catch_without_result_path_replaces_the_input_and_null_discards() {
    let fake = Arc::new(Fake::new(|_, _, _| Err(fail("Other", "c"))));
    let def = |rp: Option<Value>| {
        let mut catcher = json!({"ErrorEquals": ["States.ALL"], "Next": "P"});
        if let Some(rp) = rp {
            catcher["ResultPath"] = rp;
        }
        json!({"StartAt": "T", "States": {
            "T": {"Type": "Task", "Resource": "r", "End": true, "Catch": [catcher]},
            "P": {"Type": "Pass", "End": true}}})
    };
    assert_eq!(run(def(None), json!({"a": 1}), fake.clone()).await.unwrap(), json!({"Error": "Other", "Cause": "c"}));
    assert_eq!(run(def(Some(Value::Null)), json!({"a": 1}), fake).await.unwrap(), json!({"a": 1}));
}

#[tokio::test]
async fn states_all_catches_intrinsic_failures_but_not_runtime() {
    let def = |expr: &str| {
        json!({"StartAt": "T", "States": {
            "T": {"Type": "Task", "Resource": "r", "Parameters": {"v.$": expr}, "End": true,
                  "Catch": [{"ErrorEquals": ["States.ALL"], "Next": "C"}]},
            "C": {"Type": "Pass", "Result": "caught", "End": true}}})
    };
    let fake = Arc::new(Fake::echo());
    let caught = run(def("States.ArrayGetItem($.a, 5)"), json!({"a": [1]}), fake.clone()).await.unwrap();
    assert_eq!(caught, json!("caught"), "States.IntrinsicFailure is catchable");
    let err = run(def("$.missing"), json!({"a": [1]}), fake).await.unwrap_err();
    assert_eq!(err.error, "States.Runtime", "States.ALL does not catch States.Runtime");
}

// ---------- Choice ----------

async fn choose(rule: Value, input: Value) -> Result<Value, cpo::asl::Failure> {
    let mut rule = rule;
    rule["Next"] = json!("Yes");
    let def = json!({"StartAt": "C", "States": {
        "C": {"Type": "Choice", "Choices": [rule], "Default": "No"},
        "Yes": {"Type": "Pass", "Result": "yes", "End": true},
        "No": {"Type": "Pass", "Result": "no", "End": true}}});
    run(def, input, Arc::new(Fake::echo())).await
}

async fn is_yes(rule: Value, input: Value) -> bool {
    choose(rule, input).await.unwrap() == json!("yes")
}

#[tokio::test]
async fn choice_comparison_operators() {
    let input = json!({"s": "b", "n": 5, "f": 2.5, "t": true, "ts": "2026-01-01T00:00:00Z", "s2": "b", "n2": 7,
                       "ts2": "2026-06-01T00:00:00+02:00", "nul": null, "file": "log-2026.txt"});
    let cases = [
        (json!({"Variable": "$.s", "StringEquals": "b"}), true),
        (json!({"Variable": "$.s", "StringEquals": "c"}), false),
        (json!({"Variable": "$.s", "StringLessThan": "c"}), true),
        (json!({"Variable": "$.s", "StringGreaterThan": "a"}), true),
        (json!({"Variable": "$.s", "StringLessThanEquals": "b"}), true),
        (json!({"Variable": "$.s", "StringGreaterThanEquals": "c"}), false),
        (json!({"Variable": "$.s", "StringEqualsPath": "$.s2"}), true),
        (json!({"Variable": "$.n", "NumericEquals": 5}), true),
        (json!({"Variable": "$.n", "NumericEquals": 5.0}), true),
        (json!({"Variable": "$.n", "NumericLessThan": 5}), false),
        (json!({"Variable": "$.n", "NumericLessThanEquals": 5}), true),
        (json!({"Variable": "$.f", "NumericGreaterThan": 2}), true),
        (json!({"Variable": "$.n", "NumericGreaterThanEquals": 6}), false),
        (json!({"Variable": "$.n", "NumericLessThanPath": "$.n2"}), true),
        (json!({"Variable": "$.s", "NumericEquals": 5}), false),
        (json!({"Variable": "$.t", "BooleanEquals": true}), true),
        (json!({"Variable": "$.t", "BooleanEqualsPath": "$.t"}), true),
        (json!({"Variable": "$.ts", "TimestampEquals": "2026-01-01T01:00:00+01:00"}), true),
        (json!({"Variable": "$.ts", "TimestampLessThan": "2026-01-02T00:00:00Z"}), true),
        (json!({"Variable": "$.ts", "TimestampGreaterThanPath": "$.ts2"}), false),
        (json!({"Variable": "$.ts", "TimestampLessThanEqualsPath": "$.ts2"}), true),
        (json!({"Variable": "$.ts", "TimestampGreaterThanEquals": "2026-01-01T00:00:00Z"}), true),
        (json!({"Variable": "$.s", "TimestampEquals": "2026-01-01T00:00:00Z"}), false),
        (json!({"Variable": "$.file", "StringMatches": "log-*.txt"}), true),
        (json!({"Variable": "$.file", "StringMatches": "log-*.csv"}), false),
        (json!({"Variable": "$.nul", "IsNull": true}), true),
        (json!({"Variable": "$.s", "IsNull": true}), false),
        (json!({"Variable": "$.absent", "IsPresent": false}), true),
        (json!({"Variable": "$.s", "IsPresent": true}), true),
        (json!({"Variable": "$.n", "IsNumeric": true}), true),
        (json!({"Variable": "$.s", "IsString": true}), true),
        (json!({"Variable": "$.t", "IsBoolean": true}), true),
        (json!({"Variable": "$.ts", "IsTimestamp": true}), true),
        (json!({"Variable": "$.s", "IsTimestamp": true}), false),
        (
            json!({"And": [{"Variable": "$.n", "NumericGreaterThan": 1}, {"Variable": "$.s", "StringEquals": "b"}]}),
            true,
        ),
        (
            json!({"And": [{"Variable": "$.n", "NumericGreaterThan": 9}, {"Variable": "$.s", "StringEquals": "b"}]}),
            false,
        ),
        (json!({"Or": [{"Variable": "$.n", "NumericGreaterThan": 9}, {"Variable": "$.s", "StringEquals": "b"}]}), true),
        (json!({"Not": {"Variable": "$.s", "StringEquals": "b"}}), false),
        (json!({"Variable": "$$.Execution.Name", "StringEquals": "test-exec"}), true),
    ];
    for (rule, want) in cases {
        assert_eq!(is_yes(rule.clone(), input.clone()).await, want, "{rule}");
    }
}

#[tokio::test]
async fn choice_errors() {
    let err = choose(json!({"Variable": "$.absent", "StringEquals": "x"}), json!({})).await.unwrap_err();
    assert_eq!(err.error, "States.Runtime");
    let def = json!({"StartAt": "C", "States": {
        "C": {"Type": "Choice", "Choices": [{"Variable": "$.n", "NumericEquals": 1, "Next": "P"}]},
        "P": {"Type": "Pass", "End": true}}});
    let err = run(def, json!({"n": 2}), Arc::new(Fake::echo())).await.unwrap_err();
    assert_eq!(err.error, "States.NoChoiceMatched");
}

// ---------- Wait, Fail, Succeed ----------

#[tokio::test]
async fn wait_variants_compute_their_seconds() {
    let def = json!({"StartAt": "A", "States": {
        "A": {"Type": "Wait", "Seconds": 10, "Next": "B"},
        "B": {"Type": "Wait", "SecondsPath": "$.secs", "Next": "C"},
        "C": {"Type": "Wait", "Timestamp": "2000-01-01T00:00:00Z", "Next": "D"},
        "D": {"Type": "Wait", "TimestampPath": "$.when", "End": true}}});
    let (out, events) =
        run_events(def, json!({"secs": 3, "when": "2999-01-01T00:00:00Z"}), Arc::new(Fake::echo())).await;
    assert_eq!(out.unwrap()["secs"], 3);
    let s = sleeps(&events);
    assert_eq!(&s[..3], &[10.0, 3.0, 0.0]);
    assert!(s[3] > 3.0e10, "a future timestamp waits until then: {}", s[3]);
    let bad = single(json!({"Type": "Wait", "SecondsPath": "$.secs"}));
    assert_eq!(run(bad, json!({"secs": "x"}), Arc::new(Fake::echo())).await.unwrap_err().error, "States.Runtime");
}

#[tokio::test]
async fn fail_state_error_and_cause_from_literals_paths_and_intrinsics() {
    let def = json!({"StartAt": "F", "States": {"F": {"Type": "Fail", "Error": "Cpo.Bad", "Cause": "because"}}});
    let err = run(def, json!({}), Arc::new(Fake::echo())).await.unwrap_err();
    assert_eq!((err.error.as_str(), err.cause.as_str()), ("Cpo.Bad", "because"));
    let def = json!({"StartAt": "F", "States": {"F": {"Type": "Fail", "ErrorPath": "$.e",
        "CausePath": "States.Format('run {} failed', $.id)"}}});
    let err = run(def, json!({"e": "Custom.Error", "id": 7}), Arc::new(Fake::echo())).await.unwrap_err();
    assert_eq!((err.error.as_str(), err.cause.as_str()), ("Custom.Error", "run 7 failed"));
}

#[tokio::test]
async fn succeed_applies_input_and_output_path() {
    let def = json!({"StartAt": "S", "States": {"S": {"Type": "Succeed", "InputPath": "$.a", "OutputPath": "$.b"}}});
    assert_eq!(run(def, json!({"a": {"b": 2}}), Arc::new(Fake::echo())).await.unwrap(), json!(2));
}

// ---------- Parallel ----------

#[tokio::test]
async fn parallel_runs_branches_concurrently_and_collects_in_order() {
    let mut fake = Fake::new(|resource, input, _| Ok(json!({"from": resource, "in": input["x"]})));
    fake.barrier = Some(tokio::sync::Barrier::new(3));
    let fake = Arc::new(fake);
    let branch = |r: &str| json!({"StartAt": "T", "States": {"T": {"Type": "Task", "Resource": r, "End": true}}});
    let def = json!({"StartAt": "P", "States": {"P": {"Type": "Parallel", "Branches": [branch("a"), branch("b"), branch("c")],
        "ResultSelector": {"first.$": "$[0].from", "all.$": "$[*].from"}, "ResultPath": "$.par", "End": true}}});
    let out = tokio::time::timeout(std::time::Duration::from_secs(10), run(def, json!({"x": 1}), fake.clone()))
        .await
        .expect("three branches must be in flight together")
        .unwrap();
    assert_eq!(out["par"], json!({"first": "a", "all": ["a", "b", "c"]}));
    assert_eq!(fake.max_in_flight.load(Ordering::SeqCst), 3);
}

#[tokio::test]
async fn parallel_failure_is_retried_and_caught() {
    let fake = Arc::new(Fake::new(|resource, _, n| {
        if resource == "bad" && n < 1 {
            Err(fail("Flaky", "once"))
        } else if resource == "worse" {
            Err(fail("Hard", "always"))
        } else {
            Ok(json!(resource))
        }
    }));
    let branch = |r: &str| json!({"StartAt": "T", "States": {"T": {"Type": "Task", "Resource": r, "End": true}}});
    let def = json!({"StartAt": "P", "States": {
        "P": {"Type": "Parallel", "Branches": [branch("ok"), branch("bad")], "Retry": [{"ErrorEquals": ["Flaky"]}],
              "ResultPath": "$.p", "Next": "Q"},
        "Q": {"Type": "Parallel", "Branches": [branch("worse")], "ResultPath": "$.q", "End": true,
              "Catch": [{"ErrorEquals": ["Hard"], "ResultPath": "$.err", "Next": "R"}]},
        "R": {"Type": "Pass", "End": true}}});
    let out = run(def, json!({}), fake).await.unwrap();
    assert_eq!(out, json!({"p": ["ok", "bad"], "err": {"Error": "Hard", "Cause": "always"}}));
}
