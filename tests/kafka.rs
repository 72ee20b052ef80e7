//! The Kafka source and sink against a real Kafka-protocol broker (Tansu, started by
//! scripts/test.sh through scripts/kafka-broker.sh, which sets LOGSIEVE_TEST_KAFKA): Kafka →
//! Kafka at volume, `kill -9` and restart, two agents sharing a group, a broker that is down at
//! start and stopped mid-stream, file → Kafka with a topic per label, and awkward payloads.

mod common;

use std::collections::{HashMap, HashSet};
use std::fs;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use common::kafka::{broker_script, create_topic, unique, StopsBroker};
use common::*;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Header, Message, OwnedHeaders};
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::{ClientConfig, Offset, TopicPartitionList};

// ----- the broker -----

/// The test broker's address (scripts/test.sh starts it).
fn broker() -> String {
    std::env::var("LOGSIEVE_TEST_KAFKA").expect(
        "LOGSIEVE_TEST_KAFKA is not set: run ./scripts/test.sh, which starts a Kafka-protocol broker (scripts/kafka-broker.sh)",
    )
}

/// One message to produce: key, payload (`None`: a tombstone), headers.
struct Out<'a> {
    key: Option<&'a [u8]>,
    payload: Option<&'a [u8]>,
    headers: &'a [(&'a str, &'a str)],
}

fn produce_with(broker: &str, topic: &str, messages: &[Out<'_>]) {
    let producer: BaseProducer = ClientConfig::new()
        .set("bootstrap.servers", broker)
        .set("linger.ms", "5")
        .create()
        .unwrap();
    for m in messages {
        let mut record: BaseRecord<'_, [u8], [u8]> = BaseRecord::to(topic);
        if let Some(key) = m.key {
            record = record.key(key);
        }
        if let Some(payload) = m.payload {
            record = record.payload(payload);
        }
        if !m.headers.is_empty() {
            let mut headers = OwnedHeaders::new();
            for (k, v) in m.headers {
                headers = headers.insert(Header {
                    key: k,
                    value: Some(*v),
                });
            }
            record = record.headers(headers);
        }
        loop {
            match producer.send(record) {
                Ok(()) => break,
                Err((e, back)) => {
                    assert!(
                        matches!(
                            e,
                            rdkafka::error::KafkaError::MessageProduction(
                                rdkafka::types::RDKafkaErrorCode::QueueFull
                            )
                        ),
                        "produce: {e}"
                    );
                    producer.poll(Duration::from_millis(50));
                    record = back;
                }
            }
        }
    }
    producer.flush(Duration::from_secs(60)).unwrap();
}

/// Produces `lines` as plain payloads, no key.
fn produce(broker: &str, topic: &str, lines: impl Iterator<Item = String>) {
    let lines: Vec<String> = lines.collect();
    let messages: Vec<Out<'_>> = lines
        .iter()
        .map(|l| Out {
            key: None,
            payload: Some(l.as_bytes()),
            headers: &[],
        })
        .collect();
    produce_with(broker, topic, &messages);
}

/// A message read back from an output topic.
struct Got {
    key: Option<Vec<u8>>,
    record: serde_json::Value,
}

/// Reads a topic from the beginning (every partition, no group) until `expected` messages
/// arrived or `limit` passed; returns what arrived.
fn read_topic(broker: &str, topic: &str, expected: usize, limit: Duration) -> Vec<Got> {
    read_topic_until(broker, topic, limit, |got| got.len() >= expected)
}

/// Reads a topic from the beginning until `done(what arrived)` or `limit`.
fn read_topic_until(
    broker: &str,
    topic: &str,
    limit: Duration,
    mut done: impl FnMut(&[Got]) -> bool,
) -> Vec<Got> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", broker)
        .set("group.id", unique("reader"))
        .set("enable.auto.commit", "false")
        .create()
        .unwrap();
    let deadline = Instant::now() + limit;
    // The topic may not exist yet (a producer's first metadata request creates it).
    let partitions = loop {
        let metadata = consumer
            .fetch_metadata(Some(topic), Duration::from_secs(10))
            .unwrap();
        let ids: Vec<i32> = metadata.topics()[0]
            .partitions()
            .iter()
            .map(|p| p.id())
            .collect();
        if !ids.is_empty() || Instant::now() > deadline {
            break ids;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    let mut tpl = TopicPartitionList::new();
    for p in partitions {
        tpl.add_partition_offset(topic, p, Offset::Beginning)
            .unwrap();
    }
    consumer.assign(&tpl).unwrap();
    let mut got = Vec::new();
    while !done(&got) && Instant::now() < deadline {
        match consumer.poll(Duration::from_millis(200)) {
            Some(Ok(m)) => got.push(Got {
                key: m.key().map(<[u8]>::to_vec),
                record: serde_json::from_slice(m.payload().unwrap()).unwrap(),
            }),
            Some(Err(e)) => eprintln!("read_topic {topic}: {e}"),
            None => {}
        }
    }
    got
}

/// The group's committed offset per partition of `topic`.
fn committed(broker: &str, group: &str, topic: &str, partitions: i32) -> HashMap<i32, i64> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", broker)
        .set("group.id", group)
        .create()
        .unwrap();
    let mut tpl = TopicPartitionList::new();
    for p in 0..partitions {
        tpl.add_partition(topic, p);
    }
    let offsets = consumer
        .committed_offsets(tpl, Duration::from_secs(10))
        .unwrap();
    offsets
        .elements()
        .iter()
        .map(|e| {
            let offset = match e.offset() {
                Offset::Offset(o) => o,
                _ => 0,
            };
            (e.partition(), offset)
        })
        .collect()
}

/// One past the last offset of each partition, found by reading the topic: `produced`
/// messages in all. (Read, not asked: this broker's ListOffsets answers with the start of the
/// last batch.)
fn ends(broker: &str, topic: &str, produced: usize) -> HashMap<i32, i64> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", broker)
        .set("group.id", unique("ends"))
        .set("enable.auto.commit", "false")
        .create()
        .unwrap();
    let metadata = consumer
        .fetch_metadata(Some(topic), Duration::from_secs(10))
        .unwrap();
    let mut tpl = TopicPartitionList::new();
    for p in metadata.topics()[0].partitions() {
        tpl.add_partition_offset(topic, p.id(), Offset::Beginning)
            .unwrap();
    }
    consumer.assign(&tpl).unwrap();
    let mut ends = HashMap::new();
    let (mut read, deadline) = (0, Instant::now() + Duration::from_secs(60));
    while read < produced && Instant::now() < deadline {
        if let Some(Ok(m)) = consumer.poll(Duration::from_millis(200)) {
            read += 1;
            let end = ends.entry(m.partition()).or_insert(0);
            *end = (*end).max(m.offset() + 1);
        }
    }
    assert_eq!(read, produced, "read back the whole topic {topic}");
    ends
}

