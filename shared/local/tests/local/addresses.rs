//! The core's address rule against lettre's parsing: whatever a create accepts, the mailers of
//! `pj serve` can send to.

use std::str::FromStr;

use lettre::Address;
use lettre::message::Mailbox;
use pj_core::email::{TRICKY_ADDRESSES, is_sendable_address};
use pj_core::ports::Mailer;
use pj_local::OutboxMailer;

use crate::support::email;

fn lettre_takes(address: &str) -> Result<(), String> {
    let parsed = Address::from_str(address).map_err(|e| format!("Address: {e}"))?;
    if parsed.to_string() != address {
        return Err(format!("Address reads it as {parsed}"));
    }
    let mailbox = Mailbox::from_str(address).map_err(|e| format!("Mailbox: {e}"))?;
    if mailbox.email.to_string() != address || mailbox.name.is_some() {
        return Err(format!("Mailbox reads it as {mailbox}"));
    }
    Ok(())
}

#[test]
fn every_tricky_address_the_core_accepts_parses_with_lettre_as_itself() {
    let mut accepted = 0;
    for address in TRICKY_ADDRESSES {
        if is_sendable_address(address) {
            accepted += 1;
            if let Err(why) = lettre_takes(address) {
                panic!("the core accepts {address:?} but lettre does not: {why}");
            }
        }
    }
    assert!(accepted >= 5, "the list should hold sendable cases too");
}

/// A small deterministic generator: strings over the characters that make addresses tricky.
fn generated(count: usize) -> Vec<String> {
    const PIECES: &[&str] = &[
        "a", "Z", "0", "9", ".", "..", "@", "-", "_", "+", "'", "\"", " ", "\r\n", "\t", "<", ">",
        ",", ";", ":", "(", ")", "[", "]", "\\", "é", "ü", "xn--", "com", "example", "!", "#", "{",
        "|", "}", "~", "`", "/", "=", "?", "^", "%", "&", "*", "$", "\0",
    ];
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    (0..count)
        .map(|_| {
            let local_len = 1 + (next() % 6) as usize;
            let domain_len = 1 + (next() % 6) as usize;
            let mut s = String::new();
            for _ in 0..local_len {
                s.push_str(PIECES[(next() % PIECES.len() as u64) as usize]);
            }
            s.push('@');
            for _ in 0..domain_len {
                s.push_str(PIECES[(next() % PIECES.len() as u64) as usize]);
            }
            if next() % 2 == 0 {
                s.push_str(".example");
            }
            s
        })
        .collect()
}

#[test]
fn every_generated_address_the_core_accepts_parses_with_lettre_as_itself() {
    let mut accepted = 0;
    for address in generated(50_000) {
        if is_sendable_address(&address) {
            accepted += 1;
            if let Err(why) = lettre_takes(&address) {
                panic!("the core accepts {address:?} but lettre does not: {why}");
            }
        }
    }
    assert!(
        accepted > 100,
        "the generator should reach sendable addresses ({accepted})"
    );
}

#[tokio::test]
async fn the_outbox_sends_to_every_tricky_address_the_core_accepts() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mailer = OutboxMailer::new(dir.path()).expect("outbox");
    for (i, address) in TRICKY_ADDRESSES
        .iter()
        .filter(|a| is_sendable_address(a))
        .enumerate()
    {
        let mut message = email(&format!("tsk_addr-{i}"), "x\n");
        message.to = (*address).to_owned();
        mailer
            .send(&message)
            .await
            .unwrap_or_else(|e| panic!("{address:?}: {e:#}"));
    }
}
