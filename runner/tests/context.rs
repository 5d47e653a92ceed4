//! The context picker against small repositories built on disk.

use std::fs;
use std::path::Path;

use pj_runner::context::{
    ContextOptions, Signature, build_context, estimate_tokens, outline, scan_repository,
};
use tempfile::TempDir;

fn repo_with(files: &[(&str, &[u8])]) -> TempDir {
    let dir = tempfile::tempdir().expect("temp dir");
    for (path, content) in files {
        write(dir.path(), path, content);
    }
    dir
}

fn write(root: &Path, path: &str, content: &[u8]) {
    let full = root.join(path);
    if let Some(parent) = full.parent() {
        fs::create_dir_all(parent).expect("create parent");
    }
    fs::write(full, content).expect("write file");
}

fn scanned_paths(root: &Path) -> Vec<String> {
    scan_repository(root, &ContextOptions::default())
        .expect("scan")
        .files()
        .iter()
        .map(|f| f.path().to_string())
        .collect()
}

/// A small Rust project with a dozen modules, a README and tests.
fn sample_project() -> TempDir {
    let mut files: Vec<(String, String)> = vec![
        (
            "Cargo.toml".into(),
            "[package]\nname = \"sample\"\nversion = \"0.1.0\"\n\n[dependencies]\nserde = \"1\"\n"
                .into(),
        ),
        (
            "README.md".into(),
            "# Sample\n\nA sample project that parses headers and renders pages.\n\n## Usage\n\nRun it.\n"
                .into(),
        ),
        (
            "src/headers.rs".into(),
            "/// Parses one header line.\npub fn parse_header(line: &str) -> Option<(&str, &str)> {\n    line.split_once(':')\n}\n\npub struct HeaderMap {\n    entries: Vec<(String, String)>,\n}\n".into(),
        ),
        (
            "src/render.rs".into(),
            "use crate::headers::parse_header;\n\npub fn render_page(input: &str) -> String {\n    let h = parse_header(input);\n    let again = parse_header(input);\n    format!(\"{h:?}{again:?}\")\n}\n".into(),
        ),
        (
            "src/lib.rs".into(),
            "pub mod headers;\npub mod render;\npub mod util;\n".into(),
        ),
        (
            "tests/headers.rs".into(),
            "#[test]\nfn parses_a_header() {\n    assert!(sample::headers::parse_header(\"a: b\").is_some());\n}\n".into(),
        ),
    ];
    for i in 0..12 {
        files.push((
            format!("src/util/mod{i}.rs"),
            format!(
                "//! Helpers number {i}.\n\npub fn helper_{i}(x: u32) -> u32 {{\n    x + {i}\n}}\n\npub struct Widget{i} {{\n    size: u32,\n}}\n\nimpl Widget{i} {{\n    pub fn grow(&mut self) {{\n        self.size += 1;\n    }}\n}}\n{}",
                "// filler line to give the file some weight\n".repeat(40 + i * 10)
            ),
        ));
    }
    files.push((
        "src/util/strings.rs".into(),
        "pub fn trim_all(s: &str) -> &str {\n    s.trim()\n}\n".into(),
    ));
    let refs: Vec<(&str, &[u8])> = files
        .iter()
        .map(|(p, c)| (p.as_str(), c.as_bytes()))
        .collect();
    repo_with(&refs)
}

#[test]
fn files_listed_in_gitignore_are_left_out_even_without_a_git_directory() {
    let repo = repo_with(&[
        (".gitignore", b"secret/\n*.log\n"),
        ("secret/keys.rs", b"pub const KEY: &str = \"x\";\n"),
        ("debug.log", b"noise\n"),
        ("src/main.rs", b"fn main() {}\n"),
    ]);
    let paths = scanned_paths(repo.path());
    assert!(paths.contains(&"src/main.rs".to_string()), "{paths:?}");
    assert!(!paths.iter().any(|p| p.starts_with("secret/")), "{paths:?}");
    assert!(!paths.contains(&"debug.log".to_string()), "{paths:?}");
}

#[test]
fn nested_gitignore_files_apply_to_their_directory() {
    let repo = repo_with(&[
        ("pkg/.gitignore", b"out.txt\n"),
        ("pkg/out.txt", b"generated\n"),
        ("out.txt", b"kept at the root\n"),
    ]);
    let paths = scanned_paths(repo.path());
    assert!(paths.contains(&"out.txt".to_string()), "{paths:?}");
    assert!(!paths.contains(&"pkg/out.txt".to_string()), "{paths:?}");
}

