//! Where a request comes from, and how many WebSockets each source and the whole node hold
//! (`limits.sockets_per_source`, `limits.max_sockets`).
//!
//! The source is the connection's peer address, or, when that peer is one of
//! `limits.trusted_proxies`, the last address in `X-Forwarded-For` that is not itself a trusted
//! proxy (the first hop nobody we trust vouches for; anything left of it the client could have
//! written). Sources live only as keys of an in-memory count while their sockets are open: never in
//! Redis, never in a log line, never in a metric label.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};

use axum::http::HeaderMap;
use helpline_config::Limits;
use helpline_router::Telemetry;
use prometheus::IntGaugeVec;

/// The node's open WebSockets, by source. Cheap to clone; clones share the counts.
#[derive(Clone)]
pub struct Sockets {
    inner: Arc<Inner>,
}

struct Inner {
    counts: Mutex<Counts>,
    per_source: u32,
    max: u32,
    trusted: Vec<IpAddr>,
}

#[derive(Default)]
struct Counts {
    total: u32,
    by_source: HashMap<IpAddr, u32>,
}

/// Why an upgrade was refused before it happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// The node holds `limits.max_sockets`: another node should take it (HTTP 503).
    NodeFull,
    /// This source holds `limits.sockets_per_source` (HTTP 429).
    SourceFull,
}

impl Refused {
    /// The metric label.
    pub fn reason(self) -> &'static str {
        match self {
            Refused::NodeFull => "node_full",
            Refused::SourceFull => "source_full",
        }
    }
}

/// One open socket's place in the counts, given back on drop (however the socket ends).
pub struct Permit {
    sockets: Sockets,
    source: IpAddr,
    /// `helpline_sockets_open`, kept up to date as permits come back.
    open: IntGaugeVec,
}

impl Drop for Permit {
    fn drop(&mut self) {
        let mut counts = self.sockets.lock();
        counts.total = counts.total.saturating_sub(1);
        if let Some(n) = counts.by_source.get_mut(&self.source) {
            *n -= 1;
            if *n == 0 {
                counts.by_source.remove(&self.source);
            }
        }
        self.open
            .with_label_values(&[] as &[&str])
            .set(i64::from(counts.total));
    }
}

impl Sockets {
    /// `limits` has been validated: every trusted proxy parses.
    pub fn new(limits: &Limits) -> Sockets {
        Sockets {
            inner: Arc::new(Inner {
                counts: Mutex::default(),
                per_source: limits.sockets_per_source,
                max: limits.max_sockets,
                trusted: limits
                    .trusted_proxies
                    .iter()
                    .filter_map(|p| p.parse().ok())
                    .collect(),
            }),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Counts> {
        // A poisoned lock only means a panic elsewhere; the counts themselves stay consistent.
        self.inner
            .counts
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The source of a request that came over a connection from `peer`.
    pub fn source(&self, peer: SocketAddr, headers: &HeaderMap) -> IpAddr {
        let trusted = |ip: &IpAddr| self.inner.trusted.contains(ip);
        if !trusted(&peer.ip()) {
            return peer.ip();
        }
        let hops = headers
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .map(str::trim)
            .collect::<Vec<_>>();
        for hop in hops.iter().rev() {
            match hop.parse::<IpAddr>() {
                Ok(ip) if trusted(&ip) => continue,
                Ok(ip) => return ip,
                // A hop we cannot read was written by someone we do not trust: stop at the last
                // trusted proxy, which is then the source.
                Err(_) => break,
            }
        }
        peer.ip()
    }

    /// Counts one more socket for `source`, or says why not; counted in the metrics either way.
    pub fn admit(&self, source: IpAddr, telemetry: &Telemetry) -> Result<Permit, Refused> {
        let mut counts = self.lock();
        let refused = if counts.total >= self.inner.max {
            Some(Refused::NodeFull)
        } else if counts.by_source.get(&source).copied().unwrap_or(0) >= self.inner.per_source {
            Some(Refused::SourceFull)
        } else {
            None
        };
        if let Some(why) = refused {
            telemetry
                .sockets_refused_total
                .with_label_values(&[why.reason()])
                .inc();
            return Err(why);
        }
        counts.total += 1;
        *counts.by_source.entry(source).or_default() += 1;
        telemetry
            .sockets_open
            .with_label_values(&[] as &[&str])
            .set(i64::from(counts.total));
        Ok(Permit {
            sockets: self.clone(),
            source,
            open: telemetry.sockets_open.clone(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sockets(per_source: u32, max: u32, trusted: &[&str]) -> Sockets {
        Sockets::new(&Limits {
            sockets_per_source: per_source,
            max_sockets: max,
            trusted_proxies: trusted.iter().map(|s| (*s).to_owned()).collect(),
            ..Limits::default()
        })
    }

    fn forwarded(value: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        if let Ok(v) = value.parse() {
            h.insert("x-forwarded-for", v);
        }
        h
    }

    #[test]
    fn forwarded_for_is_believed_only_from_trusted_proxies() {
        let s = sockets(2, 10, &["10.0.0.2", "10.0.0.3"]);
        let proxy: SocketAddr = "10.0.0.2:5000".parse().unwrap();
        let stranger: SocketAddr = "198.51.100.7:5000".parse().unwrap();
        let h = forwarded("1.1.1.1, 203.0.113.9, 10.0.0.3");
        assert_eq!(
            s.source(proxy, &h),
            "203.0.113.9".parse::<IpAddr>().unwrap()
        );
        assert_eq!(s.source(stranger, &h), stranger.ip());
        assert_eq!(s.source(proxy, &HeaderMap::new()), proxy.ip());
        assert_eq!(s.source(proxy, &forwarded("junk, 10.0.0.3")), proxy.ip());
    }

    #[test]
    fn permits_count_per_source_and_per_node_and_come_back_on_drop() {
        let t = Telemetry::new();
        let s = sockets(2, 3, &[]);
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        let b: IpAddr = "192.0.2.2".parse().unwrap();
        let a1 = s.admit(a, &t).unwrap();
        let _a2 = s.admit(a, &t).unwrap();
        assert_eq!(s.admit(a, &t).err(), Some(Refused::SourceFull));
        let _b1 = s.admit(b, &t).unwrap();
        assert_eq!(s.admit(b, &t).err(), Some(Refused::NodeFull));
        drop(a1);
        let _a3 = s.admit(a, &t).unwrap();
        assert_eq!(t.sockets_open.with_label_values(&[] as &[&str]).get(), 3);
    }
}