// ----- the agent -----

fn kafka_source(broker: &str, topic: &str, group: &str, extra: &str) -> String {
    format!(
        r#"[[sources]]
type = "kafka"
name = "in"
bootstrap_servers = "{broker}"
topics = ["{topic}"]
group_id = "{group}"
session_timeout_ms = 6000
commit_interval_ms = 200
{extra}
"#
    )
}

fn kafka_sink(broker: &str, topic: &str, extra: &str) -> String {
    format!(
        r#"[[sinks]]
type = "kafka"
bootstrap_servers = "{broker}"
topic = "{topic}"
{extra}
"#
    )
}

/// A file source named `app` on the setup's `logs/*.log`, with `extra` keys.
fn file_source(setup: &Setup, extra: &str) -> String {
    format!(
        "[[sources]]\ntype = \"file\"\nname = \"app\"\ninclude = [\"{}\"]\n{extra}",
        setup.path("logs/*.log").display()
    )
}

fn file_sink(path: &Path) -> String {
    format!(
        "[[sinks]]\ntype = \"file\"\npath = \"{}\"\n",
        path.display()
    )
}

/// Writes the setup's `logsieve.toml`: its HTTP port, the seed rules, no model, and the given
/// source and sink blocks.
fn write_config(setup: &Setup, sources: &str, sinks: &str) {
    let config = format!(
        r#"data_dir = "{data}"
[server]
address = "127.0.0.1:{port}"
{sources}
[[tiers.route]]
source = "LegacyCRM"
to = "llm"
[tiers.regex]
rules = "{rules}"
{sinks}
"#,
        data = setup.data_dir().display(),
        port = setup.port,
        rules = repo_path("config/rules.toml").display(),
    );
    fs::write(setup.path("logsieve.toml"), config).unwrap();
}

/// The number in `line(i)`'s text ("line 0001234 …").
fn line_number(message: &str) -> usize {
    message[5..12].parse().unwrap()
}

fn ready_status(agent: &Agent) -> u16 {
    reqwest::blocking::get(agent.url("/ready"))
        .map(|r| r.status().as_u16())
        .unwrap_or(0)
}

// ----- tests -----

