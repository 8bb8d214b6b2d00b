//! `AllowedHosts`: which requests may carry a CXone token.
//!
//! A bearer token is a password for as long as it lives. The layer sends it
//! only over https, only to CXone's own domains and the hosts a user adds;
//! plain http only to loopback hosts, and only when that is enabled.
//!
//! Tenant routing adds the origins discovery names; they obey the same
//! rules.

use std::net::IpAddr;

/// The domains that serve CXone's APIs, with every subdomain: the issuers
/// (`cxone.niceincontact.com`, `cxone-gov.niceincontact.com`), the API hosts
/// (`api-<area>.niceincontact.com`), the area hosts
/// (`<area>.nice-incontact.com`), the central and legacy clusters
/// (`api-<cluster>.incontact.com`, `*.incontact.eu`), FedRAMP Digital
/// (`*.nicecxone-gov.com`) and the sovereign clouds (`nicecxone-sov1.au`,
/// `nicecxone-sov1.eu`).
pub(crate) const CXONE_DOMAINS: [&str; 7] = [
    "niceincontact.com",
    "nice-incontact.com",
    "incontact.com",
    "incontact.eu",
    "nicecxone-gov.com",
    "nicecxone-sov1.au",
    "nicecxone-sov1.eu",
];

/// The hosts that may receive a token, and over which schemes.
///
/// By default: https to `CXONE_DOMAINS` and their subdomains. Hosts are
/// compared without regard to ASCII case or a trailing dot.
#[derive(Debug, Clone)]
pub(crate) struct AllowedHosts {
    patterns: Vec<HostPattern>,
    loopback_http: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum HostPattern {
    /// This host exactly.
    Exact(String),
    /// This domain and every subdomain of it.
    Domain(String),
}

impl HostPattern {
    fn parse(pattern: &str) -> Self {
        let pattern = pattern.trim().trim_end_matches('.').to_ascii_lowercase();
        match pattern.strip_prefix("*.") {
            Some(domain) => Self::Domain(domain.to_owned()),
            None => Self::Exact(pattern),
        }
    }

    fn matches(&self, host: &str) -> bool {
        match self {
            Self::Exact(exact) => host.eq_ignore_ascii_case(exact),
            Self::Domain(domain) => is_within(host, domain),
        }
    }
}

impl Default for AllowedHosts {
    fn default() -> Self {
        Self {
            patterns: CXONE_DOMAINS
                .iter()
                .map(|domain| HostPattern::Domain((*domain).to_owned()))
                .collect(),
            loopback_http: false,
        }
    }
}

impl AllowedHosts {
    #[cfg(any(test, fuzzing))]
    /// Only the hosts added with [`allow_host`](Self::allow_host): not even
    /// CXone's domains.
    pub(crate) fn none() -> Self {
        Self {
            patterns: Vec::new(),
            loopback_http: false,
        }
    }

    /// Allows a host over https: `api.example.com` for that host alone, or
    /// `*.example.com` for `example.com` and every subdomain.
    pub(crate) fn allow_host(mut self, pattern: &str) -> Self {
        let pattern = HostPattern::parse(pattern);
        if !self.patterns.contains(&pattern) {
            self.patterns.push(pattern);
        }
        self
    }

    /// Allows loopback hosts (`localhost` exactly, literal `127.0.0.0/8` and
    /// `::1` addresses) over http and https, for tests and local mocks. Off by
    /// default.
    pub(crate) fn allow_loopback_http(mut self, allow: bool) -> Self {
        self.loopback_http = allow;
        self
    }

