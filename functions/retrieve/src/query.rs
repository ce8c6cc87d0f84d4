//! The query of a segment: its profile (name, plain-language description, typical tier/location…) and the
//! campaign goal, as one line of text that is recorded in `retrieval.json` next to what it found.

use cpo_common::model::segment::SegmentProfile;

pub fn query_text(profile: &SegmentProfile, goal: &str) -> String {
    let mut parts: Vec<&str> = vec![profile.name.as_str(), profile.description.as_str()];
    parts.extend(profile.typical.values().map(String::as_str));
    parts.push(goal);
    let parts: Vec<&str> = parts.into_iter().map(str::trim).filter(|p| !p.is_empty()).collect();
    parts.join(" · ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn profile_terms_then_goal() {
        let mut p: SegmentProfile = serde_json::from_value(serde_json::json!({
            "name": "At Risk", "slug": "at-risk", "size": 10, "share": 0.1,
            "r_mean": 1.5, "f_mean": 3.5, "m_mean": 3.0, "r_median": 1.0, "f_median": 3.0, "m_median": 3.0,
            "recency_median_days": 120.0, "frequency_median": 6.0, "monetary_median": 900.0, "spend_share": 0.1,
            "description": "Used to buy often but have not bought for a long time."
        }))
        .unwrap();
        p.typical.insert("tier".into(), "Silver".into());
        assert_eq!(
            query_text(&p, "bring lapsed customers back"),
            "At Risk · Used to buy often but have not bought for a long time. · Silver · bring lapsed customers back"
        );
    }
}
