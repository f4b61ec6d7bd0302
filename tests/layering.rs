//! The modules' imports form no cycle: no module imports a module that imports it back, however
//! long the way round. Read from the sources, so a new import that closes a cycle fails here.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// Module path (`store::load`) -> source, for every file under `src/`.
fn sources(dir: &Path, prefix: &str, out: &mut BTreeMap<String, String>) {
    for entry in std::fs::read_dir(dir).expect("src/ is readable") {
        let path = entry.expect("an entry").path();
        let name = path.file_stem().and_then(|s| s.to_str()).unwrap_or_default().to_owned();
        let module = match (prefix, name.as_str()) {
            (_, "lib" | "mod") => prefix.to_owned(),
            ("", _) => name.clone(),
            _ => format!("{prefix}::{name}"),
        };
        if path.is_dir() {
            sources(&path, &module, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.insert(module, std::fs::read_to_string(&path).expect("a source file"));
        }
    }
}

/// The code of `source` without comments (doc links name modules without importing them) and
/// without its unit tests, which may reach anywhere.
fn code(source: &str) -> String {
    let source = source.split("#[cfg(test)]").next().unwrap_or_default();
    let lines = source.lines().map(|line| line.split("//").next().unwrap_or_default());
    lines.collect::<Vec<_>>().join("\n")
}

/// The modules `module`'s code names: each `crate::a::b` path (and each path of a
/// `crate::a::{b, c::d}` group) and each `super::` path, resolved to the longest known module.
/// A name that is a re-export of the crate root (`crate::SessionStore`) counts as the module
/// that defines it.
fn imports(
    module: &str,
    code: &str,
    known: &BTreeSet<String>,
    roots: &BTreeMap<String, String>,
) -> BTreeSet<String> {
    let parent = module.rsplit_once("::").map_or("", |(parent, _)| parent);
    let code =
        code.replace("super::", &format!("crate::{parent}::")).replace("crate::::", "crate::");
    let mut found = BTreeSet::new();
    for (at, _) in code.match_indices("crate::") {
        let rest = &code[at + "crate::".len()..];
        let path: String =
            rest.chars().take_while(|c| c.is_alphanumeric() || *c == '_' || *c == ':').collect();
        let mut paths = vec![path.trim_end_matches(':').to_owned()];
        if let Some(group) = rest[path.len()..].strip_prefix('{') {
            let group = group.split('}').next().unwrap_or_default();
            for item in group.split(',').map(str::trim).filter(|item| !item.is_empty()) {
                paths.push(format!("{path}{item}"));
            }
        }
        for path in paths {
            let segments: Vec<&str> = path.split("::").collect();
            let resolved = (1..=segments.len())
                .rev()
                .map(|n| segments[..n].join("::"))
                .find(|prefix| known.contains(prefix))
                .or_else(|| roots.get(segments[0]).cloned());
            if let Some(target) = resolved.filter(|target| target != module && !target.is_empty()) {
                found.insert(target);
            }
        }
    }
    // A child module named by a relative path (`load::load(...)` after `mod load;`).
    for line in code.lines().map(str::trim) {
        let declared = line.strip_suffix(';').and_then(|line| line.rsplit_once("mod "));
        if let Some((_, child)) = declared.filter(|(visibility, _)| !visibility.contains('{')) {
            let target =
                if module.is_empty() { child.to_owned() } else { format!("{module}::{child}") };
            if code.contains(&format!("{child}::")) && known.contains(&target) {
                found.insert(target);
            }
        }
    }
    found
}

/// The crate root's re-exports: name -> the module that defines it.
fn root_exports(lib: &str, known: &BTreeSet<String>) -> BTreeMap<String, String> {
    let mut exports = BTreeMap::new();
    for line in lib.lines().filter_map(|line| line.trim().strip_prefix("pub use ")) {
        let line = line.trim_end_matches(';');
        let (path, names) = match line.split_once("::{") {
            Some((path, names)) => (
                path.to_owned(),
                names.trim_end_matches('}').split(',').map(|n| n.trim().to_owned()).collect(),
            ),
            None => match line.rsplit_once("::") {
                Some((path, name)) => (path.to_owned(), vec![name.to_owned()]),
                None => continue,
            },
        };
        if known.contains(&path) {
            for name in names {
                exports.insert(name, path.clone());
            }
        }
    }
    exports
}

/// A cycle in `graph`, as the modules along it; `None` when there is none.
fn cycle(graph: &BTreeMap<String, BTreeSet<String>>) -> Option<Vec<String>> {
    fn visit(
        node: &str,
        graph: &BTreeMap<String, BTreeSet<String>>,
        path: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) -> Option<Vec<String>> {
        if let Some(start) = path.iter().position(|n| n == node) {
            return Some(path[start..].iter().cloned().chain([node.to_owned()]).collect());
        }
        if !done.insert(node.to_owned()) {
            return None;
        }
        path.push(node.to_owned());
        for next in graph.get(node).into_iter().flatten() {
            if let Some(found) = visit(next, graph, path, done) {
                return Some(found);
            }
        }
        path.pop();
        None
    }
    let mut done = BTreeSet::new();
    graph.keys().find_map(|node| visit(node, graph, &mut Vec::new(), &mut done))
}

fn graph(sources: &BTreeMap<String, String>) -> BTreeMap<String, BTreeSet<String>> {
    let known: BTreeSet<String> = sources.keys().cloned().collect();
    let roots = root_exports(sources.get("").map_or("", String::as_str), &known);
    sources
        .iter()
        .filter(|(module, _)| !module.is_empty()) // the root declares and re-exports, nothing more
        .map(|(module, source)| (module.clone(), imports(module, &code(source), &known, &roots)))
        .collect()
}

#[test]
fn no_module_imports_a_module_that_imports_it_back() {
    let mut modules = BTreeMap::new();
    sources(&Path::new(env!("CARGO_MANIFEST_DIR")).join("src"), "", &mut modules);
    assert!(modules.len() > 30, "the sources were read: {} modules", modules.len());
    let graph = graph(&modules);
    let edges: usize = graph.values().map(BTreeSet::len).sum();
    assert!(edges > 50, "imports were found: {edges}");
    assert_eq!(cycle(&graph), None, "a cycle of imports");
}

#[test]
fn the_check_finds_a_cycle_when_there_is_one() {
    let modules: BTreeMap<String, String> = [
        ("", "pub use store::Store;"),
        ("store", "mod load;\nmod helpers;\npub struct Store; fn f() { load::x() }"),
        ("store::load", "use super::helpers::y; pub fn x() {}"),
        ("store::helpers", "use crate::{config::Config, Store}; pub fn y() {}"),
        ("config", "// crate::store::load in a comment is no import\npub struct Config;"),
    ]
    .into_iter()
    .map(|(module, source)| (module.to_owned(), source.to_owned()))
    .collect();
    let graph = graph(&modules);
    let config: BTreeSet<String> = ["store".to_owned(), "config".to_owned()].into();
    assert_eq!(graph["store::helpers"], config, "a group, and a root re-export");
    assert!(graph["config"].is_empty(), "comments import nothing");
    let found = cycle(&graph).expect("store -> load -> helpers -> store");
    assert_eq!(found.len(), 4, "{found:?}");
}
