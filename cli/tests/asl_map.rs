//! Map: items, ItemSelector and the Map context, MaxConcurrency (bounded and really concurrent), ItemReader,
//! ItemBatcher, DISTRIBUTED mode and tolerated failures.

#[path = "asl/support.rs"]
mod support;

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Value};
use support::*;

fn map_def(extra: Value) -> Value {
    let mut state = json!({
        "Type": "Map",
        "ItemsPath": "$.items",
        "ItemProcessor": {"StartAt": "Work", "States": {"Work": {"Type": "Task", "Resource": "work", "End": true}}},
        "End": true
    });
    for (k, v) in extra.as_object().unwrap() {
        state[k] = v.clone();
    }
    json!({"StartAt": "M", "States": {"M": state}})
}

#[tokio::test]
async fn item_selector_sees_the_map_input_and_the_item_context() {
    let fake = Arc::new(Fake::echo());
    let def = map_def(json!({"ItemSelector": {"run_id.$": "$.run_id", "segment.$": "$$.Map.Item.Value",
                                              "index.$": "$$.Map.Item.Index"}}));
    let out = run(def, json!({"run_id": "r1", "items": ["a", "b", "c"]}), fake).await.unwrap();
    assert_eq!(
        out,
        json!([{"run_id": "r1", "segment": "a", "index": 0}, {"run_id": "r1", "segment": "b", "index": 1},
               {"run_id": "r1", "segment": "c", "index": 2}])
    );
}

#[tokio::test]
async fn legacy_iterator_and_parameters_work_like_item_processor_and_item_selector() {
    let fake = Arc::new(Fake::echo());
    let def = json!({"StartAt": "M", "States": {"M": {"Type": "Map", "ItemsPath": "$.items",
        "Parameters": {"v.$": "$$.Map.Item.Value"},
        "Iterator": {"StartAt": "P", "States": {"P": {"Type": "Pass", "End": true}}},
        "ResultPath": "$.out", "End": true}}});
    let out = run(def, json!({"items": [1, 2]}), fake).await.unwrap();
    assert_eq!(out, json!({"items": [1, 2], "out": [{"v": 1}, {"v": 2}]}));
}

#[tokio::test]
async fn max_concurrency_is_a_bound_and_really_concurrent() {
    let mut fake = Fake::echo();
    fake.barrier = Some(tokio::sync::Barrier::new(3));
    let fake = Arc::new(fake);
    let items: Vec<i32> = (0..9).collect();
    let def = map_def(json!({"MaxConcurrency": 3}));
    let out = tokio::time::timeout(Duration::from_secs(10), run(def, json!({"items": items}), fake.clone()))
        .await
        .expect("three iterations must run together, or the barrier never opens")
        .unwrap();
    assert_eq!(out, json!((0..9).collect::<Vec<i32>>()), "results keep item order");
    assert_eq!(fake.max_in_flight.load(Ordering::SeqCst), 3);
}

#[tokio::test]
async fn max_concurrency_one_runs_items_one_at_a_time() {
    let fake = Arc::new(Fake::echo());
    let def = map_def(json!({"MaxConcurrency": 1}));
    run(def, json!({"items": [1, 2, 3, 4, 5]}), fake.clone()).await.unwrap();
    assert_eq!(fake.max_in_flight.load(Ordering::SeqCst), 1);
    let order: Vec<Value> = fake.calls().into_iter().map(|(_, v)| v).collect();
    assert_eq!(order, vec![json!(1), json!(2), json!(3), json!(4), json!(5)]);
}

#[tokio::test]
async fn max_concurrency_zero_is_unlimited() {
    let mut fake = Fake::echo();
    fake.barrier = Some(tokio::sync::Barrier::new(12));
    let fake = Arc::new(fake);
    let def = map_def(json!({"MaxConcurrency": 0}));
    let items: Vec<i32> = (0..12).collect();
    tokio::time::timeout(Duration::from_secs(10), run(def, json!({"items": items}), fake.clone()))
        .await
        .expect("all twelve in flight")
        .unwrap();
    assert_eq!(fake.max_in_flight.load(Ordering::SeqCst), 12);
}

