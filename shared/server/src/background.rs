//! The loop every service's background work runs in (docs/architecture.md, "Background work").

use std::future::Future;
use std::time::Duration;

use tokio::sync::watch;

/// Runs `tick` every `interval` until `stop` turns true. The first tick runs at once, so a restart
/// finishes what a crash left; a slow tick delays the next one instead of bunching them up.
pub async fn every<F, Fut>(interval: Duration, mut stop: watch::Receiver<bool>, mut tick: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = ()>,
{
    let mut ticks = tokio::time::interval(interval);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = ticks.tick() => {}
            _ = stop.wait_for(|stopped| *stopped) => return,
        }
        tick().await;
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    #[tokio::test(start_paused = true)]
    async fn it_ticks_at_once_then_every_interval_until_stopped() {
        let (stop, stopped) = watch::channel(false);
        let ticks = Arc::new(AtomicUsize::new(0));
        let counted = ticks.clone();
        let work = tokio::spawn(every(Duration::from_secs(10), stopped, move || {
            let counted = counted.clone();
            async move {
                counted.fetch_add(1, Ordering::SeqCst);
            }
        }));
        tokio::time::sleep(Duration::from_secs(25)).await;
        assert_eq!(ticks.load(Ordering::SeqCst), 3, "at 0 s, 10 s and 20 s");
        stop.send(true).expect("the loop listens");
        work.await.expect("the loop ends when told to");
        tokio::time::sleep(Duration::from_secs(60)).await;
        assert_eq!(ticks.load(Ordering::SeqCst), 3, "nothing after the stop");
    }
}
