//! The shape of the code, checked rather than promised: `docs/architecture.md` names
//! every crate with its real workspace dependencies, tools and tests do not link the
//! services, ingress does not link the stand-ins, ingress's modules have no import
//! cycle and its route modules do not import each other, and no source file is too
//! long to hold in one's head.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the workspace root")
        .to_path_buf()
}

/// Each workspace crate with the workspace crates it depends on (any kind: normal,
/// build or dev), from `cargo metadata`.
fn workspace_dependencies() -> BTreeMap<String, BTreeSet<String>> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = Command::new(cargo)
        .args([
            "metadata",
            "--format-version",
            "1",
            "--no-deps",
            "--offline",
        ])
        .current_dir(repo_root())
        .output()
        .expect("run cargo metadata");
    assert!(
        out.status.success(),
        "cargo metadata: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let meta: serde_json::Value = serde_json::from_slice(&out.stdout).expect("metadata JSON");
    let packages = meta["packages"].as_array().expect("packages");
    let names: BTreeSet<String> = packages
        .iter()
        .map(|p| p["name"].as_str().expect("name").to_owned())
        .collect();
    packages
        .iter()
        .map(|p| {
            let deps = p["dependencies"]
                .as_array()
                .expect("dependencies")
                .iter()
                .map(|d| d["name"].as_str().expect("name").to_owned())
                .filter(|d| names.contains(d))
                .collect();
            (p["name"].as_str().expect("name").to_owned(), deps)
        })
        .collect()
}

/// The crate table of `docs/architecture.md`: each row's crate (its first backticked
/// name) with the workspace crates named in its last column.
fn documented_dependencies(crates: &BTreeSet<String>) -> BTreeMap<String, BTreeSet<String>> {
    let page = std::fs::read_to_string(repo_root().join("docs/architecture.md"))
        .expect("read docs/architecture.md");
    let table = page
        .split("## Parts (crates)")
        .nth(1)
        .expect("the page has its crate table");
    let mut rows = BTreeMap::new();
    for line in table.lines().skip_while(|l| !l.starts_with('|')) {
        if !line.starts_with('|') {
            break;
        }
        let cells: Vec<&str> = line.trim_matches('|').split('|').collect();
        let Some(name) = cells[0].split('`').nth(1) else {
            continue; // the header and its rule
        };
        let last = cells.last().expect("a last column");
        let deps = last
            .split(|c: char| !(c.is_ascii_alphanumeric() || c == '-'))
            .filter(|w| crates.contains(*w))
            .map(str::to_owned)
            .collect();
        rows.insert(name.to_owned(), deps);
    }
    rows
}

#[test]
fn the_architecture_page_names_every_crate_with_its_real_dependencies() {
    let real = workspace_dependencies();
    let crates: BTreeSet<String> = real.keys().cloned().collect();
    let documented = documented_dependencies(&crates);
    let listed: BTreeSet<String> = documented.keys().cloned().collect();
    assert_eq!(
        listed, crates,
        "docs/architecture.md's crate table and the workspace's members differ"
    );
    for (name, deps) in &real {
        assert_eq!(
            &documented[name], deps,
            "docs/architecture.md says `{name}` depends on the left, Cargo.toml on the right"
        );
    }
}

/// Every workspace crate `name` reaches through normal, build and dev dependencies.
fn reach(deps: &BTreeMap<String, BTreeSet<String>>, name: &str) -> BTreeSet<String> {
    let mut seen = BTreeSet::new();
    let mut todo = vec![name.to_owned()];
    while let Some(n) = todo.pop() {
        for d in deps.get(&n).into_iter().flatten() {
            if seen.insert(d.clone()) {
                todo.push(d.clone());
            }
        }
    }
    seen
}

#[test]
fn tools_and_tests_do_not_link_the_services_and_ingress_does_not_link_the_stand_ins() {
    let deps = workspace_dependencies();
    for tool in ["bookctl", "loadgen", "soak", "tests"] {
        let reached = reach(&deps, tool);
        for service in ["ingress", "workers"] {
            assert!(
                !reached.contains(service),
                "`{tool}` links `{service}`: {reached:?}"
            );
        }
    }
    let reached = reach(&deps, "ingress");
    for stand_in in ["local-gateway", "smtp-sink", "local-oidc", "notifier"] {
        assert!(
            !reached.contains(stand_in),
            "`ingress` links `{stand_in}`: {reached:?}"
        );
    }
}

/// The `.rs` files under `dir`, recursively.
fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for entry in std::fs::read_dir(&d).expect("read a source folder") {
            let path = entry.expect("a folder entry").path();
            let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
            if path.is_dir() {
                if !matches!(name, "target" | ".git" | "node_modules") && !name.starts_with('.') {
                    todo.push(path);
                }
            } else if name.ends_with(".rs") {
                files.push(path);
            }
        }
    }
    files.sort();
    files
}

/// The names a source text imports from `prefix` (e.g. `crate::` or `super::`):
/// `crate::a::b` gives `a`, `crate::{a, b::c}` gives `a` and `b`.
fn imported(text: &str, prefix: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    let code: String = text
        .lines()
        .map(|l| l.split("//").next().unwrap_or(""))
        .collect::<Vec<_>>()
        .join("\n");
    for (at, _) in code.match_indices(prefix) {
        // `super::` inside `super::super::` is the outer one's business.
        if prefix == "super::" && code[..at].ends_with("super::") {
            continue;
        }
        let rest = &code[at + prefix.len()..];
        if let Some(group) = rest.strip_prefix('{') {
            let mut depth = 1;
            let mut item = String::new();
            let mut at_item_start = true;
            for c in group.chars() {
                match c {
                    '{' => depth += 1,
                    '}' => {
                        depth -= 1;
                        if depth == 0 {
                            break;
                        }
                    }
                    ',' if depth == 1 => {
                        if !item.is_empty() {
                            names.insert(std::mem::take(&mut item));
                        }
                        at_item_start = true;
                    }
                    c if depth == 1 && at_item_start && (c.is_alphanumeric() || c == '_') => {
                        item.push(c)
                    }
                    c if depth == 1 && at_item_start && item.is_empty() && c.is_whitespace() => {}
                    _ => {
                        if !item.is_empty() {
                            names.insert(std::mem::take(&mut item));
                        }
                        at_item_start = false;
                    }
                }
            }
            if !item.is_empty() {
                names.insert(item);
            }
        } else {
            let name: String = rest
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect();
            if !name.is_empty() {
                names.insert(name);
            }
        }
    }
    names
}