#[test]
fn kafka_to_kafka_labels_100k_messages_once_each() {
    let broker = broker();
    let (input, output, group) = (unique("in"), unique("out"), unique("group"));
    create_topic(&broker, &input, 3);
    create_topic(&broker, &output, 3);
    produce(&broker, &input, (0..100_000).map(line));

    let setup = Setup::new();
    write_config(
        &setup,
        &kafka_source(&broker, &input, &group, ""),
        &kafka_sink(&broker, &output, ""),
    );
    let agent = setup.start(&[]);
    let got = read_topic(&broker, &output, 100_000, Duration::from_secs(180));
    // librdkafka's statistics (every second) report the lag per partition; it ends at 0.
    let lag_series: Vec<String> = (0..3)
        .map(|p| format!("logsieve_kafka_consumer_lag{{partition=\"{p}\",topic=\"{input}\"}}"))
        .collect();
    agent.wait_until(
        Duration::from_secs(15),
        "no lag left, and commits made",
        || {
            let metrics = agent.metrics();
            let caught_up = |series: &String| {
                metrics.contains(series.as_str()) && metric_value(&metrics, series) == 0.0
            };
            lag_series.iter().all(caught_up)
                && metric_value(&metrics, "logsieve_kafka_commits_total{source=\"in\"}") > 0.0
        },
    );
    let (status, stderr) = agent.terminate();
    assert!(status.success(), "{stderr}");

    let mut seen = vec![0u8; 100_000];
    for g in &got {
        let message = g.record["message"].as_str().unwrap();
        let i = line_number(message);
        seen[i] += 1;
        // Labels from the seed rules, for the lines they cover.
        let expected = match i % 4 {
            0 => "User Action",
            2 => "System Notification",
            _ => "Unclassified",
        };
        assert_eq!(g.record["label"], expected, "{}", g.record);
        assert_eq!(
            g.record["source"],
            input.as_str(),
            "the topic names the source"
        );
        assert_eq!(g.record["origin"]["topic"], input.as_str());
        assert!(g.record["origin"]["offset"].is_u64());
    }
    let missing = seen.iter().filter(|&&n| n == 0).count();
    let doubled = seen.iter().filter(|&&n| n > 1).count();
    assert_eq!((missing, doubled), (0, 0), "{stderr}");
    // A clean stop commits everything delivered.
    assert_eq!(
        committed(&broker, &group, &input, 3),
        ends(&broker, &input, 100_000)
    );
}

#[test]
fn kill_9_mid_stream_replays_only_what_was_not_committed() {
    let broker = broker();
    let (input, output, group) = (unique("in"), unique("out"), unique("group"));
    create_topic(&broker, &input, 2);
    create_topic(&broker, &output, 1);
    const N: usize = 60_000;
    produce(&broker, &input, (0..N / 2).map(line));

    let setup = Setup::new();
    write_config(
        &setup,
        &kafka_source(&broker, &input, &group, ""),
        &file_sink(&setup.out()),
    );
    let agent = setup.start(&[]);
    agent.wait_until(Duration::from_secs(60), "the first half", || {
        line_count(&setup.out()) >= N / 2
    });
    agent.wait_until(Duration::from_secs(30), "the first half committed", || {
        committed(&broker, &group, &input, 2).values().sum::<i64>() >= (N / 2) as i64
    });
    let second_half = std::thread::spawn({
        let broker = broker.clone();
        let input = input.clone();
        // Paced, ~10k messages/s, so the kill lands while the stream still flows.
        move || {
            for start in (N / 2..N).step_by(1000) {
                produce(&broker, &input, (start..start + 1000).map(line));
                std::thread::sleep(Duration::from_millis(100));
            }
        }
    });
    agent.wait_until(Duration::from_secs(60), "a part of the second half", || {
        line_count(&setup.out()) >= N / 2 + N / 6
    });
    agent.kill9();
    second_half.join().unwrap();
    let before_kill = records(&setup.out());
    let at_kill = committed(&broker, &group, &input, 2);
    assert!(before_kill.len() < N, "killed mid-stream");
    assert!(
        at_kill.values().sum::<i64>() >= (N / 2) as i64,
        "the first half was committed before the kill: {at_kill:?}"
    );

    let agent = setup.start(&[]);
    agent.wait_until(Duration::from_secs(120), "every message", || {
        message_counts(&setup.out()).len() >= N
    });
    let (status, stderr) = agent.terminate();
    assert!(status.success(), "{stderr}");

    let all = records(&setup.out());
    let counts = message_counts(&setup.out());
    assert_eq!(counts.len(), N, "every input message is in the output");
    // Duplicates are exactly the messages written before the kill at or past the committed
    // offset of their partition: the in-flight window. Nothing below it is read twice.
    let window: HashSet<String> = before_kill
        .iter()
        .filter(|r| {
            let p = r["origin"]["partition"].as_i64().unwrap() as i32;
            r["origin"]["offset"].as_i64().unwrap() >= at_kill.get(&p).copied().unwrap_or(0)
        })
        .map(|r| r["message"].as_str().unwrap().to_string())
        .collect();
    let duplicated: HashSet<String> = counts
        .iter()
        .filter(|(_, &n)| n > 1)
        .map(|(m, _)| m.clone())
        .collect();
    assert!(counts.values().all(|&n| n <= 2));
    assert_eq!(duplicated, window, "duplicates are the uncommitted window");
    eprintln!(
        "kill -9 after {} of {N} records; committed then {:?}; {} duplicates ({} records in all)",
        before_kill.len(),
        at_kill,
        duplicated.len(),
        all.len()
    );
    // After the clean stop everything read is committed: a restart would repeat nothing.
    assert_eq!(
        committed(&broker, &group, &input, 2),
        ends(&broker, &input, N)
    );
}

