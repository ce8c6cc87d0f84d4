//! Who is left out of a week before assignment (docs/architecture.md, "A campaign over time"):
//!
//! - **suppression**: customers who unsubscribed, complained or bounced in any earlier run of the store
//!   (`suppression/derived/<run_id>.jsonl`, appended by ingest), operator do-not-contact lists
//!   (`suppression/<file>.csv`) and the campaign's consent column;
//! - **contact policy**: customers already sent `max_sends` messages within `per_days` days before this run's
//!   date, by any campaign of the store (`contacts/<date>/<run_id>.bin`), are deferred.
//!
//! Customers are known across runs only by a keyed hash ([`CustomerHasher`]: HMAC-SHA256 under a random key
//! created once per store), so these objects hold no customer id, survive the expiry of the runs they came from
//! and `cpo erase`, and reading them costs O(suppressed) — old runs are never read again.
//!
//! What assign used is copied under the run first (`runs/<id>/inputs/suppression`, `…/inputs/contacts`) and
//! read from there, so a re-delivered or re-run assign sees exactly the inputs of its first run.

use std::collections::{BTreeMap, HashMap};
use std::fmt;

use bytes::Bytes;
use chrono::{Duration, NaiveDate};
use cpo_common::config::{ConsentKind, ContactPolicy, SuppressionConfig};
use cpo_common::keys::{self, RunKeys};
use cpo_common::run::RunInput;
use cpo_common::store::{PutOutcome, StoreExt};
use cpo_common::{Key, StepError, Store};
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

/// A customer's keyed hash: the first 128 bits of HMAC-SHA256 (no collision among billions of customers).
pub type CustomerHash = [u8; 16];

/// Why a customer was left out of a run.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Reason {
    // Declaration order is precedence: a customer on several lists is counted under the first.
    Complaint,
    Unsubscribe,
    Bounce,
    OptedOut,
    NoConsent,
    /// An operator list's reason (`suppression/<file>.csv`, column `reason`; `list` when empty).
    List(String),
    /// Deferred by the contact policy (not suppressed: the customer can be sent to in a later week).
    ContactPolicy,
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reason::Complaint => f.write_str("complaint"),
            Reason::Unsubscribe => f.write_str("unsubscribe"),
            Reason::Bounce => f.write_str("bounce"),
            Reason::OptedOut => f.write_str("opted_out"),
            Reason::NoConsent => f.write_str("no_consent"),
            Reason::List(r) => write!(f, "list:{r}"),
            Reason::ContactPolicy => f.write_str("contact_policy"),
        }
    }
}

impl Reason {
    pub fn parse(s: &str) -> Option<Reason> {
        Some(match s {
            "complaint" => Reason::Complaint,
            "unsubscribe" => Reason::Unsubscribe,
            "bounce" => Reason::Bounce,
            "opted_out" => Reason::OptedOut,
            "no_consent" => Reason::NoConsent,
            "contact_policy" => Reason::ContactPolicy,
            other => Reason::List(valid_list_reason(other.strip_prefix("list:")?)?),
        })
    }
}

/// An operator's reason, lower-cased: 1–40 characters of `[a-z0-9_ -]` (it appears in counts and reports,
/// so it may never carry customer data).
fn valid_list_reason(s: &str) -> Option<String> {
    let s = s.trim().to_ascii_lowercase();
    let ok = !s.is_empty()
        && s.len() <= 40
        && s.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'_' | b'-' | b' '));
    ok.then_some(s)
}

// ------------------------------------------------------------------------------------------------ hashing

/// The store's key of customer hashes: 32 random bytes, created once (`put_if_absent`, so concurrent first
/// runs agree on one key) under a fixed key outside `runs/`.
#[derive(Serialize, Deserialize)]
struct HashKeyDoc {
    /// Hex of the key.
    key: String,
    created_at: chrono::DateTime<chrono::Utc>,
}

/// Keyed hashes of customer ids and emails, stable per store.
#[derive(Clone)]
pub struct CustomerHasher {
    mac: Hmac<Sha256>,
}

