//! Simulated seasons (`cpo simulate season`): a known truth per segment × arm, each week's outcomes drawn
//! from it for the customers the weights in force put on each arm, and the regret of an allocation against
//! the best one its limits allow. The weekly runs themselves are ordinary runs of the state machines; the
//! `cpo` command drives them (docs/experiment.md, "Simulated seasons"; docs/architecture.md, "A campaign
//! over time").

pub mod draw;
pub mod regret;
pub mod truth;

pub use draw::{draw_run, ArmTally, DrawError, Tally, WeekDraw};
pub use regret::{cumulative, median, week_regret, Limits, SegmentWeek, WeekRegret};
pub use truth::{Preset, Rates, Truth, TruthError};
