use super::*;
use serde_json::json;

fn cx() -> ConfigContext {
    ConfigContext {
        now: parse_rfc3339("2026-12-01T12:00:00Z").unwrap(),
        owner_has_email: true,
        ghl_location_configured: false,
        browsers: crate::kinds::browser::BrowserOffer::everything(),
    }
}

fn parse(kind: TaskKind, config: Value) -> Result<KindConfig, ValidationError> {
    KindConfig::parse(kind, Some(&config), &cx())
}

/// The field a wrong config is refused for.
fn refused(kind: TaskKind, config: Value) -> String {
    match parse(kind, config.clone()) {
        Ok(parsed) => panic!("{config} was accepted as {parsed:?}"),
        Err(e) => e.field,
    }
}

#[test]
fn a_built_in_kind_without_config_is_refused_naming_config() {
    let err = KindConfig::parse(TaskKind::ApiCall, None, &cx()).unwrap_err();
    assert_eq!(err.field, "config");
    assert_eq!(refused(TaskKind::ApiCall, json!([1])), "config");
}

#[test]
fn an_api_call_gets_its_defaults() {
    let KindConfig::ApiCall(call) = parse(
        TaskKind::ApiCall,
        json!({"url": "https://api.example.com/x"}),
    )
    .unwrap() else {
        panic!("not an api call")
    };
    assert_eq!(call.method, "GET");
    assert_eq!(call.timeout_secs, 30);
    assert_eq!(call.auth, Auth::None);
    assert!(call.headers.is_empty() && call.body.is_none());
}

#[test]
fn every_wrong_field_of_an_api_call_is_named() {
    let k = TaskKind::ApiCall;
    let u = "https://api.example.com/";
    assert_eq!(refused(k, json!({})), "config.url");
    assert_eq!(refused(k, json!({"url": "ftp://x/y"})), "config.url");
    assert_eq!(
        refused(k, json!({"url": "https://user:pw@example.com/"})),
        "config.url"
    );
    assert_eq!(refused(k, json!({"url": "https:///path"})), "config.url");
    assert_eq!(
        refused(k, json!({"url": u, "method": "TRACE"})),
        "config.method"
    );
    assert_eq!(
        refused(k, json!({"url": u, "headers": []})),
        "config.headers"
    );
    assert_eq!(
        refused(k, json!({"url": u, "headers": {"X-N": 1}})),
        "config.headers.X-N"
    );
    assert_eq!(
        refused(k, json!({"url": u, "headers": {"Bad Name": "v"}})),
        "config.headers.Bad Name"
    );
    assert_eq!(
        refused(k, json!({"url": u, "headers": {"Host": "evil"}})),
        "config.headers.Host"
    );
    assert_eq!(
        refused(k, json!({"url": u, "headers": {"X-A": "a\r\nX-B: b"}})),
        "config.headers.X-A"
    );
    assert_eq!(
        refused(k, json!({"url": u, "body": {"a": 1}})),
        "config.body"
    );
    assert_eq!(
        refused(
            k,
            json!({"url": u, "method": "POST", "body": "x".repeat(MAX_BODY_BYTES + 1)})
        ),
        "config.body"
    );
    assert_eq!(
        refused(k, json!({"url": u, "auth": "bearer"})),
        "config.auth"
    );
    assert_eq!(
        refused(k, json!({"url": u, "auth": {"type": "oauth"}})),
        "config.auth.type"
    );
    assert_eq!(
        refused(k, json!({"url": u, "auth": {"type": "bearer"}})),
        "config.auth.token"
    );
    assert_eq!(
        refused(
            k,
            json!({"url": u, "auth": {"type": "api_key", "value": "v"}})
        ),
        "config.auth.header"
    );
    assert_eq!(
        refused(
            k,
            json!({"url": u, "auth": {"type": "api_key", "header": "X-Key"}})
        ),
        "config.auth.value"
    );
    assert_eq!(
        refused(
            k,
            json!({"url": u, "auth": {"type": "basic", "password": "p"}})
        ),
        "config.auth.username"
    );
    assert_eq!(
        refused(
            k,
            json!({"url": u, "auth": {"type": "basic", "username": "u"}})
        ),
        "config.auth.password"
    );
    assert_eq!(
        refused(k, json!({"url": u, "auth": {"type": "none", "token": "t"}})),
        "config.auth.token"
    );
    for bad in [json!(0), json!(301), json!(2.5), json!("30")] {
        assert_eq!(
            refused(k, json!({"url": u, "timeout_secs": bad})),
            "config.timeout_secs"
        );
    }
    assert_eq!(
        refused(k, json!({"url": u, "colour": "red"})),
        "config.colour"
    );
}