#[test]
fn binaries_lock_files_vendored_generated_and_large_files_are_skipped() {
    let big = vec![b'a'; 300 * 1024];
    let repo = repo_with(&[
        ("src/main.rs", b"fn main() {}\n"),
        ("assets/logo.png", b"not really a png"),
        ("data/blob.txt", b"text\0with a NUL byte"),
        ("Cargo.lock", b"# lock\n"),
        ("web/package-lock.json", b"{}\n"),
        ("yarn.lock", b"x\n"),
        ("go.sum", b"x\n"),
        ("vendor/dep/lib.rs", b"pub fn vendored() {}\n"),
        (
            "web/node_modules/left-pad/index.js",
            b"module.exports = 1;\n",
        ),
        ("target/debug/build.rs", b"fn x() {}\n"),
        ("py/.venv/lib/site.py", b"x = 1\n"),
        ("py/__pycache__/mod.py", b"x = 1\n"),
        ("third_party/zlib/zlib.c", b"int x;\n"),
        ("web/dist/app.js", b"var a;\n"),
        ("web/app.min.js", b"var a;\n"),
        ("api/api.pb.go", b"package api\n"),
        ("src/schema_generated.rs", b"pub struct S;\n"),
        (
            "src/gen.go",
            b"// Code generated by stringer. DO NOT EDIT.\npackage x\n",
        ),
        ("src/gen.rs", b"// @generated by build.rs\npub fn f() {}\n"),
        ("src/big.rs", &big),
        (".git/config", b"[core]\n"),
    ]);
    let snapshot = scan_repository(repo.path(), &ContextOptions::default()).expect("scan");
    let paths: Vec<&str> = snapshot.files().iter().map(|f| f.path()).collect();
    assert_eq!(paths, vec!["src/main.rs"]);
    let skipped = snapshot.skipped();
    assert_eq!(skipped.binary, 2, "{skipped:?}");
    assert_eq!(skipped.lock, 4, "{skipped:?}");
    assert_eq!(skipped.generated, 5, "{skipped:?}");
    assert_eq!(skipped.large, 1, "{skipped:?}");
    assert!(skipped.directories >= 7, "{skipped:?}");
}

#[test]
fn hidden_files_other_than_git_are_kept() {
    let repo = repo_with(&[
        (".github/workflows/ci.yml", b"on: push\n"),
        (".pithy/instructions.md", b"Use tabs.\n"),
    ]);
    let paths = scanned_paths(repo.path());
    assert_eq!(
        paths,
        vec![".github/workflows/ci.yml", ".pithy/instructions.md"]
    );
}

#[test]
fn files_that_are_not_utf8_are_read_lossily_without_failing() {
    let repo = repo_with(&[("legacy.txt", b"caf\xe9 au lait\n")]);
    let snapshot = scan_repository(repo.path(), &ContextOptions::default()).expect("scan");
    assert!(snapshot.files()[0].text().starts_with("caf\u{fffd}"));
}

#[test]
fn a_missing_repository_is_an_error() {
    let err = build_context(
        Path::new("/definitely/not/here"),
        "task",
        &ContextOptions::default(),
    );
    assert!(err.is_err());
}

#[test]
fn instruction_files_are_included_first_and_in_full() {
    let repo = sample_project();
    write(
        repo.path(),
        "AGENTS.md",
        b"Run `cargo fmt` before committing.\n",
    );
    write(repo.path(), "CLAUDE.md", b"Prefer small functions.\n");
    write(
        repo.path(),
        ".pithy/instructions.md",
        b"Never touch the CI config.\n",
    );
    let ctx =
        build_context(repo.path(), "render a page", &ContextOptions::default()).expect("context");
    let paths: Vec<&str> = ctx.instructions.iter().map(|e| e.path.as_str()).collect();
    assert_eq!(
        paths,
        vec![".pithy/instructions.md", "AGENTS.md", "CLAUDE.md"]
    );
    assert!(ctx.instructions.iter().all(|e| !e.truncated));
    let rendered = ctx.render();
    let instructions_at = rendered
        .find("Never touch the CI config.")
        .expect("instructions");
    let files_at = rendered
        .find("## Files most relevant")
        .expect("files section");
    assert!(instructions_at < files_at);
    assert!(ctx.files.iter().all(|f| f.path != "AGENTS.md"));
}

#[test]
fn a_task_that_names_a_path_ranks_that_file_first() {
    let repo = sample_project();
    let ctx = build_context(
        repo.path(),
        "In src/util/strings.rs, make the helper also strip tabs from headers and pages.",
        &ContextOptions::default(),
    )
    .expect("context");
    assert_eq!(ctx.ranking[0].path, "src/util/strings.rs");
    assert_eq!(ctx.files[0].path, "src/util/strings.rs");
}

