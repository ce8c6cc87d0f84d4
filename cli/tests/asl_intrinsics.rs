//! Every intrinsic function, through a Pass state's Parameters, with the documentation's examples.

#[path = "asl/support.rs"]
mod support;

use std::sync::Arc;

use serde_json::{json, Value};
use support::*;

async fn eval(expr: &str, input: Value) -> Result<Value, cpo::asl::Failure> {
    let def = single(json!({"Type": "Pass", "Parameters": {"v.$": expr}}));
    run(def, input, Arc::new(Fake::echo())).await.map(|out| out["v"].clone())
}

async fn ok(expr: &str, input: Value) -> Value {
    match eval(expr, input).await {
        Ok(v) => v,
        Err(e) => panic!("{expr}: {e}"),
    }
}

async fn intrinsic_failure(expr: &str, input: Value) {
    let err = eval(expr, input).await.unwrap_err();
    assert_eq!(err.error, "States.IntrinsicFailure", "{expr}: {}", err.cause);
}

#[tokio::test]
async fn format_with_literals_paths_and_escapes() {
    let input = json!({"name": "Arnav", "template": "Hello, my name is {}.", "n": 3, "o": {"a": 1}});
    assert_eq!(ok("States.Format('Hello, my name is {}.', $.name)", input.clone()).await, "Hello, my name is Arnav.");
    assert_eq!(ok("States.Format($.template, $.name)", input.clone()).await, "Hello, my name is Arnav.");
    assert_eq!(ok("States.Format('{} items, {}', $.n, $.o)", input.clone()).await, r#"3 items, {"a":1}"#);
    assert_eq!(
        ok(r"States.Format('literal \{\} and {} \'quoted\' \\ done', $.name)", input.clone()).await,
        r"literal {} and Arnav 'quoted' \ done"
    );
    intrinsic_failure("States.Format($.template)", input).await;
}

#[tokio::test]
async fn json_functions() {
    let input = json!({"escaped": "{\"foo\": \"bar\"}", "raw": {"foo": "bar"},
                       "json1": {"a": {"a1": 1, "a2": 2}, "b": 2}, "json2": {"a": {"a3": 1, "a4": 2}, "c": 3}});
    assert_eq!(ok("States.StringToJson($.escaped)", input.clone()).await, json!({"foo": "bar"}));
    assert_eq!(ok("States.JsonToString($.raw)", input.clone()).await, json!(r#"{"foo":"bar"}"#));
    assert_eq!(
        ok("States.JsonMerge($.json1, $.json2, false)", input.clone()).await,
        json!({"a": {"a3": 1, "a4": 2}, "b": 2, "c": 3})
    );
    intrinsic_failure("States.JsonMerge($.json1, $.json2, true)", input.clone()).await;
    intrinsic_failure("States.StringToJson('{not json')", input).await;
}

#[tokio::test]
async fn array_functions() {
    let input = json!({"inputArray": [1, 2, 3, 4, 5, 6, 7, 8, 9], "lookingFor": 5, "index": 5, "dups": [1, 2, 3, 3, 3, 3, 3, 3, 4], "Id": 123456});
    assert_eq!(ok("States.Array($.Id)", input.clone()).await, json!([123456]));
    assert_eq!(
        ok("States.Array('a', 1, true, null, States.Array())", input.clone()).await,
        json!(["a", 1, true, null, []])
    );
    assert_eq!(
        ok("States.ArrayPartition($.inputArray, 4)", input.clone()).await,
        json!([[1, 2, 3, 4], [5, 6, 7, 8], [9]])
    );
    assert_eq!(ok("States.ArrayContains($.inputArray, $.lookingFor)", input.clone()).await, json!(true));
    assert_eq!(ok("States.ArrayContains($.inputArray, 42)", input.clone()).await, json!(false));
    assert_eq!(ok("States.ArrayRange(1, 9, 2)", input.clone()).await, json!([1, 3, 5, 7, 9]));
    assert_eq!(ok("States.ArrayRange(5, 1, -2)", input.clone()).await, json!([5, 3, 1]));
    assert_eq!(ok("States.ArrayGetItem($.inputArray, $.index)", input.clone()).await, json!(6));
    assert_eq!(ok("States.ArrayLength($.inputArray)", input.clone()).await, json!(9));
    assert_eq!(ok("States.ArrayUnique($.dups)", input.clone()).await, json!([1, 2, 3, 4]));
    intrinsic_failure("States.ArrayPartition($.inputArray, 0)", input.clone()).await;
    intrinsic_failure("States.ArrayRange(1, 2000, 1)", input.clone()).await;
    intrinsic_failure("States.ArrayRange(1, 5, 0)", input.clone()).await;
    intrinsic_failure("States.ArrayGetItem($.inputArray, 9)", input.clone()).await;
    intrinsic_failure("States.ArrayLength($.Id)", input).await;
}

#[tokio::test]
async fn encoding_and_hashing() {
    let input = json!({"input": "Data to encode", "Data": "input data", "Algorithm": "SHA-1"});
    assert_eq!(ok("States.Base64Encode($.input)", input.clone()).await, "RGF0YSB0byBlbmNvZGU=");
    assert_eq!(ok("States.Base64Decode('RGF0YSB0byBlbmNvZGU=')", input.clone()).await, "Data to encode");
    assert_eq!(ok("States.Hash($.Data, $.Algorithm)", input.clone()).await, "aaff4a450a104cd177d28d18d74485e8cae074b7");
    assert_eq!(ok("States.Hash('abc', 'MD5')", input.clone()).await, "900150983cd24fb0d6963f7d28e17f72");
    assert_eq!(
        ok("States.Hash('abc', 'SHA-256')", input.clone()).await,
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    );
    assert_eq!(ok("States.Hash('abc', 'SHA-384')", input.clone()).await.as_str().unwrap().len(), 96);
    assert_eq!(ok("States.Hash('abc', 'SHA-512')", input.clone()).await.as_str().unwrap().len(), 128);
    intrinsic_failure("States.Hash('abc', 'CRC32')", input.clone()).await;
    intrinsic_failure("States.Base64Decode('***')", input).await;
}

#[tokio::test]
async fn math_string_and_uuid() {
    let input = json!({"value1": 111, "step": -1, "start": 1, "end": 999, "inputString": "This.is+a,test=string", "splitter": ".+,="});
    assert_eq!(ok("States.MathAdd($.value1, $.step)", input.clone()).await, json!(110));
    assert_eq!(ok("States.MathAdd(1.4, 2.6)", input.clone()).await, json!(4), "non-integers are rounded");
    intrinsic_failure("States.MathAdd(2147483648, 1)", input.clone()).await;
    let r = ok("States.MathRandom($.start, $.end)", input.clone()).await.as_i64().unwrap();
    assert!((1..999).contains(&r));
    let seeded_a = ok("States.MathRandom(1, 1000000, 7)", input.clone()).await;
    let seeded_b = ok("States.MathRandom(1, 1000000, 7)", input.clone()).await;
    assert_eq!(seeded_a, seeded_b, "the same seed gives the same number");
    intrinsic_failure("States.MathRandom(5, 5)", input.clone()).await;
    assert_eq!(
        ok("States.StringSplit($.inputString, $.splitter)", input.clone()).await,
        json!(["This", "is", "a", "test", "string"])
    );
    assert_eq!(ok("States.StringSplit('1,2,3,4,5', ',')", input.clone()).await, json!(["1", "2", "3", "4", "5"]));
    let uuid = ok("States.UUID()", input.clone()).await;
    let uuid = uuid.as_str().unwrap();
    assert_eq!(uuid.len(), 36);
    assert_eq!(uuid.as_bytes()[14], b'4', "a version 4 UUID: {uuid}");
}

#[tokio::test]
async fn nested_calls_and_context_arguments() {
    let input = json!({"ImageRecipe": {"Arn": "arn:aws:imagebuilder:us-east-1:123:image-recipe/my.recipe.name/1.0.0"}});
    let expr = "States.Format('{}.{}', States.ArrayGetItem(States.StringSplit(States.ArrayGetItem(States.StringSplit($.ImageRecipe.Arn, '/'), 1), '.'), 0), States.ArrayGetItem(States.StringSplit(States.ArrayGetItem(States.StringSplit($.ImageRecipe.Arn, '/'), 1), '.'), 1))";
    assert_eq!(ok(expr, input.clone()).await, "my.recipe");
    assert_eq!(ok("States.Format('{}/{}', $$.Execution.Name, $$.State.Name)", input).await, "test-exec/S");
}

#[tokio::test]
async fn a_missing_argument_path_is_states_runtime() {
    let err = eval("States.ArrayLength($.nope)", json!({})).await.unwrap_err();
    assert_eq!(err.error, "States.Runtime");
}