    /// Whether a request with this scheme and host may carry the token.
    pub(crate) fn allows(&self, scheme: &str, host: &str) -> bool {
        // Judged before the trailing dot goes: `localhost.` is a DNS lookup.
        if self.loopback_http && is_loopback(host) {
            return scheme.eq_ignore_ascii_case("http") || scheme.eq_ignore_ascii_case("https");
        }
        let host = match host.as_bytes() {
            [rest @ .., b'.'] => &host[..rest.len()],
            _ => host,
        };
        scheme.eq_ignore_ascii_case("https") && self.patterns.iter().any(|p| p.matches(host))
    }
}

/// Whether `host` is under one of `CXONE_DOMAINS` or names this machine: a
/// host where a 401 says the token itself was refused.
pub(crate) fn is_cxone_or_loopback(host: &str) -> bool {
    let bare = host.strip_suffix('.').unwrap_or(host);
    CXONE_DOMAINS.iter().any(|domain| is_within(bare, domain)) || is_loopback(host)
}

/// Whether `host` is `domain` or a subdomain of it, comparing whole labels.
fn is_within(host: &str, domain: &str) -> bool {
    if host.len() == domain.len() {
        return host.eq_ignore_ascii_case(domain);
    }
    // The byte before the suffix must be a dot, which also makes the suffix
    // start on a character boundary.
    host.len() > domain.len() + 1
        && host.as_bytes()[host.len() - domain.len() - 1] == b'.'
        && host[host.len() - domain.len()..].eq_ignore_ascii_case(domain)
}

/// Whether `host` names this machine without asking DNS: `localhost`
/// exactly, or a literal loopback address (IPv6 in brackets, as URIs write
/// it). `api.localhost`, `localhost.` and `127.0.0.1.` go to a resolver,
/// which may answer with any address.
fn is_loopback(host: &str) -> bool {
    if host.eq_ignore_ascii_case("localhost") {
        return true;
    }
    let bare = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    bare.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cxone_domains_by_default_over_https_only() {
        let hosts = AllowedHosts::default();
        for host in [
            "niceincontact.com",
            "api-na1.niceincontact.com",
            "API-EU1.NiceInContact.com",
            "cxone-gov.niceincontact.com.",
            "na1.nice-incontact.com",
            "api-c32.incontact.com",
            "api.incontact.com",
            "home-b2.incontact.eu",
            "api.nicecxone-gov.com",
            "nicecxone-sov1.au",
            "api.nicecxone-sov1.eu",
        ] {
            assert!(hosts.allows("https", host), "{host}");
            assert!(hosts.allows("HTTPS", host), "{host}");
            assert!(!hosts.allows("http", host), "{host}");
        }
    }

    #[test]
    fn lookalikes_are_refused() {
        let hosts = AllowedHosts::default();
        for host in [
            "evilniceincontact.com",
            "niceincontact.com.evil.test",
            "niceincontact.co",
            "incontact.com.au",
            "nicecxone-sov1.de",
            "myincontact.com",
            "xn--niceincontact.com-",
            "",
            ".",
            "com",
            "localhost",
            "127.0.0.1",
        ] {
            assert!(!hosts.allows("https", host), "{host}");
        }
    }

    #[test]
    fn added_hosts_exact_and_wildcard() {
        let hosts = AllowedHosts::none()
            .allow_host("gw.example.org")
            .allow_host("*.Example.com.");
        assert!(hosts.allows("https", "gw.example.org"));
        assert!(!hosts.allows("https", "a.gw.example.org"));
        assert!(hosts.allows("https", "example.com"));
        assert!(hosts.allows("https", "deep.api.example.com"));
        assert!(!hosts.allows("https", "api-na1.niceincontact.com"));
    }

    #[test]
    fn loopback_only_when_enabled() {
        let hosts = AllowedHosts::default().allow_loopback_http(true);
        for host in [
            "localhost",
            "LocalHost",
            "127.0.0.1",
            "127.9.9.9",
            "[::1]",
            "::1",
        ] {
            assert!(hosts.allows("http", host), "{host}");
        }
        assert!(!hosts.allows("http", "10.0.0.1"));
        assert!(!hosts.allows("ftp", "127.0.0.1"));
        assert!(!AllowedHosts::default().allows("http", "127.0.0.1"));
    }

    /// Names that go through DNS are not loopback, whatever
    /// they look like.
    #[test]
    fn loopback_is_localhost_exactly_or_a_literal_address() {
        let hosts = AllowedHosts::default().allow_loopback_http(true);
        for host in [
            "api.localhost",
            "localhost.",
            "127.0.0.1.",
            "[::1].",
            "localhost.localdomain",
            "127.0.0.1.nip.io",
            "0x7f.0.0.1",
            "127.1",
        ] {
            assert!(!hosts.allows("http", host), "{host}");
        }
    }

    #[test]
    fn cxone_and_loopback_hosts_are_the_audience_added_hosts_are_not() {
        for host in [
            "api-na1.niceincontact.com",
            "NA1.nice-incontact.com.",
            "127.0.0.1",
            "localhost",
        ] {
            assert!(is_cxone_or_loopback(host), "{host}");
        }
        for host in [
            "partner.example",
            "niceincontact.com.evil.test",
            "api.localhost",
            "",
        ] {
            assert!(!is_cxone_or_loopback(host), "{host}");
        }
    }

    #[test]
    fn non_ascii_hosts_do_not_panic() {
        let hosts = AllowedHosts::default();
        assert!(!hosts.allows("https", "é.niceincontact.cøm"));
        assert!(!hosts.allows("https", "ééééééééééééééééééééééé"));
    }

    mod properties {
        use proptest::prelude::*;

        use super::*;

        /// A DNS label: letters, digits and inner hyphens, in any case.
        fn label() -> impl Strategy<Value = String> {
            "[a-zA-Z0-9]([a-zA-Z0-9-]{0,20}[a-zA-Z0-9])?"
        }

        fn cxone_domain() -> impl Strategy<Value = String> {
            proptest::sample::select(&CXONE_DOMAINS[..]).prop_map(str::to_owned)
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(256))]

            /// Labels under a CXone domain are allowed over https, in any case and
            /// with a trailing dot; never over plain http.
            #[test]
            fn hosts_under_cxone_domains_are_allowed(
                labels in proptest::collection::vec(label(), 0..4),
                domain in cxone_domain(),
                upper in any::<bool>(),
                trailing_dot in any::<bool>(),
            ) {
                let mut host = labels.iter().map(|l| format!("{l}.")).collect::<String>() + &domain;
                if upper {
                    host = host.to_ascii_uppercase();
                }
                if trailing_dot {
                    host.push('.');
                }
                let hosts = AllowedHosts::default();
                prop_assert!(hosts.allows("https", &host), "{}", host);
                prop_assert!(!hosts.allows("http", &host), "{}", host);
            }

            /// Anything appended to such a host, without a dot, makes another host,
            /// which is refused (`niceincontact.com.evil` and `niceincontact.comx`).
            #[test]
            fn a_suffix_makes_a_cxone_host_refused(
                labels in proptest::collection::vec(label(), 0..4),
                domain in cxone_domain(),
                suffix in "[^.]{1,12}",
                dot_before in any::<bool>(),
            ) {
                let host = labels.iter().map(|l| format!("{l}.")).collect::<String>() + &domain;
                let longer = if dot_before { format!("{host}.{suffix}") } else { format!("{host}{suffix}") };
                prop_assert!(!AllowedHosts::default().allows("https", &longer), "{}", longer);
            }

            /// A prefix without a dot is another domain too (`evilniceincontact.com`).
            #[test]
            fn a_prefix_without_a_dot_makes_a_cxone_host_refused(
                prefix in "[a-zA-Z0-9-]{1,12}",
                domain in cxone_domain(),
            ) {
                let host = format!("{prefix}{domain}");
                prop_assert!(!AllowedHosts::default().allows("https", &host), "{}", host);
            }

            /// Any scheme, host and pattern are checked without panicking; only
            /// https and (when enabled, to loopback) http are ever allowed.
            #[test]
            fn any_host_is_checked_without_panicking(
                scheme in prop_oneof![Just("https".to_owned()), Just("http".to_owned()), any::<String>()],
                host in any::<String>(),
                pattern in proptest::option::of(any::<String>()),
                loopback in any::<bool>(),
            ) {
                let mut hosts = AllowedHosts::default().allow_loopback_http(loopback);
                if let Some(pattern) = &pattern {
                    hosts = hosts.allow_host(pattern);
                }
                if hosts.allows(&scheme, &host) {
                    prop_assert!(
                        scheme.eq_ignore_ascii_case("https") || (loopback && scheme.eq_ignore_ascii_case("http")),
                        "{} {}", scheme, host
                    );
                }
            }

            /// A `*.domain` pattern allows the domain and its subdomains, nothing
            /// else; an exact pattern allows that host alone.
            #[test]
            fn added_patterns(
                labels in proptest::collection::vec(label(), 1..3),
                sub in label(),
                other in label(),
            ) {
                let domain = labels.join(".");
                let subdomain = format!("{sub}.{domain}");
                let lookalike = format!("{other}{domain}");
                let wildcard = AllowedHosts::none().allow_host(&format!("*.{domain}"));
                prop_assert!(wildcard.allows("https", &domain));
                prop_assert!(wildcard.allows("https", &subdomain));
                prop_assert!(!wildcard.allows("https", &lookalike));
                let exact = AllowedHosts::none().allow_host(&domain);
                prop_assert!(exact.allows("https", &domain.to_ascii_uppercase()));
                prop_assert!(!exact.allows("https", &subdomain));
            }
        }
    }
}
