//! `POST /classify` at its edges, through the real binary: a client that trickles its request
//! a byte a second (cut off, while others are served), 100 clients at once, and CSV files as
//! spreadsheets and other tools write them (a quoted newline, a byte-order mark, CRLF, 100k
//! rows).

mod common;

use std::fs;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use common::*;

/// An agent with no sources: a classification server with the seed rules and routes.
fn classification_server() -> (Setup, Agent) {
    let setup = Setup::new();
    let config = format!(
        "[server]\naddress = \"127.0.0.1:{}\"\n[[tiers.route]]\nsource = \"LegacyCRM\"\nto = \"llm\"\n[tiers.regex]\nrules = \"{}\"\n",
        setup.port,
        repo_path("config/rules.toml").display()
    );
    fs::write(setup.path("logsieve.toml"), config).unwrap();
    let agent = setup.start(&[]);
    (setup, agent)
}

fn post_csv(agent: &Agent, body: Vec<u8>) -> (u16, String) {
    let response = reqwest::blocking::Client::new()
        .post(agent.url("/classify"))
        .header("content-type", "text/csv")
        .body(body)
        .send()
        .unwrap();
    (response.status().as_u16(), response.text().unwrap())
}

#[test]
fn a_client_trickling_its_request_is_cut_off_and_others_are_served_meanwhile() {
    let (_setup, agent) = classification_server();
    let mut slow = TcpStream::connect(("127.0.0.1", agent.port)).unwrap();
    slow.set_read_timeout(Some(Duration::from_secs(1))).unwrap();
    let request = b"POST /classify HTTP/1.1\r\nHost: x\r\nContent-Type: text/csv\r\n";
    let started = Instant::now();
    let mut cut_off = None;
    // One byte a second (the read's timeout paces it) until the server ends the connection.
    for byte in request.iter().cycle() {
        if slow.write_all(&[*byte]).is_err() {
            cut_off = Some(started.elapsed());
            break;
        }
        let mut buf = [0u8; 512];
        match slow.read(&mut buf) {
            Ok(_) => {
                // The end of the stream, or an error response before it.
                cut_off = Some(started.elapsed());
                break;
            }
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(_) => {
                cut_off = Some(started.elapsed());
                break;
            }
        }
        // Meanwhile another client is served at once.
        let t = Instant::now();
        let health = reqwest::blocking::get(agent.url("/health")).unwrap();
        assert_eq!(health.status(), 200);
        assert!(t.elapsed() < Duration::from_secs(1));
        if started.elapsed() > Duration::from_secs(40) {
            break;
        }
    }
    let cut_off = cut_off.expect("the trickling client was never cut off");
    assert!(
        cut_off < Duration::from_secs(20),
        "cut off after {cut_off:?}"
    );
}

#[test]
fn a_hundred_clients_at_once_are_all_answered_correctly() {
    let (_setup, agent) = classification_server();
    let url = agent.url("/classify");
    let clients: Vec<_> = (0..100)
        .map(|i| {
            let url = url.clone();
            std::thread::spawn(move || {
                let body = format!(
                    "source,log_message\nModernCRM,User User{i} logged in.\nLegacyCRM,case {i} failed\n"
                );
                let response = reqwest::blocking::Client::new()
                    .post(url)
                    .header("content-type", "text/csv")
                    .timeout(Duration::from_secs(60))
                    .body(body)
                    .send()
                    .unwrap();
                (i, response.status().as_u16(), response.text().unwrap())
            })
        })
        .collect();
    for client in clients {
        let (i, status, text) = client.join().unwrap();
        assert_eq!(status, 200, "{text}");
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], "source,log_message,target_label,tier");
        assert_eq!(
            lines[1],
            format!("ModernCRM,User User{i} logged in.,User Action,regex")
        );
        assert_eq!(
            lines[2],
            format!("LegacyCRM,case {i} failed,Unclassified,fallback")
        );
    }
}

#[test]
fn csv_with_a_bom_crlf_and_a_quoted_newline_is_read_as_a_spreadsheet_writes_it() {
    let (_setup, agent) = classification_server();
    let mut body = b"\xef\xbb\xbf".to_vec();
    body.extend_from_slice(
        b"source,log_message\r\nModernCRM,\"Backup completed successfully.\r\nsecond line\"\r\nModernCRM,\"User User7 logged in.\"\r\n",
    );
    let (status, text) = post_csv(&agent, body);
    assert_eq!(status, 200, "{text}");
    let mut reader = csv::Reader::from_reader(text.as_bytes());
    let headers = reader.headers().unwrap().clone();
    assert_eq!(
        &headers[0], "source",
        "the BOM is not part of the first column's name"
    );
    let rows: Vec<csv::StringRecord> = reader.records().map(|r| r.unwrap()).collect();
    assert_eq!(rows.len(), 2);
    assert_eq!(&rows[0][1], "Backup completed successfully.\r\nsecond line");
    assert_eq!(&rows[0][2], "System Notification");
    assert_eq!(&rows[1][2], "User Action");
}

#[test]
fn a_csv_of_100k_rows_comes_back_whole_and_in_order() {
    let (_setup, agent) = classification_server();
    let mut body = String::from("source,log_message\n");
    for i in 0..100_000 {
        body.push_str(&format!("app,{}\n", line(i)));
    }
    let started = Instant::now();
    let (status, text) = post_csv(&agent, body.into_bytes());
    assert_eq!(status, 200);
    let mut reader = csv::Reader::from_reader(text.as_bytes());
    let messages: Vec<String> = reader
        .records()
        .map(|r| r.unwrap()[1].to_string())
        .collect();
    assert_eq!(messages.len(), 100_000);
    assert!(
        messages.iter().enumerate().all(|(i, m)| *m == line(i)),
        "in order"
    );
    eprintln!("100k rows in {:?}", started.elapsed());
}
