//! Which network addresses a user's input may make the backend reach.
//!
//! A repository URL, an API call or a web page named by a user is fetched by the server (or by a
//! runner it starts) from inside the operator's network. Unless the operator allows it
//! (`PJ_ALLOW_PRIVATE_NETWORKS=true`), such a request may reach public addresses only: never
//! loopback, private ranges, link-local addresses (the cloud metadata service among them) or
//! addresses that are not routed at all. The rule is checked on the address actually connected
//! to, after the name is resolved, so a name that resolves to 127.0.0.1 is refused like
//! `127.0.0.1` itself.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Whether outgoing requests named by users may reach non-public addresses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct NetworkPolicy {
    /// `PJ_ALLOW_PRIVATE_NETWORKS=true`.
    pub allow_private: bool,
}

/// The name of the variable that lifts the rule, for messages.
pub const ALLOW_PRIVATE_NETWORKS_VAR: &str = "PJ_ALLOW_PRIVATE_NETWORKS";

impl NetworkPolicy {
    /// `Ok` when `ip` may be reached; otherwise why not, in words for the user.
    pub fn check(&self, ip: IpAddr) -> Result<(), String> {
        self.refusal(ip).map_or(Ok(()), |what| {
            Err(format!("{ip} is {what}; {}", lift_hint()))
        })
    }

    /// Checks every address a name resolved to: one refused address refuses the name, since the
    /// client may pick any of them.
    pub fn check_all(&self, host: &str, ips: &[IpAddr]) -> Result<(), String> {
        if ips.is_empty() {
            return Err(format!("{host} does not resolve to any address"));
        }
        for ip in ips {
            if let Some(what) = self.refusal(*ip) {
                let named = host.trim_matches(['[', ']']) != ip.to_string();
                return Err(if named {
                    format!("{host} resolves to {ip}, {what}; {}", lift_hint())
                } else {
                    format!("{ip} is {what}; {}", lift_hint())
                });
            }
        }
        Ok(())
    }

    fn refusal(&self, ip: IpAddr) -> Option<&'static str> {
        if self.allow_private {
            None
        } else {
            non_public(ip)
        }
    }
}

fn lift_hint() -> String {
    format!(
        "requests to such addresses are refused unless the operator sets \
         {ALLOW_PRIVATE_NETWORKS_VAR}=true"
    )
}

/// What kind of non-public address `ip` is, or `None` for a public one.
pub fn non_public(ip: IpAddr) -> Option<&'static str> {
    match ip {
        IpAddr::V4(v4) => non_public_v4(v4),
        IpAddr::V6(v6) => non_public_v6(v6),
    }
}

fn non_public_v4(ip: Ipv4Addr) -> Option<&'static str> {
    let [a, b, c, _] = ip.octets();
    if ip.is_loopback() {
        Some("a loopback address")
    } else if ip.is_unspecified() || a == 0 {
        Some("an unspecified address")
    } else if ip == Ipv4Addr::new(169, 254, 169, 254) || ip == Ipv4Addr::new(169, 254, 170, 2) {
        Some("a cloud metadata address")
    } else if ip.is_link_local() {
        Some("a link-local address")
    } else if ip.is_private() {
        Some("a private address")
    } else if a == 100 && (64..128).contains(&b) {
        Some("a shared (carrier-grade NAT) address")
    } else if a == 192 && b == 0 && c == 0 {
        Some("an IETF protocol assignment address")
    } else if a == 198 && (b == 18 || b == 19) {
        Some("a benchmarking address")
    } else if ip.is_documentation() {
        Some("a documentation address")
    } else if ip.is_multicast() {
        Some("a multicast address")
    } else if a >= 240 {
        Some("a reserved address")
    } else {
        None
    }
}

