//! Definitions that must not load, and the messages that say why (state and field named).

#[path = "asl/support.rs"]
mod support;

use serde_json::json;
use support::*;

fn task(extra: serde_json::Value) -> serde_json::Value {
    let mut s = json!({"Type": "Task", "Resource": "r", "End": true});
    for (k, v) in extra.as_object().unwrap() {
        s[k] = v.clone();
    }
    json!({"StartAt": "T", "States": {"T": s}})
}

#[test]
fn structural_errors_name_the_field() {
    let cases = [
        (json!({"States": {"A": {"Type": "Succeed"}}}), r#"test.asl.json: field "StartAt": missing"#),
        (json!({"StartAt": "B", "States": {"A": {"Type": "Succeed"}}}), r#"field "StartAt": no state named "B""#),
        (
            json!({"StartAt": "A", "States": {"A": {"Type": "Pass", "Next": "Nope"}}}),
            r#"state "A": field "Next": no state named "Nope""#,
        ),
        (
            json!({"StartAt": "A", "States": {"A": {"Type": "Succeed"}, "B": {"Type": "Succeed"}}}),
            r#"state "B": field "": the state is not reachable"#,
        ),
        (
            json!({"StartAt": "A", "States": {"A": {"Type": "Pass"}}}),
            r#"state "A": field "Next": a non-terminal state needs Next or End"#,
        ),
        (
            json!({"StartAt": "A", "States": {"A": {"Type": "Teleport", "End": true}}}),
            r#"state "A": field "Type": unknown state type"#,
        ),
        (
            json!({"StartAt": "A", "States": {"A": {"Type": "Pass", "End": true, "Resource": "x"}}}),
            r#"state "A": field "Resource": not a field of a Pass state"#,
        ),
    ];
    for (def, want) in cases {
        let got = load_err(def);
        assert!(got.contains(want), "{got}\n  should contain\n{want}");
    }
}

#[test]
fn nested_states_are_named_through_their_parent() {
    let def = json!({"StartAt": "Generate", "States": {"Generate": {"Type": "Map", "End": true,
        "ItemProcessor": {"StartAt": "X", "States": {"X": {"Type": "Pass", "Next": "Y"}}}}}});
    assert_eq!(
        load_err(def),
        r#"test.asl.json: state "Generate": field "ItemProcessor.States.X.Next": no state named "Y""#
    );
    let def = json!({"StartAt": "P", "States": {"P": {"Type": "Parallel", "End": true, "Branches": [
        {"StartAt": "A", "States": {"A": {"Type": "Task", "Resource": "r", "End": true, "Retry": [{"ErrorEquals": []}]}}}]}}});
    assert!(load_err(def).contains(r#"state "P": field "Branches[0].States.A.Retry[0].ErrorEquals""#));
}

#[test]
fn unsupported_features_are_refused_at_load() {
    let cases = [
        (task(json!({"HeartbeatSeconds": 10})), "HeartbeatSeconds"),
        (task(json!({"Credentials": {}})), "Credentials"),
        (task(json!({"Assign": {"x": 1}})), "Assign"),
        (json!({"QueryLanguage": "JSONata", "StartAt": "A", "States": {"A": {"Type": "Succeed"}}}), "QueryLanguage"),
        (task(json!({"Parameters": {"x.$": "$[?(@.a)]"}})), "Parameters.x.$"),
        (task(json!({"Parameters": {"x.$": "States.Nope($.a)"}})), "unknown intrinsic function"),
        (task(json!({"Parameters": {"x.$": "States.Format('{} {}', $.a)"}})), "2 placeholders but 1 values"),
        (task(json!({"Parameters": {"x.$": "States.ArrayLength($.a, 1)"}})), "takes 1 arguments"),
        (task(json!({"ResultPath": "$.a[*]"})), "ResultPath"),
        (task(json!({"Retry": [{"ErrorEquals": ["States.ALL", "X"]}]})), "States.ALL must appear alone"),
        (
            task(json!({"Retry": [{"ErrorEquals": ["States.ALL"]}, {"ErrorEquals": ["X"]}]})),
            "States.ALL must appear alone",
        ),
        (task(json!({"Retry": [{"ErrorEquals": ["X"], "BackoffRate": 0.5}]})), "Retry[0].BackoffRate"),
        (task(json!({"Retry": [{"ErrorEquals": ["X"], "JitterStrategy": "SOME"}]})), "Retry[0].JitterStrategy"),
        (task(json!({"Catch": [{"ErrorEquals": ["X"]}]})), "Catch[0].Next"),
        (task(json!({"TimeoutSeconds": 0})), "TimeoutSeconds"),
    ];
    for (def, want) in cases {
        let got = load_err(def);
        assert!(got.contains(want), "{got}\n  should contain\n{want}");
    }
}

#[test]
fn map_specific_checks() {
    let map = |extra: serde_json::Value, mode: &str| {
        let mut m = json!({"Type": "Map", "End": true, "ItemProcessor": {"ProcessorConfig": {"Mode": mode},
            "StartAt": "P", "States": {"P": {"Type": "Pass", "End": true}}}});
        for (k, v) in extra.as_object().unwrap() {
            m[k] = v.clone();
        }
        json!({"StartAt": "M", "States": {"M": m}})
    };
    assert!(load_err(map(json!({"ResultWriter": {}}), "DISTRIBUTED")).contains(r#"field "ResultWriter""#));
    assert!(load_err(map(json!({"ItemReader": {"Resource": "x"}}), "INLINE")).contains("only a DISTRIBUTED Map"));
    assert!(load_err(map(json!({"ToleratedFailureCount": 1}), "INLINE")).contains("only a DISTRIBUTED Map"));
    assert!(load_err(map(json!({"MaxConcurrency": -1}), "INLINE")).contains(r#"field "MaxConcurrency""#));
    assert!(load_err(map(json!({}), "SIDEWAYS")).contains("ItemProcessor.ProcessorConfig.Mode"));
    assert!(load_err(map(json!({"ItemSelector": {}, "Parameters": {}}), "INLINE")).contains("not both"));
}

#[test]
fn choice_rules_are_checked() {
    let choice = |rule: serde_json::Value| {
        json!({"StartAt": "C", "States": {"C": {"Type": "Choice", "Choices": [rule], "Default": "D"},
            "D": {"Type": "Succeed"}}})
    };
    assert!(load_err(choice(json!({"Variable": "$.a", "NumericEquals": "1", "Next": "D"})))
        .contains("Choices[0].NumericEquals"));
    assert!(load_err(choice(json!({"Variable": "$.a", "Next": "D"}))).contains("Choices[0]"));
    assert!(load_err(choice(json!({"Variable": "$.a", "StringEquals": "x"}))).contains("Choices[0].Next"));
    assert!(load_err(choice(json!({"Not": {"Variable": "$.a", "StringEquals": "x", "Next": "D"}, "Next": "D"})))
        .contains("Choices[0].Not.Next"));
    assert!(load_err(choice(json!({"Variable": "$.a", "Sounds": "x", "Next": "D"})))
        .contains("unknown or unsupported choice operator"));
    assert!(
        load_err(choice(json!({"Variable": "$.a", "TimestampEquals": "yesterday", "Next": "D"}))).contains("RFC 3339")
    );
}

#[test]
fn bad_json_names_line_and_column() {
    let err = cpo::asl::StateMachine::parse("{\n  \"StartAt\": ,\n}", "x.asl.json").unwrap_err().to_string();
    assert!(err.starts_with("x.asl.json: not valid JSON") && err.contains("line 2"), "{err}");
}
