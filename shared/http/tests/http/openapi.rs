//! `GET /openapi.json`: the description, and real answers of every route checked against it.

use std::collections::BTreeSet;

use pj_core::ids::{Attempt, TaskId, WebhookId};
use pj_core::signing::{MasterSecret, signed_headers};
use secrecy::SecretString;
use serde_json::{Value, json};

use crate::support::{ALICE, BOB, MASTER, TestApp, spawn_app};

/// The published description, and which of its operations a test has answered.
struct Description {
    doc: Value,
    answered: BTreeSet<(String, String)>,
}

/// A JSON pointer token (RFC 6901), as it goes in a URI fragment.
fn escape(token: &str) -> String {
    token
        .replace('~', "~0")
        .replace('/', "~1")
        .replace('{', "%7B")
        .replace('}', "%7D")
        .replace(' ', "%20")
}

impl Description {
    async fn fetch(app: &TestApp) -> Description {
        let response = app
            .client
            .get(app.url("/openapi.json"))
            .send()
            .await
            .expect("the description is answered");
        assert_eq!(response.status(), 200);
        assert_eq!(
            response.headers()["content-type"],
            "application/json",
            "the description is JSON"
        );
        let doc: Value = response.json().await.expect("a JSON description");
        Description {
            doc,
            answered: BTreeSet::new(),
        }
    }

    fn operations(&self) -> BTreeSet<(String, String)> {
        let mut all = BTreeSet::new();
        for (path, item) in self.doc["paths"].as_object().expect("paths") {
            for method in item.as_object().expect("a path item").keys() {
                all.insert((method.to_uppercase(), path.clone()));
            }
        }
        all
    }

    /// Checks a real answer of `method template` against the description: its status is one the
    /// operation documents, with the content type documented for it, and a JSON body matches
    /// that status's schema.
    fn check(
        &mut self,
        method: &str,
        template: &str,
        status: u16,
        content_type: &str,
        body: &[u8],
    ) {
        let operation = &self.doc["paths"][template][method.to_lowercase()];
        assert!(
            operation.is_object(),
            "{method} {template} is not in the description"
        );
        self.answered
            .insert((method.to_owned(), template.to_owned()));
        let response = &operation["responses"][status.to_string()];
        assert!(
            response.is_object(),
            "{method} {template} answered {status}, which the description does not list: {}",
            String::from_utf8_lossy(body)
        );
        let content = response["content"]
            .as_object()
            .unwrap_or_else(|| panic!("{method} {template} {status} documents no content"));
        assert!(
            content.contains_key(content_type),
            "{method} {template} {status} answered {content_type}; documented: {:?}",
            content.keys().collect::<Vec<_>>()
        );
        if content_type != "application/json" {
            return;
        }
        let pointer = format!(
            "#/paths/{}/{}/responses/{status}/content/{}/schema",
            escape(template),
            method.to_lowercase(),
            escape(content_type)
        );
        self.check_schema(&pointer, body, &format!("{method} {template} {status}"));
    }

    /// Checks `body` against the schema at `pointer` inside the description (its `$ref`s to the
    /// components resolve in the same document).
    fn check_schema(&self, pointer: &str, body: &[u8], what: &str) {
        let instance: Value = serde_json::from_slice(body)
            .unwrap_or_else(|e| panic!("{what}: the body is not JSON: {e}"));
        let mut root = self.doc.clone();
        root["$schema"] = json!("https://json-schema.org/draft/2020-12/schema");
        root["$ref"] = json!(pointer);
        let validator = jsonschema::validator_for(&root)
            .unwrap_or_else(|e| panic!("{what}: the schema does not compile: {e}"));
        let errors: Vec<String> = validator
            .iter_errors(&instance)
            .map(|e| format!("{} at {}", e, e.instance_path()))
            .collect();
        assert!(
            errors.is_empty(),
            "{what}: the answer breaks the description:\n{}\n{instance:#}",
            errors.join("\n")
        );
    }
}

