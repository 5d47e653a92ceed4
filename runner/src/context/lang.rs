//! What kind of file a path is: its language, its fence tag, and the role it plays in a repository
//! (manifest, lock file, test, documentation).

/// The families of languages whose definitions the outline knows how to find.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Family {
    Rust,
    Python,
    JavaScript,
    Go,
    /// Java, Kotlin, Scala, C#, Swift, Dart: `class` and friends, methods with modifiers.
    JvmLike,
    Ruby,
    Php,
    /// C, C++, Objective-C.
    CLike,
    Shell,
    Elixir,
    Lua,
    Markdown,
    Toml,
    Other,
}

/// Language facts for one file extension.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Language {
    /// Human name, as reported in the overview.
    pub name: &'static str,
    /// Info string for a Markdown code fence.
    pub fence: &'static str,
    /// How its outline is extracted.
    pub family: Family,
}

const fn lang(name: &'static str, fence: &'static str, family: Family) -> Language {
    Language {
        name,
        fence,
        family,
    }
}

/// The language of `path`, from its file name or extension; `None` for unknown kinds.
pub(crate) fn language_of(path: &str) -> Option<Language> {
    let name = file_name(path);
    match name {
        "Makefile" | "GNUmakefile" | "makefile" => {
            return Some(lang("Makefile", "make", Family::Other));
        }
        "Dockerfile" => return Some(lang("Dockerfile", "dockerfile", Family::Other)),
        "Gemfile" | "Rakefile" => return Some(lang("Ruby", "ruby", Family::Ruby)),
        "CMakeLists.txt" => return Some(lang("CMake", "cmake", Family::Other)),
        _ => {}
    }
    let ext = extension(name)?.to_ascii_lowercase();
    let found = match ext.as_str() {
        "rs" => lang("Rust", "rust", Family::Rust),
        "py" | "pyi" => lang("Python", "python", Family::Python),
        "js" | "mjs" | "cjs" => lang("JavaScript", "javascript", Family::JavaScript),
        "jsx" => lang("JavaScript", "jsx", Family::JavaScript),
        "ts" | "mts" | "cts" => lang("TypeScript", "typescript", Family::JavaScript),
        "tsx" => lang("TypeScript", "tsx", Family::JavaScript),
        "vue" => lang("Vue", "vue", Family::JavaScript),
        "svelte" => lang("Svelte", "svelte", Family::JavaScript),
        "go" => lang("Go", "go", Family::Go),
        "java" => lang("Java", "java", Family::JvmLike),
        "kt" | "kts" => lang("Kotlin", "kotlin", Family::JvmLike),
        "scala" => lang("Scala", "scala", Family::JvmLike),
        "cs" => lang("C#", "csharp", Family::JvmLike),
        "swift" => lang("Swift", "swift", Family::JvmLike),
        "dart" => lang("Dart", "dart", Family::JvmLike),
        "groovy" | "gradle" => lang("Groovy", "groovy", Family::JvmLike),
        "rb" | "rake" | "gemspec" => lang("Ruby", "ruby", Family::Ruby),
        "php" => lang("PHP", "php", Family::Php),
        "c" => lang("C", "c", Family::CLike),
        "h" => lang("C/C++ header", "c", Family::CLike),
        "cc" | "cpp" | "cxx" | "hpp" | "hh" | "hxx" => lang("C++", "cpp", Family::CLike),
        "m" | "mm" => lang("Objective-C", "objc", Family::CLike),
        "sh" | "bash" | "zsh" => lang("Shell", "sh", Family::Shell),
        "ex" | "exs" => lang("Elixir", "elixir", Family::Elixir),
        "lua" => lang("Lua", "lua", Family::Lua),
        "md" | "markdown" => lang("Markdown", "markdown", Family::Markdown),
        "rst" => lang("reStructuredText", "rst", Family::Other),
        "txt" => lang("Text", "text", Family::Other),
        "toml" => lang("TOML", "toml", Family::Toml),
        "yml" | "yaml" => lang("YAML", "yaml", Family::Other),
        "json" => lang("JSON", "json", Family::Other),
        "xml" => lang("XML", "xml", Family::Other),
        "html" | "htm" => lang("HTML", "html", Family::Other),
        "css" => lang("CSS", "css", Family::Other),
        "scss" | "sass" | "less" => lang("CSS", "scss", Family::Other),
        "sql" => lang("SQL", "sql", Family::Other),
        "proto" => lang("Protocol Buffers", "protobuf", Family::Other),
        "tf" => lang("Terraform", "hcl", Family::Other),
        "nix" => lang("Nix", "nix", Family::Other),
        "zig" => lang("Zig", "zig", Family::Other),
        "hs" => lang("Haskell", "haskell", Family::Other),
        "ml" | "mli" => lang("OCaml", "ocaml", Family::Other),
        "erl" => lang("Erlang", "erlang", Family::Other),
        "r" => lang("R", "r", Family::Other),
        "jl" => lang("Julia", "julia", Family::Other),
        "pl" | "pm" => lang("Perl", "perl", Family::Other),
        "ps1" => lang("PowerShell", "powershell", Family::Other),
        "bat" | "cmd" => lang("Batch", "bat", Family::Other),
        "ini" | "cfg" | "conf" => lang("Config", "ini", Family::Other),
        _ => return None,
    };
    Some(found)
}

