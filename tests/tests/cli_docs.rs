//! Shell completions and man pages, made from the same definitions as
//! `--help`.

use skiff_tests::Skiff;

#[test]
fn completions_load_in_their_shells() {
    let s = Skiff::new();
    let bash = s.ok(&["completion", "bash"]);
    assert!(bash.contains("complete") && bash.contains("run-prepared"), "{bash}");
    let path = s.tmp().join("skiff.bash");
    std::fs::write(&path, &bash).unwrap();
    let o = std::process::Command::new("bash")
        .arg("-c")
        .arg(format!("source {} && complete -p skiff", path.display()))
        .output()
        .unwrap();
    assert!(o.status.success() && String::from_utf8_lossy(&o.stdout).contains("skiff"), "{o:?}");
    assert!(s.ok(&["completion", "zsh"]).starts_with("#compdef skiff"));
    let fish = s.ok(&["completion", "fish"]);
    assert!(fish.contains("complete -c skiff") && fish.contains("uuid-file"), "{fish}");
    assert_eq!(s.output(&["completion", "tcsh"]).status.code(), Some(125));
}

#[test]
fn man_pages_cover_every_command_and_the_app_options() {
    let s = Skiff::new();
    let dir = s.tmp().join("man");
    s.ok(&["generate", "man", dir.to_str().unwrap()]);
    for page in
        ["skiff", "skiff-run", "skiff-status", "skiff-image-build", "skiff-generate-systemd", "skiff-completion"]
    {
        let text = std::fs::read_to_string(dir.join(format!("{page}.1"))).unwrap_or_else(|e| panic!("{page}.1: {e}"));
        assert!(text.starts_with(".ie") || text.contains(".TH"), "{page}: {text}");
    }
    let run = std::fs::read_to_string(dir.join("skiff-run.1")).unwrap();
    assert!(run.contains("stop\\-timeout") && run.contains("caps\\-retain"), "pod and app options: {run}");
}