#[test]
fn credentials_in_an_api_call_are_kept_apart_from_plain_headers() {
    let config = parse(
        TaskKind::ApiCall,
        json!({"url": "https://api.example.com/", "method": "POST", "body": {"a": 1},
               "headers": {"X-Trace": "t-1", "X-Api-Token": "tok_123", "Authorization": "Bearer abc"},
               "auth": {"type": "basic", "username": "me", "password": "pw"}}),
    )
    .unwrap();
    let KindConfig::ApiCall(call) = &config else {
        panic!()
    };
    let kinds: Vec<(&str, bool)> = call
        .headers
        .iter()
        .map(|h| {
            (
                h.name.as_str(),
                matches!(h.value, HeaderField::Credential(_)),
            )
        })
        .collect();
    assert!(kinds.contains(&("X-Trace", false)));
    assert!(kinds.contains(&("X-Api-Token", true)));
    assert!(kinds.contains(&("Authorization", true)));
    let view = config.public_view().to_string();
    for secret in ["tok_123", "Bearer abc", "\"pw\""] {
        assert!(!view.contains(secret), "{secret} in {view}");
    }
    assert!(view.contains("t-1"));
    assert!(view.contains("\"password\":\"***\""));
}

#[test]
fn a_stored_config_holds_sealed_credentials_only() {
    let mut config = parse(
        TaskKind::ApiCall,
        json!({"url": "https://api.example.com/", "headers": {"Cookie": "sid=s3cr3t"},
               "auth": {"type": "bearer", "token": "tok_s3cr3t"}}),
    )
    .unwrap();
    assert!(
        serde_json::to_string(&config).is_err(),
        "clear credentials were serialized"
    );
    let master = crate::signing::MasterSecret::new(secrecy::SecretString::from(
        "a master secret of some length".to_owned(),
    ))
    .unwrap();
    let task = TaskId::generate(cx().now);
    config.seal(&Sealer::new(&master), &task);
    let stored = serde_json::to_string(&config).unwrap();
    assert!(!stored.contains("s3cr3t"), "{stored}");
    let back: KindConfig = serde_json::from_str(&stored).unwrap();
    assert_eq!(back, config);
}