#[test]
fn the_import_reader_reads_paths_and_groups() {
    let text = "use crate::{a, b::{c, d}, e::f};\nlet x = crate::g::h(); // crate::ignored\n";
    assert_eq!(
        imported(text, "crate::"),
        ["a", "b", "e", "g"].map(String::from).into()
    );
    assert_eq!(
        imported("use super::super::x; use super::y;", "super::"),
        ["super", "y"].map(String::from).into()
    );
}

#[test]
fn ingress_modules_have_no_import_cycle_and_route_modules_do_not_import_each_other() {
    let src = repo_root().join("ingress/src");
    let top = |path: &Path| -> String {
        let rel = path.strip_prefix(&src).expect("under ingress/src");
        let first = rel.components().next().expect("a component");
        first
            .as_os_str()
            .to_string_lossy()
            .trim_end_matches(".rs")
            .to_owned()
    };
    let mut edges: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut route_imports = Vec::new();
    for file in rust_files(&src) {
        let text = std::fs::read_to_string(&file).expect("read a source file");
        let from = top(&file);
        if matches!(from.as_str(), "lib" | "main") {
            continue; // the crate root declares every module
        }
        let to = imported(&text, "crate::");
        edges
            .entry(from.clone())
            .or_default()
            .extend(to.iter().filter(|t| **t != from).cloned());

        // A route module is a file or folder directly under `routes/`.
        let rel = file.strip_prefix(src.join("routes")).ok();
        if let Some(rel) = rel.filter(|r| r.components().count() >= 1) {
            let own = rel
                .components()
                .next()
                .expect("a component")
                .as_os_str()
                .to_string_lossy()
                .trim_end_matches(".rs")
                .to_owned();
            if own == "mod" {
                continue; // `routes/mod.rs` assembles the routes
            }
            let depth = rel.components().count(); // 1: routes/x.rs, 2: routes/x/y.rs
            let mut others: BTreeSet<String> = BTreeSet::new();
            if text.contains("crate::routes::") {
                others.extend(imported(&text, "crate::routes::"));
            }
            // `super::` from routes/x.rs is `routes`; from routes/x/y.rs, `super::super::`.
            let to_routes = if depth == 1 {
                "super::"
            } else {
                "super::super::"
            };
            others.extend(imported(&text, to_routes));
            others.remove("super");
            others.remove(&own);
            // What `routes/mod.rs` itself defines for every route is not a route module.
            let route_modules: BTreeSet<String> = std::fs::read_dir(src.join("routes"))
                .expect("read routes")
                .map(|e| {
                    e.expect("an entry")
                        .path()
                        .file_stem()
                        .expect("a name")
                        .to_string_lossy()
                        .into_owned()
                })
                .filter(|n| n != "mod")
                .collect();
            for other in others.intersection(&route_modules) {
                route_imports.push(format!("{} imports routes::{other}", rel.display()));
            }
        }
    }
    assert!(
        route_imports.is_empty(),
        "route modules import each other: {route_imports:#?}"
    );

    // Depth-first search for a cycle among ingress's top-level modules.
    fn visit(
        n: &str,
        edges: &BTreeMap<String, BTreeSet<String>>,
        path: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) -> Option<Vec<String>> {
        if let Some(at) = path.iter().position(|p| p == n) {
            let mut cycle = path[at..].to_vec();
            cycle.push(n.to_owned());
            return Some(cycle);
        }
        if done.contains(n) {
            return None;
        }
        path.push(n.to_owned());
        for m in edges.get(n).into_iter().flatten() {
            if let Some(cycle) = visit(m, edges, path, done) {
                return Some(cycle);
            }
        }
        path.pop();
        done.insert(n.to_owned());
        None
    }
    let mut done = BTreeSet::new();
    for n in edges.keys() {
        if let Some(cycle) = visit(n, &edges, &mut Vec::new(), &mut done) {
            panic!("ingress has an import cycle: {}", cycle.join(" -> "));
        }
    }
    assert!(
        edges.contains_key("routes") && edges.contains_key("state"),
        "the reader found ingress's modules: {:?}",
        edges.keys()
    );
}

/// Files that are data, not code a person reads as logic.
const DATA_FILES: [&str; 1] = ["seed/src/catalog/data.rs"];
const LINES_MAX: usize = 600;

#[test]
fn no_source_file_is_over_600_lines() {
    let root = repo_root();
    let mut long = Vec::new();
    let files = rust_files(&root);
    assert!(files.len() > 100, "found the sources: {}", files.len());
    for file in files {
        let rel = file.strip_prefix(&root).expect("under the root");
        if DATA_FILES.iter().any(|d| rel == Path::new(d)) {
            continue;
        }
        let lines = std::fs::read_to_string(&file)
            .expect("read a source file")
            .lines()
            .count();
        if lines > LINES_MAX {
            long.push(format!("{} ({lines} lines)", rel.display()));
        }
    }
    assert!(long.is_empty(), "over {LINES_MAX} lines: {long:#?}");
}
