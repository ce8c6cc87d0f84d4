//! An operator's `CPO_LLM_BASE_URL` override is another provider: the step runs again and the response cache
//! does not serve the first server's answers for the second.

mod support;

use support::*;

#[tokio::test]
async fn a_base_url_override_is_not_served_from_the_other_servers_cache() {
    let first = serve(|_, r| Reply::ok(&good_answer(&r.tone()))).await;
    let second = serve(|_, r| Reply::ok(&good_answer(&r.tone()))).await;
    let ctx = fixture(openai_config(&first.url())).await;
    let out = run(&ctx, SEGMENT, &[KEY_ENV]).await.unwrap();
    assert_eq!(out.counts["provider_calls"], 3);

    let second_url = second.url();
    let again = run(&ctx, SEGMENT, &[KEY_ENV, ("CPO_LLM_BASE_URL", second_url.as_str())]).await.unwrap();
    assert_eq!(second.count(), 3, "the overriding server was asked");
    assert_eq!(again.counts["provider_calls"], 3, "no answer came from the first server's cache");
    assert_eq!(first.count(), 3);
}