#[test]
fn every_wrong_field_of_a_ghl_action_is_named() {
    let k = TaskKind::GhlAction;
    assert_eq!(refused(k, json!({})), "config.action");
    assert_eq!(
        refused(k, json!({"action": "delete_everything"})),
        "config.action"
    );
    assert_eq!(
        refused(k, json!({"action": "add_contact", "location_id": "loc1"})),
        "config.email"
    );
    assert_eq!(
        refused(
            k,
            json!({"action": "add_contact", "email": "x@example.com"})
        ),
        "config.location_id"
    );
    assert_eq!(
        refused(
            k,
            json!({"action": "add_contact", "email": "nope", "location_id": "l"})
        ),
        "config.email"
    );
    assert_eq!(
        refused(
            k,
            json!({"action": "add_contact", "phone": "call me", "location_id": "l"})
        ),
        "config.phone"
    );
    assert_eq!(
        refused(
            k,
            json!({"action": "add_contact", "tags": ["a", ""], "location_id": "l"})
        ),
        "config.tags[1]"
    );
    assert_eq!(
        refused(
            k,
            json!({"action": "add_contact", "email": "x@example.com", "location_id": "l/../x"})
        ),
        "config.location_id"
    );
    assert_eq!(
        refused(
            k,
            json!({"action": "update_contact", "email": "x@example.com"})
        ),
        "config.contact_id"
    );
    assert_eq!(
        refused(k, json!({"action": "update_contact", "contact_id": "c1"})),
        "config.first_name"
    );
    assert_eq!(
        refused(
            k,
            json!({"action": "update_contact", "contact_id": "../x", "phone": "+15550100200"})
        ),
        "config.contact_id"
    );
    assert_eq!(
        refused(k, json!({"action": "add_tag", "contact_id": "c1"})),
        "config.tags"
    );
    assert_eq!(
        refused(
            k,
            json!({"action": "add_tag", "contact_id": "c1", "tags": "vip"})
        ),
        "config.tags"
    );
    assert_eq!(
        refused(k, json!({"action": "send_sms", "contact_id": "c1"})),
        "config.message"
    );
    assert_eq!(
        refused(
            k,
            json!({"action": "send_sms", "contact_id": "c1", "message": "x".repeat(1601)})
        ),
        "config.message"
    );
    let opp = json!({"action": "create_opportunity", "pipeline_id": "p", "stage_id": "s", "name": "Deal",
                     "contact_id": "c1", "location_id": "l"});
    for field in ["pipeline_id", "stage_id", "name", "contact_id"] {
        let mut o = opp.clone();
        o.as_object_mut().unwrap().remove(field);
        assert_eq!(refused(k, o), format!("config.{field}"));
    }
    let mut o = opp.clone();
    o["monetary_value"] = json!(-5);
    assert_eq!(refused(k, o), "config.monetary_value");
    assert!(parse(k, opp).is_ok());
}

#[test]
fn a_ghl_location_may_come_from_the_deployment() {
    let with_default = ConfigContext {
        ghl_location_configured: true,
        ..cx()
    };
    let config = json!({"action": "add_contact", "email": "x@example.com"});
    assert!(KindConfig::parse(TaskKind::GhlAction, Some(&config), &with_default).is_ok());
}

#[test]
fn every_wrong_field_of_a_notification_or_reminder_is_named() {
    let n = TaskKind::Notification;
    assert_eq!(refused(n, json!({"message": "hi"})), "config.channel");
    assert_eq!(
        refused(n, json!({"channel": "fax", "message": "hi"})),
        "config.channel"
    );
    assert_eq!(refused(n, json!({"channel": "email"})), "config.message");
    assert_eq!(
        refused(n, json!({"channel": "email", "message": ""})),
        "config.message"
    );
    assert_eq!(
        refused(n, json!({"channel": "email", "to": "a@b", "message": "hi"})),
        "config.to"
    );
    assert_eq!(
        refused(
            n,
            json!({"channel": "email", "subject": "a\nb", "message": "hi"})
        ),
        "config.subject"
    );
    assert_eq!(
        refused(n, json!({"channel": "webhook", "message": "hi"})),
        "config.url"
    );
    assert_eq!(
        refused(
            n,
            json!({"channel": "webhook", "url": "file:///etc/passwd", "message": "hi"})
        ),
        "config.url"
    );
    assert_eq!(
        refused(n, json!({"channel": "sms", "message": "hi"})),
        "config.contact_id"
    );
    assert_eq!(
        refused(
            n,
            json!({"channel": "sms", "contact_id": "c", "message": "x".repeat(1601)})
        ),
        "config.message"
    );
    assert_eq!(
        refused(
            n,
            json!({"channel": "webhook", "url": "https://h/", "to": "a@b.c", "message": "hi"})
        ),
        "config.to"
    );
    let r = TaskKind::Reminder;
    assert_eq!(
        refused(r, json!({"channel": "email", "message": "hi"})),
        "config.remind_at"
    );
    assert_eq!(
        refused(
            r,
            json!({"channel": "email", "message": "hi", "remind_at": "soon"})
        ),
        "config.remind_at"
    );
    assert_eq!(
        refused(
            r,
            json!({"channel": "email", "message": "hi", "remind_at": "2026-12-01T11:59:59Z"})
        ),
        "config.remind_at"
    );
    assert!(
        parse(
            r,
            json!({"channel": "email", "message": "hi", "remind_at": "2026-12-01T12:00:01Z"})
        )
        .is_ok()
    );
}