/// The last component of a `/`-separated path.
pub(crate) fn file_name(path: &str) -> &str {
    path.rsplit('/').next().unwrap_or(path)
}

/// The extension of a file name (after the last dot, not counting a leading dot).
pub(crate) fn extension(name: &str) -> Option<&str> {
    let dot = name.rfind('.')?;
    (dot > 0 && dot + 1 < name.len()).then(|| &name[dot + 1..])
}

/// The file name without its extension.
pub(crate) fn stem(name: &str) -> &str {
    match name.rfind('.') {
        Some(dot) if dot > 0 => &name[..dot],
        _ => name,
    }
}

/// Dependency manifests: files that declare a project and what it depends on.
pub(crate) fn is_manifest(path: &str) -> bool {
    let name = file_name(path);
    matches!(
        name,
        "Cargo.toml"
            | "package.json"
            | "pyproject.toml"
            | "setup.py"
            | "setup.cfg"
            | "Pipfile"
            | "go.mod"
            | "pom.xml"
            | "build.gradle"
            | "build.gradle.kts"
            | "settings.gradle"
            | "settings.gradle.kts"
            | "Gemfile"
            | "composer.json"
            | "mix.exs"
            | "Package.swift"
            | "pubspec.yaml"
            | "deno.json"
            | "CMakeLists.txt"
            | "build.sbt"
    ) || (name.starts_with("requirements") && name.ends_with(".txt"))
        || [".csproj", ".fsproj", ".vbproj", ".gemspec", ".cabal"]
            .iter()
            .any(|ext| name.ends_with(ext))
}

/// Lock files: written by tools, never by hand, and long.
pub(crate) fn is_lock_file(path: &str) -> bool {
    matches!(
        file_name(path),
        "Cargo.lock"
            | "package-lock.json"
            | "npm-shrinkwrap.json"
            | "yarn.lock"
            | "pnpm-lock.yaml"
            | "bun.lockb"
            | "poetry.lock"
            | "Pipfile.lock"
            | "uv.lock"
            | "pdm.lock"
            | "go.sum"
            | "Gemfile.lock"
            | "composer.lock"
            | "mix.lock"
            | "Package.resolved"
            | "pubspec.lock"
            | "flake.lock"
    )
}

/// Directory names whose contents are someone else's code or a build's output.
pub(crate) fn is_skipped_dir(name: &str) -> bool {
    matches!(
        name,
        ".git"
            | ".hg"
            | ".svn"
            | "vendor"
            | "node_modules"
            | "bower_components"
            | "third_party"
            | "third-party"
            | "dist"
            | "build"
            | "target"
            | ".venv"
            | "venv"
            | "__pycache__"
            | ".mypy_cache"
            | ".pytest_cache"
            | ".ruff_cache"
            | ".tox"
            | ".next"
            | ".nuxt"
            | ".gradle"
            | ".idea"
            | ".vscode"
            | ".cache"
    )
}

