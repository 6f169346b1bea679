//! The checkout tests itself with nothing beside it: no source, manifest or script in the
//! tree names a path outside the checkout (a sibling `shared/` folder, or a relative path
//! that climbs above the workspace root). Fixtures are copied into the repository instead
//! (`servers/ai-engine/tests/fixtures/`).

#[cfg(test)]
mod tests {
    use std::path::{Path, PathBuf};

    /// Extensions of the files a build, test, bench or script reads paths from.
    const CHECKED: &[&str] = &["rs", "toml", "py", "sh", "json", "ld", "cfg"];

    fn files(dir: &Path, out: &mut Vec<PathBuf>) {
        let Ok(entries) = std::fs::read_dir(dir) else { return };
        for entry in entries.flatten() {
            let path = entry.path();
            let name = entry.file_name();
            if name == "target" || name == ".git" {
                continue;
            }
            if path.is_dir() {
                files(&path, out);
            } else if path.extension().and_then(|e| e.to_str()).is_some_and(|e| CHECKED.contains(&e))
                || path.ends_with(".ci/run")
            {
                out.push(path);
            }
        }
    }

    /// How deep the crate (or, outside crates, the folder) holding `file` is below `root`:
    /// a path joined to `CARGO_MANIFEST_DIR` with more `..` than this leaves the checkout.
    fn crate_depth(root: &Path, file: &Path) -> usize {
        let mut base = file.parent().unwrap_or(root);
        let mut cursor = base;
        while cursor.starts_with(root) {
            if cursor.join("Cargo.toml").exists() {
                base = cursor;
                break;
            }
            match cursor.parent() {
                Some(parent) => cursor = parent,
                None => break,
            }
        }
        base.strip_prefix(root).map_or(0, |relative| relative.components().count())
    }

    #[test]
    fn nothing_in_the_tree_reads_outside_the_checkout() {
        let root = crate::build::workspace_root();
        let sibling = [".", ".", "/shared"].concat();
        let up = ["..", "/"].concat();
        let mut found = Vec::new();
        let mut all = Vec::new();
        files(&root, &mut all);
        assert!(all.len() > 50, "found only {} files under {}", all.len(), root.display());
        for file in all {
            let Ok(text) = std::fs::read_to_string(&file) else { continue };
            let from_crate = crate_depth(&root, &file);
            // `include_bytes!`, `include_str!` and `#[path]` are relative to the file itself.
            let from_file = file.parent().and_then(|dir| dir.strip_prefix(&root).ok()).map_or(0, |dir| dir.components().count());
            for (number, line) in text.lines().enumerate() {
                let file_relative = ["include_bytes!", "include_str!", "#[path"].iter().any(|form| line.contains(form));
                let allowed = if file_relative { from_file } else { from_crate };
                let mut climbs = 0;
                let mut rest = line;
                while let Some(at) = rest.find(&up) {
                    // Count a run of "../" starting here.
                    let run = rest.as_bytes()[at..].chunks(3).take_while(|chunk| *chunk == up.as_bytes()).count();
                    climbs = climbs.max(run);
                    rest = &rest[at + run.max(1) * 3..];
                }
                if line.contains(&sibling) || climbs > allowed {
                    found.push(format!("{}:{}: {}", file.strip_prefix(&root).unwrap_or(&file).display(), number + 1, line.trim()));
                }
            }
        }
        assert!(found.is_empty(), "paths that leave the checkout:\n{}", found.join("\n"));
    }
}
