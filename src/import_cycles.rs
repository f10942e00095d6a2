//! No module import cycles, in any crate of the workspace.
//!
//! Each crate's modules are read from its source (`syn`), starting at every
//! crate root (`src/lib.rs`, `src/main.rs`, `src/bin/*.rs`) and following
//! `mod` items. A module refers to another when its code names it: a `use`
//! line, or any path (`crate::a::b::C`, `super::x`, `self::x`, a child
//! module's name), in macro bodies too. A name re-exported with `pub use`
//! counts as a reference to where it is defined. Test code (`#[cfg(test)]`)
//! is left out: a test may use any module.
//!
//! Then, for every module `P` with submodules, the references between its
//! children (each with everything inside it) must not go round in a circle:
//! at the crate root this is "no cycle between top-level modules", one level
//! down "none between the submodules of `gateway`", and so on. A module and
//! its own submodules may name each other (`mod tests { use super::*; }`).
//! A failure prints each cycle with one reference per step.
//!
//! Every member of the workspace is held to this (`cargo test --workspace
//! --lib import_cycles`).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use syn::visit::Visit;

/// A module's path from its crate root (empty: the root itself).
type ModPath = Vec<String>;

#[derive(Default)]
struct Module {
    file: PathBuf,
    children: BTreeSet<String>,
    /// `pub use` names: what each re-exports (segments as written).
    reexports: BTreeMap<String, Vec<String>>,
    /// Every path the module's own code names (not its submodules').
    paths: Vec<Vec<String>>,
}

/// One crate: its modules by path.
struct Crate {
    root: PathBuf,
    modules: BTreeMap<ModPath, Module>,
}

impl Crate {
    fn load(root: &Path) -> Crate {
        let mut krate = Crate {
            root: root.to_owned(),
            modules: BTreeMap::new(),
        };
        let dir = root.parent().expect("a crate root is in a directory");
        krate.load_file(root, Vec::new(), dir);
        krate
    }

    fn load_file(&mut self, file: &Path, path: ModPath, children_dir: &Path) {
        let text = std::fs::read_to_string(file)
            .unwrap_or_else(|e| panic!("cannot read {}: {e}", file.display()));
        let parsed = syn::parse_file(&text)
            .unwrap_or_else(|e| panic!("cannot parse {}: {e}", file.display()));
        self.load_items(file, path, children_dir, &parsed.items);
    }

    fn load_items(&mut self, file: &Path, path: ModPath, children_dir: &Path, items: &[syn::Item]) {
        let mut module = Module {
            file: file.to_owned(),
            ..Module::default()
        };
        let mut collector = Paths::default();
        for item in items.iter().filter(|item| !test_only(item)) {
            match item {
                syn::Item::Mod(m) => {
                    let name = m.ident.to_string();
                    module.children.insert(name.clone());
                    let mut child = path.clone();
                    child.push(name.clone());
                    let child_dir = children_dir.join(&name);
                    if let Some((_, inline)) = &m.content {
                        self.load_items(file, child, &child_dir, inline);
                    } else {
                        let flat = children_dir.join(format!("{name}.rs"));
                        if flat.exists() {
                            self.load_file(&flat, child, &child_dir);
                        } else {
                            let nested = child_dir.join("mod.rs");
                            self.load_file(&nested, child, &child_dir);
                        }
                    }
                }
                syn::Item::Use(u) => {
                    if !matches!(u.vis, syn::Visibility::Inherited) {
                        for (name, target) in use_leaves(&u.tree) {
                            if name != "*" && name != "_" {
                                module.reexports.insert(name, target);
                            }
                        }
                    }
                    collector.visit_item_use(u);
                }
                other => collector.visit_item(other),
            }
        }
        module.paths = collector.paths;
        self.modules.insert(path, module);
    }