/// Files that are generated, judged by name alone (headers are checked once the file is read).
pub(crate) fn is_generated_name(path: &str) -> bool {
    let name = file_name(path);
    let lower = name.to_ascii_lowercase();
    lower.ends_with(".min.js")
        || lower.ends_with(".min.css")
        || lower.ends_with(".map")
        || lower.ends_with(".pb.go")
        || lower.ends_with("_pb2.py")
        || lower.ends_with("_pb2_grpc.py")
        || lower.ends_with(".pb.cc")
        || lower.ends_with(".pb.h")
        || stem(&lower).ends_with("_generated")
        || stem(&lower).ends_with(".generated")
        || stem(&lower).ends_with(".g")
}

/// Extensions of files that are binary whatever their first bytes say.
pub(crate) fn is_binary_extension(path: &str) -> bool {
    let Some(ext) = extension(file_name(path)) else {
        return false;
    };
    matches!(
        ext.to_ascii_lowercase().as_str(),
        "png"
            | "jpg"
            | "jpeg"
            | "gif"
            | "bmp"
            | "ico"
            | "icns"
            | "webp"
            | "tiff"
            | "psd"
            | "pdf"
            | "zip"
            | "gz"
            | "tgz"
            | "bz2"
            | "xz"
            | "zst"
            | "7z"
            | "rar"
            | "tar"
            | "jar"
            | "war"
            | "class"
            | "so"
            | "dylib"
            | "dll"
            | "exe"
            | "o"
            | "a"
            | "lib"
            | "obj"
            | "pyc"
            | "pyo"
            | "whl"
            | "egg"
            | "wasm"
            | "bin"
            | "dat"
            | "db"
            | "sqlite"
            | "sqlite3"
            | "woff"
            | "woff2"
            | "ttf"
            | "otf"
            | "eot"
            | "mp3"
            | "mp4"
            | "wav"
            | "ogg"
            | "flac"
            | "avi"
            | "mov"
            | "mkv"
            | "webm"
            | "iso"
            | "dmg"
            | "deb"
            | "rpm"
            | "apk"
            | "ipa"
            | "keystore"
            | "jks"
            | "p12"
            | "pfx"
            | "der"
            | "npy"
            | "npz"
            | "pkl"
            | "pickle"
            | "parquet"
            | "onnx"
            | "pt"
            | "safetensors"
    )
}

/// Tests and their fixtures, judged by path.
pub(crate) fn is_test_path(path: &str) -> bool {
    let lower = path.to_ascii_lowercase();
    let in_test_dir = lower.split('/').rev().skip(1).any(|dir| {
        matches!(
            dir,
            "test" | "tests" | "__tests__" | "spec" | "specs" | "testdata" | "fixtures" | "e2e"
        )
    });
    let name = file_name(&lower);
    let base = stem(name);
    in_test_dir
        || base.starts_with("test_")
        || base.ends_with("_test")
        || base.ends_with("_tests")
        || base.ends_with("_spec")
        || base.ends_with(".test")
        || base.ends_with(".spec")
        || base.ends_with("test") && name.ends_with(".java")
        || base.ends_with("tests") && name.ends_with(".cs")
}

/// Documentation: READMEs, changelogs, Markdown and reStructuredText, anything under `docs/`.
pub(crate) fn is_doc_path(path: &str) -> bool {
    let lower = path.to_ascii_lowercase();
    let name = file_name(&lower);
    name.starts_with("readme")
        || name.starts_with("changelog")
        || name.starts_with("history")
        || name.ends_with(".md")
        || name.ends_with(".rst")
        || name.ends_with(".adoc")
        || lower.starts_with("docs/")
        || lower.starts_with("doc/")
        || lower.contains("/docs/")
}

/// The README at the root, if `path` is one (`README`, `README.md`, `readme.rst`, ...).
pub(crate) fn is_root_readme(path: &str) -> bool {
    !path.contains('/') && path.to_ascii_lowercase().starts_with("readme")
}

/// Files written for coding agents, included ahead of everything else.
pub(crate) fn is_instruction_file(path: &str) -> bool {
    let name = file_name(path);
    path == ".pithy/instructions.md" || name == "AGENTS.md" || name == "CLAUDE.md"
}
