//! Kafka helpers for the tests and the Kafka benchmark: the project's broker script, topic
//! creation, and names no earlier run against the same broker used.
#![allow(dead_code)] // each user takes its own subset

use std::path::Path;
use std::process::{Command, Output};
use std::time::Duration;

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::ClientConfig;

/// `scripts/kafka-broker.sh <action>` for a broker on `port`; returns what it prints (the
/// broker's address, for `start`).
pub fn broker_script(action: &str, port: u16) -> String {
    let out = run_broker_script(action, port).expect("run scripts/kafka-broker.sh");
    assert!(
        out.status.success(),
        "kafka-broker.sh {action}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

fn run_broker_script(action: &str, port: u16) -> std::io::Result<Output> {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/kafka-broker.sh");
    Command::new(script)
        .arg(action)
        .env("KAFKA_BROKER_PORT", port.to_string())
        .output()
}

/// Stops the broker a test started on this port when the test ends, however it ends.
pub struct StopsBroker(pub u16);

impl Drop for StopsBroker {
    fn drop(&mut self) {
        let _ = run_broker_script("stop", self.0);
    }
}

/// A name no other test (or earlier run against the same broker) uses.
pub fn unique(what: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_nanos();
    format!("{what}-{}-{nanos}", std::process::id())
}

/// Creates a topic (replication 1); one that exists already is fine: a producer's metadata
/// request may have created it (auto-creation).
pub fn create_topic(broker: &str, topic: &str, partitions: i32) {
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", broker)
        .create()
        .expect("admin client");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let new = NewTopic::new(topic, partitions, TopicReplication::Fixed(1));
    let options = AdminOptions::new().operation_timeout(Some(Duration::from_secs(10)));
    let results = runtime
        .block_on(admin.create_topics([&new], &options))
        .expect("create topics");
    for result in results {
        match result {
            Ok(_) | Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
            Err((t, e)) => panic!("create topic {t}: {e}"),
        }
    }
}
