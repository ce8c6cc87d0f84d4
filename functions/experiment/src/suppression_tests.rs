use super::*;
use proptest::prelude::*;

fn hasher() -> CustomerHasher {
    CustomerHasher::new(b"0123456789abcdef0123456789abcdef").unwrap()
}

fn list(body: &str) -> Result<HashMap<CustomerHash, Reason>, StepError> {
    let key = Key::new("suppression/ops.csv").unwrap();
    let mut map = HashMap::new();
    read_list(&key, body.as_bytes(), &hasher(), &mut map).map(|_| map)
}

#[test]
fn operator_lists_by_id_and_email() {
    let h = hasher();
    let m = list("\u{feff}Email,Customer_Id,Reason\nAnn@Example.com,,\n,C2,legal\nb@example.com,C3,Complaint Desk\n")
        .unwrap();
    assert_eq!(m.len(), 4);
    assert_eq!(m[&h.email("ann@example.com")], Reason::List("list".into()));
    assert_eq!(m[&h.id("C2")], Reason::List("legal".into()));
    assert_eq!(m[&h.id("C3")], Reason::List("complaint desk".into()));
    assert_ne!(h.id("a@b.c"), h.email("a@b.c"), "ids and emails are separate domains");
}

#[test]
fn bad_lists_name_file_line_and_field_never_the_value() {
    for (body, want) in [
        ("name\nann\n", "line 1: the header has neither"),
        ("customer_id,email\n,\n", "line 2: fields `customer_id` and `email` are both empty"),
        ("customer_id,email\nC1,x@y.z\nC2,not-an-address-9271\n", "line 3: field `email`"),
        ("customer_id,reason\nC1,<script>9271\n", "line 2: field `reason`"),
        ("customer_id,email\nC1,a@b.c,extra-9271\n", "line 2: not a CSV row"),
    ] {
        let e = list(body).unwrap_err();
        assert!(e.message.starts_with("suppression/ops.csv: ") && e.message.contains(want), "{body:?}: {e}");
        assert!(!e.message.contains("9271"), "value echoed: {e}");
    }
}

#[test]
fn the_earliest_reason_wins_and_snapshots_round_trip() {
    let h = hasher();
    let mut map = HashMap::new();
    insert(&mut map, h.id("C1"), Reason::List("x".into()));
    insert(&mut map, h.id("C1"), Reason::Complaint);
    insert(&mut map, h.id("C1"), Reason::Bounce);
    insert(&mut map, h.id("C2"), Reason::Unsubscribe);
    let set = SuppressionSet::from_map(map);
    assert_eq!(set.get(&h.id("C1")), Some(&Reason::Complaint));
    let key = Key::new("runs/r/inputs/suppression").unwrap();
    let back = SuppressionSet::from_bytes(&key, &set.to_bytes()).unwrap();
    assert_eq!(back, set);
    assert_eq!(back.to_bytes(), set.to_bytes(), "deterministic bytes");
    assert!(SuppressionSet::from_bytes(&key, b"zz\tunsubscribe\n").is_err());
}

#[tokio::test]
async fn the_hash_key_is_made_once_per_store() {
    let (a, b) = (cpo_common::store::open("mem://").unwrap(), cpo_common::store::open("mem://").unwrap());
    let (a1, a2) =
        (CustomerHasher::for_store(a.as_ref()).await.unwrap(), CustomerHasher::for_store(a.as_ref()).await.unwrap());
    let b1 = CustomerHasher::for_store(b.as_ref()).await.unwrap();
    assert_eq!(a1.id("C1"), a2.id("C1"), "stable per store");
    assert_ne!(a1.id("C1"), b1.id("C1"), "random per store");
}

#[test]
fn the_window_is_strictly_before_the_run_within_per_days() {
    let d = |s: &str| s.parse::<NaiveDate>().unwrap();
    let w = window(d("2026-12-02"), &ContactPolicy { max_sends: 1, per_days: 7 });
    assert_eq!(w.first(), Some(&d("2026-12-01")));
    assert_eq!(w.last(), Some(&d("2026-11-26")));
    assert_eq!(w.len(), 6);
    assert!(window(d("2026-12-02"), &ContactPolicy { max_sends: 1, per_days: 1 }).is_empty());
}

proptest! {
    /// Whatever an operator list holds, it is read or refused with a message that names the file and never
    /// carries a cell's value.
    #[test]
    fn any_list_is_read_or_refused_without_echo(
        rows in proptest::collection::vec(("[ -~]{0,12}", "[ -~]{0,20}", "[ -~]{0,12}"), 0..8),
        marker in "Q[0-9]{6}",
    ) {
        let mut body = String::from("customer_id,email,reason\n");
        for (id, email, reason) in &rows {
            let clean = |s: &str| s.replace([',', '"', '\r', '\n'], "");
            body.push_str(&format!("{},{}{},{}\n", clean(id), clean(email), marker, clean(reason)));
        }
        match list(&body) {
            Ok(_) => {}
            Err(e) => {
                prop_assert!(e.message.starts_with("suppression/ops.csv: line "), "{}", e);
                prop_assert!(!e.message.contains(&marker), "echoed: {}", e);
            }
        }
    }
}
