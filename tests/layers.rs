//! The layering of src/: which module may use which. Reads the sources (no build needed)
//! and fails on an import that goes up the layer order of the README's Architecture
//! section, or on an import cycle among files. `cargo test --test layers -- --nocapture`
//! prints the module graph.
//!
//! What counts as an import: a `use` (not a `pub use`, which only forwards a name) or a
//! path written in the code (`crate::a::b`, `super::x`, `child::y`), resolved through
//! re-exports to the file that defines the item. Test code (`#[cfg(test)] mod tests`,
//! `tests.rs`), the binary's `src/cli/` and `src/main.rs` are not part of the graph; paths
//! made inside macros are not seen.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Bottom up: a module may use only modules of a lower layer.
const LAYERS: &[&[&str]] = &[
    &["text", "defaults", "secret", "random"],
    &["model", "logging"],
    &["x509", "ari", "hook", "auth"],
    &["renew"],
    &["vault", "dns"],
    &["acme"],
    &["ca"],
    &["records", "import"],
    &["index"],
    &["store"],
    &["policy"],
    &["error"],
    &["report"],
    &["metrics", "notify"],
    &["command"],
    &["lib"],
];

/// The modules of `src/command/` that are verbs (one command each). A verb never uses
/// another: a step two verbs share lives in a module of its own below them (`apply`,
/// `obtain`, `rows`, `context`).
const VERBS: &[&str] = &[
    "account", "doctor", "dns", "edit", "import", "index", "init", "issue", "list", "manage",
    "migrate", "renew", "revoke",
];

/// A file's module path: `["dns", "session"]` for src/dns/session.rs, `["dns"]` for
/// src/dns/mod.rs, `[]` for src/lib.rs.
type ModPath = Vec<String>;

struct Source {
    path: PathBuf,
    text: String,
}

fn sources(src: &Path) -> BTreeMap<ModPath, Source> {
    let mut out = BTreeMap::new();
    let mut stack = vec![src.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let p = entry.unwrap().path();
            if p.is_dir() {
                stack.push(p);
                continue;
            }
            if p.extension().is_none_or(|e| e != "rs") {
                continue;
            }
            let rel = p.strip_prefix(src).unwrap();
            let mut parts: Vec<String> = rel
                .iter()
                .map(|c| c.to_string_lossy().trim_end_matches(".rs").to_string())
                .collect();
            let last = parts.last().unwrap().clone();
            if parts[0] == "cli" || last == "tests" || parts.iter().any(|p| p == "tests") {
                continue;
            }
            if parts == ["main"] {
                continue;
            }
            if last == "mod" || parts == ["lib"] {
                parts.pop();
            }
            let text = strip(&std::fs::read_to_string(&p).unwrap());
            out.insert(parts, Source { path: p, text });
        }
    }
    out
}

