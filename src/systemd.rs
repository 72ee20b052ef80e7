//! systemd's `Type=notify` protocol, through `sd-notify`: `READY=1` once the sources run,
//! `RELOADING=1` … `READY=1` around a config reload, `STOPPING=1` when the drain starts, and
//! `WATCHDOG=1` every half `WATCHDOG_USEC` when the unit has a watchdog (`WatchdogSec=`), sent
//! from the agent's runtime so that a hung runtime is noticed. Without `NOTIFY_SOCKET` (not
//! started by systemd) nothing is sent and nothing changes.

use std::time::Duration;

use sd_notify::NotifyState;
use tracing::{debug, warn};

fn send(states: &[NotifyState]) {
    if let Err(e) = sd_notify::notify(states) {
        warn!("cannot notify systemd ({e})");
    }
}

pub fn ready() {
    send(&[NotifyState::Ready]);
}

pub fn reloading() {
    match NotifyState::monotonic_usec_now() {
        Ok(now) => send(&[NotifyState::Reloading, now]),
        Err(_) => send(&[NotifyState::Reloading]),
    }
}

pub fn stopping() {
    send(&[NotifyState::Stopping]);
}

/// Sends `WATCHDOG=1` at half the watchdog's interval, if the unit has one.
pub fn spawn_watchdog() {
    let Some(interval) = sd_notify::watchdog_enabled() else {
        return;
    };
    debug!(?interval, "systemd watchdog on");
    tokio::spawn(async move {
        let mut tick = tokio::time::interval((interval / 2).max(Duration::from_millis(10)));
        loop {
            tick.tick().await;
            send(&[NotifyState::Watchdog]);
        }
    });
}