    /// The module a path written in `from` leads to, following re-exports;
    /// `None` for other crates and local names.
    fn resolve(&self, from: &ModPath, segments: &[String]) -> Option<ModPath> {
        let first = segments.first()?;
        let absolute: Vec<String> = match first.as_str() {
            "crate" => segments[1..].to_vec(),
            "self" => from.iter().chain(&segments[1..]).cloned().collect(),
            "super" => {
                let mut base = from.clone();
                let mut rest = segments;
                while rest.first().is_some_and(|s| s == "super") {
                    base.pop();
                    rest = &rest[1..];
                }
                base.into_iter().chain(rest.iter().cloned()).collect()
            }
            name if self.modules[from].children.contains(name) => {
                from.iter().chain(segments).cloned().collect()
            }
            _ => return None,
        };
        Some(self.module_of(&absolute, 0))
    }

    /// The deepest module on `absolute`, through re-exports.
    fn module_of(&self, absolute: &[String], depth: usize) -> ModPath {
        let mut len = absolute.len();
        while !self.modules.contains_key(&absolute[..len]) {
            len -= 1;
        }
        let module = absolute[..len].to_vec();
        if depth < 8 {
            if let Some(name) = absolute.get(len) {
                if let Some(target) = self.modules[&module].reexports.get(name) {
                    if let Some(next) = self.resolve(&module, target) {
                        if next != module {
                            let mut again = next;
                            again.extend(absolute[len + 1..].iter().cloned());
                            return self.module_of(&again, depth + 1);
                        }
                    }
                }
            }
        }
        module
    }

    /// Every reference from one module to another: (from, to) -> an example.
    fn references(&self) -> BTreeMap<(ModPath, ModPath), String> {
        let mut edges = BTreeMap::new();
        for (from, module) in &self.modules {
            for path in &module.paths {
                if let Some(to) = self.resolve(from, path) {
                    if &to != from {
                        edges.entry((from.clone(), to)).or_insert_with(|| {
                            format!("{}: {}", self.relative(&module.file), path.join("::"))
                        });
                    }
                }
            }
        }
        edges
    }

    fn relative(&self, file: &Path) -> String {
        let base = self
            .root
            .parent()
            .and_then(Path::parent)
            .unwrap_or(Path::new(""));
        file.strip_prefix(base)
            .unwrap_or(file)
            .display()
            .to_string()
    }

    /// Every cycle among siblings, as text (empty: none).
    fn cycles(&self) -> Vec<String> {
        let edges = self.references();
        let mut found = Vec::new();
        for (parent, module) in &self.modules {
            if module.children.is_empty() {
                continue;
            }
            // The siblings: each child of `parent` with everything inside it.
            // `parent`'s own items are not one of them: a module and its own
            // submodules may name each other (`mod tests { use super::*; }`,
            // GTK's `imp`, helpers in a `mod.rs`).
            let node = |m: &ModPath| -> Option<String> {
                if m.starts_with(parent) {
                    m.get(parent.len()).cloned()
                } else {
                    None
                }
            };
            let mut graph: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
            for ((from, to), example) in &edges {
                if let (Some(a), Some(b)) = (node(from), node(to)) {
                    if a != b {
                        graph
                            .entry(a)
                            .or_default()
                            .entry(b)
                            .or_insert_with(|| example.clone());
                    }
                }
            }
            for (cycle, others) in find_cycles(&graph) {
                let name = |n: &str| {
                    let mut full = parent.clone();
                    full.push(n.to_owned());
                    full.join("::")
                };
                let mut text = cycle
                    .iter()
                    .map(|n| name(n))
                    .collect::<Vec<_>>()
                    .join(" -> ");
                let _ = write!(text, " -> {}", name(&cycle[0]));
                if !others.is_empty() {
                    let others: Vec<String> = others.iter().map(|n| name(n)).collect();
                    let _ = write!(text, " (in the same knot: {})", others.join(", "));
                }
                for (i, a) in cycle.iter().enumerate() {
                    let b = &cycle[(i + 1) % cycle.len()];
                    let _ = write!(text, "\n    {} -> {}: {}", name(a), name(b), graph[a][b]);
                }
                found.push(text);
            }
        }
        found
    }
}

