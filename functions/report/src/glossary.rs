//! The plain-language line for every statistic the report shows, once for the HTML and the Markdown.

/// (term as the tables name it, what it means for a reader deciding what to send).
pub const GLOSSARY: &[(&str, &str)] = &[
    ("rate", "Share of the customers assigned to the arm who did the action at least once (everyone assigned counts, opened or not)."),
    ("95% CI", "The range the true rate (or difference) lies in with 95% confidence; a narrow range means a precise figure."),
    ("difference vs control", "The arm's rate minus the control's, in percentage points (pp): +0.5 pp means 5 more customers in 1,000."),
    ("relative lift", "The difference as a share of the control's rate: +10% means the arm's rate is 1.1 times the control's."),
    ("p", "How surprising the difference would be if the message made no difference at all; small (below 0.05) means unlikely to be chance."),
    ("adjusted p (Holm)", "The p-value corrected for comparing several messages on the primary metric; this is what the decision uses."),
    ("adjusted p (BH)", "The p-value corrected (Benjamini–Hochberg) across the other metrics or groups; exploratory, it never decides alone."),
    ("chance better", "Probability the arm truly does better than the control on this metric (for unsubscribes: a lower rate)."),
    ("chance worse", "Probability the arm truly does worse than the control (for unsubscribes and other guardrails: a higher rate); the risk of shipping it."),
    ("MDE", "Minimum detectable effect: the smallest difference this test had an 80% chance to detect; shown as not enough data when the control has no events."),
    ("guardrail", "A metric a message must not make worse (unsubscribes). A significant increase means ship with caution; beyond the configured limit, do not ship."),
    ("sample ratio check", "Whether the arms got the share of customers the split intended; a mismatch means the assignment or the send is broken and no figure can be trusted."),
    ("not enough data", "Neither the arm nor the control has an event yet, so there is nothing to compare."),
];
