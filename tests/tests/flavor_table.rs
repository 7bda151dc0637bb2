//! The README's table of flavors and features is generated from the
//! flavors' own `--describe`, so it cannot drift: this test fails when they
//! disagree, and rewrites the table with SKIFF_UPDATE_README=1.

use skiff_tests::skiff::bin_dir;

const FLAVORS: [&str; 3] = ["ns", "fly", "nspawn"];
const START: &str = "<!-- flavor-table:start -->\n";
const END: &str = "<!-- flavor-table:end -->";

fn describe(name: &str) -> serde_json::Value {
    let out = std::process::Command::new(bin_dir().join(format!("skiff-stage1-{name}")))
        .arg("--describe")
        .output()
        .expect("run --describe");
    serde_json::from_slice(&out.stdout).expect("--describe JSON")
}

fn table() -> String {
    let described: Vec<serde_json::Value> = FLAVORS.iter().map(|f| describe(f)).collect();
    let mut features: Vec<String> = Vec::new();
    for d in &described {
        for f in d["features"].as_array().unwrap() {
            let f = f.as_str().unwrap().to_string();
            if !features.contains(&f) {
                features.push(f);
            }
        }
    }
    let mut t = format!("| feature | {} |\n|---|{}\n", FLAVORS.join(" | "), "---|".repeat(FLAVORS.len()));
    for f in &features {
        let cells: Vec<&str> = described
            .iter()
            .map(|d| if d["features"].as_array().unwrap().iter().any(|x| x == f.as_str()) { "yes" } else { "—" })
            .collect();
        t.push_str(&format!("| `{f}` | {} |\n", cells.join(" | ")));
    }
    t
}

#[test]
fn readme_table_matches_the_flavors() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../README.md");
    let readme = std::fs::read_to_string(path).unwrap();
    let start = readme.find(START).expect("table start marker") + START.len();
    let end = readme.find(END).expect("table end marker");
    let want = table();
    if std::env::var_os("SKIFF_UPDATE_README").is_some() {
        std::fs::write(path, format!("{}{want}{}", &readme[..start], &readme[end..])).unwrap();
        return;
    }
    assert_eq!(
        &readme[start..end],
        want,
        "README's flavor table is stale: run SKIFF_UPDATE_README=1 cargo test -p skiff-tests --test flavor_table"
    );
}
