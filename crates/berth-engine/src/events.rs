//! The event bus: every state change publishes an [`Event`]; `/events` subscribers get the
//! live stream and, with `since`, the recent past kept in a bounded ring.

use berth_core::event::{Event, EventType};
use chrono::Utc;
use std::collections::{BTreeMap, VecDeque};
use std::sync::Mutex;
use tokio::sync::broadcast;

const RING: usize = 1024;

pub struct Events {
    tx: broadcast::Sender<Event>,
    past: Mutex<VecDeque<Event>>,
}

impl Default for Events {
    fn default() -> Self {
        Self::new()
    }
}

impl Events {
    pub fn new() -> Self {
        let (tx, _) = broadcast::channel(4096);
        Self {
            tx,
            past: Mutex::new(VecDeque::with_capacity(RING)),
        }
    }

    pub fn publish(
        &self,
        typ: EventType,
        action: &str,
        actor_id: &str,
        attributes: BTreeMap<String, String>,
    ) {
        let ev = Event {
            typ,
            action: action.to_string(),
            actor_id: actor_id.to_string(),
            attributes,
            time: Utc::now(),
        };
        // Sending under the lock keeps `subscribe` gap-free.
        let mut past = self.past.lock().unwrap_or_else(|p| p.into_inner());
        if past.len() == RING {
            past.pop_front();
        }
        past.push_back(ev.clone());
        let _ = self.tx.send(ev);
    }

    /// The kept past events and a receiver for what comes next, with no gap between them.
    pub fn subscribe(&self) -> (Vec<Event>, broadcast::Receiver<Event>) {
        let past = self.past.lock().unwrap_or_else(|p| p.into_inner());
        let rx = self.tx.subscribe();
        (past.iter().cloned().collect(), rx)
    }
}