/// One cycle through each strongly connected group of `graph` (Tarjan's
/// algorithm for the groups, then a shortest way round from one member).
/// Each with the group's other members.
fn find_cycles(
    graph: &BTreeMap<String, BTreeMap<String, String>>,
) -> Vec<(Vec<String>, Vec<String>)> {
    struct Tarjan<'a> {
        graph: &'a BTreeMap<String, BTreeMap<String, String>>,
        index: BTreeMap<&'a str, usize>,
        low: BTreeMap<&'a str, usize>,
        stack: Vec<&'a str>,
        on_stack: BTreeSet<&'a str>,
        groups: Vec<Vec<&'a str>>,
    }
    impl<'a> Tarjan<'a> {
        fn visit(&mut self, v: &'a str) {
            let i = self.index.len();
            self.index.insert(v, i);
            self.low.insert(v, i);
            self.stack.push(v);
            self.on_stack.insert(v);
            for w in self.graph.get(v).into_iter().flat_map(BTreeMap::keys) {
                if !self.index.contains_key(w.as_str()) {
                    self.visit(w);
                    let low = self.low[v].min(self.low[w.as_str()]);
                    self.low.insert(v, low);
                } else if self.on_stack.contains(w.as_str()) {
                    let low = self.low[v].min(self.index[w.as_str()]);
                    self.low.insert(v, low);
                }
            }
            if self.low[v] == self.index[v] {
                let mut group = Vec::new();
                while let Some(w) = self.stack.pop() {
                    self.on_stack.remove(w);
                    group.push(w);
                    if w == v {
                        break;
                    }
                }
                if group.len() > 1 {
                    self.groups.push(group);
                }
            }
        }
    }
    let mut t = Tarjan {
        graph,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        on_stack: BTreeSet::new(),
        groups: Vec::new(),
    };
    for v in graph.keys() {
        if !t.index.contains_key(v.as_str()) {
            t.visit(v);
        }
    }
    t.groups
        .into_iter()
        .map(|group| {
            let members: BTreeSet<&str> = group.iter().copied().collect();
            let start = *members.iter().next().expect("a group has members");
            // Breadth-first from `start` back to itself, inside the group.
            let mut previous: BTreeMap<&str, &str> = BTreeMap::new();
            let mut queue = std::collections::VecDeque::from([start]);
            'search: while let Some(v) = queue.pop_front() {
                for w in graph[v].keys().map(String::as_str) {
                    if !members.contains(w) {
                        continue;
                    }
                    if w == start {
                        previous.insert(start, v);
                        break 'search;
                    }
                    if !previous.contains_key(w) {
                        previous.insert(w, v);
                        queue.push_back(w);
                    }
                }
            }
            let mut cycle = vec![start.to_owned()];
            let mut at = previous[start];
            while at != start {
                cycle.push(at.to_owned());
                at = previous[at];
            }
            cycle[1..].reverse();
            let others = members
                .iter()
                .filter(|m| !cycle.iter().any(|c| c == *m))
                .map(|m| (*m).to_owned())
                .collect();
            (cycle, others)
        })
        .collect()
}

/// `#[cfg(test)]`: not part of the program (a test may use any module).
fn test_only(item: &syn::Item) -> bool {
    let attrs = match item {
        syn::Item::Mod(m) => &m.attrs,
        syn::Item::Fn(f) => &f.attrs,
        syn::Item::Use(u) => &u.attrs,
        syn::Item::Impl(i) => &i.attrs,
        syn::Item::Struct(s) => &s.attrs,
        syn::Item::Enum(e) => &e.attrs,
        syn::Item::Const(c) => &c.attrs,
        syn::Item::Static(s) => &s.attrs,
        _ => return false,
    };
    attrs.iter().any(|attr| match &attr.meta {
        syn::Meta::List(list) => list.path.is_ident("cfg") && list.tokens.to_string() == "test",
        _ => false,
    })
}