/// What a test request came back with.
struct Answer {
    status: u16,
    content_type: String,
    body: Vec<u8>,
}

impl Answer {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).expect("a JSON body")
    }
}

async fn send(request: reqwest::RequestBuilder) -> Answer {
    let response = request.send().await.expect("the request is answered");
    let status = response.status().as_u16();
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let body = response.bytes().await.expect("the body").to_vec();
    Answer {
        status,
        content_type,
        body,
    }
}

/// The app and its description: every answer is checked against the operation it answers.
struct Checked<'a> {
    app: &'a TestApp,
    doc: Description,
}

impl Checked<'_> {
    /// Sends `method path` (as ALICE unless `token` says otherwise) and checks the answer against
    /// the operation `template`.
    async fn call(
        &mut self,
        method: &str,
        template: &str,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> Answer {
        let mut request = self
            .app
            .client
            .request(method.parse().expect("a method"), self.app.url(path));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        let answer = send(request).await;
        self.doc.check(
            method,
            template,
            answer.status,
            &answer.content_type,
            &answer.body,
        );
        answer
    }

    /// A runner callback for attempt 1 of `task`, signed with the master secret.
    async fn callback(&mut self, template: &str, task: &str, body: Value) -> Answer {
        let master = MasterSecret::new(SecretString::from(MASTER)).expect("a valid master secret");
        let key = master.derive(&TaskId::parse(task).expect("a task id"), Attempt::FIRST);
        let bytes = serde_json::to_vec(&body).expect("JSON");
        let mut request = self
            .app
            .client
            .post(self.app.url(template))
            .header("content-type", "application/json")
            .body(bytes.clone());
        for (name, value) in signed_headers(
            &key,
            &WebhookId::generate(),
            chrono::Utc::now().timestamp(),
            &bytes,
        ) {
            request = request.header(name, value);
        }
        let answer = send(request).await;
        self.doc.check(
            "POST",
            template,
            answer.status,
            &answer.content_type,
            &answer.body,
        );
        answer
    }
}

#[tokio::test]
async fn the_description_should_be_openapi_3_1_and_served_without_a_token() {
    let app = spawn_app().await;
    let doc = Description::fetch(&app).await;
    assert!(
        doc.doc["openapi"]
            .as_str()
            .is_some_and(|v| v.starts_with("3.1")),
        "{}",
        doc.doc["openapi"]
    );
    assert_eq!(
        doc.doc["components"]["securitySchemes"]["bearer"]["scheme"],
        "bearer"
    );
    // Every schema it names is defined in it.
    let text = doc.doc.to_string();
    for reference in text.split("\"$ref\":\"").skip(1) {
        let target = reference.split('"').next().unwrap_or_default();
        let name = target
            .strip_prefix("#/components/schemas/")
            .unwrap_or_else(|| panic!("a reference outside the components: {target}"));
        assert!(
            doc.doc["components"]["schemas"][name].is_object(),
            "{target} is not defined"
        );
    }
}