#[test]
fn two_agents_share_a_group_and_one_takes_over_when_the_other_stops() {
    let broker = broker();
    let (input, group) = (unique("in"), unique("group"));
    create_topic(&broker, &input, 3);
    let (a, b) = (Setup::new(), Setup::new());
    for setup in [&a, &b] {
        write_config(
            setup,
            &kafka_source(&broker, &input, &group, ""),
            &file_sink(&setup.out()),
        );
    }
    let agent_a = a.start(&[]);
    let agent_b = b.start(&[]);
    let assigned =
        |agent: &Agent| agent.metric("logsieve_kafka_assigned_partitions{source=\"in\"}");
    wait_until(
        Duration::from_secs(60),
        "the group to split the partitions",
        || {
            let (pa, pb) = (assigned(&agent_a), assigned(&agent_b));
            pa >= 1.0 && pb >= 1.0 && pa + pb == 3.0
        },
    );

    // Keyed, so the messages spread over the three partitions: without keys librdkafka's
    // sticky partitioner may put a quick burst in the two partitions of one agent.
    let lines: Vec<String> = (0..30_000).map(line).collect();
    let keys: Vec<String> = (0..30_000).map(|i| i.to_string()).collect();
    let messages: Vec<Out<'_>> = lines
        .iter()
        .zip(&keys)
        .map(|(l, k)| Out {
            key: Some(k.as_bytes()),
            payload: Some(l.as_bytes()),
            headers: &[],
        })
        .collect();
    produce_with(&broker, &input, &messages);
    let union = |setups: &[&Setup]| -> HashSet<String> {
        setups
            .iter()
            .flat_map(|s| message_counts(&s.out()).into_keys())
            .collect()
    };
    agent_a.wait_until(Duration::from_secs(60), "the first 30k messages", || {
        union(&[&a, &b]).len() >= 30_000
    });
    let (from_a, from_b) = (line_count(&a.out()), line_count(&b.out()));
    assert!(
        from_a > 0 && from_b > 0,
        "both agents worked: {from_a} / {from_b}"
    );

    let (status, stderr) = agent_b.terminate();
    assert!(status.success(), "{stderr}");
    agent_a.wait_until(Duration::from_secs(60), "A to take every partition", || {
        assigned(&agent_a) == 3.0
    });
    produce(&broker, &input, (30_000..60_000).map(line));
    agent_a.wait_until(Duration::from_secs(90), "all 60k messages", || {
        union(&[&a, &b]).len() >= 60_000
    });
    let after: HashSet<String> = message_counts(&a.out()).into_keys().collect();
    assert!(
        (30_000..60_000).all(|i| after.contains(&line(i))),
        "A labelled every message produced after B stopped"
    );
    let (status, stderr) = agent_a.terminate();
    assert!(status.success(), "{stderr}");
}

