//! The command line: `run` (the agent), `classify` (the seed's batch mode) and `validate`.
//! Errors reach the user here, once, with the context the layers below attached.

use std::io::{IsTerminal, Read, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};
use prometheus::Registry;

use logsieve::config::{self, Loaded, SinkType, SourceType};
use logsieve::{classify, pipeline, tiers};

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
}

#[derive(Clone, Copy, ValueEnum)]
enum Format {
    /// CSV with `source,log_message`; writes the rows with `target_label` and `tier` added.
    Csv,
    /// Plain text or JSON lines in; JSON records out.
    Jsonl,
}

fn main() -> ExitCode {
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
        } => load(config).and_then(|loaded| {
            runtime()?.block_on(pipeline::run(loaded, pipeline::RunOptions { exit_on_eof }))
        }),
        Command::Classify {
            config,
            input,
            output,
            format,
        } => load(config).and_then(|loaded| classify_files(loaded, &input, &output, format)),
        Command::Train { config, options } => {
            load(config).and_then(|loaded| logsieve::train::train(&loaded, &options))
        }
        Command::Validate { config } => load(config).and_then(|loaded| print_plan(&loaded)),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn load(path: Option<PathBuf>) -> anyhow::Result<Loaded> {
    config::load(path.as_deref())
        .map_err(|errors| anyhow::anyhow!("invalid configuration:\n{errors}"))
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?)
}

fn classify_files(loaded: Loaded, input: &str, output: &str, format: Format) -> anyhow::Result<()> {
    let mut bytes = Vec::new();
    if input == "-" {
        std::io::stdin().read_to_end(&mut bytes)?;
    } else {
        bytes = std::fs::read(input).map_err(|e| anyhow::anyhow!("cannot read {input}: {e}"))?;
    }
    let registry = Registry::new();
    let rt = runtime()?;
    let _inside = rt.enter(); // the LLM tier starts its dispatcher on this runtime
    let tiers = tiers::from_config(&loaded, &registry)?;
    let max_lines = loaded.config.batch.max_lines;
    let (body, records) = match format {
        Format::Csv => {
            let table = classify::read_csv(&bytes).map_err(|p| anyhow::anyhow!("{input}: {p}"))?;
            let records = rt.block_on(classify::label_all(&tiers, table.events(), max_lines));
            if let Some(given) = table.given_labels() {
                print_accuracy(&loaded, &given, &records);
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
fn print_accuracy(loaded: &Loaded, given: &[&str], records: &[logsieve::event::Record]) {
    let routed = loaded.config.routed_sources();
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

fn print_plan(loaded: &Loaded) -> anyhow::Result<()> {
    let c = &loaded.config;
    println!("config: {} (valid)", loaded.origin);
    println!("data_dir: {}", c.data_dir.display());
    if c.server.enabled {
        println!(
            "server: http://{} (/metrics /health /ready POST /classify)",
            c.server.address.get_ref()
        );
    } else {
        println!("server: disabled");
    }
    if c.sources.is_empty() {
        println!("sources: none (classification server only)");
    }
    for s in &c.sources {
        match s.kind.get_ref() {
            SourceType::File => {
                let include: Vec<&str> = s.include.iter().map(|p| p.get_ref().as_str()).collect();
                let matched: usize = include
                    .iter()
                    .filter_map(|p| glob::glob(p).ok())
                    .map(|g| g.flatten().count())
                    .sum();
                let read_from = match s.read_from {
                    config::ReadFrom::Beginning => "beginning",
                    config::ReadFrom::End => "end",
                };
                println!(
                    "source: file {} (read_from {read_from}, {matched} files match now)",
                    include.join(" ")
                );
            }
            SourceType::Stdin => println!("source: stdin"),
            SourceType::Kafka => {
                let topics: Vec<&str> = s.topics.iter().map(|t| t.get_ref().as_str()).collect();
                println!(
                    "source: kafka {} topics {} (group {}, auto_offset_reset {}, commit every {} ms)",
                    s.bootstrap_servers.as_ref().map(|b| b.get_ref().as_str()).unwrap_or("?"),
                    topics.join(", "),
                    s.group_id,
                    s.auto_offset_reset.get_ref(),
                    s.commit_interval_ms
                );
            }
        }
    }
    println!(
        "batch: up to {} lines or {} ms",
        c.batch.max_lines, c.batch.max_wait_ms
    );
    for r in &c.tiers.route {
        let labels = r.allowed_labels(&c.labels).join(", ");
        match (&r.source, &r.message) {
            (Some(s), _) => println!("tier route: source {:?} -> llm ({labels})", s.get_ref()),
            (None, Some(m)) => {
                println!("tier route: message ~ /{}/ -> llm ({labels})", m.get_ref())
            }
            (None, None) => {}
        }
    }
    println!(
        "tier regex: {} rules{}",
        loaded.rules.len(),
        loaded
            .rules_origin
            .as_ref()
            .map(|o| format!(" from {o}"))
            .unwrap_or_default()
    );
    match c.tiers.model.as_ref().filter(|m| m.enabled) {
        Some(m) => println!(
            "tier model: {} + head {} (threshold {}, batch {}, {} threads)",
            m.model.display(),
            m.head.display(),
            m.threshold,
            m.batch_size,
            m.threads
        ),
        None => println!("tier model: off"),
    }
    match &c.tiers.llm {
        None => println!("tier llm: off (no [tiers.llm]); routed lines leave as Unclassified, reason llm_disabled"),
        Some(llm) => match llm.off_because() {
            Some(why) => println!("tier llm: off ({why}); routed lines leave as Unclassified, reason llm_disabled"),
            None => println!(
                "tier llm: {} model {} (constrain {:?}, queue {}, {} in flight, on_full {:?}{})",
                llm.base_url,
                llm.model,
                llm.constrain,
                llm.queue_capacity,
                llm.max_in_flight,
                llm.on_full,
                if llm.api_key_env.is_empty() && llm.api_key_file.is_none() {
                    ", no API key"
                } else {
                    ", API key set"
                }
            ),
        },
    }
    for s in &c.sinks {
        match s.kind.get_ref() {
            SinkType::Stdout => println!("sink: stdout (JSON lines)"),
            SinkType::File => println!(
                "sink: file {} (JSON lines{})",
                s.path.as_ref().map(|p| p.get_ref().as_str()).unwrap_or("?"),
                if s.fsync { ", fsync" } else { "" }
            ),
            SinkType::Kafka => println!(
                "sink: kafka {} topic {} (acks {}, compression {}, key {:?})",
                s.bootstrap_servers
                    .as_ref()
                    .map(|b| b.get_ref().as_str())
                    .unwrap_or("?"),
                s.topic
                    .as_ref()
                    .map(|t| t.get_ref().as_str())
                    .unwrap_or("?"),
                s.acks.get_ref(),
                s.compression.get_ref(),
                s.key
            ),
        }
    }
    Ok(())
}