#[test]
fn every_wrong_field_of_a_report_is_named() {
    let k = TaskKind::Report;
    assert_eq!(refused(k, json!({})), "config.report");
    assert_eq!(refused(k, json!({"report": "everything"})), "config.report");
    assert_eq!(
        refused(k, json!({"report": "task_summary", "from": "yesterday"})),
        "config.from"
    );
    assert_eq!(
        refused(k, json!({"report": "task_summary", "to": 5})),
        "config.to"
    );
    assert_eq!(
        refused(
            k,
            json!({"report": "task_summary", "from": "2026-12-02T00:00:00Z", "to": "2026-12-01T00:00:00Z"})
        ),
        "config.from"
    );
    assert_eq!(
        refused(
            k,
            json!({"report": "task_summary", "from": "2020-01-01T00:00:00Z", "to": "2026-12-01T00:00:00Z"})
        ),
        "config.from"
    );
    assert_eq!(
        refused(
            k,
            json!({"report": "task_summary", "deliver": {"channel": "webhook"}})
        ),
        "config.deliver.url"
    );
    assert_eq!(
        refused(
            k,
            json!({"report": "task_summary", "deliver": {"channel": "email", "message": "x"}})
        ),
        "config.deliver.message"
    );
    assert!(
        parse(
            k,
            json!({"report": "execution_stats", "deliver": {"channel": "email"}})
        )
        .is_ok()
    );
}

fn browser(steps: Value) -> Value {
    json!({"start_url": "https://shop.example.com/", "steps": steps})
}

#[test]
fn every_rule_of_a_browser_automation_names_its_field_down_to_the_step() {
    let k = TaskKind::BrowserAutomation;
    let cases = [
        (
            json!({"steps": [{"action": "screenshot"}]}),
            "config.start_url",
        ),
        (
            json!({"start_url": "ftp://x", "steps": [{"action": "screenshot"}]}),
            "config.start_url",
        ),
        (json!({"start_url": "https://a.example"}), "config.steps"),
        (browser(json!([])), "config.steps"),
        (browser(json!("click")), "config.steps"),
        (
            browser(json!([{"action": "fly"}])),
            "config.steps[0].action",
        ),
        (browser(json!([{}])), "config.steps[0].action"),
        (
            browser(json!([{"action": "screenshot"}, {"action": "click"}])),
            "config.steps[1].selector",
        ),
        (
            browser(json!([{"action": "click", "selector": "a", "instruction": "b"}])),
            "config.steps[0].instruction",
        ),
        (
            browser(json!([{"action": "click", "selector": "a\nb"}])),
            "config.steps[0].selector",
        ),
        (
            browser(json!([{"action": "type", "selector": "#q"}])),
            "config.steps[0].text",
        ),
        (
            browser(json!([{"action": "navigate", "url": "javascript:alert(1)"}])),
            "config.steps[0].url",
        ),
        (
            browser(json!([{"action": "wait", "ms": 60_001}])),
            "config.steps[0].ms",
        ),
        (
            browser(json!([{"action": "wait", "ms": 5, "selector": "a"}])),
            "config.steps[0].ms",
        ),
        (
            browser(json!([{"action": "wait"}])),
            "config.steps[0].selector",
        ),
        (
            browser(json!([{"action": "extract", "selector": "h1", "schema": {"type": "nope"}}])),
            "config.steps[0].schema",
        ),
        (
            browser(json!([{"action": "extract", "selector": "h1", "schema": "string"}])),
            "config.steps[0].schema",
        ),
        (
            browser(json!([{"action": "screenshot", "full_page": "yes"}])),
            "config.steps[0].full_page",
        ),
        (
            browser(json!([{"action": "screenshot", "zoom": 2}])),
            "config.steps[0].zoom",
        ),
        (
            json!({"start_url": "https://a.example", "browser": "firefox",
                   "steps": [{"action": "screenshot"}]}),
            "config.browser",
        ),
    ];
    for (config, field) in cases {
        assert_eq!(refused(k, config.clone()), field, "{config}");
    }
    let too_many: Vec<Value> = (0..51).map(|_| json!({"action": "screenshot"})).collect();
    assert_eq!(refused(k, browser(json!(too_many))), "config.steps");
    assert!(
        parse(
            k,
            browser(json!([{"action": "click", "instruction": "the blue button"}]))
        )
        .is_ok()
    );
}