#[test]
fn a_task_that_names_a_file_by_its_name_ranks_it_first() {
    let repo = sample_project();
    let ctx = build_context(
        repo.path(),
        "strings.rs should handle unicode whitespace",
        &ContextOptions::default(),
    )
    .expect("context");
    assert_eq!(ctx.ranking[0].path, "src/util/strings.rs");
}

#[test]
fn a_task_that_names_a_symbol_ranks_its_defining_file_above_its_callers() {
    let repo = sample_project();
    let ctx = build_context(
        repo.path(),
        "`parse_header` should reject lines without a value",
        &ContextOptions::default(),
    )
    .expect("context");
    assert_eq!(ctx.ranking[0].path, "src/headers.rs", "{:?}", ctx.ranking);
    assert!(ctx.files.iter().any(|f| f.path == "src/headers.rs"));
}

#[test]
fn a_camel_case_symbol_without_backticks_is_found_too() {
    let repo = sample_project();
    let ctx = build_context(
        repo.path(),
        "HeaderMap loses entries when cloned",
        &ContextOptions::default(),
    )
    .expect("context");
    assert_eq!(ctx.ranking[0].path, "src/headers.rs", "{:?}", ctx.ranking);
}

#[test]
fn tests_rank_below_the_code_they_test_unless_the_task_is_about_tests() {
    let repo = repo_with(&[
        (
            "src/retry.rs",
            b"pub fn retry_backoff(attempt: u32) -> u32 {\n    attempt * 2\n}\n",
        ),
        (
            "tests/retry.rs",
            b"#[test]\nfn retry_backoff_doubles() {\n    assert_eq!(retry_backoff(1), 2);\n}\n",
        ),
    ]);
    let opts = ContextOptions::default();
    let code = build_context(repo.path(), "retry backoff grows too fast", &opts).expect("context");
    assert_eq!(code.ranking[0].path, "src/retry.rs");
    let tests =
        build_context(repo.path(), "add a test for the retry backoff", &opts).expect("context");
    let test_rank = tests
        .ranking
        .iter()
        .position(|r| r.path == "tests/retry.rs");
    let code_rank = tests.ranking.iter().position(|r| r.path == "src/retry.rs");
    assert!(test_rank.is_some() && code_rank.is_some());
}

#[test]
fn a_dependency_task_brings_the_manifest() {
    let repo = sample_project();
    let ctx = build_context(
        repo.path(),
        "bump serde to the latest version",
        &ContextOptions::default(),
    )
    .expect("context");
    assert_eq!(ctx.ranking[0].path, "Cargo.toml", "{:?}", ctx.ranking);
}

#[test]
fn the_rendered_context_never_exceeds_the_budget() {
    let repo = sample_project();
    write(
        repo.path(),
        "AGENTS.md",
        "Be careful.\n".repeat(300).as_bytes(),
    );
    write(
        repo.path(),
        "docs/guide.md",
        "# Guide\n\nParse headers, render pages.\n"
            .repeat(200)
            .as_bytes(),
    );
    let snapshot = scan_repository(repo.path(), &ContextOptions::default()).expect("scan");
    let tasks = [
        "render pages with parsed headers",
        "`parse_header` should reject lines without a value",
        "src/util/strings.rs trims too much",
        "",
    ];
    let budgets = (0..400).step_by(7).chain((400..30_000).step_by(613));
    for budget in budgets {
        let opts = ContextOptions {
            token_budget: budget,
            ..ContextOptions::default()
        };
        for task in tasks {
            let ctx = pj_runner::context::select_context(&snapshot, task, &opts);
            let rendered = ctx.render();
            assert!(
                estimate_tokens(&rendered) <= budget,
                "budget {budget}, task {task:?}: {} tokens",
                estimate_tokens(&rendered)
            );
            assert_eq!(ctx.token_estimate, estimate_tokens(&rendered));
        }
    }
}

#[test]
fn a_generous_budget_is_mostly_used() {
    let repo = sample_project();
    let opts = ContextOptions {
        token_budget: 3_000,
        ..ContextOptions::default()
    };
    let ctx = build_context(repo.path(), "helper widget grow size", &opts).expect("context");
    assert!(ctx.token_estimate > 2_000, "{}", ctx.token_estimate);
    assert!(!ctx.files.is_empty());
    assert!(!ctx.outline.is_empty());
}

