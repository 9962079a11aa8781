//! When a sender sends: a Linux timerfd, armed once for the whole run, so each send leaves at its
//! own instant. Tokio's timer rounds every deadline to its 1 ms wheel: at 10,000 sends a second it
//! would wake ten senders together each millisecond and hand the server bursts that independent
//! contacts never send. A timerfd is a kernel high-resolution timer, as precise as the kernel
//! can wake a task.

use std::io;
use std::os::fd::OwnedFd;
use std::time::Duration;

use rustix::time::{
    timerfd_create, timerfd_settime, Itimerspec, TimerfdClockId, TimerfdFlags, TimerfdTimerFlags,
    Timespec,
};
use tokio::io::unix::AsyncFd;
use tokio::time::Instant;

/// A periodic schedule that yields each send's scheduled instant, late ones at once (open loop:
/// the schedule is kept, never stretched).
pub struct Pacer {
    timer: AsyncFd<OwnedFd>,
    first: Instant,
    period: Duration,
    /// Sends handed out so far.
    handed: u32,
    /// Expirations read from the timer and not yet handed out.
    pending: u64,
}

impl Pacer {
    /// Fires at `first`, then every `period`.
    pub fn new(first: Instant, period: Duration) -> io::Result<Pacer> {
        let fd = timerfd_create(
            TimerfdClockId::Monotonic,
            TimerfdFlags::NONBLOCK | TimerfdFlags::CLOEXEC,
        )?;
        // A zero first expiry would disarm the timer: a start already past fires at once.
        let wait = first
            .saturating_duration_since(Instant::now())
            .max(Duration::from_nanos(1));
        let spec = Itimerspec {
            it_interval: timespec(period),
            it_value: timespec(wait),
        };
        timerfd_settime(&fd, TimerfdTimerFlags::empty(), &spec)?;
        // `AsyncFd::new` is deprecated because it accepts descriptors it does not own (tokio's
        // RUSTSEC-2026-0386); its replacement is `unsafe`, which this workspace forbids. Handing
        // it the `OwnedFd` itself is the sound use: the descriptor stays open exactly as long as
        // the `AsyncFd`.
        #[allow(deprecated)]
        let timer = AsyncFd::new(fd)?;
        Ok(Pacer {
            timer,
            first,
            period,
            handed: 0,
            pending: 0,
        })
    }

    /// Waits for the next send to come due and returns its scheduled instant. Cancel-safe: an
    /// expiry read is kept until handed out.
    pub async fn tick(&mut self) -> io::Result<Instant> {
        while self.pending == 0 {
            let mut ready = self.timer.readable().await?;
            let mut count = [0u8; 8];
            match rustix::io::read(ready.get_inner(), &mut count) {
                Ok(8) => self.pending = u64::from_ne_bytes(count),
                Ok(_) | Err(rustix::io::Errno::AGAIN) | Err(rustix::io::Errno::INTR) => {
                    ready.clear_ready()
                }
                Err(e) => return Err(e.into()),
            }
        }
        self.pending -= 1;
        let due = self.first + self.period * self.handed;
        self.handed += 1;
        Ok(due)
    }
}

fn timespec(d: Duration) -> Timespec {
    Timespec {
        tv_sec: i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
        tv_nsec: i64::from(d.subsec_nanos()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn sends_come_due_on_the_schedule_and_late_ones_at_once() {
        let period = Duration::from_micros(300);
        let first = Instant::now() + Duration::from_millis(2);
        let mut pacer = Pacer::new(first, period).unwrap();
        let due = pacer.tick().await.unwrap();
        assert_eq!(due, first);
        assert!(Instant::now() >= first, "a send must not come due early");
        // Falling behind by ten periods: the missed sends come due at once, with their own instants.
        std::thread::sleep(period * 10);
        for i in 1..=10 {
            let due = pacer.tick().await.unwrap();
            assert_eq!(due, first + period * i);
        }
    }
}