#[tokio::test]
async fn max_concurrency_path_is_read_from_the_input() {
    let fake = Arc::new(Fake::echo());
    let def = map_def(json!({"MaxConcurrencyPath": "$.limit"}));
    run(def, json!({"items": [1, 2, 3, 4], "limit": 2}), fake.clone()).await.unwrap();
    assert!(fake.max_in_flight.load(Ordering::SeqCst) <= 2);
}

#[tokio::test]
async fn a_failed_iteration_fails_the_map_with_its_error_and_catch_applies() {
    let fake =
        Arc::new(Fake::new(
            |_, input, _| if input == &json!(3) { Err(fail("Cpo.Internal", "item 3")) } else { Ok(input.clone()) },
        ));
    let def = map_def(json!({}));
    let err = run(def, json!({"items": [1, 2, 3, 4]}), fake.clone()).await.unwrap_err();
    assert_eq!((err.error.as_str(), err.cause.as_str()), ("Cpo.Internal", "item 3"));

    let mut def =
        map_def(json!({"Catch": [{"ErrorEquals": ["Cpo.Internal"], "ResultPath": "$.failed", "Next": "After"}]}));
    def["States"]["After"] = json!({"Type": "Succeed"});
    let out = run(def, json!({"items": [3]}), fake).await.unwrap();
    assert_eq!(out["failed"]["Error"], "Cpo.Internal");
}

#[tokio::test]
async fn items_path_must_be_an_array() {
    let def = map_def(json!({}));
    let err = run(def, json!({"items": "nope"}), Arc::new(Fake::echo())).await.unwrap_err();
    assert_eq!(err.error, "States.Runtime");
}

#[tokio::test]
async fn map_result_selector_with_intrinsic_as_in_the_campaign_machine() {
    let def = map_def(json!({"ResultSelector": {"segments.$": "States.ArrayLength($)"}, "ResultPath": "$.generate"}));
    let out = run(def, json!({"items": ["a", "b"]}), Arc::new(Fake::echo())).await.unwrap();
    assert_eq!(out["generate"], json!({"segments": 2}));
}

fn distributed(extra: Value) -> Value {
    let mut def = map_def(extra);
    def["States"]["M"]["ItemProcessor"]["ProcessorConfig"] =
        json!({"Mode": "DISTRIBUTED", "ExecutionType": "STANDARD"});
    def
}

#[tokio::test]
async fn item_reader_feeds_a_distributed_map() {
    let mut fake = Fake::echo();
    fake.items = (0..10).map(|i| json!({"customer": format!("c{i}")})).collect();
    let fake = Arc::new(fake);
    let mut def = distributed(json!({
        "ItemReader": {"Resource": "arn:aws:states:::s3:getObject",
                       "ReaderConfig": {"InputType": "CSV", "CSVHeaderLocation": "FIRST_ROW", "MaxItemsPath": "$.max"},
                       "Parameters": {"Bucket": "b", "Key.$": "$.key"}},
        "ItemSelector": {"row.$": "$$.Map.Item.Value", "run_id.$": "$.run_id"},
        "MaxConcurrency": 2
    }));
    def["States"]["M"].as_object_mut().unwrap().remove("ItemsPath");
    let out = run(def, json!({"key": "runs/r1/members.csv", "run_id": "r1", "max": 4}), fake.clone()).await.unwrap();
    let reads = fake.reads.lock().unwrap().clone();
    assert_eq!(reads.len(), 1);
    assert_eq!(reads[0].0, "arn:aws:states:::s3:getObject");
    assert_eq!(reads[0].1, json!({"Bucket": "b", "Key": "runs/r1/members.csv"}));
    assert_eq!(reads[0].2, json!({"InputType": "CSV", "CSVHeaderLocation": "FIRST_ROW", "MaxItems": 4}));
    assert_eq!(out.as_array().unwrap().len(), 4, "MaxItems truncates");
    assert_eq!(out[3], json!({"row": {"customer": "c3"}, "run_id": "r1"}));
    assert!(fake.max_in_flight.load(Ordering::SeqCst) <= 2);
}

