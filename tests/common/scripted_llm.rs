//! A scripted OpenAI-compatible chat server for fault injection: each request to
//! `/v1/chat/completions` is answered by a script (status, headers, body, delay) chosen from
//! the request number and the line it asks about. It records every request it got.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use futures_util::StreamExt;

/// What the server answers to one request.
#[derive(Clone, Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(&'static str, String)>,
    pub body: String,
    pub delay: Duration,
    /// Send the headers and the start of the body, then nothing, and never close.
    pub stall_body: bool,
}

impl Reply {
    /// A chat completion whose message content is `content`, with token usage.
    pub fn answer(content: &str) -> Reply {
        let body = serde_json::json!({
            "id": "chatcmpl-test",
            "object": "chat.completion",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 50, "completion_tokens": 7, "total_tokens": 57},
        });
        Reply {
            status: 200,
            headers: vec![],
            body: body.to_string(),
            delay: Duration::ZERO,
            stall_body: false,
        }
    }

    pub fn status(status: u16) -> Reply {
        Reply {
            status,
            headers: vec![],
            body: "{\"error\":\"scripted\"}".into(),
            delay: Duration::ZERO,
            stall_body: false,
        }
    }

    pub fn raw(body: &str) -> Reply {
        Reply {
            status: 200,
            headers: vec![],
            body: body.into(),
            delay: Duration::ZERO,
            stall_body: false,
        }
    }

    /// 200, the first bytes of a completion, then silence on an open connection.
    pub fn stalled_body() -> Reply {
        Reply {
            stall_body: true,
            ..Reply::raw("{\"choices\": [")
        }
    }

    pub fn header(mut self, name: &'static str, value: &str) -> Reply {
        self.headers.push((name, value.into()));
        self
    }

    pub fn after(mut self, delay: Duration) -> Reply {
        self.delay = delay;
        self
    }
}

/// One request as received.
#[derive(Clone, Debug)]
pub struct Seen {
    pub body: serde_json::Value,
    pub authorization: Option<String>,
}

impl Seen {
    /// The prompt's text.
    pub fn prompt(&self) -> &str {
        self.body["messages"][0]["content"].as_str().unwrap_or("")
    }
}

type Script = dyn Fn(usize, &str) -> Reply + Send + Sync;

struct Shared {
    script: Box<Script>,
    count: AtomicUsize,
    seen: Mutex<Vec<Seen>>,
}

pub struct ScriptedLlm {
    pub addr: SocketAddr,
    shared: Arc<Shared>,
    _runtime: tokio::runtime::Runtime,
}

impl ScriptedLlm {
    /// Starts a server answering request n (from 0) about a prompt with `script(n, prompt)`.
    pub fn start(script: impl Fn(usize, &str) -> Reply + Send + Sync + 'static) -> ScriptedLlm {
        let shared = Arc::new(Shared {
            script: Box::new(script),
            count: AtomicUsize::new(0),
            seen: Mutex::new(Vec::new()),
        });
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let listener = runtime
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .unwrap();
        let addr = listener.local_addr().unwrap();
        let app = Router::new()
            .route("/v1/chat/completions", post(chat))
            .with_state(shared.clone());
        runtime.spawn(async move { axum::serve(listener, app).await });
        ScriptedLlm {
            addr,
            shared,
            _runtime: runtime,
        }
    }

    pub fn base_url(&self) -> String {
        format!("http://{}/v1", self.addr)
    }

    /// Requests received so far.
    pub fn requests(&self) -> usize {
        self.shared.count.load(Ordering::SeqCst)
    }

    pub fn seen(&self) -> Vec<Seen> {
        self.shared.seen.lock().unwrap().clone()
    }
}

async fn chat(State(shared): State<Arc<Shared>>, headers: HeaderMap, body: Bytes) -> Response {
    let n = shared.count.fetch_add(1, Ordering::SeqCst);
    let body: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
    let seen = Seen {
        authorization: headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .map(String::from),
        body,
    };
    let reply = (shared.script)(n, seen.prompt());
    shared.seen.lock().unwrap().push(seen);
    if !reply.delay.is_zero() {
        tokio::time::sleep(reply.delay).await;
    }
    let body = if reply.stall_body {
        let start = futures_util::stream::iter([Ok::<_, std::io::Error>(Bytes::from(reply.body))]);
        axum::body::Body::from_stream(start.chain(futures_util::stream::pending()))
    } else {
        axum::body::Body::from(reply.body)
    };
    let mut response = (
        StatusCode::from_u16(reply.status).unwrap(),
        [("content-type", "application/json")],
        body,
    )
        .into_response();
    for (name, value) in reply.headers {
        response
            .headers_mut()
            .insert(name, HeaderValue::from_str(&value).unwrap());
    }
    response
}