/// The agent's line and record counters, for a failure message.
fn counters(metrics: &str) -> String {
    metrics
        .lines()
        .filter(|l| {
            [
                "logsieve_source_lines_total",
                "logsieve_sink_",
                "logsieve_kafka_produce",
            ]
            .iter()
            .any(|name| l.starts_with(name))
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// The line numbers of the records read.
fn numbers_in(got: &[Got]) -> HashSet<usize> {
    got.iter()
        .map(|g| line_number(g.record["message"].as_str().unwrap()))
        .collect()
}

fn kafka_delivered(agent: &Agent) -> f64 {
    agent.metric("logsieve_sink_records_total{sink=\"kafka-0\"}")
}

#[test]
fn a_broker_down_at_start_is_reported_and_the_agent_starts_once_it_is_up() {
    let port = free_port();
    let broker = format!("127.0.0.1:{port}");
    let _stop_at_the_end = StopsBroker(port);
    let (input, output) = ("in", "out");
    let setup = Setup::new();
    fs::create_dir_all(setup.path("logs")).unwrap();
    let log = setup.path("logs/app.log");
    append_lines(&log, 0..0);
    let sources =
        kafka_source(&broker, input, "g", "") + &file_source(&setup, "glob_interval_ms = 100\n");
    write_config(
        &setup,
        &sources,
        &kafka_sink(&broker, output, "message_timeout_ms = 2000"),
    );

    // No broker: the agent runs, says so, and is not ready.
    let agent = setup.spawn(&[]);
    agent.wait_until(
        Duration::from_secs(20),
        "the healthcheck's complaint",
        || {
            agent
                .stderr_text()
                .contains(&format!("cannot reach Kafka at {broker}"))
        },
    );
    assert_eq!(ready_status(&agent), 503);

    // The broker comes up: the agent becomes ready, and both sources flow.
    let _ = broker_script("start", port);
    create_topic(&broker, input, 1);
    create_topic(&broker, output, 1);
    agent.wait_until(Duration::from_secs(20), "/ready", || {
        ready_status(&agent) == 200
    });
    produce(&broker, input, (1000..1100).map(line));
    append_lines(&log, 0..100);
    let got = read_topic(&broker, output, 200, Duration::from_secs(60));
    let numbers = numbers_in(&got);
    assert!(
        (0..100).chain(1000..1100).all(|i| numbers.contains(&i)),
        "file and Kafka lines delivered once the broker is up ({} of 200)\n{}",
        numbers.len(),
        agent.stderr_text()
    );
    let (status, stderr) = agent.terminate();
    assert!(status.success(), "{stderr}");
}

/// File → Kafka across a broker restart. What this broker does not let us observe: it keeps
/// topics in memory, so a restart loses them; it acknowledges messages produced to a topic it
/// does not have (a real broker refuses them); and after a restart it does not always keep
/// what it acknowledged (once in about ten runs, 36 of 100 acknowledged lines were not in the
/// topic). So after the restart the test checks that every line is acknowledged by the broker
/// (the sink's counters), and that lines written once the topic exists again do arrive in it.
///
/// No Kafka *source* here: a consumer across a restart of this broker fetches a topic the
/// broker has forgotten, the broker answers with a nameless, all-zero topic id, and librdkafka
/// 2.12 crashes on that answer (SIGSEGV: strcmp on the NULL name in
/// `rd_kafka_metadata_update_op`, seen in a core dump, about one run in seven). A real broker
/// does not forget its topics.
#[test]
fn a_broker_stopped_mid_stream_is_reported_and_the_sink_resumes() {
    let port = free_port();
    let broker = broker_script("start", port);
    let _stop_at_the_end = StopsBroker(port);
    let output = "out";
    create_topic(&broker, output, 1);
    let setup = Setup::new();
    fs::create_dir_all(setup.path("logs")).unwrap();
    let log = setup.path("logs/app.log");
    append_lines(&log, 0..100);
    write_config(
        &setup,
        &file_source(
            &setup,
            "glob_interval_ms = 100\ncheckpoint_interval_ms = 200\n",
        ),
        &kafka_sink(&broker, output, "message_timeout_ms = 2000"),
    );
    let agent = setup.start(&[]);
    let got = read_topic(&broker, output, 100, Duration::from_secs(60));
    assert_eq!(
        numbers_in(&got),
        (0..100).collect(),
        "{}",
        agent.stderr_text()
    );

    // The broker stops mid-stream: writes fail, are reported and retried; nothing crashes.
    broker_script("stop", port);
    append_lines(&log, 100..200);
    agent.wait_until(Duration::from_secs(20), "the failed write reported", || {
        agent.stderr_text().contains("not delivered to Kafka")
    });
    assert_eq!(
        kafka_delivered(&agent),
        100.0,
        "nothing counts as delivered meanwhile"
    );

    // It comes back, empty: once the topic is made again, what waited is delivered and new
    // lines flow.
    let _ = broker_script("start", port);
    create_topic(&broker, output, 1);
    agent.wait_until(
        Duration::from_secs(60),
        "the waiting lines delivered",
        || kafka_delivered(&agent) >= 200.0,
    );
    append_lines(&log, 200..300);
    agent.wait_until(
        Duration::from_secs(60),
        "every line acknowledged by the broker",
        || kafka_delivered(&agent) >= 300.0,
    );
    let got = read_topic_until(&broker, output, Duration::from_secs(30), |got| {
        (200..300).all(|i| numbers_in(got).contains(&i))
    });
    let numbers = numbers_in(&got);
    assert!(
        (200..300).any(|i| numbers.contains(&i)),
        "lines written after the broker came back arrive ({} read)\n{}\n{}",
        numbers.len(),
        counters(&agent.metrics()),
        agent.stderr_text()
    );

    // Stopped with the broker down, the agent still exits.
    broker_script("stop", port);
    let (status, stderr) = agent.terminate();
    assert!(status.success(), "no crash: {stderr}");
}

#[test]
fn file_to_kafka_puts_each_label_in_its_own_topic() {
    let broker = broker();
    let prefix = unique("logs");
    for label in ["user-action", "system-notification", "unclassified"] {
        create_topic(&broker, &format!("{prefix}.{label}"), 1);
    }
    let setup = Setup::new();
    fs::create_dir_all(setup.path("logs")).unwrap();
    let text: String = (0..400).map(|i| line(i) + "\n").collect();
    fs::write(setup.path("logs/app.log"), text).unwrap();
    let sources = file_source(&setup, "");
    write_config(
        &setup,
        &sources,
        &kafka_sink(&broker, &format!("{prefix}.{{label}}"), "key = \"source\""),
    );
    let (status, stderr) = setup.run_to_end();
    assert!(status.success(), "{stderr}");
    let by_topic = |label: &str, n: usize| {
        read_topic(
            &broker,
            &format!("{prefix}.{label}"),
            n,
            Duration::from_secs(30),
        )
    };
    let users = by_topic("user-action", 100);
    assert_eq!(users.len(), 100);
    assert!(users.iter().all(|g| g.record["label"] == "User Action"));
    assert!(users
        .iter()
        .all(|g| g.key.as_deref() == Some(b"app".as_slice())));
    assert_eq!(by_topic("system-notification", 100).len(), 100);
    assert_eq!(by_topic("unclassified", 200).len(), 200);
}

#[test]
fn payloads_keys_headers_tombstones_and_bad_bytes() {
    let broker = broker();
    let (input, output, group) = (unique("in"), unique("out"), unique("group"));
    create_topic(&broker, &input, 1);
    create_topic(&broker, &output, 1);
    let long = vec![b'x'; 200 * 1024];
    produce_with(
        &broker,
        &input,
        &[
            Out {
                key: Some(b"k-1"),
                payload: Some(b"User User7 logged in.\n"),
                headers: &[("app", "billing")],
            },
            Out {
                key: None,
                payload: Some(b"bad \xff\xfe bytes"),
                headers: &[],
            },
            Out {
                key: Some(b"k-3"),
                payload: Some(br#"{"message": "Backup completed successfully.", "level": "info"}"#),
                headers: &[("app", "ops")],
            },
            Out {
                key: Some(b"k-4"),
                payload: None,
                headers: &[],
            },
            Out {
                key: None,
                payload: Some(&long),
                headers: &[],
            },
        ],
    );
    let setup = Setup::new();
    write_config(
        &setup,
        &kafka_source(&broker, &input, &group, "source_from = \"header:app\""),
        &kafka_sink(&broker, &output, "key = \"original\""),
    );
    let agent = setup.start(&[]);
    let got = read_topic(&broker, &output, 4, Duration::from_secs(60));
    agent.wait_until(Duration::from_secs(10), "the tombstone counted", || {
        agent.metric(&format!(
            "logsieve_kafka_tombstones_total{{topic=\"{input}\"}}"
        )) == 1.0
    });
    let (status, stderr) = agent.terminate();
    assert!(status.success(), "{stderr}");
    assert_eq!(got.len(), 4, "the tombstone is skipped");

    let r = &got[0].record;
    assert_eq!(
        r["message"], "User User7 logged in.",
        "the trailing newline is dropped"
    );
    assert_eq!(r["label"], "User Action");
    assert_eq!(r["source"], "billing", "source from the header");
    assert_eq!(
        got[0].key.as_deref(),
        Some(b"k-1".as_slice()),
        "the original key"
    );

    let r = &got[1].record;
    assert_eq!(r["invalid_utf8"], true);
    assert_eq!(r["message"], "bad \u{fffd}\u{fffd} bytes");
    assert_eq!(r["source"], input.as_str(), "no header: the topic");
    assert!(got[1].key.is_none());

    let r = &got[2].record;
    assert_eq!(r["message"], "Backup completed successfully.");
    assert_eq!(r["level"], "info", "JSON fields pass through");
    assert_eq!(r["label"], "System Notification");
    assert_eq!(r["source"], "ops");

    let r = &got[3].record;
    assert_eq!(r["truncated"], true);
    assert_eq!(r["message"].as_str().unwrap().len(), 100 * 1024);

    // Every offset is committed, the tombstone's included.
    assert_eq!(
        committed(&broker, &group, &input, 1),
        ends(&broker, &input, 5)
    );
}

#[test]
fn validate_names_what_a_kafka_config_lacks() {
    let setup = Setup::new();
    let sources = "[[sources]]\ntype = \"kafka\"\ntopics = []\nauto_offset_reset = \"sometime\"\n";
    write_config(
        &setup,
        sources,
        "[[sinks]]\ntype = \"kafka\"\ncompression = \"brotli\"\n",
    );
    let out = Command::new(BIN)
        .args(["validate", "--config"])
        .arg(setup.path("logsieve.toml"))
        .env_remove("LOGSIEVE_KAFKA_BOOTSTRAP_SERVERS")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let text = String::from_utf8_lossy(&out.stderr);
    for expected in [
        "sources[0].bootstrap_servers",
        "sources[0].topics",
        "sources[0].auto_offset_reset: unknown variant `sometime`",
        "sinks[0].topic",
        "sinks[0].compression: unknown variant `brotli`",
    ] {
        assert!(text.contains(expected), "{expected} in:\n{text}");
    }
}

#[test]
fn a_record_kafka_refuses_for_good_is_dropped_and_counted_not_retried_for_ever() {
    let broker = broker();
    let output = unique("out");
    create_topic(&broker, &output, 1);
    let setup = Setup::new();
    fs::create_dir_all(setup.path("logs")).unwrap();
    let mut text: String = (0..50).map(|i| line(i) + "\n").collect();
    text.push_str(&format!("line 0000050 {}\n", "y".repeat(5000)));
    text.extend((51..100).map(|i| line(i) + "\n"));
    fs::write(setup.path("logs/app.log"), text).unwrap();
    let sources = file_source(&setup, "");
    // librdkafka refuses a message over message.max.bytes itself: a refusal no retry changes.
    write_config(
        &setup,
        &sources,
        &kafka_sink(
            &broker,
            &output,
            "librdkafka_options = { \"message.max.bytes\" = \"4096\" }",
        ),
    );
    let agent = setup.start(&[]);
    let got = read_topic(&broker, &output, 99, Duration::from_secs(30));
    agent.wait_until(Duration::from_secs(10), "the drop counted", || {
        agent.metric("logsieve_kafka_dropped_records_total{reason=\"too_large\",sink=\"kafka-0\"}")
            == 1.0
    });
    let (status, stderr) = agent.terminate();
    assert!(status.success(), "{stderr}");
    assert!(
        stderr.contains("Kafka refuses this record for good"),
        "{stderr}"
    );
    let numbers: HashSet<usize> = got
        .iter()
        .map(|g| line_number(g.record["message"].as_str().unwrap()))
        .collect();
    assert_eq!(numbers.len(), 99, "every other line delivered");
    assert!(!numbers.contains(&50));
}

/// Reads `topic` from the beginning until every line `0..total` is there (or 120 s passed).
fn read_every_line(broker: &str, topic: &str, total: usize) -> Vec<Got> {
    let (mut seen, mut counted) = (HashSet::new(), 0);
    read_topic_until(broker, topic, Duration::from_secs(120), |got| {
        for g in &got[counted..] {
            seen.insert(line_number(g.record["message"].as_str().unwrap()));
        }
        counted = got.len();
        seen.len() >= total
    })
}

/// The PID of the broker `scripts/kafka-broker.sh` started on `port`.
fn broker_pid(port: u16) -> i32 {
    let cache = std::env::var("LOGSIEVE_CACHE")
        .unwrap_or_else(|_| format!("{}/.cache/logsieve", std::env::var("HOME").unwrap()));
    fs::read_to_string(format!("{cache}/run/kafka-{port}.pid"))
        .unwrap()
        .trim()
        .parse()
        .unwrap()
}

/// A broker paused (SIGSTOP) for 40 s mid-stream: the Kafka sink's writes time out and are
/// retried, `/ready` says so, the source stops advancing, memory stays bounded, and once the
/// broker runs again every line arrives — repeated only within the batches that were retried.
#[test]
fn a_paused_broker_holds_the_stream_and_loses_nothing() {
    const TOTAL: usize = 20_000;
    let port = free_port();
    let broker = broker_script("start", port);
    let _stop_at_the_end = StopsBroker(port);
    let output = "out";
    create_topic(&broker, output, 1);
    let setup = Setup::new();
    fs::create_dir_all(setup.path("logs")).unwrap();
    let log = setup.path("logs/app.log");
    append_lines(&log, 0..TOTAL / 2);
    write_config(
        &setup,
        &file_source(&setup, "checkpoint_interval_ms = 200\n"),
        &kafka_sink(&broker, output, "message_timeout_ms = 5000"),
    );
    let agent = setup.start(&[]);
    agent.wait_until(Duration::from_secs(60), "the first half delivered", || {
        kafka_delivered(&agent) >= (TOTAL / 2) as f64
    });

    let pid = broker_pid(port);
    unsafe { libc::kill(pid, libc::SIGSTOP) };
    let paused = Instant::now();
    append_lines(&log, TOTAL / 2..TOTAL);
    let mut peak = 0f64;
    let mut not_ready = false;
    while paused.elapsed() < Duration::from_secs(40) {
        peak = peak.max(peak_rss_mib(agent.child.id()));
        not_ready |= ready_status(&agent) == 503;
        std::thread::sleep(Duration::from_millis(500));
    }
    assert!(not_ready, "/ready said 503 while the broker did not answer");
    assert!(agent.stderr_text().contains("not delivered to Kafka"));
    let checkpoint = setup
        .checkpoint_offsets_of("app")
        .iter()
        .map(|(_, o)| *o)
        .max()
        .unwrap_or(0);
    assert!(
        checkpoint < fs::metadata(&log).unwrap().len(),
        "the checkpoint did not pass what the broker has not taken"
    );
    unsafe { libc::kill(pid, libc::SIGCONT) };

    let got = read_every_line(&broker, output, TOTAL);
    let tally = Tally::of_messages(
        got.iter()
            .map(|g| g.record["message"].as_str().unwrap().to_string()),
        TOTAL,
    );
    tally.assert_none_lost();
    let repeats: usize = tally.repeated.iter().map(|(_, n)| n - 1).sum();
    eprintln!("paused 40 s: 0 of {TOTAL} lost, {repeats} repeated, peak RSS {peak:.0} MiB");
    assert!(peak < 150.0, "peak RSS {peak:.0} MiB");
    let (status, stderr) = agent.terminate();
    assert!(status.success(), "{stderr}");
}

/// kill -9 twenty times at random moments, file → Kafka: no line is missing from the topic.
#[test]
fn kill_9_at_random_moments_into_kafka_loses_nothing() {
    const TOTAL: usize = 60_000;
    let broker = broker();
    let output = unique("out");
    create_topic(&broker, &output, 2);
    let setup = Setup::new();
    fs::create_dir_all(setup.path("logs")).unwrap();
    let log = setup.path("logs/app.log");
    fs::File::create(&log).unwrap();
    write_config(
        &setup,
        &file_source(
            &setup,
            "checkpoint_interval_ms = 200\nglob_interval_ms = 100\n",
        ),
        &kafka_sink(&broker, &output, ""),
    );
    let writer = std::thread::spawn({
        let log = log.clone();
        move || {
            for start in (0..TOTAL).step_by(1000) {
                append_lines(&log, start..start + 1000);
                std::thread::sleep(Duration::from_millis(100));
            }
        }
    });
    let mut rng = 0x9e3779b97f4a7c15u64;
    for _ in 0..20 {
        let agent = setup.spawn(&[]);
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        std::thread::sleep(Duration::from_millis(150 + rng % 300));
        agent.kill9();
    }
    let agent = setup.start(&[]);
    writer.join().unwrap();
    let got = read_every_line(&broker, &output, TOTAL);
    let tally = Tally::of_messages(
        got.iter()
            .map(|g| g.record["message"].as_str().unwrap().to_string()),
        TOTAL,
    );
    tally.assert_none_lost();
    let repeats: usize = tally.repeated.iter().map(|(_, n)| n - 1).sum();
    eprintln!("20 kills into Kafka: 0 of {TOTAL} lost, {repeats} repeated");
    let (status, stderr) = agent.terminate();
    assert!(status.success(), "{stderr}");
}