impl CustomerHasher {
    pub fn new(key: &[u8]) -> Result<Self, StepError> {
        let mac = Hmac::<Sha256>::new_from_slice(key).map_err(|e| StepError::internal(format!("hash key: {e}")))?;
        Ok(Self { mac })
    }

    /// The store's hasher, creating its key the first time.
    pub async fn for_store(store: &dyn Store) -> Result<Self, StepError> {
        let key = keys::customer_hash_key();
        if store.get_opt(&key).await?.is_none() {
            // Two v4 UUIDs: 244 bits from the OS generator (uuid is already a dependency; rand is not seeded
            // from the OS in this workspace).
            let mut bytes = uuid::Uuid::new_v4().as_bytes().to_vec();
            bytes.extend_from_slice(uuid::Uuid::new_v4().as_bytes());
            let doc = HashKeyDoc { key: hex::encode(bytes), created_at: chrono::Utc::now() };
            if store.put_if_absent(&key, serde_json::to_vec(&doc)?.into()).await? == PutOutcome::Created {
                tracing::info!("created the store's customer hash key");
            }
        }
        let doc: HashKeyDoc = store.get_json(&key).await?;
        let bytes =
            hex::decode(doc.key.trim()).map_err(|_| StepError::input(format!("{key}: field `key`: not hex")))?;
        if bytes.len() < 16 {
            return Err(StepError::input(format!("{key}: field `key`: shorter than 16 bytes")));
        }
        Self::new(&bytes)
    }

    fn hash(&self, domain: &[u8], value: &[u8]) -> CustomerHash {
        let mut mac = self.mac.clone();
        mac.update(domain);
        mac.update(&[0]);
        mac.update(value);
        let full = mac.finalize().into_bytes();
        let mut out = [0u8; 16];
        out.copy_from_slice(&full[..16]);
        out
    }

    /// A customer id's hash (the id exactly as in the files, trimmed).
    pub fn id(&self, customer_id: &str) -> CustomerHash {
        self.hash(b"customer_id", customer_id.trim().as_bytes())
    }

    /// An email's hash (trimmed, lower-cased: `Ann@Example.com` and `ann@example.com` are one address).
    pub fn email(&self, email: &str) -> CustomerHash {
        self.hash(b"email", email.trim().to_lowercase().as_bytes())
    }
}

// ------------------------------------------------------------------------------------------- the sets

/// Suppressed hashes with their reason, sorted by hash (binary search; ~17 bytes an entry).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SuppressionSet {
    entries: Vec<(CustomerHash, u16)>,
    reasons: Vec<Reason>,
}

impl SuppressionSet {
    fn from_map(map: HashMap<CustomerHash, Reason>) -> Self {
        let mut reasons: Vec<Reason> = map.values().cloned().collect();
        reasons.sort();
        reasons.dedup();
        let mut entries: Vec<(CustomerHash, u16)> =
            map.into_iter().map(|(h, r)| (h, reasons.binary_search(&r).unwrap_or(0) as u16)).collect();
        entries.sort_unstable();
        Self { entries, reasons }
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub fn get(&self, h: &CustomerHash) -> Option<&Reason> {
        let i = self.entries.binary_search_by(|(e, _)| e.cmp(h)).ok()?;
        self.reasons.get(self.entries[i].1 as usize)
    }

    /// The snapshot: `<32 hex>\t<reason>` lines sorted by hash (deterministic bytes, so its hash is stable).
    pub fn to_bytes(&self) -> Bytes {
        let mut out = String::with_capacity(self.entries.len() * 48);
        for (h, r) in &self.entries {
            out.push_str(&hex::encode(h));
            out.push('\t');
            out.push_str(&self.reasons[*r as usize].to_string());
            out.push('\n');
        }
        Bytes::from(out)
    }

    pub fn from_bytes(key: &Key, body: &[u8]) -> Result<Self, StepError> {
        let mut map = HashMap::new();
        for (i, line) in body.split(|&b| b == b'\n').enumerate() {
            if line.is_empty() {
                continue;
            }
            let bad = || StepError::input(format!("{key}: line {}: not `<hash>\\t<reason>`", i + 1));
            let text = std::str::from_utf8(line).map_err(|_| bad())?;
            let (h, r) = text.split_once('\t').ok_or_else(bad)?;
            map.insert(parse_hash(h).ok_or_else(bad)?, Reason::parse(r).ok_or_else(bad)?);
        }
        Ok(Self::from_map(map))
    }
}

fn parse_hash(h: &str) -> Option<CustomerHash> {
    let v = hex::decode(h.trim()).ok()?;
    v.try_into().ok()
}

/// Insert keeping the reason that comes first (see [`Reason`]).
fn insert(map: &mut HashMap<CustomerHash, Reason>, h: CustomerHash, r: Reason) {
    match map.get_mut(&h) {
        Some(old) if *old <= r => {}
        Some(old) => *old = r,
        None => {
            map.insert(h, r);
        }
    }
}

/// One line of `suppression/derived/<run_id>.jsonl`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct DerivedEntry {
    /// Hex of the customer id's keyed hash.
    pub h: String,
    /// `unsubscribe`, `complaint` or `bounce`.
    pub reason: String,
}

