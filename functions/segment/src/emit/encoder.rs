//! One member line of `customers/members-NNNNN.jsonl`, written by hand.

use crate::layout::Layout;
use crate::rows;
use crate::source::Rec;

/// Writes member lines by hand — the bytes `serde_json` writes for the same record (the same keys, in the
/// same order, numbers formatted by the same `itoa`/`zmij` routines serde_json uses), which a test checks —
/// because the serializer's per-field machinery is the largest cost of writing 300-byte lines.
pub struct Encoder {
    /// Per carried column: its index and `"name":` as JSON.
    carried: Vec<(usize, Vec<u8>)>,
    /// Per segment code: `"name"` as JSON.
    segments: Vec<Vec<u8>>,
}

/// The values of one member line.
pub struct MemberLine<'a> {
    pub customer_id: &'a str,
    pub line: u64,
    /// [recency, frequency, monetary].
    pub values: [f64; 3],
    /// [R, F, M].
    pub scores: [u8; 3],
    pub segment: u8,
}

/// A JSON string: copied when nothing needs escaping, else escaped by serde_json itself.
fn json_str(out: &mut Vec<u8>, s: &str) {
    if s.bytes().all(|b| b >= 0x20 && b != b'"' && b != b'\\') {
        out.push(b'"');
        out.extend_from_slice(s.as_bytes());
        out.push(b'"');
    } else {
        // Serialising a `str` into a `Vec` cannot fail (no I/O, no map keys).
        let _ = serde_json::to_writer(&mut *out, s);
    }
}

fn json_f64(out: &mut Vec<u8>, v: f64) {
    if v.is_finite() {
        out.extend_from_slice(zmij::Buffer::new().format_finite(v).as_bytes());
    } else {
        // What serde_json writes for a non-finite float.
        out.extend_from_slice(b"null");
    }
}

fn json_u64(out: &mut Vec<u8>, v: u64) {
    out.extend_from_slice(itoa::Buffer::new().format(v).as_bytes());
}

impl Encoder {
    pub fn new(layout: &Layout, names: &[String]) -> Self {
        let key = |name: &str| {
            let mut k = Vec::new();
            json_str(&mut k, name);
            k.push(b':');
            k
        };
        let carried = layout.carried.iter().map(|&i| (i, key(&layout.header[i]))).collect();
        let segments = names
            .iter()
            .map(|n| {
                let mut v = Vec::new();
                json_str(&mut v, n);
                v
            })
            .collect();
        Encoder { carried, segments }
    }

    /// Append one member line (with its newline); `rec` is the row the carried columns come from.
    pub fn member(&self, out: &mut Vec<u8>, m: &MemberLine<'_>, rec: &Rec<'_>) {
        out.extend_from_slice(b"{\"customer_id\":");
        json_str(out, m.customer_id);
        out.extend_from_slice(b",\"line\":");
        json_u64(out, m.line);
        out.extend_from_slice(b",\"recency\":");
        json_f64(out, m.values[0]);
        out.extend_from_slice(b",\"frequency\":");
        json_f64(out, m.values[1]);
        out.extend_from_slice(b",\"monetary\":");
        json_f64(out, m.values[2]);
        out.extend_from_slice(b",\"r\":");
        json_u64(out, m.scores[0] as u64);
        out.extend_from_slice(b",\"f\":");
        json_u64(out, m.scores[1] as u64);
        out.extend_from_slice(b",\"m\":");
        json_u64(out, m.scores[2] as u64);
        out.extend_from_slice(b",\"segment\":");
        out.extend_from_slice(self.segments.get(m.segment as usize).map_or(&b"null"[..], |s| s));
        let mut any = false;
        for (i, key) in &self.carried {
            let v = rows::trim(rows::field(rec, *i));
            if v.is_empty() {
                continue;
            }
            out.extend_from_slice(if any { b"," } else { b",\"fields\":{" });
            any = true;
            out.extend_from_slice(key);
            json_str(out, v);
        }
        if any {
            out.push(b'}');
        }
        out.extend_from_slice(b"}\n");
    }
}