#[tokio::test]
async fn distributed_map_without_max_concurrency_is_bounded() {
    let fake = Arc::new(Fake::echo());
    let items: Vec<i32> = (0..200).collect();
    run(distributed(json!({})), json!({"items": items}), fake.clone()).await.unwrap();
    assert_eq!(fake.call_count(), 200);
    assert!(fake.max_in_flight.load(Ordering::SeqCst) <= cpo::asl::DISTRIBUTED_DEFAULT_CONCURRENCY);
}

#[tokio::test]
async fn item_batcher_groups_items() {
    let def = distributed(json!({"ItemBatcher": {"MaxItemsPerBatch": 2, "BatchInput": {"run.$": "$.run"}}}));
    let out = run(def, json!({"items": [1, 2, 3], "run": "r"}), Arc::new(Fake::echo())).await.unwrap();
    assert_eq!(out, json!([{"BatchInput": {"run": "r"}, "Items": [1, 2]}, {"BatchInput": {"run": "r"}, "Items": [3]}]));
}

#[tokio::test]
async fn tolerated_failures() {
    let fake = || {
        Arc::new(Fake::new(|_, input, _| {
            if input.as_i64().unwrap_or(0) % 2 == 0 {
                Err(fail("E", "even"))
            } else {
                Ok(input.clone())
            }
        }))
    };
    let items: Vec<i32> = (1..=10).collect(); // 5 of 10 fail
    let out = run(distributed(json!({"ToleratedFailureCount": 5})), json!({"items": items}), fake()).await.unwrap();
    assert_eq!(out[0], json!(1));
    assert_eq!(out[1], json!({"Error": "E", "Cause": "even"}));
    let err = run(distributed(json!({"ToleratedFailureCount": 4})), json!({"items": items}), fake()).await.unwrap_err();
    assert_eq!(err.error, "States.ExceedToleratedFailureThreshold");
    assert!(run(distributed(json!({"ToleratedFailurePercentage": 50})), json!({"items": items}), fake()).await.is_ok());
    let err =
        run(distributed(json!({"ToleratedFailurePercentage": 40})), json!({"items": items}), fake()).await.unwrap_err();
    assert_eq!(err.error, "States.ExceedToleratedFailureThreshold");
}

#[tokio::test]
async fn item_reader_failure_is_reported_as_item_reader_failed() {
    struct Broken;
    #[async_trait::async_trait]
    impl cpo::asl::TaskInvoker for Broken {
        async fn invoke(&self, _: &str, v: Value) -> Result<Value, cpo::asl::Failure> {
            Ok(v)
        }
        async fn read_items(&self, _: &str, _: &Value, _: &Value) -> Result<Vec<Value>, cpo::asl::Failure> {
            Err(fail("NoSuchKey", "runs/x.csv"))
        }
    }
    let mut def =
        distributed(json!({"ItemReader": {"Resource": "arn:aws:states:::s3:getObject", "Parameters": {"Key": "x"}}}));
    def["States"]["M"].as_object_mut().unwrap().remove("ItemsPath");
    let m = machine(def);
    let opts = cpo::asl::Options { execution_name: "t".into(), time_scale: 0.0, on_event: None };
    let err = cpo::asl::execute(&m, json!({}), Arc::new(Broken), &opts).await.unwrap_err();
    assert_eq!(err.error, "States.ItemReaderFailed");
    assert!(err.cause.contains("NoSuchKey"));
}
