//! Closed sets of names that appear in configuration and records (provider names, statuses) as enums with
//! one spelling each: parsed once — when the config loads, so a typo fails `cpo run` before anything is stored —
//! and written back exactly as read.

use std::fmt;

/// A name outside its closed set: the setting it was given for, the name given and the names accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownName {
    pub what: &'static str,
    pub name: String,
    pub expected: &'static [&'static str],
}

impl fmt::Display for UnknownName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?} is not a valid `{}` (expected ", self.name, self.what)?;
        for (i, n) in self.expected.iter().enumerate() {
            let sep = match i {
                0 => "",
                i if i + 1 == self.expected.len() => " or ",
                _ => ", ",
            };
            write!(f, "{sep}{n}")?;
        }
        f.write_str(")")
    }
}

impl std::error::Error for UnknownName {}

/// An enum whose values are names: `name()`, `Display`, `FromStr` (trimmed, ASCII case-insensitive, optional
/// aliases) and serde as that name.
///
/// ```ignore
/// named! {
///     /// Doc.
///     pub enum Colour("paint.colour") { Red = "red" | "scarlet", Blue = "blue" }
/// }
/// ```
macro_rules! named {
    (
        $(#[$meta:meta])*
        pub enum $name:ident($what:literal) {
            $( $(#[$vmeta:meta])* $variant:ident = $text:literal $(| $alias:literal)* ),+ $(,)?
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum $name {
            $( $(#[$vmeta])* $variant ),+
        }

        impl $name {
            /// Every value, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];
            /// The names accepted (aliases aside), in declaration order.
            pub const NAMES: &'static [&'static str] = &[$($text),+];

            /// The one spelling written to configs and records.
            pub fn name(self) -> &'static str {
                match self {
                    $($name::$variant => $text),+
                }
            }
        }

        impl ::std::fmt::Display for $name {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                f.write_str(self.name())
            }
        }

        impl ::std::str::FromStr for $name {
            type Err = $crate::named::UnknownName;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                match s.trim().to_ascii_lowercase().as_str() {
                    $($text $(| $alias)* => Ok($name::$variant),)+
                    _ => Err($crate::named::UnknownName { what: $what, name: s.to_string(), expected: Self::NAMES }),
                }
            }
        }

        impl ::serde::Serialize for $name {
            fn serialize<S: ::serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.name())
            }
        }

        impl<'de> ::serde::Deserialize<'de> for $name {
            fn deserialize<D: ::serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = <::std::borrow::Cow<'de, str> as ::serde::Deserialize>::deserialize(d)?;
                s.parse().map_err(::serde::de::Error::custom)
            }
        }
    };
}

named! {
    /// `generation.provider` (or `CPO_LLM_PROVIDER`): the wire protocol of the generation provider.
    pub enum GenerationProvider("generation.provider") {
        Offline = "offline",
        /// Any OpenAI-compatible `/v1/chat/completions` (OpenAI, Ollama, vLLM, llama.cpp server).
        OpenAi = "openai",
        AzureOpenAi = "azure-openai" | "azure_openai" | "azure",
    }
}

named! {
    /// One screener of `safety.providers` (or `CPO_SAFETY_PROVIDERS`).
    pub enum SafetyProvider("safety.providers") {
        Offline = "offline",
        AzureContentSafety = "azure-content-safety",
        OpenAiModeration = "openai-moderation",
    }
}

named! {
    /// `retrieval.provider`: where ranked passages come from.
    pub enum RetrievalProvider("retrieval.provider") {
        /// The bundled search index over the run's approved corpus.
        Local = "local",
        AzureAiSearch = "azure-ai-search",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_unknown_names_list_the_choices() {
        for p in SafetyProvider::ALL {
            assert_eq!(p.name().parse::<SafetyProvider>().unwrap(), *p);
            assert_eq!(serde_json::to_string(p).unwrap(), format!("\"{p}\""));
            assert_eq!(serde_json::from_str::<SafetyProvider>(&format!("\"{p}\"")).unwrap(), *p);
        }
        assert_eq!(" Azure ".parse::<GenerationProvider>().unwrap(), GenerationProvider::AzureOpenAi);
        let e = "elastic".parse::<RetrievalProvider>().unwrap_err();
        assert_eq!(
            e.to_string(),
            "\"elastic\" is not a valid `retrieval.provider` (expected local or azure-ai-search)"
        );
        let e = "magic".parse::<SafetyProvider>().unwrap_err();
        assert_eq!(
            e.to_string(),
            "\"magic\" is not a valid `safety.providers` (expected offline, azure-content-safety or openai-moderation)"
        );
    }

    #[test]
    fn a_misspelt_provider_fails_when_the_config_loads() {
        use crate::config::CampaignConfig;
        for (yaml, field, name) in [
            ("name: x\ngeneration: {provider: opnai}\n", "generation.provider", "opnai"),
            (
                "name: x\nsafety: {providers: [offline, azure-content-safty]}\n",
                "safety.providers",
                "azure-content-safty",
            ),
            ("name: x\nretrieval: {provider: elastic}\n", "retrieval.provider", "elastic"),
        ] {
            let e = CampaignConfig::from_yaml(yaml, "c.yaml").unwrap_err();
            assert!(e.message.starts_with("c.yaml: "), "{e}");
            assert!(e.message.contains(field) && e.message.contains(name), "{e}");
        }
        let cfg = CampaignConfig::from_yaml("name: x\ngeneration: {provider: azure-openai}\n", "c.yaml").unwrap();
        assert_eq!(cfg.generation.provider, GenerationProvider::AzureOpenAi);
    }
}
