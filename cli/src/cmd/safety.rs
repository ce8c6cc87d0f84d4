//! `cpo safety screen --text T` screens one text; `cpo safety eval FILE` measures a provider chain on a
//! labelled JSON-lines set. Both use the same chain, guard and policy as the pipeline's safety step.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use cpo_common::config::Safety;
use cpo_common::model::safety::Decision;
use cpo_common::model::variant::Message;
use cpo_common::named::SafetyProvider;
use cpo_safety::decide::screen_message;
use cpo_safety::eval;
use cpo_safety::policy::Policy;
use cpo_safety::providers;
use serde_json::json;

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Screen one text; exit 0 when approved, 1 when blocked.
    #[command(after_help = "Examples:
  cpo safety screen --text \"Our winter range is in, {{first_name}}.\"
  cpo safety screen --text \"...\" --provider offline,openai-moderation --json")]
    Screen(ScreenArgs),
    /// Precision/recall per category and false-block rate on a labelled JSONL set ({"text","expected"}).
    #[command(after_help = "Examples:
  cpo safety eval examples/safety-eval.jsonl
  cpo safety eval labelled.jsonl --provider azure-content-safety --json")]
    Eval(EvalArgs),
}

/// Options shared by both subcommands.
#[derive(Debug, clap::Args)]
pub struct Chain {
    /// Screeners, chained (all must approve): offline, azure-content-safety, openai-moderation.
    #[arg(long = "provider", value_delimiter = ',', default_value = "offline")]
    pub providers: Vec<SafetyProvider>,
    /// Endpoint of the network provider (else AZURE_CONTENT_SAFETY_ENDPOINT / OPENAI_BASE_URL).
    #[arg(long)]
    pub endpoint: Option<String>,
    /// Policy YAML file (default: the bundled examples/policy/safety.yaml).
    #[arg(long)]
    pub policy: Option<PathBuf>,
    /// Merge fields that may stay unfilled, e.g. first_name.
    #[arg(long = "allowed-token", value_delimiter = ',', default_value = "first_name,tier,location")]
    pub allowed_tokens: Vec<String>,
    /// Per-request timeout of network providers, in seconds.
    #[arg(long, default_value_t = 20)]
    pub timeout_secs: u64,
}

