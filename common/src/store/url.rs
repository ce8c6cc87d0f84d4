//! The one parser of store URLs: `file://DIR`, `mem://`, `s3://bucket[/prefix]`, `az://container[/prefix]`.

use super::StoreError;
use crate::keys::Key;

/// A store URL, parsed. Every caller that needs to know where a store is (the adapter, the trigger's bucket
/// check, the CLI's file paths) asks this type rather than reading the string.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreUrl<'a> {
    /// A directory (`file://` alone is the current directory).
    File {
        root: &'a str,
    },
    Mem,
    S3 {
        bucket: &'a str,
        prefix: String,
    },
    Azure {
        container: &'a str,
        prefix: String,
    },
}

impl<'a> StoreUrl<'a> {
    pub fn parse(url: &'a str) -> Result<Self, StoreError> {
        let bad = |reason: String| StoreError::InvalidUrl { url: url.to_string(), reason };
        let (scheme, rest) = url.split_once("://").ok_or_else(|| bad("expected SCHEME://…".into()))?;
        let bucket = || {
            let (bucket, prefix) = match rest.split_once('/') {
                Some((b, p)) => (b, p.trim_matches('/').to_string()),
                None => (rest, String::new()),
            };
            if bucket.is_empty() {
                return Err(bad("no bucket/container name".into()));
            }
            if !prefix.is_empty() {
                Key::new(prefix.clone()).map_err(|e| bad(e.to_string()))?;
            }
            Ok((bucket, prefix))
        };
        Ok(match scheme {
            "file" => StoreUrl::File { root: if rest.is_empty() { "." } else { rest } },
            "mem" => StoreUrl::Mem,
            "s3" => {
                let (bucket, prefix) = bucket()?;
                StoreUrl::S3 { bucket, prefix }
            }
            "az" => {
                let (container, prefix) = bucket()?;
                StoreUrl::Azure { container, prefix }
            }
            _ => return Err(bad("unsupported scheme (file://, mem://, s3://, az://)".into())),
        })
    }

    /// `file://` or `mem://`: a store on this machine, whose version tags are not content digests.
    pub fn is_local(&self) -> bool {
        matches!(self, StoreUrl::File { .. } | StoreUrl::Mem)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_scheme() {
        assert_eq!(StoreUrl::parse("file://").unwrap(), StoreUrl::File { root: "." });
        assert_eq!(StoreUrl::parse("file://./cpo-data").unwrap(), StoreUrl::File { root: "./cpo-data" });
        assert_eq!(StoreUrl::parse("mem://").unwrap(), StoreUrl::Mem);
        assert_eq!(StoreUrl::parse("s3://b").unwrap(), StoreUrl::S3 { bucket: "b", prefix: String::new() });
        assert_eq!(StoreUrl::parse("az://c/p/q/").unwrap(), StoreUrl::Azure { container: "c", prefix: "p/q".into() });
        for bad in ["cpo-data", "s3://", "s3:///p", "s3://b/../x", "gs://b"] {
            assert!(StoreUrl::parse(bad).is_err(), "{bad}");
        }
    }
}