#[test]
fn a_file_too_large_to_fit_whole_is_outlined_and_smaller_ones_still_come_whole() {
    let mut large = String::from("pub fn render_everything() {}\n");
    for i in 0..400 {
        large.push_str(&format!(
            "pub fn render_part_{i}(page: &str) -> usize {{ page.len() }}\n"
        ));
    }
    let repo = repo_with(&[
        ("src/large.rs", large.as_bytes()),
        (
            "src/small.rs",
            b"pub fn render_small(page: &str) -> usize { page.len() }\n",
        ),
    ]);
    let opts = ContextOptions {
        token_budget: 2_000,
        ..ContextOptions::default()
    };
    let ctx = build_context(repo.path(), "render page", &opts).expect("context");
    assert!(ctx.files.iter().any(|f| f.path == "src/small.rs"));
    assert!(ctx.files.iter().all(|f| f.path != "src/large.rs"));
    let outlined = ctx
        .outline
        .iter()
        .find(|o| o.path == "src/large.rs")
        .expect("large file outlined");
    assert!(outlined.omitted > 0);
}

#[test]
fn the_same_input_gives_the_same_context() {
    let repo = sample_project();
    let opts = ContextOptions::default();
    let a = build_context(repo.path(), "helper widget", &opts).expect("context");
    let b = build_context(repo.path(), "helper widget", &opts).expect("context");
    assert_eq!(a.render(), b.render());
}

#[test]
fn languages_and_manifests_are_reported() {
    let repo = repo_with(&[
        ("Cargo.toml", b"[package]\n"),
        ("web/package.json", b"{}\n"),
        ("py/pyproject.toml", b"[project]\n"),
        ("svc/go.mod", b"module x\n"),
        ("java/pom.xml", b"<project/>\n"),
        ("java/build.gradle", b"\n"),
        ("rb/Gemfile", b"source 'x'\n"),
        ("php/composer.json", b"{}\n"),
        ("cs/App.csproj", b"<Project/>\n"),
        ("src/a.rs", b"fn a() {}\n"),
        ("src/b.rs", b"fn b() {}\n"),
        ("src/c.rs", b"fn c() {}\n"),
        ("web/index.js", b"function x() {}\n"),
    ]);
    let ctx = build_context(repo.path(), "anything", &ContextOptions::default()).expect("context");
    assert_eq!(
        ctx.manifests,
        vec![
            "Cargo.toml",
            "cs/App.csproj",
            "java/build.gradle",
            "java/pom.xml",
            "php/composer.json",
            "py/pyproject.toml",
            "rb/Gemfile",
            "svc/go.mod",
            "web/package.json",
        ]
    );
    assert_eq!(ctx.languages[0].name, "Rust");
    assert_eq!(ctx.languages[0].files, 3);
}

#[test]
fn render_has_every_section_with_fenced_files_and_numbered_outlines() {
    let repo = sample_project();
    write(repo.path(), "AGENTS.md", b"Keep functions small.\n");
    let opts = ContextOptions {
        token_budget: 2_500,
        ..ContextOptions::default()
    };
    let ctx = build_context(repo.path(), "`parse_header` and the widget helpers", &opts)
        .expect("context");
    let text = ctx.render();
    for heading in [
        "# Repository context\n",
        "Languages by files: Rust (",
        "Manifests: Cargo.toml.",
        "## File tree\n",
        "## Repository instructions for coding agents\n",
        "### AGENTS.md\n",
        "## README (README.md)\n",
        "## Files most relevant to the task\n",
        "### src/headers.rs\n\n```rust\n/// Parses one header line.\n",
        "## Outline of other relevant files\n",
    ] {
        assert!(text.contains(heading), "missing {heading:?} in:\n{text}");
    }
    let outlined = &ctx.outline[0];
    let block = format!(
        "{}:\n  {}: {}\n",
        outlined.path, outlined.signatures[0].line, outlined.signatures[0].text
    );
    assert!(text.contains(&block), "missing {block:?} in:\n{text}");
}

#[test]
fn a_file_containing_backtick_fences_gets_a_longer_fence() {
    let repo = repo_with(&[("notes/fences.md", b"Example:\n```sh\nls\n```\n")]);
    let ctx =
        build_context(repo.path(), "fences example", &ContextOptions::default()).expect("context");
    assert!(
        ctx.render()
            .contains("````markdown\nExample:\n```sh\nls\n```\n````\n")
    );
}

fn lines(signatures: &[Signature]) -> Vec<(usize, &str)> {
    signatures
        .iter()
        .map(|s| (s.line, s.text.as_str()))
        .collect()
}