#[derive(Debug, clap::Args)]
pub struct ScreenArgs {
    /// The text to screen.
    #[arg(long)]
    pub text: String,
    #[command(flatten)]
    pub chain: Chain,
    /// Machine-readable output.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, clap::Args)]
pub struct EvalArgs {
    /// JSON lines: {"text": "...", "expected": "safe" | "Hate" | "SelfHarm" | "Sexual" | "Violence" | "PII" | "Fraud", "kind"?: "..."}.
    pub file: PathBuf,
    #[command(flatten)]
    pub chain: Chain,
    /// Machine-readable output.
    #[arg(long)]
    pub json: bool,
}

async fn load(chain: &Chain) -> anyhow::Result<(Policy, Vec<Box<dyn cpo_safety::screener::Screener>>)> {
    let policy = match &chain.policy {
        Some(path) => {
            let text = std::fs::read_to_string(path).with_context(|| format!("{}: cannot read", path.display()))?;
            Policy::from_yaml(&text, &path.display().to_string()).map_err(|e| anyhow::anyhow!("{}", e.message))?
        }
        None => Policy::bundled().map_err(|e| anyhow::anyhow!("{}", e.message))?,
    };
    let cfg = Safety {
        providers: chain.providers.clone(),
        endpoint: chain.endpoint.clone(),
        timeout_secs: chain.timeout_secs,
        ..Safety::default()
    };
    let screeners = providers::build(&cfg, &policy).await.map_err(|e| anyhow::anyhow!("{}", e.message))?;
    Ok((policy, screeners))
}

pub async fn run(args: Args) -> anyhow::Result<ExitCode> {
    match args.command {
        Command::Screen(a) => screen(a).await,
        Command::Eval(a) => evaluate(a).await,
    }
}

async fn screen(a: ScreenArgs) -> anyhow::Result<ExitCode> {
    let (policy, chain) = load(&a.chain).await?;
    let message = Message { body: a.text.clone(), ..Message::default() };
    let o = screen_message(&chain, &policy, &a.chain.allowed_tokens, &message, false).await;
    if a.json {
        let out = json!({
            "decision": o.decision,
            "reasons": o.reasons,
            "severities": o.severities,
            "providers": o.providers,
            "policy_version": policy.version,
            "text_sha256": o.text_sha256,
        });
        crate::outln!("{}", serde_json::to_string_pretty(&out)?)?;
    } else {
        let decision = if o.decision == Decision::Approved { "APPROVED" } else { "BLOCKED" };
        crate::outln!("{decision}  (policy {}, {})", policy.version, policy.source)?;
        let sev: Vec<String> = o.severities.iter().map(|(k, v)| format!("{k}={v}")).collect();
        crate::outln!("severities: {}", sev.join(" "))?;
        for p in &o.providers {
            match &p.error {
                Some(e) => crate::outln!("provider {} ({}): unavailable: {e}", p.provider, p.model)?,
                None => crate::outln!("provider {} ({}): answered", p.provider, p.model)?,
            }
        }
        if a.chain.providers.contains(&SafetyProvider::Offline) {
            for rule in cpo_safety::offline::analyse(&a.text).1 {
                crate::outln!("offline rule: {rule}")?;
            }
        }
        for r in &o.reasons {
            crate::outln!("reason: {r}")?;
        }
    }
    Ok(if o.decision == Decision::Approved { ExitCode::SUCCESS } else { ExitCode::from(1) })
}

fn pct(x: Option<f64>) -> String {
    x.map(|v| format!("{:.3}", v)).unwrap_or_else(|| "-".into())
}

async fn evaluate(a: EvalArgs) -> anyhow::Result<ExitCode> {
    let text = std::fs::read_to_string(&a.file).with_context(|| format!("{}: cannot read", a.file.display()))?;
    let examples = eval::parse(&text, &a.file.display().to_string())?;
    let (policy, chain) = load(&a.chain).await?;
    let report = eval::evaluate(&chain, &policy, &a.chain.allowed_tokens, &examples).await;
    if a.json {
        crate::outln!("{}", serde_json::to_string_pretty(&report)?)?;
        return Ok(ExitCode::SUCCESS);
    }
    crate::outln!(
        "providers: {}   policy: {}   texts: {}",
        report.providers.join(" + "),
        report.policy_version,
        report.texts
    )?;
    crate::outln!(
        "{:<10} {:>8} {:>10} {:>5} {:>10} {:>8}",
        "category",
        "support",
        "predicted",
        "TP",
        "precision",
        "recall"
    )?;
    for c in &report.categories {
        crate::outln!(
            "{:<10} {:>8} {:>10} {:>5} {:>10} {:>8}",
            c.category,
            c.support,
            c.predicted,
            c.true_positives,
            pct(c.precision),
            pct(c.recall)
        )?;
    }
    crate::outln!(
        "harmful texts blocked (recall): {} ({}/{})",
        pct(report.harmful_recall),
        report.harmful_blocked,
        report.harmful
    )?;
    crate::outln!(
        "false-block rate on safe texts: {} ({}/{})",
        pct(report.false_block_rate),
        report.safe_blocked,
        report.safe
    )?;
    for k in &report.kinds {
        crate::outln!("kind {:<26} {:<9} {}/{} correct", k.kind, k.expected, k.correct, k.texts)?;
    }
    for m in &report.misses {
        crate::outln!(
            "miss: line {} expected {} → {:?} labels [{}] {}",
            m.line,
            m.expected,
            m.decision,
            m.labels.join(","),
            m.reasons.join("; ")
        )?;
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chain() -> Chain {
        Chain {
            providers: vec![SafetyProvider::Offline],
            endpoint: None,
            policy: None,
            allowed_tokens: vec!["first_name".into()],
            timeout_secs: 5,
        }
    }

    #[tokio::test]
    async fn screen_exit_code_follows_the_decision() {
        let run_screen = |text: &str| {
            let a = ScreenArgs { text: text.into(), chain: chain(), json: true };
            screen(a)
        };
        assert_eq!(run_screen("Killer deals on boots, {{first_name}}!").await.unwrap(), ExitCode::SUCCESS);
        assert_eq!(run_screen("Buy now or we will kill you").await.unwrap(), ExitCode::from(1));
        assert_eq!(run_screen("Mail me at a.b@example.com").await.unwrap(), ExitCode::from(1));
    }

    #[tokio::test]
    async fn eval_reads_the_bundled_set_and_names_bad_lines() {
        let file = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../examples/safety-eval.jsonl"));
        let a = EvalArgs { file, chain: chain(), json: false };
        assert_eq!(evaluate(a).await.unwrap(), ExitCode::SUCCESS);
        let dir = tempfile::tempdir().unwrap();
        let bad = dir.path().join("bad.jsonl");
        std::fs::write(&bad, "{\"text\":\"hi\",\"expected\":\"safe\"}\n{\"text\":\"x\",\"expected\":\"spam\"}\n")
            .unwrap();
        let e = evaluate(EvalArgs { file: bad, chain: chain(), json: true }).await.unwrap_err();
        assert!(e.to_string().contains("bad.jsonl line 2"), "{e}");
    }
}
