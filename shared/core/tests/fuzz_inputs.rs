//! A bounded run of the fuzzing harnesses inside the normal test suite: a few thousand
//! generated inputs per entry point, shaped like what each expects (and not), must never make
//! one panic. `fuzz/` runs the same harnesses unbounded with libFuzzer.

use pj_core::fuzz;
use proptest::prelude::*;
use serde_json::{Value, json};

const CASES: u32 = 1_500;

fn config() -> ProptestConfig {
    ProptestConfig {
        cases: CASES,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

/// Numbers at and past every edge a parser might convert to.
fn extreme_number() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("0".to_owned()),
        Just("-0".to_owned()),
        Just("1".to_owned()),
        Just("-1".to_owned()),
        Just(i64::MIN.to_string()),
        Just(i64::MAX.to_string()),
        Just(u64::MAX.to_string()),
        Just(u32::MAX.to_string()),
        Just((u64::MAX as u128 + 1).to_string()),
        Just("99999999999999999999999999999999".to_owned()),
        Just("-99999999999999999999".to_owned()),
        Just("1e308".to_owned()),
        Just("1e309".to_owned()),
        Just("-1e400".to_owned()),
        Just("1e-400".to_owned()),
        Just("0.5".to_owned()),
        Just("1.0".to_owned()),
        any::<i64>().prop_map(|n| n.to_string()),
        any::<u64>().prop_map(|n| n.to_string()),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(|f| f.to_string()),
    ]
}

/// Strings that stress a parser: empty, long, control characters, secrets, odd Unicode.
fn nasty_string() -> impl Strategy<Value = String> {
    // Long strings (past the 16 KiB line and the 20,000-character prompt limits) are rare, or
    // the debug-built regexes of redaction would make the suite slow.
    prop_oneof![
        1 => Just("a".repeat(17_000)),
        1 => Just("é".repeat(20_001)),
        40 => short_nasty_string(),
    ]
}

fn short_nasty_string() -> impl Strategy<Value = String> {
    prop_oneof![
        Just(String::new()),
        Just("\u{0}\r\n\t\u{7f}\u{202e}\u{feff}".to_owned()),
        Just("https://github.com/o/r".to_owned()),
        Just("file:///tmp/x".to_owned()),
        Just("../../etc/passwd".to_owned()),
        Just("dev@example.com\r\nBcc: x@y.z".to_owned()),
        Just("-----BEGIN RSA PRIVATE KEY-----\\nMIIE".to_owned()),
        Just(
            "Bearer abc.def.ghi AKIAIOSFODNN7EXAMPLE wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
                .to_owned()
        ),
        Just("tsk_01hx".to_owned()),
        Just("2026-01-01T00:00:00Z".to_owned()),
        Just("+275760-09-13T00:00:00Z".to_owned()),
        Just("9999-12-31T23:59:60.999999999+23:59".to_owned()),
        Just("task.completed".to_owned()),
        Just("task.failed".to_owned()),
        Just("stdout".to_owned()),
        ".{0,64}",
        "[a-z_.@:/-]{0,300}",
    ]
}

/// Any JSON value, with extreme numbers, long strings and nesting.
fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        extreme_number().prop_filter_map("a JSON number", |n| serde_json::from_str(&n).ok()),
        nasty_string().prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 32, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::btree_map(short_nasty_string(), inner, 0..6)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// Text that is not valid JSON, or not valid UTF-8: raw numbers too big for any type, deep
