//! The files in deploy/ say what logsieve does: the example configs are valid configs, and
//! every metric the alert rules use is one logsieve exposes. (scripts/deploy-test.sh checks the
//! same files with the real tools: podman, kubernetes-validate, systemd-analyze, promtool.)

mod common;

use std::fs;
use std::process::Command;

use common::*;

/// `logsieve validate` on an example config, with the seed rules beside it and the model
/// assets where the repository keeps them.
fn validates(example: &str) {
    let dir = tempfile::tempdir().unwrap();
    fs::copy(repo_path(example), dir.path().join("logsieve.toml")).unwrap();
    fs::copy(
        repo_path("config/rules.toml"),
        dir.path().join("rules.toml"),
    )
    .unwrap();
    let out = Command::new(BIN)
        .current_dir(repo_path("."))
        .args(["validate", "--config"])
        .arg(dir.path().join("logsieve.toml"))
        .env("HOSTNAME", "test-host")
        .env("LOGSIEVE_DATA_DIR", dir.path().join("data"))
        .env_remove("GROQ_API_KEY")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    // The example paths (/var/log, /var/lib/logsieve) need not exist here: only they may fail.
    let real_problems: Vec<&str> = stderr
        .lines()
        .filter(|l| l.contains(".toml:"))
        .filter(|l| !l.contains("does not exist"))
        .collect();
    assert!(real_problems.is_empty(), "{example}:\n{stderr}");
}

#[test]
fn the_systemd_example_config_is_valid() {
    validates("deploy/systemd/logsieve.toml");
}

#[test]
fn the_container_config_is_valid() {
    validates("deploy/container/logsieve.toml");
}

#[test]
fn every_metric_the_alert_rules_use_is_one_logsieve_exposes() {
    let alerts = fs::read_to_string(repo_path("deploy/prometheus/alerts.yml")).unwrap();
    let mut sources = String::new();
    for entry in walk(&repo_path("src")) {
        sources.push_str(&fs::read_to_string(entry).unwrap());
    }
    let names: std::collections::BTreeSet<&str> = alerts
        .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .filter(|w| w.starts_with("logsieve_"))
        .collect();
    assert!(names.len() >= 8, "{names:?}");
    for name in names {
        assert!(
            sources.contains(&format!("\"{name}\"")),
            "alerts.yml uses {name}, which logsieve does not declare"
        );
    }
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut files = Vec::new();
    for entry in fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        if path.is_dir() {
            files.extend(walk(&path));
        } else if path.extension().is_some_and(|e| e == "rs") {
            files.push(path);
        }
    }
    files
}
