//! A reporter that writes on a thread of its own, so that the builds never
//! wait for the terminal or a CI log pipe: events go into a bounded channel
//! and one thread hands them to the real view, and ticks it when nothing
//! happens (the one ticker of the live view).
//!
//! When the writer falls behind and the channel is full, build output lines
//! are left out of the view (they are all in `.pipeline/logs/<service>.log`)
//! and the view says how many; every other event waits for room, so states,
//! results and failures are never lost.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::mpsc::{self, RecvTimeoutError, SyncSender, TrySendError};
use std::thread::JoinHandle;
use std::time::Duration;

use crate::report::{Event, Reporter};

/// Events that may wait for the writer; a burst of build output beyond
/// this is not shown live.
const CAPACITY: usize = 4096;
/// How often the view is ticked when no event comes.
const TICK: Duration = Duration::from_millis(120);

enum Message {
    Event(Event),
    Done,
}

pub(crate) struct Background {
    tx: SyncSender<Message>,
    writer: Mutex<Option<JoinHandle<()>>>,
    /// Output lines left out per service since the last one shown.
    dropped: Mutex<HashMap<String, u64>>,
}

impl Background {
    /// Starts the writer thread for `view`.
    pub(crate) fn spawn(view: Box<dyn Reporter>) -> Background {
        let (tx, rx) = mpsc::sync_channel::<Message>(CAPACITY);
        let writer = std::thread::Builder::new()
            .name("pipeline-progress".into())
            .spawn(move || {
                loop {
                    match rx.recv_timeout(TICK) {
                        Ok(Message::Event(event)) => view.event(event),
                        Err(RecvTimeoutError::Timeout) => view.tick(),
                        Ok(Message::Done) | Err(RecvTimeoutError::Disconnected) => break,
                    }
                }
                view.done();
            })
            .expect("a thread can be started");
        Background {
            tx,
            writer: Mutex::new(Some(writer)),
            dropped: Mutex::new(HashMap::new()),
        }
    }
}

impl Reporter for Background {
    fn event(&self, event: Event) {
        let Event::Log { service, line } = event else {
            let _ = self.tx.send(Message::Event(event));
            return;
        };
        let mut dropped = self.dropped.lock().expect("dropped lock");
        if let Some(n) = dropped.get(&service).copied().filter(|n| *n > 0) {
            let note = Event::Log {
                service: service.clone(),
                line: format!(
                    "… {n} lines not shown here (the writer fell behind); all are in .pipeline/logs/{service}.log"
                ),
            };
            match self.tx.try_send(Message::Event(note)) {
                Ok(()) => {
                    dropped.insert(service.clone(), 0);
                }
                Err(_) => {
                    *dropped.entry(service).or_default() += 1;
                    return;
                }
            }
        }
        match self.tx.try_send(Message::Event(Event::Log {
            service: service.clone(),
            line,
        })) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) => *dropped.entry(service).or_default() += 1,
            Err(TrySendError::Disconnected(_)) => {}
        }
    }

    fn done(&self) {
        // Lines left out at the very end are still counted for the view.
        let dropped: Vec<(String, u64)> = self
            .dropped
            .lock()
            .expect("dropped lock")
            .drain()
            .filter(|(_, n)| *n > 0)
            .collect();
        for (service, n) in dropped {
            let line = format!(
                "… {n} lines not shown here (the writer fell behind); all are in .pipeline/logs/{service}.log"
            );
            let _ = self.tx.send(Message::Event(Event::Log { service, line }));
        }
        let _ = self.tx.send(Message::Done);
        if let Some(writer) = self.writer.lock().expect("writer lock").take() {
            let _ = writer.join();
        }
    }
}

impl Drop for Background {
    fn drop(&mut self) {
        self.done();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

    /// A view that blocks until released, then counts what it got.
    struct Stalled {
        open: Arc<AtomicBool>,
        logs: Arc<Mutex<Vec<String>>>,
        others: Arc<AtomicUsize>,
        ticks: Arc<AtomicUsize>,
    }

    impl Reporter for Stalled {
        fn event(&self, event: Event) {
            while !self.open.load(Ordering::SeqCst) {
                std::thread::sleep(Duration::from_millis(5));
            }
            match event {
                Event::Log { line, .. } => self.logs.lock().unwrap().push(line),
                _ => {
                    self.others.fetch_add(1, Ordering::SeqCst);
                }
            }
        }
        fn tick(&self) {
            self.ticks.fetch_add(1, Ordering::SeqCst);
        }
    }

    #[test]
    fn a_stalled_view_never_holds_up_the_sender_and_loses_no_state() {
        let open = Arc::new(AtomicBool::new(false));
        let logs = Arc::new(Mutex::new(Vec::new()));
        let others = Arc::new(AtomicUsize::new(0));
        let ticks = Arc::new(AtomicUsize::new(0));
        let bg = Background::spawn(Box::new(Stalled {
            open: open.clone(),
            logs: logs.clone(),
            others: others.clone(),
            ticks: ticks.clone(),
        }));
        let started = std::time::Instant::now();
        let lines = CAPACITY * 3;
        for i in 0..lines {
            bg.event(Event::Log {
                service: "a".into(),
                line: format!("line {i}"),
            });
        }
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "the sender was held up by the view"
        );
        open.store(true, Ordering::SeqCst);
        // Once the view has caught up, lines are shown again.
        std::thread::sleep(Duration::from_millis(300));
        bg.event(Event::Log {
            service: "a".into(),
            line: "after".into(),
        });
        bg.event(Event::Hashed {
            files: 1,
            millis: 1,
        });
        bg.done();
        let logs = logs.lock().unwrap();
        assert!(logs.len() < lines, "some lines were left out");
        assert!(
            logs.iter()
                .any(|l| l.contains("lines not shown here") && l.contains(".pipeline/logs/a.log")),
            "the view says how many: {:?}",
            logs.iter().rev().take(3).collect::<Vec<_>>()
        );
        assert_eq!(logs.last().map(String::as_str), Some("after"));
        assert_eq!(others.load(Ordering::SeqCst), 1, "no state event is lost");
    }

    #[test]
    fn an_idle_view_is_ticked() {
        let ticks = Arc::new(AtomicUsize::new(0));
        let bg = Background::spawn(Box::new(Stalled {
            open: Arc::new(AtomicBool::new(true)),
            logs: Arc::default(),
            others: Arc::default(),
            ticks: ticks.clone(),
        }));
        std::thread::sleep(TICK * 4);
        bg.done();
        assert!(ticks.load(Ordering::SeqCst) >= 2);
    }
}
