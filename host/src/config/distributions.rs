//! OGX 1.5.0's distributions, shipped inside the binary, and how `ogx run ARG` finds its config
//! (OGX's `resolve_config_or_distro`, `src/ogx/core/utils/config_resolution.py`), in OGX's
//! order:
//!
//! 1. an existing file named `ARG`;
//! 2. a shipped distribution named `ARG` (when `ARG` does not end in `.yaml`): its `config.yaml`;
//! 3. `DISTRO::FILE.yaml`: another config of a shipped distribution (e.g.
//!    `starter::run-with-postgres-store.yaml`);
//! 4. a built distribution under `$OGX_CONFIG_DIR/distributions` (default
//!    `~/.ogx/distributions`): `ogx-ARG/ARG-config.yaml`, then `ARG/config.yaml`.
//!
//! Anything else fails with the places tried and the shipped names. The shipped texts are the
//! files under `config/distributions/` of the source tree, verbatim from the OGX 1.5.0 sdist.

use std::path::{Path, PathBuf};

use super::env::{Lookup, expand_user};

/// `(distribution, file, text)` of every shipped config.
const SHIPPED: &[(&str, &str, &str)] = &[
    (
        "nvidia",
        "config.yaml",
        include_str!("../../../config/distributions/nvidia/config.yaml"),
    ),
    (
        "oci",
        "config.yaml",
        include_str!("../../../config/distributions/oci/config.yaml"),
    ),
    (
        "open-benchmark",
        "config.yaml",
        include_str!("../../../config/distributions/open-benchmark/config.yaml"),
    ),
    (
        "postgres-demo",
        "config.yaml",
        include_str!("../../../config/distributions/postgres-demo/config.yaml"),
    ),
    (
        "starter",
        "config.yaml",
        include_str!("../../../config/distributions/starter/config.yaml"),
    ),
    (
        "starter",
        "run-with-postgres-store.yaml",
        include_str!("../../../config/distributions/starter/run-with-postgres-store.yaml"),
    ),
    (
        "starter",
        "run-with-postgres-uri-store.yaml",
        include_str!("../../../config/distributions/starter/run-with-postgres-uri-store.yaml"),
    ),
    (
        "watsonx",
        "config.yaml",
        include_str!("../../../config/distributions/watsonx/config.yaml"),
    ),
];

/// Where a run config comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConfigSource {
    /// A file on disk.
    File(PathBuf),
    /// A shipped distribution's config; `path` names it in messages
    /// (`distributions/<name>/<file>`).
    Shipped { path: PathBuf, text: &'static str },
}

/// The shipped distributions' names, sorted, without repeats.
pub fn shipped_names() -> Vec<&'static str> {
    let mut names: Vec<&str> = SHIPPED.iter().map(|(name, _, _)| *name).collect();
    names.dedup();
    names
}

fn shipped(name: &str, file: &str) -> Option<ConfigSource> {
    SHIPPED
        .iter()
        .find(|(n, f, _)| *n == name && *f == file)
        .map(|(n, f, text)| ConfigSource::Shipped {
            path: PathBuf::from(format!("distributions/{n}/{f}")),
            text,
        })
}

/// Resolves `ARG` of `ogx run ARG` (see the module documentation). `is_file` answers whether a
/// path is an existing file (the file system in production).
pub fn resolve(
    arg: &str,
    lookup: Lookup<'_>,
    is_file: &dyn Fn(&Path) -> bool,
) -> Result<ConfigSource, String> {
    if is_file(Path::new(arg)) {
        return Ok(ConfigSource::File(PathBuf::from(arg)));
    }
    if !arg.ends_with(".yaml")
        && let Some(found) = shipped(arg, "config.yaml")
    {
        return Ok(found);
    }
    if let Some((name, file)) = arg.split_once("::") {
        let file = if file.ends_with(".yaml") {
            file
        } else {
            "config.yaml"
        };
        if let Some(found) = shipped(name, file) {
            return Ok(found);
        }
    }
    let base = distributions_dir(lookup);
    let built = [
        base.join(format!("ogx-{arg}"))
            .join(format!("{arg}-config.yaml")),
        base.join(arg).join("config.yaml"),
    ];
    if let Some(found) = built.iter().find(|p| is_file(p)) {
        return Ok(ConfigSource::File(found.clone()));
    }
    Err(format!(
        "could not resolve config or distribution '{arg}'. Tried: the file '{arg}'; a distribution shipped with ogx \
         ({}); the built distributions {} and {}. Pass the path of a run config, or one of the shipped names, e.g. \
         `ogx run starter`.",
        shipped_names().join(", "),
        built[0].display(),
        built[1].display(),
    ))
}

/// OGX's `DISTRIBS_BASE_DIR`: `$OGX_CONFIG_DIR/distributions`, default `~/.ogx/distributions`.
pub fn distributions_dir(lookup: Lookup<'_>) -> PathBuf {
    let base = lookup("OGX_CONFIG_DIR")
        .filter(|d| !d.is_empty())
        .unwrap_or_else(|| "~/.ogx".into());
    PathBuf::from(expand_user(&base, lookup)).join("distributions")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(name: &str) -> Option<String> {
        match name {
            "HOME" => Some("/home/u".into()),
            "OGX_CONFIG_DIR" => Some("/etc/ogx".into()),
            _ => None,
        }
    }

    #[test]
    fn resolution_follows_ogx_order() {
        let files = [
            "starter",
            "mine.yaml",
            "/etc/ogx/distributions/ogx-built/built-config.yaml",
        ];
        let is_file = |p: &Path| files.iter().any(|f| Path::new(f) == p);
        let shipped_path = |p: &str| match resolve(p, &env, &is_file) {
            Ok(ConfigSource::Shipped { path, .. }) => Some(path.display().to_string()),
            _ => None,
        };
        // A file named like a distribution wins, as in OGX.
        assert_eq!(
            resolve("starter", &env, &is_file),
            Ok(ConfigSource::File("starter".into()))
        );
        assert_eq!(
            resolve("mine.yaml", &env, &is_file),
            Ok(ConfigSource::File("mine.yaml".into()))
        );
        assert_eq!(
            shipped_path("watsonx").as_deref(),
            Some("distributions/watsonx/config.yaml")
        );
        assert_eq!(
            shipped_path("starter::run-with-postgres-store.yaml").as_deref(),
            Some("distributions/starter/run-with-postgres-store.yaml")
        );
        assert_eq!(
            resolve("built", &env, &is_file),
            Ok(ConfigSource::File(
                "/etc/ogx/distributions/ogx-built/built-config.yaml".into()
            ))
        );
        let error = resolve("startr", &env, &|_| false).unwrap_err();
        assert!(
            error.contains("could not resolve config or distribution 'startr'"),
            "{error}"
        );
        assert!(
            error.contains("nvidia, oci, open-benchmark, postgres-demo, starter, watsonx"),
            "{error}"
        );
        // `x.yaml` is never a distribution name.
        assert!(resolve("starter.yaml", &env, &|_| false).is_err());
    }

    #[test]
    fn every_shipped_config_is_ogx_verbatim_with_a_header() {
        for (name, file, text) in SHIPPED {
            assert!(text.starts_with("# OGX 1.5.0's"), "{name}/{file}");
            assert!(
                text.contains(&format!("distro_name: {name}")),
                "{name}/{file}"
            );
        }
    }
}