fn non_public_v6(ip: Ipv6Addr) -> Option<&'static str> {
    // An IPv4 address carried in IPv6 (mapped, compatible, or NAT64's well-known prefix) is
    // judged as the IPv4 address it reaches.
    if let Some(v4) = ip.to_ipv4_mapped() {
        return non_public_v4(v4);
    }
    let s = ip.segments();
    if s[0] == 0x64 && s[1] == 0xff9b && s[2..6] == [0, 0, 0, 0] {
        let v4 = Ipv4Addr::new((s[6] >> 8) as u8, s[6] as u8, (s[7] >> 8) as u8, s[7] as u8);
        return non_public_v4(v4);
    }
    if ip.is_loopback() {
        Some("a loopback address")
    } else if ip.is_unspecified() {
        Some("an unspecified address")
    } else if s[0..6] == [0, 0, 0, 0, 0, 0] {
        // ::a.b.c.d, the deprecated IPv4-compatible form.
        non_public_v4(Ipv4Addr::new(
            (s[6] >> 8) as u8,
            s[6] as u8,
            (s[7] >> 8) as u8,
            s[7] as u8,
        ))
        .or(Some("a reserved address"))
    } else if s[0] == 0xfd00 && s[1] == 0x0ec2 {
        Some("a cloud metadata address")
    } else if (s[0] & 0xfe00) == 0xfc00 {
        Some("a private (unique local) address")
    } else if (s[0] & 0xffc0) == 0xfe80 {
        Some("a link-local address")
    } else if (s[0] & 0xffc0) == 0xfec0 {
        Some("a site-local address")
    } else if (s[0] & 0xff00) == 0xff00 {
        Some("a multicast address")
    } else if s[0] == 0x2001 && s[1] == 0x0db8 {
        Some("a documentation address")
    } else if s[0] == 0x0100 && s[1..4] == [0, 0, 0] {
        Some("a discard-only address")
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(text: &str) -> bool {
        non_public(text.parse().expect("an address")).is_some()
    }

    #[test]
    fn loopback_private_link_local_and_metadata_addresses_are_not_public() {
        for ip in [
            "127.0.0.1",
            "127.1.2.3",
            "0.0.0.0",
            "10.0.0.1",
            "172.16.5.4",
            "172.31.255.255",
            "192.168.1.1",
            "169.254.169.254",
            "169.254.1.1",
            "100.64.0.1",
            "198.18.0.1",
            "224.0.0.1",
            "255.255.255.255",
            "::1",
            "::",
            "fc00::1",
            "fd00:ec2::254",
            "fe80::1",
            "ff02::1",
            "::ffff:127.0.0.1",
            "::ffff:10.1.2.3",
            "64:ff9b::a9fe:a9fe",
            "::127.0.0.1",
        ] {
            assert!(refused(ip), "{ip} should not count as public");
        }
    }

    #[test]
    fn public_addresses_are_public() {
        for ip in [
            "1.1.1.1",
            "140.82.112.3",
            "172.32.0.1",
            "100.128.0.1",
            "2606:4700::1111",
            "::ffff:8.8.8.8",
        ] {
            assert!(!refused(ip), "{ip} should count as public");
        }
    }

    #[test]
    fn the_policy_names_the_address_and_the_variable_that_lifts_it() {
        let policy = NetworkPolicy::default();
        let err = policy
            .check("127.0.0.1".parse().expect("an address"))
            .expect_err("loopback is refused");
        assert!(err.contains("127.0.0.1") && err.contains("loopback"));
        assert!(err.contains(ALLOW_PRIVATE_NETWORKS_VAR));
        let open = NetworkPolicy {
            allow_private: true,
        };
        assert!(open.check("127.0.0.1".parse().expect("an address")).is_ok());
    }

    #[test]
    fn a_name_with_one_private_address_among_public_ones_is_refused() {
        let policy = NetworkPolicy::default();
        let ips = [
            "1.1.1.1".parse().expect("ip"),
            "10.0.0.1".parse().expect("ip"),
        ];
        assert!(policy.check_all("example.test", &ips).is_err());
        assert!(policy.check_all("example.test", &[]).is_err());
        assert!(policy.check_all("example.test", &ips[..1]).is_ok());
    }
}