#[tokio::test]
async fn every_route_should_answer_as_the_description_says() {
    let app = spawn_app().await;
    let mut api = Checked {
        app: &app,
        doc: Description::fetch(&app).await,
    };

    api.call("GET", "/healthz", "/healthz", None, None).await;
    api.call("GET", "/openapi.json", "/openapi.json", None, None)
        .await;

    // Create: a code change that waits, a bad body, no token.
    let created = api
        .call(
            "POST",
            "/tasks",
            "/tasks",
            Some(ALICE),
            Some(json!({
                "repo_url": "https://github.com/acme/widgets",
                "prompt": "Add a CONTRIBUTING.md",
                "execute": false,
                "model": {"provider": "anthropic", "name": "claude-sonnet-4-5"},
            })),
        )
        .await;
    assert_eq!(created.status, 201);
    let id = created.json()["id"].as_str().expect("an id").to_owned();
    let bad = api.call("POST",
        "/tasks",
        "/tasks",
        Some(ALICE),
        Some(
            json!({"repo_url": "https://github.com/acme/widgets", "prompt": "x", "colour": "red"}),
        ),
    )
    .await;
    assert_eq!(bad.status, 400);
    assert_eq!(bad.json()["error"]["field"], "colour");
    let anonymous = api
        .call("POST", "/tasks", "/tasks", None, Some(json!({})))
        .await;
    assert_eq!(anonymous.status, 401);
    // A task for review, and one of a built-in kind with its config shown.
    let review = api.call("POST",
        "/tasks",
        "/tasks",
        Some(ALICE),
        Some(json!({"repo_url": "https://github.com/acme/widgets", "prompt": "Tidy up", "requires_review": true})),
    )
    .await;
    let review_id = review.json()["id"].as_str().expect("an id").to_owned();
    let report = api
        .call(
            "POST",
            "/tasks",
            "/tasks",
            Some(ALICE),
            Some(
                json!({"kind": "notification", "title": "Hello", "execute": false,
                    "config": {"channel": "email", "subject": "Hi", "message": "Hello"}}),
            ),
        )
        .await;
    assert_eq!(report.status, 201, "{}", report.json());

    // The runner's side of the code change: started, a log line, a reply kept, completed.
    let execute = format!("/tasks/{id}/execute");
    let executed = api
        .call("POST", "/tasks/{id}/execute", &execute, Some(ALICE), None)
        .await;
    assert_eq!(executed.status, 202);
    let started = api
        .callback(
            "/webhooks/runner",
            &id,
            json!({"type": "task.started", "task_id": id, "attempt": 1}),
        )
        .await;
    assert_eq!(started.status, 200, "{}", started.json());
    let logged = api
        .callback(
            "/webhooks/runner/logs",
            &id,
            json!({"task_id": id, "attempt": 1, "lines": [
                {"seq": 0, "ts": "2026-12-02T05:40:01.5Z", "stream": "stdout", "text": "cloning"},
                {"seq": 1, "ts": "2026-12-02T05:40:02.5Z", "stream": "stderr", "text": "warning"},
            ]}),
        )
        .await;
    assert_eq!(logged.json()["stored"], 2);
    let uploaded = api.callback("/webhooks/runner/artifacts",
        &id,
        json!({"task_id": id, "attempt": 1, "name": "a1-reply-1.md", "content_base64": "IyBIZWxsbwo="}),
    )
    .await;
    assert_eq!(uploaded.json()["status"], "stored");

    // The stream: its events' data are a Task and log lines as described.
    let stream = format!("/tasks/{id}/logs/stream");
    let response = app
        .client
        .get(app.url(&stream))
        .bearer_auth(ALICE)
        .send()
        .await
        .expect("the stream opens");
    let content_type = response.headers()["content-type"]
        .to_str()
        .expect("ASCII")
        .to_owned();
    api.doc
        .check("GET", "/tasks/{id}/logs/stream", 200, &content_type, b"");
    let mut response = response;
    let mut text = String::new();
    while !text.contains("event: status") {
        let chunk = response.chunk().await.expect("bytes").expect("more events");
        text.push_str(&String::from_utf8_lossy(&chunk));
    }
    drop(response);
    for event in text.split("\n\n").filter(|e| !e.trim().is_empty()) {
        let data: String = event
            .lines()
            .filter_map(|l| l.strip_prefix("data:"))
            .map(str::trim_start)
            .collect();
        let component = if event.contains("event: status") {
            "Task"
        } else if event.contains("event: log") {
            "LogLine"
        } else {
            continue;
        };
        api.doc.check_schema(
            &format!("#/components/schemas/{component}"),
            data.as_bytes(),
            &format!("a stream event of {component}"),
        );
    }

    let completed = api.callback("/webhooks/runner",
        &id,
        json!({"type": "task.completed", "task_id": id, "attempt": 1,
               "pr_url": "https://github.com/acme/widgets/pull/7", "branch": format!("pj/{id}"),
               "usage": {"input_tokens": 1200, "output_tokens": 300, "cost_usd": 0.01, "model": "claude-sonnet-4-5"}}),
    )
    .await;
    assert_eq!(completed.status, 200, "{}", completed.json());
    let late = api
        .callback(
            "/webhooks/runner/logs",
            &id,
            json!({"task_id": id, "attempt": 2, "lines": []}),
        )
        .await;
    assert!(
        late.status >= 400,
        "a batch for an attempt that never was is refused"
    );

    // Reads, for the owner, for another user and for nobody.
    for (template, path) in [
        ("/tasks", "/tasks".to_owned()),
        ("/tasks", "/tasks?status=completed&limit=1".to_owned()),
        ("/tasks/{id}", format!("/tasks/{id}")),
        ("/tasks/{id}/executions", format!("/tasks/{id}/executions")),
        ("/tasks/{id}/logs", format!("/tasks/{id}/logs")),
        ("/tasks/{id}/artifacts", format!("/tasks/{id}/artifacts")),
        (
            "/tasks/{id}/artifacts/{name}",
            format!("/tasks/{id}/artifacts/a1-reply-1.md"),
        ),
        ("/messages", "/messages".to_owned()),
        ("/messages", format!("/messages?task_id={id}&status=sent")),
    ] {
        let own = api.call("GET", template, &path, Some(ALICE), None).await;
        assert_eq!(own.status, 200, "{path}");
        api.call("GET", template, &path, None, None).await;
        if template.contains("{id}") {
            let other = api.call("GET", template, &path, Some(BOB), None).await;
            assert_eq!(other.status, 404, "{path} of another user");
        }
    }
    let listed = api
        .call("GET", "/tasks", "/tasks?limit=0", Some(ALICE), None)
        .await;
    assert_eq!(listed.status, 400);
    let missing = api
        .call(
            "GET",
            "/tasks/{id}/artifacts/{name}",
            &format!("/tasks/{id}/artifacts/a1-reply-9.md"),
            Some(ALICE),
            None,
        )
        .await;
    assert_eq!(missing.status, 404);

    // The actions: allowed, and in the wrong status, in this order.
    for (action, task, expected) in [
        ("approve", &review_id, 200),
        ("approve", &review_id, 409),
        ("cancel", &review_id, 200),
        ("retry", &review_id, 202),
        ("execute", &id, 409),
    ] {
        let template = format!("/tasks/{{id}}/{action}");
        let path = format!("/tasks/{task}/{action}");
        let answer = api.call("POST", &template, &path, Some(ALICE), None).await;
        assert_eq!(answer.status, expected, "{path}");
    }

    // Every operation of the description was answered above.
    let missed: Vec<_> = api
        .doc
        .operations()
        .difference(&api.doc.answered)
        .cloned()
        .collect();
    assert!(missed.is_empty(), "operations no test answered: {missed:?}");
}

#[tokio::test]
async fn a_path_or_method_outside_the_description_should_be_the_json_404() {
    let app = spawn_app().await;
    let doc = Description::fetch(&app).await;
    let operations = doc.operations();
    for (method, path) in [
        ("DELETE", "/tasks"),
        ("GET", "/tasks/x/nothing"),
        ("PUT", "/openapi.json"),
    ] {
        assert!(!operations.contains(&(method.to_owned(), path.to_owned())));
        let answer = send(
            app.client
                .request(method.parse().unwrap(), app.url(path))
                .bearer_auth(ALICE),
        )
        .await;
        assert_eq!(answer.status, 404, "{method} {path}");
        assert_eq!(answer.json()["error"]["code"], "not_found");
    }
}