/// The member line as serde_json writes it (the reference the encoder is checked against).
#[cfg(test)]
pub(crate) mod reference {
    use serde::ser::{SerializeMap, Serializer};

    use super::MemberLine;
    use crate::layout::Layout;
    use crate::rows;
    use crate::source::Rec;

    #[derive(serde::Serialize)]
    struct MemberRef<'a> {
        customer_id: &'a str,
        line: u64,
        recency: f64,
        frequency: f64,
        monetary: f64,
        r: u8,
        f: u8,
        m: u8,
        segment: &'a str,
        #[serde(skip_serializing_if = "<[_]>::is_empty")]
        #[serde(serialize_with = "ordered")]
        fields: Vec<(&'a str, &'a str)>,
    }

    fn ordered<S: Serializer>(v: &[(&str, &str)], s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(None)?;
        for (k, x) in v {
            m.serialize_entry(k, x)?;
        }
        m.end()
    }

    pub(crate) fn reference(layout: &Layout, rec: &Rec<'_>, m: &MemberLine<'_>, names: &[String]) -> Vec<u8> {
        let fields = layout
            .carried
            .iter()
            .map(|&i| (layout.header[i].as_str(), rows::field(rec, i).trim()))
            .filter(|(_, v)| !v.is_empty())
            .collect();
        let r = MemberRef {
            customer_id: m.customer_id,
            line: m.line,
            recency: m.values[0],
            frequency: m.values[1],
            monetary: m.values[2],
            r: m.scores[0],
            f: m.scores[1],
            m: m.scores[2],
            segment: &names[m.segment as usize],
            fields,
        };
        let mut out = serde_json::to_vec(&r).unwrap_or_default();
        out.push(b'\n');
        out
    }
}

#[cfg(test)]
mod tests {
    use super::reference::reference;
    use super::*;
    use crate::layout::Encoding;
    use cpo_common::config::Segmentation;

    fn layout(header: &str) -> Layout {
        let h = header.split(',').map(String::from).collect();
        Layout::resolve("f.csv", Encoding::Csv, h, &Segmentation::default()).unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn member_lines_are_the_bytes_serde_json_wrote() {
        let l = layout("customer_id,purchase_frequency,avg_order_value,last_engagement_days,na\"me,tier,e\\mail");
        let names: Vec<String> = vec!["Champions".into(), "Can't \"Lose\"".into(), "Ünïcode\u{1}".into()];
        let enc = Encoder::new(&l, &names);
        let values = [
            [0.0, 1.0, 2.5],
            [1e21, 1e-7, 123456789.123],
            [f64::MAX, f64::MIN_POSITIVE, 0.1 + 0.2],
            [f64::INFINITY, f64::NAN, 7.0],
        ];
        let ids = ["C1", "q\"uote", "back\\slash", "tab\there", "ctl\u{7f}\u{1f}", "ünï\u{2028}"];
        let carried: [[&[u8]; 3]; 4] = [
            [b"Jo", b"Gold", b"jo@example.com"],
            [b"", b"  ", b""],
            [b" \"Al\" ", b"\\", b"\x1b[31m"],
            [b"\xc3\xa9", b"", b"x"],
        ];
        for (n, id) in ids.iter().enumerate() {
            for (k, c) in carried.iter().enumerate() {
                let fields: Vec<&[u8]> = vec![id.as_bytes(), b"1", b"1", b"1", c[0], c[1], c[2]];
                let mut data = Vec::new();
                let mut spans = Vec::new();
                for f in &fields {
                    spans.push((data.len(), data.len() + f.len()));
                    data.extend_from_slice(f);
                }
                let rec = Rec::new(&data, &spans);
                let m = MemberLine {
                    customer_id: id,
                    line: [2, 999_999_999_999, u64::MAX][n % 3],
                    values: values[(n + k) % values.len()],
                    scores: [1, 5, (n % 5) as u8 + 1],
                    segment: (k % names.len()) as u8,
                };
                let mut got = Vec::new();
                enc.member(&mut got, &m, &rec);
                let want = reference(&l, &rec, &m, &names);
                assert_eq!(String::from_utf8_lossy(&got), String::from_utf8_lossy(&want));
                assert_eq!(got, want);
            }
        }
    }
}