/// nesting, cut documents, stray bytes.
fn broken_bytes(valid: Vec<u8>) -> impl Strategy<Value = Vec<u8>> {
    let len = valid.len();
    prop_oneof![
        Just(valid.clone()),
        (0..=len).prop_map({
            let v = valid.clone();
            move |cut| v[..cut].to_vec()
        }),
        (
            0..=len,
            prop::collection::vec(
                prop_oneof![Just(0xffu8), Just(0xc3), Just(0x80), Just(0xed), Just(0)],
                1..4
            )
        )
            .prop_map({
                let v = valid.clone();
                move |(at, bad)| {
                    let mut out = v[..at].to_vec();
                    out.extend(bad);
                    out.extend(&v[at..]);
                    out
                }
            }),
        Just(format!("{}{}", "[".repeat(10_000), "]".repeat(10_000)).into_bytes()),
        Just(br#"{"task_id":"tsk_1","attempt":1e99999,"lines":[]}"#.to_vec()),
        Just(br#"{"task_id":"tsk_1","attempt":4294967296,"type":"task.started"}"#.to_vec()),
        prop::collection::vec(any::<u8>(), 0..512),
    ]
}

/// An object with the keys `keys` given random values, and sometimes an unknown key.
fn object_of(keys: &'static [&'static str]) -> impl Strategy<Value = Value> {
    (
        prop::collection::vec(
            (prop::sample::select(keys), json_value()),
            0..keys.len() + 2,
        ),
        prop::option::of((nasty_string(), json_value())),
    )
        .prop_map(|(pairs, extra)| {
            let mut m = serde_json::Map::new();
            for (k, v) in pairs {
                m.insert(k.to_owned(), v);
            }
            if let Some((k, v)) = extra {
                m.insert(k, v);
            }
            Value::Object(m)
        })
}

fn event_shaped() -> impl Strategy<Value = Value> {
    let kind = prop_oneof![
        Just(json!("task.started")),
        Just(json!("task.progress")),
        Just(json!("task.completed")),
        Just(json!("task.failed")),
        Just(json!("task.needs_review")),
        json_value(),
    ];
    let attempt = extreme_number()
        .prop_filter_map("a JSON number", |n| serde_json::from_str::<Value>(&n).ok());
    (
        kind,
        attempt,
        object_of(&["branch", "pr_url", "error", "usage", "message"]),
        prop::option::of(object_of(&[
            "input_tokens",
            "output_tokens",
            "cost_usd",
            "model",
        ])),
        prop::option::of(object_of(&["code", "message"])),
    )
        .prop_map(|(kind, attempt, mut rest, usage, error)| {
            rest["task_id"] = json!("tsk_01hxfuzz");
            rest["attempt"] = attempt;
            rest["type"] = kind;
            if let Some(u) = usage {
                rest["usage"] = u;
            }
            if let Some(e) = error {
                rest["error"] = e;
            }
            rest
        })
}

fn log_line_shaped() -> impl Strategy<Value = Value> {
    (
        extreme_number(),
        prop_oneof![Just(json!("2026-01-01T00:00:00.123456789Z")), json_value()],
        prop_oneof![
            Just(json!("stdout")),
            Just(json!("stderr")),
            Just(json!("system")),
            json_value()
        ],
        prop_oneof![nasty_string().prop_map(Value::String), json_value()],
    )
        .prop_map(|(seq, ts, stream, text)| {
            json!({
                "seq": serde_json::from_str::<Value>(&seq).unwrap_or(Value::Null),
                "ts": ts,
                "stream": stream,
                "text": text,
            })
        })
}

fn log_batch_shaped() -> impl Strategy<Value = Value> {
    (
        prop::collection::vec(log_line_shaped(), 0..16),
        prop_oneof![Just(json!(1)), Just(json!(0)), Just(json!(u64::MAX)), json_value()],
    )
        .prop_map(|(lines, attempt)| {
            json!({"task_id": "tsk_01hxfuzz", "attempt": attempt, "lines": lines})
        })
}

fn create_shaped() -> impl Strategy<Value = Value> {
    (
        object_of(&[
            "repo_url",
            "prompt",
            "title",
            "base_branch",
            "kind",
            "execute",
            "requires_review",
            "scheduled_for",
            "model",
            "notify_email",
            "context",
        ]),
        any::<bool>(),
    )
        .prop_map(|(mut body, valid_base)| {
            if valid_base {
                body["repo_url"] = json!("https://github.com/o/r");
                if !body["prompt"].is_string() {
                    body["prompt"] = json!("Add a README");
                }
            }
            body
        })
}

fn bytes_of(shape: impl Strategy<Value = Value>) -> impl Strategy<Value = Vec<u8>> {
    shape.prop_flat_map(|v| broken_bytes(serde_json::to_vec(&v).unwrap_or_default()))
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn signature_verification_never_panics_on_any_headers_body_or_clock(
        data in prop_oneof![
            prop::collection::vec(any::<u8>(), 0..600),
            (any::<i64>(), any::<u8>(), "[ -~]{0,40}", extreme_number(), "(v1,[A-Za-z0-9+/=]{0,60} ?){0,4}", prop::collection::vec(any::<u8>(), 0..200))
                .prop_map(|(now, present, id, ts, sig, body)| {
                    let mut d = now.to_be_bytes().to_vec();
                    d.push(present);
                    d.extend(b"key-bytes-0123456789abcdef0123456789");
                    for part in [id.as_bytes(), ts.as_bytes(), sig.as_bytes(), &body] {
                        d.push(0xff);
                        d.extend(part);
                    }
                    d
                }),
        ]
    ) {
        fuzz::signature(&data);
    }

    #[test]
    fn event_body_parsing_never_panics(data in prop_oneof![bytes_of(event_shaped()), bytes_of(json_value())]) {
        fuzz::event_body(&data);
    }

    #[test]
    fn log_batch_parsing_never_panics(data in prop_oneof![bytes_of(log_batch_shaped()), bytes_of(json_value())]) {
        fuzz::log_batch(&data);
    }

    #[test]
    fn create_body_parsing_never_panics(data in prop_oneof![bytes_of(create_shaped()), bytes_of(json_value())]) {
        fuzz::create_body(&data);
    }
}

#[test]
fn the_harnesses_take_the_inputs_that_once_broke_the_server() {
    // webhook-timestamp at the ends of i64 overflowed the staleness check.
    for ts in [
        "-9223372036854775808",
        "9223372036854775807",
        "99999999999999999999",
    ] {
        let mut d = 0i64.to_be_bytes().to_vec();
        d.push(0xff);
        for part in [&b"k"[..], b"msg_1", ts.as_bytes(), b"v1,AAAA", b"{}"] {
            d.extend(part);
            d.push(0xff);
        }
        fuzz::signature(&d);
    }
    fuzz::event_body(br#"{"task_id":"tsk_1","attempt":1,"type":"task.started"}"#);
    fuzz::log_batch(br#"{"task_id":"tsk_1","attempt":1,"lines":[{"seq":18446744073709551615,"ts":"2026-01-01T00:00:00Z","stream":"stdout","text":"x"}]}"#);
    fuzz::create_body(
        br#"{"repo_url":"https://github.com/o/r","prompt":"p","notify_email":"a@b.co"}"#,
    );
}
