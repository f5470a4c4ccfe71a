//! Graceful shutdown in two phases: *draining* (stop accepting, finish what is in flight) and,
//! after a grace period, *forced* (answer whatever is left with `shutting_down`). A [`Shutdown`]
//! is a cheap, cloneable listener; a [`Trigger`] starts the sequence.

use std::time::Duration;

use tokio::sync::watch;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Running,
    Draining,
    Forced,
}

/// Starts a shutdown.
#[derive(Debug)]
pub struct Trigger {
    tx: watch::Sender<Phase>,
}

/// Listens for a shutdown.
#[derive(Debug, Clone)]
pub struct Shutdown {
    rx: watch::Receiver<Phase>,
}

/// A trigger and its first listener.
pub fn channel() -> (Trigger, Shutdown) {
    let (tx, rx) = watch::channel(Phase::Running);
    (Trigger { tx }, Shutdown { rx })
}

impl Trigger {
    /// Begins draining now and forces the rest after `grace`.
    pub fn begin(&self, grace: Duration) {
        self.tx.send_replace(Phase::Draining);
        let tx = self.tx.clone();
        tokio::spawn(async move {
            tokio::time::sleep(grace).await;
            tx.send_replace(Phase::Forced);
        });
    }
}

impl Shutdown {
    /// Whether draining has begun.
    pub fn is_draining(&self) -> bool {
        *self.rx.borrow() != Phase::Running
    }

    /// Resolves once draining has begun.
    pub async fn draining(&self) {
        let mut rx = self.rx.clone();
        let _ = rx.wait_for(|p| *p != Phase::Running).await;
    }

    /// Resolves once the grace period is over.
    pub async fn forced(&self) {
        let mut rx = self.rx.clone();
        let _ = rx.wait_for(|p| *p == Phase::Forced).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn phases_follow_each_other() {
        let (trigger, shutdown) = channel();
        assert!(!shutdown.is_draining());
        trigger.begin(Duration::from_millis(20));
        shutdown.draining().await;
        assert!(shutdown.is_draining());
        tokio::time::timeout(Duration::from_secs(5), shutdown.forced())
            .await
            .unwrap_or_else(|_| panic!("not forced after the grace period"));
    }
}