/// The names a `use` tree brings in, each with its full path.
fn use_leaves(tree: &syn::UseTree) -> Vec<(String, Vec<String>)> {
    fn walk(tree: &syn::UseTree, prefix: &mut Vec<String>, out: &mut Vec<(String, Vec<String>)>) {
        match tree {
            syn::UseTree::Path(p) => {
                prefix.push(p.ident.to_string());
                walk(&p.tree, prefix, out);
                prefix.pop();
            }
            syn::UseTree::Name(n) => {
                let name = n.ident.to_string();
                let mut full = prefix.clone();
                if name != "self" {
                    full.push(name.clone());
                }
                let name = if name == "self" {
                    prefix.last().cloned().unwrap_or_default()
                } else {
                    name
                };
                out.push((name, full));
            }
            syn::UseTree::Rename(r) => {
                let mut full = prefix.clone();
                if r.ident != "self" {
                    full.push(r.ident.to_string());
                }
                out.push((r.rename.to_string(), full));
            }
            syn::UseTree::Glob(_) => out.push(("*".to_owned(), prefix.clone())),
            syn::UseTree::Group(g) => {
                for item in &g.items {
                    walk(item, prefix, out);
                }
            }
        }
    }
    let mut out = Vec::new();
    walk(tree, &mut Vec::new(), &mut out);
    out
}

/// Collects the paths that code names; nested `mod` items are modules of
/// their own and are not entered.
#[derive(Default)]
struct Paths {
    paths: Vec<Vec<String>>,
}

impl<'ast> Visit<'ast> for Paths {
    fn visit_item_mod(&mut self, _: &'ast syn::ItemMod) {}

    fn visit_item_use(&mut self, u: &'ast syn::ItemUse) {
        if u.leading_colon.is_none() {
            self.paths
                .extend(use_leaves(&u.tree).into_iter().map(|(_, path)| path));
        }
    }

    fn visit_path(&mut self, path: &'ast syn::Path) {
        if path.leading_colon.is_none() {
            self.paths
                .push(path.segments.iter().map(|s| s.ident.to_string()).collect());
        }
        syn::visit::visit_path(self, path);
    }

    fn visit_macro(&mut self, mac: &'ast syn::Macro) {
        self.visit_path(&mac.path);
        let buffer = syn::buffer::TokenBuffer::new2(mac.tokens.clone());
        self.scan_tokens(buffer.begin());
    }
}

impl Paths {
    /// `a::b::c` sequences in a macro's tokens (which `syn` does not parse).
    fn scan_tokens(&mut self, mut cursor: syn::buffer::Cursor<'_>) {
        let mut current: Vec<String> = Vec::new();
        let mut after_colons = false;
        while !cursor.eof() {
            if let Some((ident, next)) = cursor.ident() {
                if !current.is_empty() && !after_colons {
                    self.paths.push(std::mem::take(&mut current));
                }
                current.push(ident.to_string());
                after_colons = false;
                cursor = next;
            } else if let Some((punct, next)) = cursor.punct() {
                if punct.as_char() == ':' {
                    if let Some((second, after)) = next.punct() {
                        if second.as_char() == ':' && !current.is_empty() {
                            after_colons = true;
                            cursor = after;
                            continue;
                        }
                    }
                }
                if !current.is_empty() {
                    self.paths.push(std::mem::take(&mut current));
                }
                after_colons = false;
                cursor = next;
            } else if let Some((inside, _, _, next)) = cursor.any_group() {
                if !current.is_empty() {
                    self.paths.push(std::mem::take(&mut current));
                }
                after_colons = false;
                self.scan_tokens(inside);
                cursor = next;
            } else if let Some((_, next)) = cursor.token_tree() {
                if !current.is_empty() {
                    self.paths.push(std::mem::take(&mut current));
                }
                after_colons = false;
                cursor = next;
            } else {
                break;
            }
        }
        if !current.is_empty() {
            self.paths.push(current);
        }
    }
}

/// The workspace members, as written in the root manifest.
fn members() -> Vec<String> {
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR"));
    let manifest =
        std::fs::read_to_string(workspace.join("Cargo.toml")).expect("the workspace manifest");
    let members = manifest
        .split_once("members")
        .and_then(|(_, rest)| rest.split_once('['))
        .and_then(|(_, rest)| rest.split_once(']'))
        .map(|(list, _)| list)
        .expect("a [workspace] members list");
    members
        .split(',')
        .map(|m| m.trim().trim_matches('"').to_owned())
        .filter(|m| !m.is_empty())
        .collect()
}

/// The crate roots of the given workspace members.
fn crate_roots(members: &[String]) -> Vec<PathBuf> {
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut roots = Vec::new();
    for member in members {
        let src = workspace.join(member).join("src");
        for root in ["lib.rs", "main.rs"] {
            if src.join(root).exists() {
                roots.push(src.join(root));
            }
        }
        if let Ok(bins) = std::fs::read_dir(src.join("bin")) {
            let mut bins: Vec<PathBuf> = bins
                .filter_map(Result::ok)
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|e| e == "rs"))
                .collect();
            bins.sort();
            roots.extend(bins);
        }
    }
    roots
}