/// Every suppression source of the store, as it is now: derived entries and operator lists.
pub async fn collect(store: &dyn Store, hasher: &CustomerHasher) -> Result<SuppressionSet, StepError> {
    let mut map = HashMap::new();
    for o in store.list(&keys::suppression_prefix()).await? {
        let rest = o.key.strip_prefix("suppression/").unwrap_or_default();
        let key = Key::new(o.key.clone())?;
        if let Some(name) = rest.strip_prefix("derived/") {
            if name.ends_with(".jsonl") && !name.contains('/') {
                read_derived(&key, &store.get(&key).await?, &mut map)?;
            }
        } else if !rest.contains('/') && rest.to_ascii_lowercase().ends_with(".csv") {
            read_list(&key, &store.get(&key).await?, hasher, &mut map)?;
        }
    }
    Ok(SuppressionSet::from_map(map))
}

fn read_derived(key: &Key, body: &[u8], map: &mut HashMap<CustomerHash, Reason>) -> Result<(), StepError> {
    for (i, line) in body.split(|&b| b == b'\n').enumerate() {
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        let bad = |field: &str| StepError::input(format!("{key}: line {}: field `{field}` is not valid", i + 1));
        let e: DerivedEntry = serde_json::from_slice(line).map_err(|_| bad("h"))?;
        let h = parse_hash(&e.h).ok_or_else(|| bad("h"))?;
        let r = match e.reason.as_str() {
            "unsubscribe" => Reason::Unsubscribe,
            "complaint" => Reason::Complaint,
            "bounce" => Reason::Bounce,
            _ => return Err(bad("reason")),
        };
        insert(map, h, r);
    }
    Ok(())
}

