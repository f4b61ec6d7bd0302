//! The modules' imports form no cycle: no module imports a module that imports it back, however
//! long the way round. Read from the sources, so a new import that closes a cycle fails here.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// Module path (`store::load`; `""` for the crate root) -> source, for every file under `dir`.
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
/// without its test modules (`#[cfg(...test...)]` then `mod`), which may reach anywhere.
fn code(source: &str) -> String {
    let mut kept = Vec::new();
    let (mut depth, mut skipping, mut gated) = (0i32, false, false);
    for line in source.lines() {
        let trimmed = line.trim_start();
        let line = match trimmed.starts_with("//") {
            true => "",
            false => line.split(" //").next().unwrap_or_default(),
        };
        if !skipping && gated && line.trim_start().starts_with("mod ") {
            (skipping, depth) = (!line.trim_end().ends_with(';'), 0);
            if !skipping {
                continue; // a test module in a file of its own
            }
        }
        let words = line.split(|c: char| !(c.is_alphanumeric() || c == '_' || c == '-'));
        gated = line.trim_start().starts_with("#[cfg(") && words.into_iter().any(|w| w == "test");
        if skipping {
            depth += line.matches('{').count() as i32 - line.matches('}').count() as i32;
            skipping = depth > 0 || !line.contains('}');
            continue;
        }
        kept.push(line);
    }
    kept.join("\n")
}

/// The full paths a use tree names: `a::{b, c::{d, e as f}}` -> `a::b`, `a::c::d`, `a::c::e`.
fn expand(tree: &str) -> Vec<String> {
    let tree = tree.trim();
    let Some(open) = tree.find('{') else {
        let path = tree.split(" as ").next().unwrap_or_default().trim();
        return vec![path.trim_end_matches("::self").to_owned()];
    };
    let (prefix, mut depth, mut items, mut item) = (&tree[..open], 0, Vec::new(), String::new());
    for c in tree[open + 1..].chars() {
        match c {
            '{' => depth += 1,
            '}' if depth == 0 => break,
            '}' => depth -= 1,
            ',' if depth == 0 => {
                items.push(std::mem::take(&mut item));
                continue;
            }
            _ => {}
        }
        item.push(c);
    }
    items.push(item);
    let items = items.iter().filter(|item| !item.trim().is_empty());
    items.flat_map(|item| expand(item)).map(|path| format!("{prefix}{path}")).collect()
}

/// The use tree that starts at byte `at` of `code`: a path, and the group after it.
fn tree_at(code: &str, at: usize) -> &str {
    let rest = &code[at..];
    let path =
        rest.find(|c: char| !(c.is_alphanumeric() || c == '_' || c == ':')).unwrap_or(rest.len());
    if !rest[path..].starts_with('{') {
        return &rest[..path];
    }
    let mut depth = 0;
    for (i, c) in rest[path..].char_indices() {
        depth += match c {
            '{' => 1,
            '}' => -1,
            _ => 0,
        };
        if depth == 0 {
            return &rest[..path + i + 1];
        }
    }
    rest
}

/// The modules of a crate, and what each re-exports (name -> the module that defines it).
struct Crate {
    known: BTreeSet<String>,
    exports: BTreeMap<String, BTreeMap<String, String>>,
}

impl Crate {
    fn new(sources: &BTreeMap<String, String>) -> Crate {
        let known = sources.keys().cloned().collect();
        let mut krate = Crate { known, exports: BTreeMap::new() };
        for (module, source) in sources {
            let code = code(source);
            let mut names = BTreeMap::new();
            for (at, _) in code.match_indices("use ") {
                let before = &code[..at];
                if !(before.ends_with("pub ") || before.ends_with("pub(crate) ")) {
                    continue;
                }
                for path in expand(tree_at(&code, at + 4)) {
                    let absolute = krate.absolute(module, &path);
                    let (Some(absolute), Some(name)) = (absolute, path.rsplit("::").next()) else {
                        continue;
                    };
                    if let Some(target) = krate.resolve(&absolute) {
                        names.insert(name.to_owned(), target);
                    }
                }
            }
            krate.exports.insert(module.clone(), names);
        }
        krate
    }

    /// `path`, as written in `module`, from the crate root; `None` for another crate's.
    fn absolute(&self, module: &str, path: &str) -> Option<String> {
        let mut base: Vec<&str> = module.split("::").filter(|s| !s.is_empty()).collect();
        let mut segments = path.split("::").peekable();
        match segments.peek().copied() {
            Some("crate") => {
                segments.next();
                base.clear();
            }
            Some("self") => _ = segments.next(),
            Some("super") => {
                while segments.peek() == Some(&"super") {
                    segments.next();
                    base.pop();
                }
            }
            Some(first) if self.known.contains(&[&base[..], &[first]].concat().join("::")) => {}
            _ => return None,
        }
        Some(base.into_iter().chain(segments).collect::<Vec<_>>().join("::"))
    }

