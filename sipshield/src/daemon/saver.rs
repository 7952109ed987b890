//! Writing the state file without stalling the daemon. A snapshot is taken
//! on the event loop (cheap), written by a thread of its own (serialising
//! and fsyncing 1M bans takes seconds), and saves are spaced out: at least
//! `MIN_GAP` apart, and ten times as long as the last one took, so a big
//! state costs the daemon at most a tenth of its time. What a crash can lose
//! is the last gap's policy bookkeeping; the bans themselves are in the
//! pinned kernel maps, which a restarted daemon adopts.

use std::{
    thread::JoinHandle,
    time::{Duration, Instant},
};

use crate::state::{State, StateError, StateFile};

const MIN_GAP: Duration = Duration::from_secs(1);

type Outcome = (Result<(), StateError>, Duration);

#[derive(Debug)]
pub struct StateSaver {
    file: StateFile,
    in_flight: Option<JoinHandle<Outcome>>,
    next_allowed: Instant,
}

/// What `poll` learned about the save that was running.
#[derive(Debug, PartialEq, Eq)]
pub enum Finished {
    Nothing,
    Saved,
    /// The save failed (already logged): the state is still unsaved.
    Failed,
}

impl StateSaver {
    pub fn new(file: StateFile) -> StateSaver {
        StateSaver {
            file,
            in_flight: None,
            next_allowed: Instant::now(),
        }
    }

    pub fn file(&self) -> &StateFile {
        &self.file
    }

    /// Collects a finished save, if any.
    pub fn poll(&mut self) -> Finished {
        match &self.in_flight {
            Some(h) if h.is_finished() => {}
            _ => return Finished::Nothing,
        }
        let Some(handle) = self.in_flight.take() else {
            return Finished::Nothing;
        };
        match handle.join() {
            Ok((Ok(()), took)) => {
                self.next_allowed = Instant::now() + MIN_GAP.max(took * 10);
                Finished::Saved
            }
            Ok((Err(e), _)) => {
                log::error!("saving state: {e}");
                self.next_allowed = Instant::now() + MIN_GAP;
                Finished::Failed
            }
            Err(_) => {
                log::error!("saving state: the writer thread panicked");
                self.next_allowed = Instant::now() + MIN_GAP;
                Finished::Failed
            }
        }
    }

    /// True when a new save may start now.
    pub fn ready(&self) -> bool {
        self.in_flight.is_none() && Instant::now() >= self.next_allowed
    }

    /// Starts writing `snapshot` in the background. Call only when `ready`.
    pub fn start(&mut self, snapshot: State) {
        let file = self.file.clone();
        let spawned = std::thread::Builder::new()
            .name("state-save".into())
            .spawn(move || {
                let t = Instant::now();
                (file.save(&snapshot), t.elapsed())
            });
        match spawned {
            Ok(h) => self.in_flight = Some(h),
            Err(e) => log::error!("saving state: cannot start the writer thread: {e}"),
        }
    }

    /// Waits for a save in flight (shutdown); true if it succeeded.
    pub fn wait(&mut self) -> bool {
        match self.in_flight.take() {
            None => true,
            Some(h) => matches!(h.join(), Ok((Ok(()), _))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state(n: u64) -> State {
        State {
            saved_at: n,
            ..State::default()
        }
    }

    fn saved_at(file: &StateFile) -> u64 {
        let text = std::fs::read_to_string(file.path()).unwrap();
        serde_json::from_str::<State>(&text).unwrap().saved_at
    }

    #[test]
    fn saves_in_the_background_then_waits_the_gap() {
        let dir = tempfile::tempdir().unwrap();
        let mut saver = StateSaver::new(StateFile::in_dir(dir.path()));
        assert!(saver.ready());
        saver.start(state(1));
        assert!(!saver.ready(), "one save at a time");
        let t = Instant::now();
        while saver.poll() == Finished::Nothing {
            assert!(t.elapsed() < Duration::from_secs(5));
            std::thread::sleep(Duration::from_millis(1));
        }
        assert_eq!(saved_at(saver.file()), 1);
        assert!(!saver.ready(), "the next save waits at least MIN_GAP");
        assert_eq!(saver.poll(), Finished::Nothing);
    }

    #[test]
    fn wait_finishes_the_save_in_flight() {
        let dir = tempfile::tempdir().unwrap();
        let mut saver = StateSaver::new(StateFile::in_dir(dir.path()));
        saver.start(state(7));
        assert!(saver.wait());
        assert_eq!(saved_at(saver.file()), 7);
        assert!(saver.wait(), "nothing in flight");
    }

    #[test]
    fn a_failed_save_is_reported() {
        let dir = tempfile::tempdir().unwrap();
        // The state "directory" is a file: the save cannot succeed.
        let blocker = dir.path().join("blocker");
        std::fs::write(&blocker, "").unwrap();
        let mut saver = StateSaver::new(StateFile::in_dir(&blocker));
        saver.start(state(1));
        let t = Instant::now();
        let outcome = loop {
            match saver.poll() {
                Finished::Nothing => {
                    assert!(t.elapsed() < Duration::from_secs(5));
                    std::thread::sleep(Duration::from_millis(1));
                }
                other => break other,
            }
        };
        assert_eq!(outcome, Finished::Failed);
    }
}