#[test]
fn rust_outline_lists_items_and_skips_bodies_and_comments() {
    let source = "\
use std::fmt;
// fn commented_out() {}
pub struct Point {
    x: i32,
}
pub(crate) enum Shape { Circle }
pub trait Area {
    fn area(&self) -> f64;
}
impl Area for Point {
    fn area(&self) -> f64 {
        let y = 1;
        0.0
    }
}
pub async fn fetch() {}
const LIMIT: usize = 3;
macro_rules! square {
";
    assert_eq!(
        lines(&outline("src/geo.rs", source)),
        vec![
            (3, "pub struct Point"),
            (6, "pub(crate) enum Shape { Circle }"),
            (7, "pub trait Area"),
            (8, "fn area(&self) -> f64;"),
            (10, "impl Area for Point"),
            (11, "fn area(&self) -> f64"),
            (16, "pub async fn fetch() {}"),
            (17, "const LIMIT: usize = 3;"),
            (18, "macro_rules! square"),
        ]
    );
}

#[test]
fn python_outline_lists_classes_functions_and_constants() {
    let source = "\
import os
MAX_RETRIES = 3
# def commented():
class Client(Base):
    def __init__(self, url):
        self.url = url
    async def fetch(self):
        return 1
def helper(x):
    return x
";
    assert_eq!(
        lines(&outline("pkg/client.py", source)),
        vec![
            (2, "MAX_RETRIES = 3"),
            (4, "class Client(Base):"),
            (5, "def __init__(self, url):"),
            (7, "async def fetch(self):"),
            (9, "def helper(x):"),
        ]
    );
}

#[test]
fn javascript_outline_lists_functions_classes_methods_and_exports() {
    let source = "\
'use strict';
var debug = require('debug');
module.exports = createApp;
function createApp(options) {
  if (options) {
    return 1;
  }
}
app.handle = function handle(req, res) {
};
class Router {
  route(path) {
    for (const x of y) {
    }
  }
}
export const LIMIT = 10;
";
    assert_eq!(
        lines(&outline("lib/app.js", source)),
        vec![
            (2, "var debug = require('debug');"),
            (3, "module.exports = createApp;"),
            (4, "function createApp(options)"),
            (9, "app.handle = function handle(req, res)"),
            (11, "class Router"),
            (12, "route(path)"),
            (17, "export const LIMIT = 10;"),
        ]
    );
}

#[test]
fn typescript_outline_lists_interfaces_types_and_typed_methods() {
    let source = "\
export interface Options {
  retries: number;
}
export type Handler = (req: Request) => void;
export enum Mode { Fast, Slow }
export default class Server {
  private readonly port: number;
  public async listen(port: number): Promise<void> {
  }
}
export async function start(): Promise<Server> {
";
    assert_eq!(
        lines(&outline("src/server.ts", source)),
        vec![
            (1, "export interface Options"),
            (4, "export type Handler = (req: Request) => void;"),
            (5, "export enum Mode { Fast, Slow }"),
            (6, "export default class Server"),
            (8, "public async listen(port: number): Promise<void>"),
            (11, "export async function start(): Promise<Server>"),
        ]
    );
}

#[test]
fn go_outline_lists_funcs_methods_types_and_declarations() {
    let source = "\
package server

import \"net/http\"

const DefaultPort = 8080

type Server struct {
\tport int
}

func (s *Server) Listen() error {
\treturn nil
}

func New() *Server {
";
    assert_eq!(
        lines(&outline("server/server.go", source)),
        vec![
            (5, "const DefaultPort = 8080"),
            (7, "type Server struct"),
            (11, "func (s *Server) Listen() error"),
            (15, "func New() *Server"),
        ]
    );
}

#[test]
fn markdown_outline_lists_headings_outside_code_fences() {
    let source = "# Title\n\n```sh\n# not a heading\n```\n## Usage\n#### too deep\n";
    assert_eq!(
        lines(&outline("README.md", source)),
        vec![(1, "# Title"), (6, "## Usage")]
    );
}

#[test]
fn unknown_languages_have_no_outline() {
    assert!(outline("data/table.csv", "a,b\n1,2\n").is_empty());
}

#[test]
fn token_estimates_grow_with_text_and_add_up_over_lines() {
    assert_eq!(estimate_tokens(""), 0);
    let line = "    let value = compute(input, 42);\n";
    let one = estimate_tokens(line);
    assert!((5..=14).contains(&one), "{one}");
    let many = line.repeat(100);
    assert!(estimate_tokens(&many) <= one * 100);
    assert!(estimate_tokens(&many) >= one * 90);
}
