//! `helpline health`: asks the gateway on this machine for `/healthz`, for container health checks
//! in images that carry no shell, curl or wget. Plain HTTP/1.0 over the standard library: the check
//! must not depend on anything that could itself be broken.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

const TIMEOUT: Duration = Duration::from_secs(3);

/// Where to reach a server that listens on `listen`: an unspecified address (`0.0.0.0`, `[::]`)
/// is reached on the loopback of the same family.
pub fn probe_address(listen: &str) -> Result<SocketAddr, String> {
    let mut addr: SocketAddr = listen
        .parse()
        .map_err(|_| format!("server.listen {listen:?} is not an IP address and port"))?;
    if addr.ip().is_unspecified() {
        addr.set_ip(match addr {
            SocketAddr::V4(_) => std::net::Ipv4Addr::LOCALHOST.into(),
            SocketAddr::V6(_) => std::net::Ipv6Addr::LOCALHOST.into(),
        });
    }
    Ok(addr)
}

/// `Ok` when `GET /healthz` on `listen` answers 200 within a few seconds.
pub fn check(listen: &str) -> Result<(), String> {
    let addr = probe_address(listen)?;
    let failed = |e: std::io::Error| format!("no answer from the gateway at {addr}: {e}");
    let mut stream = TcpStream::connect_timeout(&addr, TIMEOUT).map_err(failed)?;
    stream.set_read_timeout(Some(TIMEOUT)).map_err(failed)?;
    stream.set_write_timeout(Some(TIMEOUT)).map_err(failed)?;
    stream
        .write_all(b"GET /healthz HTTP/1.0\r\nHost: localhost\r\n\r\n")
        .map_err(failed)?;
    let mut head = [0u8; 16];
    let n = stream.read(&mut head).map_err(failed)?;
    let status = String::from_utf8_lossy(&head[..n]);
    if status.starts_with("HTTP/1.0 200") || status.starts_with("HTTP/1.1 200") {
        Ok(())
    } else {
        Err(format!(
            "the gateway at {addr} answered /healthz with {:?}",
            status.lines().next().unwrap_or("")
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unspecified_addresses_are_probed_on_loopback() {
        assert_eq!(
            probe_address("0.0.0.0:8080").ok(),
            "127.0.0.1:8080".parse().ok()
        );
        assert_eq!(probe_address("[::]:80").ok(), "[::1]:80".parse().ok());
        assert_eq!(
            probe_address("10.1.2.3:9000").ok(),
            "10.1.2.3:9000".parse().ok()
        );
        assert!(probe_address("localhost:80").is_err());
    }
}
