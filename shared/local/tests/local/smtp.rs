use base64::Engine as _;
use pj_core::ports::Mailer;
use pj_local::SmtpMailer;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use crate::support::{PATIENCE, assert_is_the_email, email};

/// What the fake server saw: the commands in order and the message of the DATA phase.
#[derive(Debug, Default)]
struct Session {
    commands: Vec<String>,
    data: String,
}

/// An SMTP server that speaks just enough of the protocol for one session, answering RCPT
/// with `rcpt_reply`.
async fn fake_smtp(rcpt_reply: &'static str) -> (u16, JoinHandle<Session>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let server = tokio::spawn(async move {
        let (stream, _) = listener.accept().await.expect("accept");
        let (read, mut write) = stream.into_split();
        let mut lines = BufReader::new(read).lines();
        let mut session = Session::default();
        write.write_all(b"220 fake ESMTP\r\n").await.expect("greet");
        while let Ok(Some(line)) = lines.next_line().await {
            session.commands.push(line.clone());
            let verb = line
                .split_whitespace()
                .next()
                .unwrap_or_default()
                .to_ascii_uppercase();
            let reply: &[u8] = match verb.as_str() {
                "EHLO" => b"250-fake\r\n250 AUTH PLAIN LOGIN\r\n",
                "HELO" => b"250 fake\r\n",
                "AUTH" => b"235 2.7.0 accepted\r\n",
                "RCPT" => rcpt_reply.as_bytes(),
                "DATA" => {
                    write.write_all(b"354 go on\r\n").await.expect("354");
                    while let Ok(Some(data)) = lines.next_line().await {
                        if data == "." {
                            break;
                        }
                        let unstuffed = data.strip_prefix('.').unwrap_or(&data);
                        session.data.push_str(unstuffed);
                        session.data.push_str("\r\n");
                    }
                    b"250 2.0.0 queued\r\n"
                }
                "QUIT" => {
                    let _ = write.write_all(b"221 bye\r\n").await;
                    break;
                }
                _ => b"250 ok\r\n",
            };
            if write.write_all(reply).await.is_err() {
                break;
            }
        }
        session
    });
    (port, server)
}

#[tokio::test]
async fn an_email_sent_over_smtp_arrives_with_its_headers_and_both_parts() {
    let (port, server) = fake_smtp("250 ok\r\n").await;
    let mailer = SmtpMailer::from_url(&format!("smtp://mailer:p%40ss@127.0.0.1:{port}?tls=none"))
        .expect("mailer");
    let sent = email("tsk_01hx-1", "Task: Add a README\nStatus: completed\n");

    mailer.send(&sent).await.expect("sent");

    let session = tokio::time::timeout(PATIENCE, server)
        .await
        .expect("session ends")
        .expect("server");
    let find = |prefix: &str| {
        session
            .commands
            .iter()
            .find(|c| c.to_ascii_uppercase().starts_with(prefix))
            .cloned()
            .unwrap_or_else(|| panic!("no {prefix} in {:?}", session.commands))
    };
    assert!(find("MAIL FROM:").contains("<pj@example.com>"));
    assert!(find("RCPT TO:").contains("<dev@example.com>"));
    let auth = find("AUTH PLAIN");
    let token = auth.split_whitespace().nth(2).expect("initial response");
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(token)
        .expect("base64");
    assert_eq!(decoded, b"\0mailer\0p@ss", "percent-decoded credentials");
    assert_is_the_email(&session.data, &sent);
}

#[tokio::test]
async fn a_rejected_recipient_is_an_error_that_does_not_show_the_password() {
    let (port, server) = fake_smtp("550 5.1.1 no such user\r\n").await;
    let mailer = SmtpMailer::from_url(&format!("smtp://mailer:hunter2@127.0.0.1:{port}?tls=none"))
        .expect("mailer");

    let err = format!(
        "{:#}",
        mailer
            .send(&email("tsk_01hx-1", "x\n"))
            .await
            .expect_err("rejected")
    );
    assert!(err.contains("127.0.0.1"), "{err}");
    assert!(!err.contains("hunter2"), "{err}");
    server.abort();
}

#[test]
fn smtp_urls_choose_the_documented_port_and_encryption() {
    let cases = [
        ("smtp://u:hunter2@mail.example.com", "587", "\"starttls\""),
        (
            "smtp://u:hunter2@mail.example.com:2525",
            "2525",
            "\"starttls\"",
        ),
        ("smtps://u:hunter2@mail.example.com", "465", "\"tls\""),
        ("smtp://mail.example.com:25?tls=none", "25", "\"none\""),
        (
            "smtp://relay.local?tls=opportunistic",
            "587",
            "\"opportunistic starttls\"",
        ),
    ];
    for (url, port, security) in cases {
        let mailer = SmtpMailer::from_url(url).unwrap_or_else(|e| panic!("{url}: {e:#}"));
        let debug = format!("{mailer:?}");
        assert!(debug.contains(&format!("port: {port}")), "{url}: {debug}");
        assert!(debug.contains(security), "{url}: {debug}");
        assert!(!debug.contains("hunter2"), "{url}: {debug}");
    }
}

#[test]
fn a_bad_smtp_url_is_refused_naming_pj_smtp_url_and_never_the_password() {
    for url in [
        "http://u:hunter2@mail.example.com",
        "smtp://u:hunter2@mail.example.com?tls=maybe",
        "smtp://u:hunter2@mail.example.com?ssl=1",
        "smtps://u:hunter2@mail.example.com?tls=none",
        "smtp://user-without-password@mail.example.com",
        "smtp://u:hunter2@:25",
        "mail.example.com hunter2",
    ] {
        let err = match SmtpMailer::from_url(url) {
            Ok(m) => panic!("{url} was accepted: {m:?}"),
            Err(e) => format!("{e:#}"),
        };
        assert!(err.contains("PJ_SMTP_URL"), "{url}: {err}");
        assert!(!err.contains("hunter2"), "{url}: {err}");
    }
}