#[test]
fn every_rule_of_a_data_extraction_names_its_field() {
    let k = TaskKind::DataExtraction;
    let url = "https://books.example.com/";
    let cases = [
        (json!({"fields": {"t": "h1"}}), "config.url"),
        (json!({"url": url}), "config.fields"),
        (json!({"url": url, "fields": {}}), "config.fields"),
        (json!({"url": url, "fields": ["h1"]}), "config.fields"),
        (json!({"url": url, "fields": {"t": 3}}), "config.fields.t"),
        (
            json!({"url": url, "fields": {"t": "@href"}}),
            "config.fields.t",
        ),
        (
            json!({"url": url, "fields": {"t": "  "}}),
            "config.fields.t",
        ),
        (
            json!({"url": url, "fields": {"t": "h1"}, "instruction": "x"}),
            "config.instruction",
        ),
        (
            json!({"url": url, "fields": {"t": "h1"}, "schema": {}}),
            "config.schema",
        ),
        (
            json!({"url": url, "instruction": "x", "schema": {"type": 5}}),
            "config.schema",
        ),
        (json!({"url": url, "instruction": ""}), "config.instruction"),
    ];
    for (config, field) in cases {
        assert_eq!(refused(k, config.clone()), field, "{config}");
    }
    let parsed = parse(
        k,
        json!({"url": url, "fields": {"mail": "a[href^=\"mailto:x@y\"]", "next": "a.next@href"}}),
    )
    .unwrap();
    let KindConfig::DataExtraction(config) = parsed else {
        panic!("{parsed:?}")
    };
    let crate::kinds::browser::Extraction::Fields(fields) = config.extraction else {
        panic!("fields")
    };
    assert_eq!(
        fields[0].1.attribute, None,
        "an @ inside quotes is the selector's"
    );
    assert_eq!(fields[1].1.attribute.as_deref(), Some("href"));
}

#[test]
fn a_browser_the_deployment_does_not_offer_is_refused_naming_browser() {
    let offer = crate::kinds::browser::BrowserOffer {
        default: Some(crate::kinds::browser::BrowserChoice::Browserbase),
        local: false,
        browserbase: true,
    };
    let aws = ConfigContext {
        browsers: offer,
        ..cx()
    };
    let mut config = browser(json!([{"action": "screenshot"}]));
    assert!(KindConfig::parse(TaskKind::BrowserAutomation, Some(&config), &aws).is_ok());
    config["browser"] = json!("local");
    let e = KindConfig::parse(TaskKind::BrowserAutomation, Some(&config), &aws).unwrap_err();
    assert_eq!(e.field, "config.browser");
    assert!(
        e.message.contains("local is not available"),
        "{}",
        e.message
    );
    let none = ConfigContext {
        browsers: crate::kinds::browser::BrowserOffer::default(),
        ..cx()
    };
    let e = KindConfig::parse(
        TaskKind::DataExtraction,
        Some(&json!({"url": "https://a.example", "fields": {"t": "h1"}})),
        &none,
    )
    .unwrap_err();
    assert_eq!(e.field, "config.browser");
}
