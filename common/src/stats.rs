//! Statistics shared by the experiment analysis and the report (placeholder until it lands).