/// An operator list: a CSV with a header naming `customer_id` and/or `email` (any case), and optionally
/// `reason`. A row with neither, a malformed email or reason fails the run with file, line and field — a list
/// that cannot be read must never be skipped, and no value is echoed.
pub fn read_list(
    key: &Key,
    body: &[u8],
    hasher: &CustomerHasher,
    map: &mut HashMap<CustomerHash, Reason>,
) -> Result<usize, StepError> {
    let err = |line: u64, what: String| StepError::input(format!("{key}: line {line}: {what}"));
    let mut rdr = csv::ReaderBuilder::new().flexible(false).from_reader(body);
    let header = rdr.headers().map_err(|_| err(1, "the header is not a CSV row of UTF-8 text".into()))?.clone();
    let col =
        |name: &str| header.iter().position(|h| h.trim().trim_start_matches('\u{feff}').eq_ignore_ascii_case(name));
    let (id_col, email_col, reason_col) = (col("customer_id"), col("email"), col("reason"));
    if id_col.is_none() && email_col.is_none() {
        return Err(err(1, "the header has neither a `customer_id` nor an `email` column".into()));
    }
    let mut rows = 0;
    for rec in rdr.records() {
        let rec = rec.map_err(|e| {
            let line = e.position().map_or(0, |p| p.line());
            err(line, "not a CSV row of the header's width in UTF-8".into())
        })?;
        let line = rec.position().map_or(0, |p| p.line());
        let cell = |c: Option<usize>| c.and_then(|c| rec.get(c)).map(str::trim).filter(|v| !v.is_empty());
        let reason = match cell(reason_col) {
            None => Reason::List("list".into()),
            Some(r) => Reason::List(valid_list_reason(r).ok_or_else(|| {
                err(line, "field `reason`: must be 1-40 characters of letters, digits, space, '_' or '-'".into())
            })?),
        };
        let (id, email) = (cell(id_col), cell(email_col));
        if id.is_none() && email.is_none() {
            return Err(err(line, "fields `customer_id` and `email` are both empty".into()));
        }
        if let Some(id) = id {
            insert(map, hasher.id(id), reason.clone());
        }
        if let Some(email) = email {
            if !cpo_common::pii::looks_like_email(email) {
                return Err(err(
                    line,
                    format!("field `email`: {}, not an email address", cpo_common::pii::describe(email)),
                ));
            }
            insert(map, hasher.email(email), reason);
        }
        rows += 1;
    }
    Ok(rows)
}

// ---------------------------------------------------------------------------------- contact history

/// Customers at the contact policy's limit before this run, sorted (the deferred set).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AtLimit(Vec<CustomerHash>);

impl AtLimit {
    pub fn contains(&self, h: &CustomerHash) -> bool {
        self.0.binary_search(h).is_ok()
    }
    pub fn len(&self) -> usize {
        self.0.len()
    }
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
    pub fn to_bytes(&self) -> Bytes {
        Bytes::from(self.0.concat())
    }
    pub fn from_bytes(key: &Key, body: &[u8]) -> Result<Self, StepError> {
        hashes_of(key, body).map(AtLimit)
    }
}

/// Sorted concatenated 16-byte hashes.
fn hashes_of(key: &Key, body: &[u8]) -> Result<Vec<CustomerHash>, StepError> {
    if body.len() % 16 != 0 {
        return Err(StepError::input(format!("{key}: not a list of 16-byte hashes ({} bytes)", body.len())));
    }
    Ok(body.chunks_exact(16).map(|c| c.try_into().unwrap_or([0; 16])).collect())
}

/// The days whose sends count for a run dated `date`: strictly before it, within `per_days` (a weekly send
/// under `per_days: 7` is allowed; the run itself never counts).
pub fn window(date: NaiveDate, policy: &ContactPolicy) -> Vec<NaiveDate> {
    (1..i64::from(policy.per_days)).filter_map(|d| date.checked_sub_signed(Duration::days(d))).collect()
}

/// Customers sent `max_sends` or more messages on the window's days by runs other than `run_id`.
pub async fn at_limit(
    store: &dyn Store,
    run_id: &str,
    date: NaiveDate,
    policy: &ContactPolicy,
) -> Result<(AtLimit, Vec<String>), StepError> {
    let mut counts: HashMap<CustomerHash, u32> = HashMap::new();
    let mut used = Vec::new();
    for day in window(date, policy) {
        for o in store.list(&keys::contacts_day_prefix(day)).await? {
            let name = o.key.rsplit('/').next().unwrap_or_default();
            if name.strip_suffix(".bin") == Some(run_id) || !name.ends_with(".bin") {
                continue;
            }
            let key = Key::new(o.key.clone())?;
            for h in hashes_of(&key, &store.get(&key).await?)? {
                *counts.entry(h).or_default() += 1;
            }
            used.push(o.key);
        }
    }
    let mut at: Vec<CustomerHash> =
        counts.into_iter().filter(|(_, n)| *n >= policy.max_sends).map(|(h, _)| h).collect();
    at.sort_unstable();
    Ok((AtLimit(at), used))
}

