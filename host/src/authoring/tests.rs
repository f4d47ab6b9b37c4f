use super::*;

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("host/ has a parent")
        .to_path_buf()
}

/// Every file under `dir`, as paths relative to `dir`, sorted.
fn files_under(dir: &Path) -> Vec<String> {
    let mut found = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(next) = stack.pop() {
        for entry in std::fs::read_dir(&next).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else {
                let relative = path.strip_prefix(dir).unwrap();
                found.push(relative.to_string_lossy().replace('\\', "/"));
            }
        }
    }
    found.sort();
    found
}

#[test]
fn the_sdks_wit_is_the_repositorys_byte_for_byte() {
    let root = repo_root();
    let interface = crate::runtime::InterfaceVersion::LATEST.as_str();
    let repo_wit = root.join("wit").join(format!("ogx-provider@{interface}"));
    let sdk_wit = root
        .join("plugins/sdk/wit")
        .join(format!("ogx-provider@{interface}"));
    let names = files_under(&repo_wit);
    assert!(!names.is_empty(), "{} has no files", repo_wit.display());
    assert_eq!(
        names,
        files_under(&sdk_wit),
        "plugins/sdk/wit must hold the same files as wit/: copy wit/ogx-provider@{interface} into plugins/sdk/wit/"
    );
    for name in names {
        assert_eq!(
            std::fs::read(repo_wit.join(&name)).unwrap(),
            std::fs::read(sdk_wit.join(&name)).unwrap(),
            "plugins/sdk/wit/ogx-provider@{interface}/{name} differs from wit/: copy it again"
        );
    }
}

#[test]
fn every_sdk_file_is_vendored_into_new_plugins() {
    let sdk = repo_root().join("plugins/sdk");
    let mut on_disk: Vec<String> = files_under(&sdk.join("src"))
        .into_iter()
        .map(|f| format!("src/{f}"))
        .chain(
            files_under(&sdk.join("wit"))
                .into_iter()
                .map(|f| format!("wit/{f}")),
        )
        .chain(["Cargo.toml".to_owned(), "README.md".to_owned()])
        .collect();
    on_disk.sort();
    let mut vendored: Vec<String> = SDK_FILES.iter().map(|(p, _)| (*p).to_owned()).collect();
    vendored.sort();
    assert_eq!(
        vendored, on_disk,
        "SDK_FILES in host/src/authoring/mod.rs must list every file of plugins/sdk"
    );
    for (path, text) in SDK_FILES {
        assert_eq!(std::fs::read_to_string(sdk.join(path)).unwrap(), *text);
    }
}

#[test]
fn the_sdk_version_follows_the_interface() {
    let manifest = SDK_FILES
        .iter()
        .find(|(p, _)| *p == "Cargo.toml")
        .unwrap()
        .1;
    let version = manifest
        .lines()
        .find_map(|l| l.strip_prefix("version = \""))
        .and_then(|v| v.strip_suffix('"'))
        .expect("the SDK's Cargo.toml sets its own version");
    assert!(
        version.starts_with(&format!("{}.", sdk_version())),
        "ogx-provider-sdk {version} must be {}.x for ogx:provider@{}",
        sdk_version(),
        crate::runtime::InterfaceVersion::LATEST
    );
    assert!(
        !manifest.contains(".workspace = true") && !manifest.contains("../"),
        "the SDK's Cargo.toml must stand alone (it is copied into new plugins)"
    );
}

#[test]
fn a_new_crate_is_complete_and_refers_to_nothing_outside_itself() {
    let rendered = render(&NewPlugin {
        name: "acme-llm".into(),
        provider_type: None,
        parent_dir: PathBuf::from("/tmp/x"),
    })
    .unwrap();
    assert_eq!(rendered.provider_type, "remote::acme-llm");
    assert_eq!(rendered.wasm_file, "acme_llm.wasm");
    assert_eq!(rendered.dir, PathBuf::from("/tmp/x/acme-llm"));
    let file = |name: &str| {
        rendered
            .files
            .iter()
            .find(|(p, _)| p == Path::new(name))
            .map(|(_, t)| t.as_str())
            .unwrap_or_else(|| panic!("{name} not written"))
    };
    let lib = file("src/lib.rs");
    assert!(lib.contains("pub const PROVIDER_TYPE: &str = \"remote::acme-llm\";"));
    assert!(lib.contains("\"acme_llm_api_key\""));
    assert!(file("Cargo.toml").contains("path = \"vendor/ogx-provider-sdk\""));
    assert!(file("vendor/ogx-provider-sdk/src/lib.rs").contains("wit_bindgen::generate!"));
    for (path, text) in &rendered.files {
        assert!(
            !text.contains("{{"),
            "{} has an unfilled placeholder",
            path.display()
        );
        if !path.starts_with(VENDORED_SDK_DIR) {
            assert!(
                !text.contains("../"),
                "{} refers outside the crate",
                path.display()
            );
        }
    }
}

#[test]
fn bad_names_types_and_occupied_folders_are_refused() {
    let new = |name: &str, provider_type: Option<&str>, parent: &Path| NewPlugin {
        name: name.into(),
        provider_type: provider_type.map(str::to_owned),
        parent_dir: parent.to_path_buf(),
    };
    let tmp = tempfile::tempdir().unwrap();
    for name in ["Acme", "1acme", "ac me", "../acme", ""] {
        let err = write(&new(name, None, tmp.path())).err().unwrap();
        assert!(matches!(err, NewPluginError::BadName(_)), "{name}: {err}");
    }
    for ty in ["acme", "cloud::acme", "remote::", "remote::Acme"] {
        let err = write(&new("acme", Some(ty), tmp.path())).err().unwrap();
        assert!(
            matches!(err, NewPluginError::BadProviderType(_)),
            "{ty}: {err}"
        );
    }
    let written = write(&new("acme", Some("inline::acme"), tmp.path())).unwrap();
    assert!(written.dir.join("src/lib.rs").is_file());
    assert!(
        written
            .dir
            .join("vendor/ogx-provider-sdk/wit/ogx-provider@0.2.0/world.wit")
            .is_file()
    );
    let again = write(&new("acme", None, tmp.path())).err().unwrap();
    assert!(again.to_string().contains("already exists"), "{again}");
}
