//! CPU time this process's threads used, by runtime: the servers'
//! (`bench-server`) and the load generator's (`bench-client`) threads,
//! read from `/proc/self/task/*/schedstat` (nanoseconds on the CPU). The
//! CPU a call costs is what bounds throughput on a small machine, and it
//! is far less disturbed by other work on the machine than requests/s.

use std::time::{Duration, Instant};

/// CPU time used by the server and the client threads.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct CpuUse {
    /// The servers' runtime (Contacts, the gateway, the echo server).
    pub server: Duration,
    /// The load generator's runtime.
    pub client: Duration,
}

impl CpuUse {
    /// CPU used since `earlier` (a thread that ended meanwhile is not counted).
    fn since(self, earlier: CpuUse) -> CpuUse {
        CpuUse {
            server: self.server.saturating_sub(earlier.server),
            client: self.client.saturating_sub(earlier.client),
        }
    }
}

/// The CPU used so far by the threads alive now; `None` where `/proc` has
/// no per-thread scheduler statistics.
pub fn sample() -> Option<CpuUse> {
    let mut total = CpuUse::default();
    for task in std::fs::read_dir("/proc/self/task").ok()?.flatten() {
        let Ok(name) = std::fs::read_to_string(task.path().join("comm")) else { continue };
        let Ok(schedstat) = std::fs::read_to_string(task.path().join("schedstat")) else { continue };
        let nanos = schedstat.split_whitespace().next()?.parse::<u64>().ok()?;
        let used = Duration::from_nanos(nanos);
        match name.trim_end() {
            name if name.starts_with("bench-server") => total.server += used,
            name if name.starts_with("bench-client") => total.client += used,
            _ => {}
        }
    }
    Some(total)
}

/// Samples at `from` and at `to` on a thread of its own (a busy runtime
/// would sample late); join it for the CPU used in between.
pub fn during(from: Instant, to: Instant) -> std::thread::JoinHandle<Option<CpuUse>> {
    std::thread::spawn(move || {
        sleep_until(from);
        let before = sample()?;
        sleep_until(to);
        Some(sample()?.since(before))
    })
}

fn sleep_until(at: Instant) {
    let now = Instant::now();
    if at > now {
        std::thread::sleep(at - now);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn busy_named_threads_are_counted_by_runtime() {
        use std::sync::Arc;
        use std::sync::atomic::{AtomicBool, Ordering};

        // Two named threads spin until told to stop; the test stops them
        // once each runtime shows 40 ms of CPU (however busy the machine),
        // and fails rather than hangs if that never happens.
        let stop = Arc::new(AtomicBool::new(false));
        let spin = |name: &str| {
            let stop = Arc::clone(&stop);
            std::thread::Builder::new()
                .name(name.to_owned())
                .spawn(move || {
                    let mut x = 0u64;
                    while !stop.load(Ordering::Relaxed) {
                        x = std::hint::black_box(x.wrapping_add(1));
                    }
                    x
                })
                .expect("spawn")
        };
        let before = sample().expect("schedstat is readable on Linux");
        let threads = [spin("bench-server-0"), spin("bench-client-0")];
        let enough = Duration::from_millis(40);
        let deadline = Instant::now() + Duration::from_secs(60);
        let used = loop {
            let used = sample().expect("sample").since(before);
            if (used.server >= enough && used.client >= enough) || Instant::now() > deadline {
                break used;
            }
            std::thread::sleep(Duration::from_millis(5));
        };
        stop.store(true, Ordering::Relaxed);
        for thread in threads {
            thread.join().expect("join");
        }
        assert!(used.server >= enough, "{used:?}");
        assert!(used.client >= enough, "{used:?}");
    }
}
