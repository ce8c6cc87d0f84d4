//! `cpo gen customers --n N [--seed S] [--out FILE]`: synthetic customers in the old system's CSV schema
//! (plus first_name and email), streamed to stdout or a file. The generator lives in `cpo_segment::synth`
//! so the benchmarks use the same data.

use std::io::{self, BufWriter, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    pub what: What,
}

#[derive(Debug, clap::Subcommand)]
pub enum What {
    /// Synthetic customers (skewed spend, recency and frequency; unique ids; deterministic per seed).
    #[command(after_help = "Examples:
  cpo gen customers --n 10000 --out customers.csv
  cpo gen customers --n 1000000 --seed 3 | gzip > customers.csv.gz")]
    Customers {
        /// Number of customers.
        #[arg(long)]
        n: u64,
        /// Random seed: the same seed gives the same file.
        #[arg(long, default_value_t = 7)]
        seed: u64,
        /// Output file (default: stdout).
        #[arg(long)]
        out: Option<PathBuf>,
    },
}

pub async fn run(args: Args) -> anyhow::Result<ExitCode> {
    let What::Customers { n, seed, out } = args.what;
    tokio::task::spawn_blocking(move || -> anyhow::Result<ExitCode> {
        let result = match &out {
            Some(path) => {
                if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
                }
                let file = std::fs::File::create(path).with_context(|| format!("creating {}", path.display()))?;
                cpo_segment::synth::write_customers(n, seed, BufWriter::new(file))
                    .with_context(|| format!("writing {}", path.display()))
            }
            None => {
                let stdout = io::stdout();
                match cpo_segment::synth::write_customers(n, seed, BufWriter::new(stdout.lock())) {
                    // `cpo gen customers --n 10 | head -3` closes the pipe early: that is not a failure.
                    Err(e) if e.kind() == io::ErrorKind::BrokenPipe => Ok(()),
                    r => r.context("writing to stdout"),
                }
            }
        };
        result?;
        if let Some(path) = &out {
            let _ = writeln!(io::stderr(), "wrote {n} customers to {}", path.display());
        }
        Ok(ExitCode::SUCCESS)
    })
    .await
    .context("generator task")?
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn writes_a_file() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("sub/customers.csv");
        let code = run(Args { what: What::Customers { n: 20, seed: 3, out: Some(out.clone()) } }).await.unwrap();
        assert_eq!(code, ExitCode::SUCCESS);
        let text = std::fs::read_to_string(out).unwrap();
        assert_eq!(text.lines().count(), 21);
        assert_eq!(text.as_bytes(), cpo_segment::synth::customers_csv(20, 3).as_slice());
    }
}