/// The cycles of the crates rooted at `roots`, as one text.
fn report(roots: &[PathBuf]) -> String {
    let mut report = String::new();
    for root in roots {
        let krate = Crate::load(root);
        for cycle in krate.cycles() {
            let _ = writeln!(report, "{}: {cycle}", krate.relative(root));
        }
    }
    report
}

#[test]
fn no_crate_of_the_workspace_has_a_module_import_cycle() {
    let members = members();
    for member in [".", "core", "storage", "handlers", "client", "gtk-client"] {
        assert!(
            members.iter().any(|m| m == member),
            "`{member}` is not a workspace member: {members:?}"
        );
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/lib.rs");
    let krate = Crate::load(&root);
    for module in ["http", "gateway", "startup", "config"] {
        assert!(
            krate.modules.contains_key(&vec![module.to_owned()]),
            "the server crate has no module `{module}`: is this the right crate?"
        );
    }
    let roots = crate_roots(&members);
    assert!(
        roots.iter().any(|r| r.ends_with("gtk-client/src/main.rs")),
        "found no crate roots: {roots:?}"
    );
    let report = report(&roots);
    assert!(report.is_empty(), "module import cycles:\n{report}");
}

/// The checker itself sees what it must.
#[cfg(test)]
mod checker {
    use super::*;

    fn krate(files: &[(&str, &str)]) -> Crate {
        let dir = tempfile::tempdir().unwrap();
        for (path, text) in files {
            let path = dir.path().join("src").join(path);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, text).unwrap();
        }
        let krate = Crate::load(&dir.path().join("src/lib.rs"));
        // The files were read: the directory may go.
        drop(dir);
        krate
    }

    #[test]
    fn a_cycle_through_use_lines_is_found_and_named() {
        let k = krate(&[
            ("lib.rs", "mod a; mod b; mod c;"),
            ("a.rs", "use crate::b::B; pub struct A;"),
            ("b.rs", "pub struct B(crate::c::C);"),
            ("c.rs", "pub fn f() { let _ = super::a::A; }"),
        ]);
        let cycles = k.cycles();
        assert_eq!(cycles.len(), 1, "{cycles:?}");
        assert!(cycles[0].starts_with("a -> b -> c -> a"), "{}", cycles[0]);
        assert!(cycles[0].contains("crate::c::C"), "{}", cycles[0]);
    }

    #[test]
    fn one_way_references_tests_and_reexports_are_not_cycles() {
        let k = krate(&[
            ("lib.rs", "pub mod a; pub mod b; pub use b::B;"),
            (
                "a.rs",
                "use crate::B; pub fn f() -> B { B }\n#[cfg(test)] mod tests { use super::*; }",
            ),
            ("b.rs", "pub struct B;"),
        ]);
        assert_eq!(k.cycles(), Vec::<String>::new());
    }

    #[test]
    fn submodules_of_one_module_and_macro_bodies_are_checked() {
        let k = krate(&[
            ("lib.rs", "pub mod g;"),
            ("g/mod.rs", "pub mod x; pub mod y;"),
            (
                "g/x.rs",
                "pub fn f() { tracing::info!(\"{}\", super::y::g()); }",
            ),
            (
                "g/y.rs",
                "pub fn g() -> u8 { 1 }\npub fn h() { crate::g::x::f() }",
            ),
        ]);
        let cycles = k.cycles();
        assert_eq!(cycles.len(), 1, "{cycles:?}");
        assert!(
            cycles[0].starts_with("g::x -> g::y -> g::x"),
            "{}",
            cycles[0]
        );
    }
}