    /// The module an absolute path names: its longest known prefix, or the module a name
    /// re-exported there comes from.
    fn resolve(&self, path: &str) -> Option<String> {
        let segments: Vec<&str> = path.split("::").filter(|s| !s.is_empty()).collect();
        (0..=segments.len()).rev().find_map(|n| {
            let module = segments[..n].join("::");
            if !self.known.contains(&module) {
                return None;
            }
            let exported = segments.get(n).and_then(|next| self.exports.get(&module)?.get(*next));
            Some(exported.cloned().unwrap_or(module))
        })
    }

    /// The modules `module`'s code names: every `crate::`, `super::` and `self::` path (groups
    /// expanded), and every child module named by a relative path (`load::load(...)`).
    fn imports(&self, module: &str, code: &str) -> BTreeSet<String> {
        let mut found = BTreeSet::new();
        for (at, c) in code.char_indices() {
            let before = code[..at].chars().next_back();
            let inside = before.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == ':');
            if !(c.is_alphabetic() || c == '_') || inside {
                continue;
            }
            let rest = &code[at..];
            let end = rest.find(|c: char| !(c.is_alphanumeric() || c == '_')).unwrap_or(rest.len());
            let first = &rest[..end];
            let child =
                if module.is_empty() { first.to_owned() } else { format!("{module}::{first}") };
            let named = matches!(first, "crate" | "super" | "self") || self.known.contains(&child);
            if !rest[end..].starts_with("::") || !named {
                continue;
            }
            for path in expand(tree_at(code, at)) {
                let target = self.absolute(module, &path).and_then(|path| self.resolve(&path));
                if let Some(target) = target.filter(|target| target != module && !target.is_empty())
                {
                    found.insert(target);
                }
            }
        }
        found
    }
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

/// Each module's imports. A module's own re-exports (`pub use child::Name`) are not counted as
/// imports of the child: they name, they do not use.
fn graph(sources: &BTreeMap<String, String>) -> BTreeMap<String, BTreeSet<String>> {
    let krate = Crate::new(sources);
    let graph = sources.iter().filter(|(module, _)| !module.is_empty()).map(|(module, source)| {
        let code = code(source);
        let uses: Vec<&str> = code
            .lines()
            .filter(|l| {
                !l.trim_start().starts_with("pub use ")
                    && !l.trim_start().starts_with("pub(crate) use ")
            })
            .collect();
        (module.clone(), krate.imports(module, &uses.join("\n")))
    });
    graph.collect()
}

#[test]
fn no_module_imports_a_module_that_imports_it_back() {
    let mut modules = BTreeMap::new();
    sources(&Path::new(env!("CARGO_MANIFEST_DIR")).join("src"), "", &mut modules);
    assert!(modules.len() > 30, "the sources were read: {} modules", modules.len());
    let graph = graph(&modules);
    let edges: usize = graph.values().map(BTreeSet::len).sum();
    assert!(edges > 80, "imports were found: {edges}");
    let store: Vec<&String> = graph["store"].iter().collect();
    assert!(
        store.iter().any(|m| *m == "store::load"),
        "a child named by a relative path: {store:?}"
    );
    assert_eq!(cycle(&graph), None, "a cycle of imports");
}

#[test]
fn the_check_finds_a_cycle_when_there_is_one() {
    let modules: BTreeMap<String, String> = [
        ("", "pub use store::Store;\npub use config::Config;"),
        ("store", "mod load;\nmod helpers;\npub struct Store;\nfn f() { load::x() }"),
        ("store::load", "use super::helpers::y; pub fn x() {}"),
        ("store::helpers", "use crate::{config::{self, Config}, Store};\npub fn y() {}"),
        ("store::helpers::deep", "use super::super::load;"),
        ("config", "// crate::store::load in a comment is no import\npub struct Config;\nconst U: &str = \"redis://x\"; fn g() { crate::store::load::x() }\n#[cfg(test)]\nmod tests {\n    use crate::store::helpers;\n}\n"),
        ("thread", "fn f() { std::thread::spawn(|| ()); }"),
    ]
    .into_iter()
    .map(|(module, source)| (module.to_owned(), source.to_owned()))
    .collect();
    let graph = graph(&modules);
    let helpers: BTreeSet<String> = ["store".to_owned(), "config".to_owned()].into();
    assert_eq!(graph["store::helpers"], helpers, "nested groups, and a root re-export");
    assert_eq!(graph["store::helpers::deep"], ["store::load".to_owned()].into(), "super::super");
    assert_eq!(graph["config"], ["store::load".to_owned()].into(), "past \"redis://\", not tests");
    assert!(graph["thread"].is_empty(), "std::thread is not the module thread");
    let found = cycle(&graph).expect("store -> load -> helpers -> store");
    assert_eq!(found.len(), 4, "{found:?}");
}
