//! A scratch repository to apply replies to.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use pj_runner::patch::{self, ApplyOptions, Report, Status};

/// A temporary working tree.
pub struct Repo {
    dir: tempfile::TempDir,
}

impl Repo {
    pub fn new() -> Self {
        Repo {
            dir: tempfile::tempdir().expect("tempdir"),
        }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn at(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    pub fn write(&self, rel: &str, content: impl AsRef<[u8]>) -> &Self {
        let path = self.at(rel);
        if let Some(parent) = path.parent() {
            fs::create_dir_all(parent).expect("mkdir");
        }
        fs::write(path, content).expect("write");
        self
    }

    pub fn read(&self, rel: &str) -> String {
        fs::read_to_string(self.at(rel)).expect("read")
    }

    pub fn exists(&self, rel: &str) -> bool {
        self.at(rel).exists()
    }

    pub fn apply(&self, reply: &str) -> Report {
        self.apply_with(reply, &ApplyOptions::default())
    }

    pub fn apply_with(&self, reply: &str, options: &ApplyOptions) -> Report {
        patch::apply_reply(self.path(), reply, options)
    }

    /// Every file and its bytes, to compare a tree before and after.
    pub fn snapshot(&self) -> BTreeMap<String, Vec<u8>> {
        let mut out = BTreeMap::new();
        walk(self.path(), self.path(), &mut out);
        out
    }
}

fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<String, Vec<u8>>) {
    for entry in fs::read_dir(dir).expect("read_dir") {
        let entry = entry.expect("entry");
        let path = entry.path();
        let kind = entry.file_type().expect("type");
        let rel = path
            .strip_prefix(root)
            .expect("inside")
            .to_string_lossy()
            .into_owned();
        if kind.is_dir() {
            out.insert(format!("{rel}/"), Vec::new());
            walk(root, &path, out);
        } else if kind.is_symlink() {
            let target = fs::read_link(&path).expect("link");
            out.insert(rel, target.to_string_lossy().as_bytes().to_vec());
        } else {
            out.insert(rel, fs::read(&path).expect("read"));
        }
    }
}

/// The statuses of a report's hunks, in order.
pub fn statuses(report: &Report) -> Vec<Status> {
    report.hunks.iter().map(|h| h.status).collect()
}

/// All failure messages of a report, joined, for `contains` checks.
pub fn failures(report: &Report) -> String {
    let mut out: Vec<String> = report
        .hunks
        .iter()
        .filter(|h| h.status == Status::Failed)
        .map(|h| h.message.clone())
        .collect();
    if let Some(e) = &report.error {
        out.push(e.clone());
    }
    out.join("\n")
}

/// A small Rust file with distinct lines, the usual target.
pub const LIB: &str = "\
use std::fmt;

pub struct Point {
    x: i32,
    y: i32,
}

impl Point {
    pub fn new(x: i32, y: i32) -> Self {
        Point { x, y }
    }

    pub fn norm(&self) -> i32 {
        self.x.abs() + self.y.abs()
    }
}

impl fmt::Display for Point {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, \"({}, {})\", self.x, self.y)
    }
}
";
