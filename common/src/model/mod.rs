//! The documents steps exchange through the store, one module per producer. A field added here is a field
//! in the JSON every later step and the report read, so names match the JSON and the docs exactly.

pub mod content;
pub mod experiment;
pub mod manifest;
pub mod retrieval;
pub mod safety;
pub mod segment;
pub mod variant;
pub mod weeks;
