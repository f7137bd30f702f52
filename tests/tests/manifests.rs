//! The Kubernetes manifests of `deploy/k8s` validate offline against the Kubernetes
//! schemas (strictly) and set only real settings; a broken copy is refused with the
//! reason (so the check is not a rubber stamp).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the workspace root")
        .to_path_buf()
}

fn check(dir: &Path) -> Output {
    Command::new(repo_root().join("scripts/check-manifests.sh"))
        .arg(dir)
        .output()
        .expect("run scripts/check-manifests.sh")
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// A folder removed when dropped.
struct TempDir(PathBuf);

impl TempDir {
    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        drop(std::fs::remove_dir_all(&self.0));
    }
}

/// A copy of `deploy/k8s` with `edit` applied to one file.
fn broken_copy(file: &str, edit: impl FnOnce(String) -> String) -> TempDir {
    let dir = TempDir(std::env::temp_dir().join(format!("k8s-{}", uuid::Uuid::new_v4())));
    std::fs::create_dir_all(dir.path()).unwrap();
    let src = repo_root().join("deploy/k8s");
    for entry in std::fs::read_dir(&src).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "yaml") {
            std::fs::copy(&path, dir.path().join(path.file_name().unwrap())).unwrap();
        }
    }
    let target = dir.path().join(file);
    let edited = edit(std::fs::read_to_string(&target).unwrap());
    std::fs::write(&target, edited).unwrap();
    dir
}

#[test]
fn the_manifests_validate_against_the_kubernetes_schemas() {
    let out = check(&repo_root().join("deploy/k8s"));
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("files valid"), "{}", text(&out));
}

#[test]
fn a_manifest_with_an_unknown_field_is_refused() {
    let dir = broken_copy("ingress.yaml", |s| {
        s.replacen("maxSurge: 1", "maxSurge: 1\n      maxSurgeTypo: 2", 1)
    });
    let out = check(dir.path());
    assert!(!out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("maxSurgeTypo"), "{}", text(&out));
}

#[test]
fn a_variable_that_names_no_setting_is_refused() {
    let dir = broken_copy("config.yaml", |s| {
        s.replacen(
            "APP__INGRESS__DRAIN_DELAY_MS",
            "APP__INGRESS__DRAIN_DELAY",
            1,
        )
    });
    let out = check(dir.path());
    assert!(!out.status.success(), "{}", text(&out));
    assert!(
        text(&out).contains("APP__INGRESS__DRAIN_DELAY is not a setting"),
        "{}",
        text(&out)
    );
}