/// Record who a run sent to (sorted; overwritten when assign runs again with other inputs).
pub async fn record_contacts(store: &dyn Store, run: &RunInput, mut sent: Vec<CustomerHash>) -> Result<Key, StepError> {
    sent.sort_unstable();
    sent.dedup();
    let key = keys::contacts(run.date, &run.run_id)?;
    store.put(&key, Bytes::from(sent.concat())).await?;
    Ok(key)
}

// ------------------------------------------------------------------------------------- the week's inputs

/// What assign leaves out, read from the run's own snapshots.
#[derive(Clone, Default)]
pub struct Exclusions {
    pub hasher: Option<CustomerHasher>,
    pub suppressed: SuppressionSet,
    pub at_limit: AtLimit,
    pub consent: Option<cpo_common::config::ConsentColumn>,
}

impl Exclusions {
    /// Why a member is left out, if it is (suppression first, then the consent column; the contact policy is
    /// checked by assign after the holdout, which stays a per-customer property).
    pub fn suppressed(
        &self,
        id: &CustomerHash,
        email: Option<&str>,
        field: impl Fn(&str) -> Option<String>,
    ) -> Option<Reason> {
        if let Some(r) = self.suppressed.get(id) {
            return Some(r.clone());
        }
        if let (Some(email), Some(h)) = (email.filter(|e| !e.trim().is_empty()), &self.hasher) {
            if !self.suppressed.is_empty() {
                if let Some(r) = self.suppressed.get(&h.email(email)) {
                    return Some(r.clone());
                }
            }
        }
        let c = self.consent.as_ref()?;
        let yes = field(&c.column).is_some_and(|v| truthy(&v));
        match (c.kind, yes) {
            (ConsentKind::OptIn, false) => Some(Reason::NoConsent),
            (ConsentKind::OptOut, true) => Some(Reason::OptedOut),
            _ => None,
        }
    }
}

fn truthy(v: &str) -> bool {
    matches!(v.trim().to_ascii_lowercase().as_str(), "1" | "y" | "yes" | "true" | "t")
}

/// Copy the cross-run inputs of `run` under `runs/<id>/inputs/` if they are not there yet (the first assign),
/// and return the snapshot keys. A later assign of the run reads the same snapshots, whatever was added to the
/// suppression lists or contact history since.
pub async fn snapshot(store: &dyn Store, run: &RunInput) -> Result<Vec<Key>, StepError> {
    let keys = RunKeys::new(&run.run_id)?;
    let (sup_key, contacts_key) = (keys.snapshot("suppression"), keys.snapshot("contacts"));
    if store.head(&sup_key).await?.is_none() {
        let hasher = CustomerHasher::for_store(store).await?;
        let set = collect(store, &hasher).await?;
        store.put_if_absent(&sup_key, set.to_bytes()).await?;
    }
    let mut out = vec![sup_key];
    if let Some(policy) = &run.config.contact_policy {
        if store.head(&contacts_key).await?.is_none() {
            let (at, used) = at_limit(store, &run.run_id, run.date, policy).await?;
            tracing::info!(run_id = %run.run_id, objects = used.len(), at_limit = at.len(), "contact history read");
            store.put_if_absent(&contacts_key, at.to_bytes()).await?;
        }
        out.push(contacts_key);
    }
    Ok(out)
}

/// The exclusions of `run` from its snapshots ([`snapshot`] must have run).
pub async fn load(store: &dyn Store, run: &RunInput) -> Result<Exclusions, StepError> {
    let keys = RunKeys::new(&run.run_id)?;
    let sup_key = keys.snapshot("suppression");
    let body = store
        .get_opt(&sup_key)
        .await?
        .ok_or_else(|| StepError::internal(format!("{sup_key}: missing; assign snapshots it first")))?;
    let suppressed = SuppressionSet::from_bytes(&sup_key, &body)?;
    let at_limit = match &run.config.contact_policy {
        Some(_) => {
            let key = keys.snapshot("contacts");
            match store.get_opt(&key).await? {
                Some(body) => AtLimit::from_bytes(&key, &body)?,
                None => return Err(StepError::internal(format!("{key}: missing; assign snapshots it first"))),
            }
        }
        None => AtLimit::default(),
    };
    let cfg: &SuppressionConfig = &run.config.suppression;
    Ok(Exclusions {
        hasher: Some(CustomerHasher::for_store(store).await?),
        suppressed,
        at_limit,
        consent: cfg.consent.clone(),
    })
}

