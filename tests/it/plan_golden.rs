//! Golden reports: text, markdown and JSON of every model in `models/`, compared byte for
//! byte with `tests/golden/plan/`. After an intended change, regenerate them with
//! `UPDATE_GOLDEN=1 cargo test --test it plan_golden` and review the diff.

use std::path::{Path, PathBuf};

use mqpilot::plan::{self, markdown::render_markdown, text::render_text};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn models() -> Vec<PathBuf> {
    let mut models: Vec<PathBuf> = std::fs::read_dir(root().join("models"))
        .expect("models/")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    models.sort();
    models
}

/// Compares `actual` with the golden file, or writes it when `UPDATE_GOLDEN` is set.
fn golden(name: &str, actual: &str) -> Result<(), String> {
    let path = root().join("tests/golden/plan").join(name);
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::create_dir_all(path.parent().expect("parent")).expect("golden dir");
        std::fs::write(&path, actual).expect("write golden");
        return Ok(());
    }
    let expected = std::fs::read_to_string(&path)
        .map_err(|e| format!("{}: {e} (run with UPDATE_GOLDEN=1 to create it)", path.display()))?;
    if expected == actual {
        return Ok(());
    }
    let line = expected
        .lines()
        .zip(actual.lines())
        .position(|(e, a)| e != a)
        .unwrap_or_else(|| expected.lines().count().min(actual.lines().count()));
    Err(format!(
        "{} differs at line {}:\n  expected: {:?}\n  actual:   {:?}",
        path.display(),
        line + 1,
        expected.lines().nth(line),
        actual.lines().nth(line)
    ))
}

#[test]
fn every_model_renders_its_golden_text_markdown_and_json() {
    let models = models();
    assert!(models.len() >= 6, "models/ holds {} files", models.len());
    let mut failures = Vec::new();
    for path in models {
        let text = std::fs::read_to_string(&path).expect("model");
        let stem = path.file_stem().and_then(|s| s.to_str()).expect("name");
        let origin = Path::new("models").join(path.file_name().expect("file"));
        let report = plan::check_text(&text, &origin.display().to_string(), plan::DEFAULT_HEADROOM_PCT)
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let json = serde_json::to_string_pretty(&report).expect("json") + "\n";
        for (name, actual) in [
            (format!("{stem}.txt"), render_text(&report, false)),
            (format!("{stem}.md"), render_markdown(&report)),
            (format!("{stem}.json"), json),
        ] {
            if let Err(e) = golden(&name, &actual) {
                failures.push(e);
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn every_report_prints_each_profiles_assumptions() {
    for path in models() {
        let text = std::fs::read_to_string(&path).expect("model");
        let report = plan::check_text(&text, "m", 20.0).expect("valid");
        let rendered = render_text(&report, false);
        let markdown = render_markdown(&report);
        for app in &report.apps {
            assert!(!app.assumptions.is_empty(), "{}: {}", path.display(), app.name);
            for a in &app.assumptions {
                assert!(rendered.contains(a.as_str()), "{}: text lacks {a:?}", path.display());
                assert!(
                    markdown.contains(a.as_str()),
                    "{}: markdown lacks {a:?}",
                    path.display()
                );
            }
        }
    }
}