/// The code without comments, string contents and `#[cfg(test)] mod tests { … }`.
fn strip(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let b: Vec<char> = text.chars().collect();
    let mut i = 0;
    while i < b.len() {
        if b[i] == '/' && b.get(i + 1) == Some(&'/') {
            while i < b.len() && b[i] != '\n' {
                i += 1;
            }
            continue;
        }
        if b[i] == '"' {
            out.push('"');
            i += 1;
            while i < b.len() && b[i] != '"' {
                if b[i] == '\\' {
                    i += 1;
                }
                if b.get(i) == Some(&'\n') {
                    out.push('\n');
                }
                i += 1;
            }
            out.push('"');
            i += 1;
            continue;
        }
        // 'x' and '\n' are chars; 'a (a lifetime) is not.
        if b[i] == '\'' && b.get(i + 2) == Some(&'\'') {
            i += 3;
            continue;
        }
        if b[i] == '\'' && b.get(i + 1) == Some(&'\\') {
            let mut j = i + 2;
            while j < b.len() && b[j] != '\'' {
                j += 1;
            }
            i = j + 1;
            continue;
        }
        // Raw strings: r"…", r#"…"#.
        if b[i] == 'r'
            && (i == 0 || !is_ident(b[i - 1]))
            && matches!(b.get(i + 1), Some('"') | Some('#'))
        {
            let mut j = i + 1;
            let mut hashes = 0;
            while b.get(j) == Some(&'#') {
                hashes += 1;
                j += 1;
            }
            if b.get(j) == Some(&'"') {
                j += 1;
                loop {
                    if j >= b.len() {
                        break;
                    }
                    if b[j] == '"' && (1..=hashes).all(|h| b.get(j + h) == Some(&'#')) {
                        j += 1 + hashes;
                        break;
                    }
                    if b[j] == '\n' {
                        out.push('\n');
                    }
                    j += 1;
                }
                out.push_str("\"\"");
                i = j;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    // Test modules written inline.
    while let Some(at) = out.find("#[cfg(test)]") {
        let rest = &out[at..];
        let Some(open) = rest.find(['{', ';']) else {
            break;
        };
        let end = if rest.as_bytes()[open] == b';' {
            at + open + 1
        } else {
            let mut depth = 0;
            let mut end = out.len();
            for (k, c) in rest.char_indices().skip(open) {
                match c {
                    '{' => depth += 1,
                    '}' => {
                        depth -= 1;
                        if depth == 0 {
                            end = at + k + 1;
                            break;
                        }
                    }
                    _ => {}
                }
            }
            end
        };
        out.replace_range(at..end, "");
    }
    out
}

fn is_ident(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

/// Expand a use tree (`a::{b, c::{d as e}}`) into paths with their local names.
fn expand(tree: &str, prefix: &[String], out: &mut Vec<(Vec<String>, String)>) {
    let tree = tree.trim();
    if let Some(open) = tree.find('{') {
        let head: Vec<String> = tree[..open]
            .split("::")
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(String::from)
            .collect();
        let inner = &tree[open + 1..tree.rfind('}').unwrap_or(tree.len())];
        let mut base = prefix.to_vec();
        base.extend(head);
        let mut depth = 0;
        let mut start = 0;
        for (k, c) in inner.char_indices() {
            match c {
                '{' => depth += 1,
                '}' => depth -= 1,
                ',' if depth == 0 => {
                    expand(&inner[start..k], &base, out);
                    start = k + 1;
                }
                _ => {}
            }
        }
        expand(&inner[start..], &base, out);
        return;
    }
    if tree.is_empty() {
        return;
    }
    let (path, alias) = match tree.split_once(" as ") {
        Some((p, a)) => (p.trim(), Some(a.trim())),
        None => (tree, None),
    };
    let mut segs = prefix.to_vec();
    segs.extend(path.split("::").map(|s| s.trim().to_string()));
    if segs.last().is_some_and(|s| s == "self") {
        segs.pop();
    }
    let name = alias
        .map(String::from)
        .or_else(|| segs.last().cloned())
        .unwrap_or_default();
    out.push((segs, name));
}

/// The `use` statements of a file: (is `pub use`, path, local name).
fn uses(text: &str) -> Vec<(bool, Vec<String>, String)> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(at) = rest.find("use ") {
        let before = &rest[..at];
        let prev = before.chars().last();
        if prev.is_some_and(is_ident) {
            rest = &rest[at + 4..];
            continue;
        }
        let line_start = before.rfind('\n').map_or(0, |n| n + 1);
        let lead = before[line_start..].trim();
        let public = lead.starts_with("pub");
        if !(lead.is_empty() || lead.starts_with("pub")) {
            rest = &rest[at + 4..];
            continue;
        }
        let Some(end) = rest[at..].find(';') else {
            break;
        };
        let tree = &rest[at + 4..at + end];
        let mut paths = Vec::new();
        expand(tree, &[], &mut paths);
        for (p, n) in paths {
            out.push((public, p, n));
        }
        rest = &rest[at + end..];
    }
    out
}

/// Inline paths: `crate::a::b`, `super::x::y`, `self::z`, `child::w` (two segments or more).
fn inline_paths(text: &str) -> Vec<Vec<String>> {
    let mut out = Vec::new();
    let chars: Vec<char> = text.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        if !is_ident(chars[i]) || (i > 0 && (is_ident(chars[i - 1]) || chars[i - 1] == ':')) {
            i += 1;
            continue;
        }
        let mut segs = Vec::new();
        let mut j = i;
        loop {
            let s = j;
            while j < chars.len() && is_ident(chars[j]) {
                j += 1;
            }
            segs.push(chars[s..j].iter().collect::<String>());
            if j + 2 < chars.len()
                && chars[j] == ':'
                && chars[j + 1] == ':'
                && is_ident(chars[j + 2])
            {
                j += 2;
            } else {
                break;
            }
        }
        if segs.len() >= 2 {
            out.push(segs);
        }
        i = j.max(i + 1);
    }
    out
}

struct Graph {
    files: BTreeMap<ModPath, Source>,
    /// Per file: its uses (public or not, full path, local name).
    uses: BTreeMap<ModPath, Vec<(bool, Vec<String>, String)>>,
}

impl Graph {
    fn new(src: &Path) -> Self {
        let files = sources(src);
        let uses = files
            .iter()
            .map(|(m, s)| (m.clone(), uses(&s.text)))
            .collect();
        Graph { files, uses }
    }

    /// `segs` as written in file `from`, made absolute (crate-relative), or `None` for a
    /// path that is not into this crate.
    fn absolute(&self, from: &ModPath, segs: &[String]) -> Option<Vec<String>> {
        let mut base: Vec<String>;
        let mut rest = segs;
        match segs.first().map(String::as_str) {
            Some("crate") => {
                base = Vec::new();
                rest = &segs[1..];
            }
            Some("self") => {
                base = from.clone();
                rest = &segs[1..];
            }
            Some("super") => {
                base = from.clone();
                while rest.first().is_some_and(|s| s == "super") {
                    base.pop();
                    rest = &rest[1..];
                }
            }
            Some(first) => {
                let mut child = from.clone();
                child.push(first.to_string());
                if self.files.contains_key(&child) {
                    base = from.clone();
                } else {
                    return None;
                }
            }
            None => return None,
        }
        base.extend(rest.iter().cloned());
        Some(base)
    }

    /// The file that defines what `abs` names, following `pub use` re-exports.
    fn defining(&self, abs: &[String], depth: usize) -> Option<ModPath> {
        let mut k = abs.len();
        while k > 0 && !self.files.contains_key(&abs[..k]) {
            k -= 1;
        }
        let file = abs[..k].to_vec();
        if !self.files.contains_key(&file) {
            return None;
        }
        if k < abs.len() && depth < 8 {
            let name = &abs[k];
            for (public, path, local) in &self.uses[&file] {
                if *public && local == name {
                    if let Some(target) = self.absolute(&file, path) {
                        let mut full = target;
                        full.extend(abs[k + 1..].iter().cloned());
                        if let Some(f) = self.defining(&full, depth + 1) {
                            return Some(f);
                        }
                    }
                }
            }
        }
        Some(file)
    }

    /// Every file-to-file import (file, target) → where.
    fn edges(&self) -> BTreeMap<(ModPath, ModPath), String> {
        let mut out = BTreeMap::new();
        for (m, src) in &self.files {
            let mut paths: Vec<Vec<String>> = self.uses[m]
                .iter()
                .filter(|(public, _, _)| !public)
                .map(|(_, p, _)| p.clone())
                .collect();
            // Inline paths outside `use` statements.
            let code: String = {
                let mut t = src.text.clone();
                while let Some(at) = find_use(&t) {
                    let end = t[at..].find(';').map_or(t.len(), |e| at + e + 1);
                    t.replace_range(at..end, "");
                }
                t
            };
            paths.extend(inline_paths(&code));
            for p in paths {
                let Some(abs) = self.absolute(m, &p) else {
                    continue;
                };
                if let Some(target) = self.defining(&abs, 0) {
                    if &target != m && !target.is_empty() {
                        out.entry((m.clone(), target)).or_insert_with(|| {
                            format!("{} ({})", src.path.display(), p.join("::"))
                        });
                    }
                }
            }
        }
        out
    }
}

fn find_use(t: &str) -> Option<usize> {
    let mut from = 0;
    while let Some(k) = t[from..].find("use ") {
        let at = from + k;
        let before = &t[..at];
        let ls = before.rfind('\n').map_or(0, |n| n + 1);
        let lead = before[ls..].trim();
        if (lead.is_empty() || lead.starts_with("pub")) && !before.ends_with(|c: char| is_ident(c))
        {
            let start = if lead.is_empty() {
                at
            } else {
                ls + before[ls..].find("pub").unwrap()
            };
            return Some(start);
        }
        from = at + 4;
    }
    None
}

fn layer_of(module: &str) -> Option<usize> {
    LAYERS.iter().position(|l| l.contains(&module))
}

fn top(m: &ModPath) -> String {
    m.first().cloned().unwrap_or_else(|| "lib".into())
}

/// Strongly connected components with more than one member.
fn cycles(nodes: &BTreeSet<ModPath>, edges: &BTreeSet<(ModPath, ModPath)>) -> Vec<Vec<ModPath>> {
    // Kosaraju.
    let succ = |n: &ModPath| -> Vec<ModPath> {
        edges
            .iter()
            .filter(|(a, _)| a == n)
            .map(|(_, b)| b.clone())
            .collect()
    };
    let pred = |n: &ModPath| -> Vec<ModPath> {
        edges
            .iter()
            .filter(|(_, b)| b == n)
            .map(|(a, _)| a.clone())
            .collect()
    };
    let mut order = Vec::new();
    let mut seen = BTreeSet::new();
    for n in nodes {
        if seen.contains(n) {
            continue;
        }
        let mut stack = vec![(n.clone(), false)];
        while let Some((v, done)) = stack.pop() {
            if done {
                order.push(v);
                continue;
            }
            if !seen.insert(v.clone()) {
                continue;
            }
            stack.push((v.clone(), true));
            for w in succ(&v) {
                if !seen.contains(&w) {
                    stack.push((w, false));
                }
            }
        }
    }
    let mut assigned = BTreeSet::new();
    let mut out = Vec::new();
    for v in order.into_iter().rev() {
        if assigned.contains(&v) {
            continue;
        }
        let mut comp = Vec::new();
        let mut stack = vec![v];
        while let Some(x) = stack.pop() {
            if !assigned.insert(x.clone()) {
                continue;
            }
            comp.push(x.clone());
            for w in pred(&x) {
                if !assigned.contains(&w) {
                    stack.push(w);
                }
            }
        }
        if comp.len() > 1 {
            comp.sort();
            out.push(comp);
        }
    }
    out
}

fn name(m: &ModPath) -> String {
    if m.is_empty() {
        "lib".into()
    } else {
        m.join("::")
    }
}

fn check(src: &Path) -> Vec<String> {
    let g = Graph::new(src);
    let edges = g.edges();
    let mut problems = Vec::new();
    let mut modules: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for ((a, b), at) in &edges {
        let (ta, tb) = (top(a), top(b));
        if let (["command", va, ..], ["command", vb, ..]) = (
            a.iter().map(String::as_str).collect::<Vec<_>>().as_slice(),
            b.iter().map(String::as_str).collect::<Vec<_>>().as_slice(),
        ) {
            if va != vb && VERBS.contains(va) && VERBS.contains(vb) {
                problems.push(format!(
                    "verb {va} uses verb {vb}: move the step they share into a module below the verbs: {at}"
                ));
            }
        }
        if ta == tb {
            continue;
        }
        modules.entry(ta.clone()).or_default().insert(tb.clone());
        match (layer_of(&ta), layer_of(&tb)) {
            (Some(la), Some(lb)) if lb < la => {}
            (Some(_), Some(_)) => problems.push(format!(
                "{ta} uses {tb}, which is not below it in the layer order: {at}"
            )),
            (None, _) => problems.push(format!(
                "module {ta} has no layer: add it to LAYERS (and the README)"
            )),
            (_, None) => problems.push(format!(
                "module {tb} has no layer: add it to LAYERS (and the README)"
            )),
        }
    }
    let nodes: BTreeSet<ModPath> = g.files.keys().cloned().collect();
    let file_edges: BTreeSet<(ModPath, ModPath)> = edges.keys().cloned().collect();
    for comp in cycles(&nodes, &file_edges) {
        let members: Vec<String> = comp.iter().map(name).collect();
        let mut detail = Vec::new();
        for ((a, b), at) in &edges {
            if comp.contains(a) && comp.contains(b) {
                detail.push(format!("  {} -> {}: {at}", name(a), name(b)));
            }
        }
        problems.push(format!(
            "import cycle among files {}:\n{}",
            members.join(", "),
            detail.join("\n")
        ));
    }
    println!("module graph (each module and the modules it uses):");
    for l in LAYERS.iter().rev() {
        for m in *l {
            let uses: Vec<&str> = modules
                .get(*m)
                .map(|s| s.iter().map(String::as_str).collect())
                .unwrap_or_default();
            println!("  {m:8} -> {}", uses.join(" "));
        }
    }
    problems
}

#[test]
fn src_modules_follow_the_layer_order_and_files_have_no_import_cycle() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let problems = check(&src);
    assert!(problems.is_empty(), "\n{}", problems.join("\n"));
}

/// The check sees what it must: an upward import, a file cycle and a verb using another
/// verb, in a small tree.
#[test]
fn the_check_fails_on_an_upward_import_and_on_a_file_cycle() {
    let dir = std::env::temp_dir().join(format!("certvault-layers-{}", std::process::id()));
    let w = |p: &str, t: &str| {
        let f = dir.join(p);
        std::fs::create_dir_all(f.parent().unwrap()).unwrap();
        std::fs::write(f, t).unwrap();
    };
    w(
        "lib.rs",
        "mod text;\nmod model;\nmod command;\npub use model::Name;\n",
    );
    w("command/mod.rs", "mod edit;\nmod issue;\n");
    w("command/issue.rs", "pub fn apply() {}\n");
    w(
        "command/edit.rs",
        "pub fn run() { super::issue::apply(); }\n",
    );
    w("text.rs", "use crate::Name;\npub fn f() {}\n");
    w("model/mod.rs", "mod a;\nmod b;\npub use a::Name;\n");
    w("model/a.rs", "use super::b::g;\npub struct Name;\n");
    w(
        "model/b.rs",
        "pub fn g() { let _ = super::a::Name; crate::text::f(); }\n",
    );
    let problems = check(&dir);
    std::fs::remove_dir_all(&dir).unwrap();
    let all = problems.join("\n");
    assert!(
        all.contains("text uses model, which is not below it"),
        "{all}"
    );
    assert!(
        all.contains("import cycle among files model::a, model::b"),
        "{all}"
    );
    assert!(all.contains("verb edit uses verb issue"), "{all}");
    assert_eq!(problems.len(), 3, "{all}");
}