// ------------------------------------------------------------------------------------ from ingest

/// Customers with an unsubscribe or bounce row in a real (not simulated) outcomes file: made-up outcomes must
/// never suppress a real customer, and the per-customer flags of ingest do not say which file a flag came from.
/// After ingest: append this run's unsubscribes, complaints and bounces to `suppression/derived/<run_id>.jsonl`
/// as keyed hashes (merged with what earlier ingests of the run recorded; never shrinks). Reads the per-customer
/// flags ingest wrote (`ingest/outcomes-NNNNN.csv`, by header name). Only real outcomes count: ingest analyses
/// simulated files only while no real file is accepted (`OutcomesSource`), so with `source` other than `Real`
/// nothing is recorded, and with `Real` every flag comes from a real file. Returns the entries by reason.
pub async fn record_from_ingest(
    store: &dyn Store,
    keys: &RunKeys,
    source: cpo_common::model::experiment::OutcomesSource,
) -> Result<BTreeMap<String, u64>, StepError> {
    if source != cpo_common::model::experiment::OutcomesSource::Real {
        return Ok(BTreeMap::new());
    }
    let hasher = CustomerHasher::for_store(store).await?;
    let key = keys::suppression_derived(keys.run_id())?;
    let mut entries: BTreeMap<String, String> = BTreeMap::new();
    if let Some(body) = store.get_opt(&key).await? {
        let mut old = HashMap::new();
        read_derived(&key, &body, &mut old)?;
        for (h, r) in old {
            entries.insert(hex::encode(h), r.to_string());
        }
    }
    for part in crate::parts::list_parts(store, &keys.ingest(""), "outcomes-", ".csv").await? {
        let body = store.get(&part).await?;
        let mut rdr = csv::Reader::from_reader(body.as_ref());
        let header = rdr.headers().map_err(|e| StepError::internal(format!("{part}: {e}")))?.clone();
        let col = |n: &str| header.iter().position(|h| h == n);
        let Some(id_col) = col("customer_id") else { continue };
        // Precedence as in `Reason`: complaint, unsubscribe, bounce.
        let flags: Vec<(usize, &str)> =
            ["complaint", "unsubscribe", "bounce"].into_iter().filter_map(|n| col(n).map(|c| (c, n))).collect();
        for rec in rdr.records() {
            let rec = rec.map_err(|e| StepError::internal(format!("{part}: {e}")))?;
            let Some((_, reason)) = flags.iter().find(|(c, _)| rec.get(*c) == Some("1")) else { continue };
            let Some(id) = rec.get(id_col) else { continue };
            let h = hex::encode(hasher.id(id));
            let keep = entries
                .get(&h)
                .and_then(|r| Reason::parse(r))
                .is_some_and(|old| Reason::parse(reason).is_some_and(|new| old <= new));
            if !keep {
                entries.insert(h, reason.to_string());
            }
        }
    }
    let mut out = Vec::with_capacity(entries.len() * 64);
    let mut by_reason: BTreeMap<String, u64> = BTreeMap::new();
    for (h, reason) in entries {
        *by_reason.entry(reason.clone()).or_default() += 1;
        serde_json::to_writer(&mut out, &DerivedEntry { h, reason })?;
        out.push(b'\n');
    }
    if !out.is_empty() {
        store.put(&key, Bytes::from(out)).await?;
    }
    Ok(by_reason)
}

#[cfg(test)]
#[path = "suppression_tests.rs"]
mod tests;
