//! Shared library of CPO: everything two or more functions agree on.
//!
//! Read top to bottom it is the contract of the system: the errors a step may raise (matched by the state
//! machines' Retry/Catch), the storage port and its adapters, the key layout and `run_id`, the step contract,
//! the campaign configuration, the documents steps exchange through the store, and the bundled defaults.

pub mod bundled;
pub mod canonical;
pub mod config;
pub mod digest;
pub mod error;
pub mod http;
pub mod keys;
pub mod lambda;
pub mod markup;
pub mod model;
pub mod named;
pub mod outcomes;
pub mod pii;
pub mod progress;
pub mod run;
pub mod secrets;
pub mod stats;
pub mod step;
pub mod store;
pub mod telemetry;

pub use config::CampaignConfig;
pub use error::{ErrorKind, StepError};
pub use keys::Key;
pub use step::{Ctx, StepInput, StepOutput};
pub use store::{ObjectMeta, Store, StoreError};
