//! Build output: [`BuildEvent`]s as the classic builder prints them, and the [`Mux`] that
//! keeps them in Dockerfile order while independent stages build in parallel (the stage
//! printed first streams live; the others are held until their turn).

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;
use tokio::sync::mpsc;

/// What a build reports as it goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BuildEvent {
    /// Text for the client's terminal (`Step 1/3 : FROM busybox\n`, command output, ...).
    Stream(String),
    /// The id of the image the build made (Docker's `aux` message), just before
    /// `Successfully built`.
    ImageId(String),
}

/// Where events go.
pub type EventSender = mpsc::UnboundedSender<BuildEvent>;

struct Inner {
    /// Stage indexes in printing order.
    order: Vec<usize>,
    /// Position in `order` of the stage printing live.
    pos: usize,
    held: HashMap<usize, Vec<BuildEvent>>,
    done: HashSet<usize>,
    out: EventSender,
}

/// Orders the output of stages that run at the same time.
pub struct Mux {
    inner: Mutex<Inner>,
}

impl Mux {
    pub fn new(order: Vec<usize>, out: EventSender) -> Self {
        Self {
            inner: Mutex::new(Inner {
                order,
                pos: 0,
                held: HashMap::new(),
                done: HashSet::new(),
                out,
            }),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// An event of `stage`.
    pub fn emit(&self, stage: usize, ev: BuildEvent) {
        let mut g = self.lock();
        if g.order.get(g.pos) == Some(&stage) {
            let _ = g.out.send(ev);
        } else {
            g.held.entry(stage).or_default().push(ev);
        }
    }

    /// `stage` printed everything; the next stage's held output follows.
    pub fn finish(&self, stage: usize) {
        let mut g = self.lock();
        g.done.insert(stage);
        while let Some(&cur) = g.order.get(g.pos) {
            if let Some(held) = g.held.remove(&cur) {
                for ev in held {
                    let _ = g.out.send(ev);
                }
            }
            if !g.done.contains(&cur) {
                break;
            }
            g.pos += 1;
        }
    }

    /// Everything still held, in order (a build that stops early shows what it did).
    pub fn flush(&self) {
        let mut g = self.lock();
        let order = g.order.clone();
        for s in order {
            if let Some(held) = g.held.remove(&s) {
                for ev in held {
                    let _ = g.out.send(ev);
                }
            }
        }
        g.pos = g.order.len();
    }

    /// An event of the build as a whole (after all stages).
    pub fn global(&self, ev: BuildEvent) {
        let _ = self.lock().out.send(ev);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn texts(rx: &mut mpsc::UnboundedReceiver<BuildEvent>) -> Vec<String> {
        let mut v = Vec::new();
        while let Ok(BuildEvent::Stream(s)) = rx.try_recv() {
            v.push(s);
        }
        v
    }

    #[test]
    fn later_stages_wait_for_earlier_ones() {
        let (tx, mut rx) = mpsc::unbounded_channel();
        let m = Mux::new(vec![0, 2, 3], tx);
        m.emit(2, BuildEvent::Stream("b1".into()));
        m.emit(0, BuildEvent::Stream("a1".into()));
        m.emit(3, BuildEvent::Stream("c1".into()));
        assert_eq!(texts(&mut rx), vec!["a1"]);
        m.finish(3);
        assert!(texts(&mut rx).is_empty());
        m.finish(0);
        assert_eq!(texts(&mut rx), vec!["b1"]);
        m.emit(2, BuildEvent::Stream("b2".into()));
        assert_eq!(texts(&mut rx), vec!["b2"]);
        m.finish(2);
        assert_eq!(texts(&mut rx), vec!["c1"]);
    }

    #[test]
    fn flush_releases_everything_in_order() {
        let (tx, mut rx) = mpsc::unbounded_channel();
        let m = Mux::new(vec![0, 1], tx);
        m.emit(1, BuildEvent::Stream("b".into()));
        m.emit(0, BuildEvent::Stream("a".into()));
        m.flush();
        assert_eq!(texts(&mut rx), vec!["a", "b"]);
    }
}
