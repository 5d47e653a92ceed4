//! The one rule for an address the backend sends email to.
//!
//! Whatever a create accepts must be sendable by every mailer: lettre's address parsing (the
//! outbox and SMTP in `pj serve`) and SES. The rule is a strict subset of both: a bare ASCII
//! `local@domain` (no display name, no quoting, no IP literal), the local part a dot-atom of
//! RFC 5322 atext, the domain at least two DNS labels of letters, digits and inner hyphens
//! (an internationalised domain is given in its `xn--` form: SES and SMTP without SMTPUTF8
//! take ASCII only). `shared/local`'s tests check every accepted case parses with lettre.

/// The longest address (RFC 5321's path limit less the angle brackets).
pub const MAX_ADDRESS_LEN: usize = 254;
/// The longest local part (RFC 5321).
pub const MAX_LOCAL_LEN: usize = 64;
/// The longest DNS label.
const MAX_LABEL_LEN: usize = 63;

/// `Ok` when mail can be sent to `address`; otherwise what is wrong, in words for the user.
pub fn check_address(address: &str) -> Result<(), &'static str> {
    if address.len() > MAX_ADDRESS_LEN {
        return Err("must be at most 254 characters");
    }
    if !address.is_ascii() {
        return Err("must be ASCII (give an internationalised domain in its xn-- form)");
    }
    if address
        .bytes()
        .any(|b| b.is_ascii_whitespace() || b.is_ascii_control())
    {
        return Err("must not contain spaces or line breaks");
    }
    let Some((local, domain)) = address.rsplit_once('@') else {
        return Err("must be an email address (local@domain)");
    };
    if local.is_empty() || domain.is_empty() {
        return Err("must be an email address (local@domain)");
    }
    if local.len() > MAX_LOCAL_LEN {
        return Err("the part before @ must be at most 64 characters");
    }
    let atext = |b: u8| b.is_ascii_alphanumeric() || b"!#$%&'*+-/=?^_`{|}~".contains(&b);
    if !local
        .split('.')
        .all(|atom| !atom.is_empty() && atom.bytes().all(atext))
    {
        return Err("the part before @ has a character or dot where none may be");
    }
    let labels: Vec<&str> = domain.split('.').collect();
    let label_ok = |l: &&str| {
        (1..=MAX_LABEL_LEN).contains(&l.len())
            && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
            && !l.starts_with('-')
            && !l.ends_with('-')
    };
    if labels.len() < 2 || !labels.iter().all(label_ok) {
        return Err("the domain must be a name such as example.com");
    }
    // A top-level domain is never all digits; `user@1.2.3.4` is an IP address, not a name.
    if labels
        .last()
        .is_some_and(|tld| tld.bytes().all(|b| b.is_ascii_digit()))
    {
        return Err("the domain must be a name such as example.com");
    }
    Ok(())
}

/// Whether mail can be sent to `address` (see [`check_address`]).
pub fn is_sendable_address(address: &str) -> bool {
    check_address(address).is_ok()
}

/// Addresses that look odd but are sendable, and ones that are not; shared with the mailers'
/// tests so they check the same list against their own parsers.
pub const TRICKY_ADDRESSES: &[&str] = &[
    "dev@example.com",
    "first.last@sub.example.co.uk",
    "o'brien+tag@example.ie",
    "x@xn--bcher-kva.example",
    "a!#$%&'*+-/=?^_`{|}~z@example.com",
    "user@a-b.example",
    "1234@example.com",
    "dev@localhost",
    "dev@example",
    "dev@example.",
    "dev@.example.com",
    "dev@-example.com",
    "dev@example-.com",
    "dev@exa_mple.com",
    "dev@1.2.3.4",
    "dev@[127.0.0.1]",
    "dev@[IPv6:::1]",
    ".dev@example.com",
    "dev.@example.com",
    "de..v@example.com",
    "de v@example.com",
    "dev@exam ple.com",
    " dev@example.com",
    "dev@example.com\r\nBcc: evil@example.net",
    "dev@example.com\n",
    "dev\t@example.com",
    "\"quoted local\"@example.com",
    "\"dev\"@example.com",
    "Dev <dev@example.com>",
    "<dev@example.com>",
    "dev@example.com, evil@example.net",
    "dev;evil@example.com",
    "dev@@example.com",
    "@example.com",
    "dev@",
    "dev",
    "",
    "josé@example.com",
    "dev@bücher.example",
    "ü@example.com",
    "dev(comment)@example.com",
    "dev\\@example.com",
    "dev@example.com.",
    "a@b.c",
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ordinary_addresses_are_accepted() {
        for ok in [
            "dev@example.com",
            "first.last+tag@sub.example.co.uk",
            "o'brien@example.ie",
            "x@xn--bcher-kva.example",
            "1234@example.com",
            "a@b.c",
        ] {
            assert_eq!(check_address(ok), Ok(()), "{ok}");
        }
    }

    #[test]
    fn addresses_a_mailer_would_refuse_or_misread_are_rejected() {
        for bad in [
            "dev@example.com\r\nBcc: evil@example.net",
            "dev@example.com\n",
            "de v@example.com",
            " dev@example.com",
            "dev",
            "dev@",
            "@example.com",
            "dev@localhost",
            "dev@example.",
            "dev@.example.com",
            "dev@-example.com",
            "dev@1.2.3.4",
            "dev@[127.0.0.1]",
            ".dev@example.com",
            "de..v@example.com",
            "\"quoted\"@example.com",
            "Dev <dev@example.com>",
            "dev@example.com, evil@example.net",
            "dev;evil@example.com",
            "josé@example.com",
            "dev@bücher.example",
            "dev@@example.com",
        ] {
            assert!(check_address(bad).is_err(), "{bad:?} was accepted");
        }
    }

    #[test]
    fn addresses_over_the_limits_are_rejected() {
        let local = "a".repeat(65);
        assert!(check_address(&format!("{local}@example.com")).is_err());
        let label = "b".repeat(64);
        assert!(check_address(&format!("dev@{label}.com")).is_err());
        let long = format!(
            "{}@{}.com",
            "a".repeat(64),
            vec!["c".repeat(60); 4].join(".")
        );
        assert!(long.len() > MAX_ADDRESS_LEN);
        assert!(check_address(&long).is_err());
        let longest = format!(
            "{}@{}.com",
            "a".repeat(64),
            vec!["c".repeat(61); 3].join(".")
        );
        assert!(longest.len() <= MAX_ADDRESS_LEN, "{}", longest.len());
        assert_eq!(check_address(&longest), Ok(()));
    }
}
