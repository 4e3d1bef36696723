//! The layering every crate keeps, checked over the source tree: no module
//! imports one that imports it (directly or through others), so each
//! dependency points one way — lower modules define, higher ones use.

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::collections::{BTreeMap, BTreeSet};
    use std::path::{Path, PathBuf};

    /// Every `.rs` file below `dir`, except test-only ones.
    fn sources(dir: &Path, found: &mut Vec<PathBuf>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                sources(&path, found);
            } else if path.extension().is_some_and(|ext| ext == "rs") {
                let name = path.file_name().unwrap().to_string_lossy().into_owned();
                let test_only = name.ends_with("_tests.rs")
                    || name.ends_with("_test.rs")
                    || name.starts_with("tests")
                    || name == "test_support.rs";
                if !test_only {
                    found.push(path);
                }
            }
        }
    }

    /// The top-level module a file belongs to (`store` for
    /// `src/store/deals/mod.rs`); `None` for the crate root.
    fn module_of(src: &Path, file: &Path) -> Option<String> {
        let relative = file.strip_prefix(src).unwrap();
        let first = relative.components().next()?.as_os_str().to_string_lossy().into_owned();
        let name = first.trim_end_matches(".rs").to_owned();
        (!matches!(name.as_str(), "lib" | "main")).then_some(name)
    }

    /// Which top-level modules each one names (`crate::x`), leaving out
    /// comments and `#[cfg(test)] mod tests` blocks.
    fn edges(src: &Path) -> BTreeMap<String, BTreeSet<String>> {
        let mut files = Vec::new();
        sources(src, &mut files);
        let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        for file in files {
            let Some(module) = module_of(src, &file) else { continue };
            let text = std::fs::read_to_string(&file).unwrap();
            let code = text.split("#[cfg(test)]\nmod tests").next().unwrap_or_default();
            for line in code.lines().filter(|line| !line.trim_start().starts_with("//")) {
                for (at, _) in line.match_indices("crate::") {
                    let rest = &line[at + "crate::".len()..];
                    // `crate::a` or a group `crate::{a, b::c}`.
                    let names: Vec<&str> = match rest.strip_prefix('{') {
                        Some(group) => group.split('}').next().unwrap_or_default().split(',').collect(),
                        None => vec![rest],
                    };
                    for name in names {
                        let name: String =
                            name.trim().chars().take_while(|c| c.is_ascii_lowercase() || *c == '_').collect();
                        if !name.is_empty() && name != module && name != "self" {
                            graph.entry(module.clone()).or_default().insert(name);
                        }
                    }
                }
            }
        }
        graph
    }

    /// A cycle through `start`, if there is one.
    fn cycle_from(graph: &BTreeMap<String, BTreeSet<String>>, start: &str) -> Option<Vec<String>> {
        let mut stack = vec![(start.to_owned(), vec![start.to_owned()])];
        let mut seen = BTreeSet::new();
        while let Some((node, path)) = stack.pop() {
            for next in graph.get(&node).into_iter().flatten() {
                if next == start {
                    return Some([path.clone(), vec![start.to_owned()]].concat());
                }
                if seen.insert(next.clone()) {
                    stack.push((next.clone(), [path.clone(), vec![next.clone()]].concat()));
                }
            }
        }
        None
    }

    #[test]
    fn no_module_imports_one_that_imports_it() {
        let services = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
        let mut checked = 0;
        for entry in std::fs::read_dir(services).unwrap() {
            let src = entry.unwrap().path().join("src");
            if !src.is_dir() {
                continue;
            }
            let graph = edges(&src);
            for module in graph.keys() {
                assert_eq!(cycle_from(&graph, module), None, "an import cycle in {}", src.display());
            }
            checked += 1;
        }
        assert!(checked >= 5, "every service crate is checked ({checked})");
    }

    #[test]
    fn the_check_finds_a_cycle() {
        let graph: BTreeMap<String, BTreeSet<String>> = [
            ("store".to_owned(), BTreeSet::from(["convert".to_owned()])),
            ("convert".to_owned(), BTreeSet::from(["store".to_owned()])),
        ]
        .into();
        assert_eq!(cycle_from(&graph, "store"), Some(vec!["store".into(), "convert".into(), "store".into()]));
    }
}
