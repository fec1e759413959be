//! The address checks of downloads (server-side request forgery): which IP addresses a download may connect to,
//! and the DNS resolver that keeps only those.

use std::error::Error as StdError;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use reqwest::dns::{Addrs, Name, Resolve, Resolving};

/// The error of [`PublicResolver`] when a name has no allowed address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("refused: address not allowed")]
pub struct AddressRefused;

/// The checked client's DNS resolver: the system resolver, keeping only allowed addresses. reqwest
/// connects only to the addresses a resolver returns, so the address checked is the one connected to.
#[derive(Debug, Clone, Copy, Default)]
pub struct PublicResolver;

impl Resolve for PublicResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let found = tokio::net::lookup_host((host.as_str(), 0)).await?;
            let addrs: Addrs = Box::new(allowed_addrs(found)?.into_iter());
            Ok(addrs)
        })
    }
}

/// The allowed addresses among `addrs`; an error when none is left. Dropping the others (rather than
/// refusing the name) keeps hosts that publish a stray private record next to public ones working.
pub fn allowed_addrs(addrs: impl IntoIterator<Item = SocketAddr>) -> Result<Vec<SocketAddr>, AddressRefused> {
    let allowed: Vec<SocketAddr> = addrs.into_iter().filter(|a| address_allowed(a.ip())).collect();
    if allowed.is_empty() {
        Err(AddressRefused)
    } else {
        Ok(allowed)
    }
}

/// True when downloads may connect to `ip`: a globally reachable unicast address. Refused: loopback,
/// private, link-local (cloud metadata 169.254.169.254, fd00:ec2::254), CGNAT, multicast, broadcast,
/// unspecified, documentation, benchmarking and reserved ranges; IPv4-mapped and NAT64 IPv6 addresses are
/// judged by the IPv4 address inside.
pub fn address_allowed(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => ipv4_allowed(v4),
        IpAddr::V6(v6) => ipv6_allowed(v6),
    }
}

/// IPv4 ranges that are not public unicast (IANA special-purpose registry).
const REFUSED_V4: [(Ipv4Addr, u8); 15] = [
    (Ipv4Addr::new(0, 0, 0, 0), 8),       // "this network", unspecified
    (Ipv4Addr::new(10, 0, 0, 0), 8),      // private
    (Ipv4Addr::new(100, 64, 0, 0), 10),   // CGNAT (shared address space)
    (Ipv4Addr::new(127, 0, 0, 0), 8),     // loopback
    (Ipv4Addr::new(169, 254, 0, 0), 16),  // link-local, cloud metadata
    (Ipv4Addr::new(172, 16, 0, 0), 12),   // private
    (Ipv4Addr::new(192, 0, 0, 0), 24),    // IETF protocol assignments
    (Ipv4Addr::new(192, 0, 2, 0), 24),    // documentation (TEST-NET-1)
    (Ipv4Addr::new(192, 88, 99, 0), 24),  // 6to4 relay anycast (deprecated)
    (Ipv4Addr::new(192, 168, 0, 0), 16),  // private
    (Ipv4Addr::new(198, 18, 0, 0), 15),   // benchmarking
    (Ipv4Addr::new(198, 51, 100, 0), 24), // documentation (TEST-NET-2)
    (Ipv4Addr::new(203, 0, 113, 0), 24),  // documentation (TEST-NET-3)
    (Ipv4Addr::new(224, 0, 0, 0), 4),     // multicast
    (Ipv4Addr::new(240, 0, 0, 0), 4),     // reserved, broadcast 255.255.255.255
];

fn ipv4_allowed(ip: Ipv4Addr) -> bool {
    let bits = u32::from(ip);
    !REFUSED_V4.iter().any(|(net, len)| in_prefix(bits.into(), u32::from(*net).into(), *len, 32))
}

/// Ranges inside global unicast (2000::/3) that are not public unicast.
const REFUSED_V6: [(Ipv6Addr, u8); 4] = [
    (Ipv6Addr::new(0x2001, 0, 0, 0, 0, 0, 0, 0), 23), // IETF protocol assignments: Teredo, benchmarking, ORCHID
    (Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0), 32), // documentation
    (Ipv6Addr::new(0x2002, 0, 0, 0, 0, 0, 0, 0), 16), // 6to4 (deprecated), would tunnel to any IPv4
    (Ipv6Addr::new(0x3fff, 0, 0, 0, 0, 0, 0, 0), 20), // documentation
];

/// Only global unicast (2000::/3) passes, so unspecified, loopback, IPv4-compatible, ULA (fc00::/7),
/// link-local, site-local, multicast, discard and NAT64 local-use are refused without a list of their own.
fn ipv6_allowed(ip: Ipv6Addr) -> bool {
    if let Some(v4) = embedded_ipv4(ip) {
        return ipv4_allowed(v4);
    }
    let bits = u128::from(ip);
    in_prefix(bits, u128::from(Ipv6Addr::new(0x2000, 0, 0, 0, 0, 0, 0, 0)), 3, 128)
        && !REFUSED_V6.iter().any(|(net, len)| in_prefix(bits, u128::from(*net), *len, 128))
}

/// The IPv4 address an IPv6 address stands for: IPv4-mapped (`::ffff:a.b.c.d`, which the OS connects to
/// as IPv4) and NAT64 well-known prefix (`64:ff9b::a.b.c.d`, which a NAT64 gateway forwards to IPv4).
fn embedded_ipv4(ip: Ipv6Addr) -> Option<Ipv4Addr> {
    if let Some(v4) = ip.to_ipv4_mapped() {
        return Some(v4);
    }
    let s = ip.segments();
    if s[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
        return Some(Ipv4Addr::from((u32::from(s[6]) << 16) | u32::from(s[7])));
    }
    None
}

/// True when the first `len` of `width` bits of `addr` equal those of `net`.
fn in_prefix(addr: u128, net: u128, len: u8, width: u32) -> bool {
    let shift = width.saturating_sub(u32::from(len));
    addr.checked_shr(shift) == net.checked_shr(shift)
}

/// True when `e` or one of its causes is the resolver's refusal.
pub(super) fn refused_by_resolver(e: &(dyn StdError + 'static)) -> bool {
    let mut cause = Some(e);
    while let Some(err) = cause {
        if err.is::<AddressRefused>() {
            return true;
        }
        cause = err.source();
    }
    false
}
#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes() {
        let v4 = |s: &str| u128::from(u32::from(s.parse::<Ipv4Addr>().unwrap()));
        assert!(in_prefix(v4("172.31.255.255"), v4("172.16.0.0"), 12, 32));
        assert!(!in_prefix(v4("172.32.0.0"), v4("172.16.0.0"), 12, 32));
        assert!(in_prefix(v4("8.8.8.8"), v4("0.0.0.0"), 0, 32));
        assert!(in_prefix(1, 0, 0, 128), "a zero-length prefix holds everything");
        assert!(in_prefix(5, 5, 128, 128) && !in_prefix(5, 4, 128, 128));
    }

    #[test]
    fn embedded_ipv4_forms() {
        let v6 = |s: &str| s.parse::<Ipv6Addr>().unwrap();
        assert_eq!(embedded_ipv4(v6("::ffff:10.1.2.3")), Some(Ipv4Addr::new(10, 1, 2, 3)));
        assert_eq!(embedded_ipv4(v6("64:ff9b::a9fe:a9fe")), Some(Ipv4Addr::new(169, 254, 169, 254)));
        assert_eq!(embedded_ipv4(v6("2606:4700::1111")), None);
    }
}
