//! The command line: `run` (the agent), `classify` (the seed's batch mode), `train`, `validate`
//! and `config-reference`. Errors reach the user here, once, with the context the layers below
//! attached.

use std::io::{IsTerminal, Read, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};

use logsieve::config::{self, Plan};
use logsieve::metrics::Registry;
use logsieve::tiers::Tiers;
use logsieve::{classify, pipeline};

#[derive(Parser)]
#[command(
    name = "logsieve",
    version,
    about = "Ship logs and label every line as it passes"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the agent: follow the configured sources, label, write to the sinks, serve HTTP.
    Run {
        /// Config file [default: config/logsieve.toml if present, else built-in defaults]
        #[arg(long, short)]
        config: Option<PathBuf>,
        /// Stop once every file was read to its end (for one-off runs and demos).
        #[arg(long)]
        exit_on_eof: bool,
    },
    /// Label a CSV (`source,log_message`) or plain/JSON lines, like the seed's batch mode.
    Classify {
        #[arg(long, short)]
        config: Option<PathBuf>,
        /// Input file, or - for stdin.
        #[arg(long, short)]
        input: String,
        /// Output file, or - for stdout.
        #[arg(long, short, default_value = "-")]
        output: String,
        #[arg(long, value_enum, default_value_t = Format::Csv)]
        format: Format,
    },
    /// Train the model tier's logistic head on a labelled CSV (log_message, target_label, source).
    #[cfg(feature = "model")]
    Train {
        #[arg(long, short)]
        config: Option<PathBuf>,
        #[command(flatten)]
        options: logsieve::train::TrainOptions,
    },
    /// Check a config and its rules; print what would run.
    Validate {
        #[arg(long, short)]
        config: Option<PathBuf>,
    },
    /// Print the configuration reference (docs/configuration.md), made from the config structs.
    ConfigReference,
}

#[derive(Clone, Copy, ValueEnum)]
enum Format {
    /// CSV with `source,log_message`; writes the rows with `target_label` and `tier` added.
    Csv,
    /// Plain text or JSON lines in; JSON records out.
    Jsonl,
}

fn main() -> ExitCode {
    // ONNX Runtime's own builds (the PyPI wheel's library is one) send usage telemetry
    // (process path, OS, CPU, a device id kept in ~/.cache) unless this is set before the
    // library starts; a log shipper sends nothing it was not configured to. Set here, before
    // any thread exists, so no C code reads the environment while it changes.
    if std::env::var_os("ORT_DISABLE_TELEMETRY").is_none() {
        std::env::set_var("ORT_DISABLE_TELEMETRY", "1");
    }
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
    let result = match cli.command {
        Command::Run {
            config,
            exit_on_eof,
        } => load(config.clone()).and_then(|plan| {
            let options = pipeline::RunOptions {
                exit_on_eof,
                config,
            };
            runtime()?.block_on(pipeline::run(plan, options))
        }),
        Command::Classify {
            config,
            input,
            output,
            format,
        } => load(config).and_then(|plan| classify_files(plan, &input, &output, format)),
        #[cfg(feature = "model")]
        Command::Train { config, options } => {
            load(config).and_then(|plan| logsieve::train::train(&plan, &options))
        }
        Command::Validate { config } => load(config).map(|plan| {
            for line in plan.describe() {
                println!("{line}");
            }
        }),
        Command::ConfigReference => {
            print!("{}", logsieve::reference::markdown());
            Ok(())
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn load(path: Option<PathBuf>) -> anyhow::Result<Plan> {
    config::load(path.as_deref())
        .map_err(|errors| anyhow::anyhow!("invalid configuration:\n{errors}"))
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?)
}

fn classify_files(plan: Plan, input: &str, output: &str, format: Format) -> anyhow::Result<()> {
    let mut bytes = Vec::new();
    if input == "-" {
        std::io::stdin().read_to_end(&mut bytes)?;
    } else {
        bytes = std::fs::read(input).map_err(|e| anyhow::anyhow!("cannot read {input}: {e}"))?;
    }
    let registry = Registry::default();
    let rt = runtime()?;
    let _inside = rt.enter(); // the LLM tier starts its dispatcher on this runtime
    let tiers = Tiers::build(&plan.tiers, &registry)?;
    let max_lines = plan.batch.max_lines;
    let (body, records) = match format {
        Format::Csv => {
            let table = classify::read_csv(&bytes).map_err(|p| anyhow::anyhow!("{input}: {p}"))?;
            let records = rt.block_on(classify::label_all(&tiers, table.events(), max_lines));
            if let Some(given) = table.given_labels() {
                print_accuracy(&plan, &given, &records);
            }
            (table.write(&records), records)
        }
        Format::Jsonl => {
            let text = String::from_utf8_lossy(&bytes);
            let events = classify::line_events(&text, "stdin");
            let records = rt.block_on(classify::label_all(&tiers, events, max_lines));
            let mut body = Vec::new();
            logsieve::sinks::encode_json_lines(&records, &mut body);
            (body, records)
        }
    };
    if output == "-" {
        std::io::stdout().write_all(&body)?;
    } else {
        std::fs::write(output, &body).map_err(|e| anyhow::anyhow!("cannot write {output}: {e}"))?;
    }
    let mut by_tier: Vec<(&str, usize)> = Vec::new();
    for r in &records {
        let tier = r.verdict.tier.as_str();
        match by_tier.iter_mut().find(|(t, _)| *t == tier) {
            Some((_, n)) => *n += 1,
            None => by_tier.push((tier, 1)),
        }
    }
    let summary: Vec<String> = by_tier.iter().map(|(t, n)| format!("{t} {n}")).collect();
    eprintln!("classified {} rows ({})", records.len(), summary.join(", "));
    Ok(())
}

/// For a labelled input: how many rows got the label the input gives, over all rows and over
/// the rows not routed to the LLM (the seed's LegacyCRM rows).
fn print_accuracy(plan: &Plan, given: &[&str], records: &[logsieve::event::Record]) {
    let routed = plan.tiers.routed_sources();
    let (mut right, mut total, mut right_unrouted, mut unrouted) = (0, 0, 0, 0);
    for (truth, record) in given.iter().zip(records) {
        let ok = *truth == &*record.verdict.label;
        total += 1;
        right += ok as usize;
        if !routed.contains(&&*record.event.source) {
            unrouted += 1;
            right_unrouted += ok as usize;
        }
    }
    let share = |a: usize, b: usize| a as f64 / b.max(1) as f64;
    eprintln!(
        "accuracy against the input's target_label: {:.4} ({right}/{total}); rows not routed to the LLM: {:.4} ({right_unrouted}/{unrouted})",
        share(right, total),
        share(right_unrouted, unrouted)
    );
}
