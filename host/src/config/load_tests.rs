//! Loading whole configs: the shipped ones, and one test per way a config can be refused.

use super::*;
use serde_json::json;
use std::path::Path;

const PATH: &str = "/srv/ogx/run.yaml";

fn with_env<'a>(env: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
    move |k| {
        env.iter()
            .find(|(n, _)| *n == k)
            .map(|(_, v)| (*v).to_owned())
    }
}

fn parse_with(yaml: &str, env: &[(&str, &str)]) -> Result<LoadedConfig, ConfigError> {
    parse(yaml, Path::new(PATH), &with_env(env))
}

fn ok(yaml: &str) -> LoadedConfig {
    parse_with(yaml, &[("HOME", "/home/u")]).unwrap_or_else(|e| panic!("{e}"))
}

fn err(yaml: &str) -> String {
    match parse_with(yaml, &[("HOME", "/home/u")]) {
        Ok(_) => panic!("expected an error for:\n{yaml}"),
        Err(e) => e.to_string(),
    }
}

fn shipped(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../config")
        .join(name)
}

const MINIMAL: &str = "distro_name: t\nproviders:\n  inference:\n    - provider_id: a\n      provider_type: remote::openai\n";

#[test]
fn the_seed_config_loads_with_an_empty_environment() {
    let loaded =
        load(&shipped("seed-bedrock-sigv4.yaml"), &|_| None).unwrap_or_else(|e| panic!("{e}"));
    let c = &loaded.config;
    assert_eq!(c.distro_name, "bedrock-sigv4-demo");
    assert_eq!(
        c.apis.as_deref(),
        Some(&["inference".to_string(), "models".to_string()][..])
    );
    let p = &c.inference_providers()[0];
    assert_eq!(
        (p.provider_id.as_str(), p.provider_type.as_str()),
        ("bedrock-inference", "remote::bedrock")
    );
    assert_eq!(
        p.config,
        json!({"region_name": "us-west-2", "aws_role_arn": null, "aws_web_identity_token_file": null,
               "aws_role_session_name": "ogx-bedrock-demo", "session_ttl": 3600})
    );
    assert_eq!(
        c.storage.backends["kv_default"],
        Backend::KvSqlite {
            db_path: "./.ogx/kvstore.db".into(),
            namespace: None
        }
    );
    assert_eq!(
        c.storage.backends["sql_default"],
        Backend::SqlSqlite {
            db_path: "./.ogx/sql_store.db".into(),
            pool_pre_ping: true
        }
    );
    let stores = &c.storage.stores;
    assert_eq!(stores.metadata.as_ref().unwrap().namespace, "registry");
    let inference = stores.inference.as_ref().unwrap();
    assert_eq!(
        (
            inference.table_name.as_str(),
            inference.max_write_queue_size,
            inference.num_writers
        ),
        ("inference_store", 10000, 4)
    );
    assert_eq!(
        stores.conversations.as_ref().unwrap().table_name,
        "openai_conversations",
        "OGX's default"
    );
    assert_eq!(
        stores.connectors,
        Some(StoreRef::Sql(SqlStoreRef {
            backend: "sql_default".into(),
            table_name: "connectors".into()
        })),
        "OGX 1.5.0's default"
    );
    assert_eq!(stores.responses, None);
    let m = &c.models[0];
    assert_eq!(m.identifier(), "bedrock-inference/openai.gpt-oss-20b-1:0");
    assert_eq!(
        (m.provider_model_id.as_str(), m.model_type.as_str()),
        ("openai.gpt-oss-20b-1:0", "llm")
    );
    assert_eq!(c.server, ServerConfig::default());
    // Its `prompts: {namespace, backend}` is the layout before OGX 1.5.0: kept, and said so.
    assert_eq!(loaded.warnings.len(), 1, "{:?}", loaded.warnings);
    assert!(loaded.warnings[0].contains("earlier key-value layout"));
}

#[test]
fn the_seed_config_takes_its_environment() {
    let env = [
        ("AWS_DEFAULT_REGION", "eu-central-1"),
        ("AWS_SESSION_TTL", "900"),
        ("AWS_ROLE_ARN", "arn:aws:iam::1:role/r"),
    ];
    let loaded = load(&shipped("seed-bedrock-sigv4.yaml"), &with_env(&env)).unwrap();
    let config = &loaded.config.inference_providers()[0].config;
    assert_eq!(config["region_name"], "eu-central-1");
    assert_eq!(config["session_ttl"], 900);
    assert_eq!(config["aws_role_arn"], "arn:aws:iam::1:role/r");
}

#[test]
fn the_example_config_loads_with_an_empty_environment() {
    let loaded = load(&shipped("example.yaml"), &|_| None).unwrap_or_else(|e| panic!("{e}"));
    let c = &loaded.config;
    assert_eq!(c.distro_name, "ogx-example");
    let p = &c.inference_providers()[0];
    assert_eq!(p.provider_type, "remote::vllm");
    assert_eq!(
        p.config,
        json!({"base_url": "http://127.0.0.1:8000/v1", "max_tokens": 4096, "api_token": null})
    );
    assert_eq!(c.models[0].identifier(), "vllm/llama-3.1-8b");
    assert_eq!(
        c.models[0].provider_model_id,
        "meta-llama/Llama-3.1-8B-Instruct"
    );
    assert_eq!(c.server.port, 8321);
    let responses = c
        .responses
        .as_ref()
        .expect("the example enables the Responses API");
    assert_eq!(
        (
            responses.provider_id.as_str(),
            responses.store.backend.as_str(),
            responses.store.table_name.as_str()
        ),
        ("builtin", "sql_default", "responses")
    );
    assert!(loaded.warnings.is_empty(), "{:?}", loaded.warnings);
    let upstream = load(
        &shipped("example.yaml"),
        &with_env(&[("OGX_EXAMPLE_UPSTREAM", "http://gpu:9000/v1")]),
    )
    .unwrap();
    assert_eq!(
        upstream.config.inference_providers()[0].config["base_url"],
        "http://gpu:9000/v1"
    );
}

#[test]
fn missing_file() {
    let e = load(Path::new("/nonexistent/ogx.yaml"), &|_| None)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("'/nonexistent/ogx.yaml' does not exist") && e.contains("Check the path"),
        "{e}"
    );
}

#[test]
fn unreadable_file_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let e = load(dir.path(), &|_| None).unwrap_err().to_string();
    assert!(
        e.contains("cannot read config file") && e.contains(&dir.path().display().to_string()),
        "{e}"
    );
}

#[test]
fn broken_yaml_names_the_line_and_column() {
    let e = err("distro_name: t\nproviders:\n  inference: [\n");
    assert!(
        e.starts_with(&format!("config file '{PATH}' is not valid YAML at line ")),
        "{e}"
    );
    assert!(
        e.contains("column") && e.contains("indent with spaces"),
        "{e}"
    );
}

#[test]
fn an_empty_file_is_refused() {
    assert!(err("").contains("the config is empty"));
}

#[test]
fn missing_distro_name() {
    let e = err("providers: {}\n");
    assert_eq!(
        e,
        format!(
            "config file '{PATH}', key 'distro_name': Either 'distro_name' or 'image_name' must be provided. Add \
             `distro_name: <a name for this stack>` at the top level."
        )
    );
}

#[test]
fn image_name_stands_in_for_distro_name_and_numbers_become_text() {
    let c = ok("image_name: 42\nproviders: {}\n");
    assert_eq!(c.config.distro_name, "42");
    assert_eq!(
        c.warnings,
        ["The 'image_name' field is deprecated. Please use 'distro_name' instead."]
    );
    assert_eq!(
        ok("distro_name: true\nproviders: {}\n").config.distro_name,
        "True"
    );
}

#[test]
fn missing_providers() {
    assert!(err("distro_name: t\n").contains("key 'providers': is required but missing"));
}

#[test]
fn bad_api_in_apis_and_in_providers() {
    let e = err("distro_name: t\napis: [inference, telemetry]\nproviders: {}\n");
    assert!(
        e.contains(
            "key 'apis[1]': API 'telemetry' does not exist. Use one of: providers, inference"
        ),
        "{e}"
    );
    let e = err("distro_name: t\nproviders:\n  agents: []\n");
    assert!(
        e.contains("key 'providers.agents': API 'agents' does not exist."),
        "{e}"
    );
}

#[test]
fn routing_table_apis_cannot_have_providers() {
    let e = err("distro_name: t\nproviders:\n  models: []\n");
    assert!(
        e.contains("Provider for `models` is automatically provided and cannot be overridden"),
        "{e}"
    );
}

#[test]
fn module_providers_are_refused_with_the_plugin_alternative() {
    let e = err(&format!("{MINIMAL}      module: ramalama_stack\n"));
    assert!(e.contains("key 'providers.inference[0].module': external Python providers (module: ramalama_stack)"), "{e}");
    assert!(e.contains("WebAssembly plugins"), "{e}");
    // A disabled provider's module is not looked at.
    ok(
        "distro_name: t\nproviders:\n  inference:\n    - provider_id: null\n      provider_type: x\n      module: m\n",
    );
}

#[test]
fn duplicate_provider_ids() {
    let e = err(&format!(
        "{MINIMAL}    - provider_id: a\n      provider_type: remote::vllm\n"
    ));
    assert!(e.contains("key 'providers.inference[1].provider_id': provider_id 'a' is already used by providers.inference[0]"), "{e}");
}

#[test]
fn provider_entries_need_provider_id_and_type() {
    assert!(
        err("distro_name: t\nproviders:\n  inference:\n    - provider_type: x\n")
            .contains("providers.inference[0].provider_id': is required")
    );
    assert!(
        err("distro_name: t\nproviders:\n  inference:\n    - provider_id: a\n")
            .contains("providers.inference[0].provider_type': is required")
    );
}

#[test]
fn disabled_providers_leave_the_typed_view_and_the_document() {
    let yaml = "distro_name: t\nproviders:\n  inference:\n    - provider_id: ${env.CEREBRAS_API_KEY:+cerebras}\n      provider_type: remote::cerebras\n    - provider_id: ${env.OFF:=__disabled__}\n      provider_type: remote::x\n      config:\n        api_key: ${env.NOT_EXPANDED}\n    - provider_id: a\n      provider_type: remote::openai\n";
    let c = ok(yaml);
    assert_eq!(c.config.inference_providers().len(), 1);
    assert_eq!(
        c.document["providers"]["inference"],
        json!([{"provider_id": "a", "provider_type": "remote::openai"}])
    );
}

#[test]
fn missing_variable_names_file_path_and_fix() {
    let e = err(&format!(
        "{MINIMAL}      config:\n        api_key: ${{env.OPENAI_API_KEY}}\n"
    ));
    assert_eq!(
        e,
        format!(
            "config file '{PATH}': Environment variable 'OPENAI_API_KEY' not set or empty at \
             providers.inference[0].config.api_key. Use ${{env.OPENAI_API_KEY:=default_value}} to provide a default \
             value, ${{env.OPENAI_API_KEY:+value_if_set}} to make the field conditional, or ensure the environment \
             variable is set."
        )
    );
}

const STORAGE: &str = "storage:\n  backends:\n    kv_default: {type: kv_sqlite, db_path: ./kv.db}\n    sql_default: {type: sql_sqlite, db_path: ./sql.db}\n";

#[test]
fn unknown_backend() {
    let e = err(&format!(
        "{MINIMAL}{STORAGE}  stores:\n    inference: {{backend: sqlx, table_name: t}}\n"
    ));
    assert!(
        e.contains(
            "key 'storage.stores.inference': storage.stores.inference references unknown backend 'sqlx'. Available \
             backends: ['kv_default', 'sql_default']. Add a backend named 'sqlx'"
        ),
        "{e}"
    );
    // Default store references need the default backend names.
    let e = err(&format!(
        "{MINIMAL}storage:\n  backends:\n    kv: {{type: kv_sqlite, db_path: ./kv.db}}\n"
    ));
    assert!(
        e.contains("storage.stores.metadata references unknown backend 'kv_default'"),
        "{e}"
    );
}

#[test]
fn wrong_backend_family() {
    let e = err(&format!(
        "{MINIMAL}{STORAGE}  stores:\n    inference: {{backend: kv_default, table_name: t}}\n"
    ));
    assert!(
        e.contains(
            "storage.stores.inference references backend 'kv_default' of type 'kv_sqlite', but a backend of type \
             sql_* is required."
        ),
        "{e}"
    );
    let e = err(&format!(
        "{MINIMAL}{STORAGE}  stores:\n    metadata: {{backend: sql_default, namespace: r}}\n"
    ));
    assert!(
        e.contains("of type 'sql_sqlite', but a backend of type kv_* is required."),
        "{e}"
    );
}

#[test]
fn unknown_backend_type_and_missing_fields() {
    let e = err(&format!(
        "{MINIMAL}storage:\n  backends:\n    kv_default: {{type: kv_etcd}}\n"
    ));
    assert!(e.contains("key 'storage.backends.kv_default.type': unknown storage backend type 'kv_etcd'. Use one of: kv_redis"), "{e}");
    let e = err(&format!(
        "{MINIMAL}storage:\n  backends:\n    kv_default: {{type: kv_postgres}}\n"
    ));
    assert!(
        e.contains("key 'storage.backends.kv_default.user': is required but missing"),
        "{e}"
    );
}

#[test]
fn stores_in_ogx_1_5_layout_and_the_earlier_kv_layout() {
    let c = ok(&format!(
        "{MINIMAL}{STORAGE}  stores:\n    prompts: {{table_name: prompts, backend: sql_default}}\n    connectors: {{table_name: connectors, backend: sql_default}}\n    inference: {{table_name: inference_store, backend: sql_default, enabled: false}}\n    vector_stores: {{table_name: vs, backend: sql_default}}\n"
    ));
    let stores = &c.config.storage.stores;
    assert!(matches!(&stores.prompts, Some(StoreRef::Sql(r)) if r.table_name == "prompts"));
    assert!(!stores.inference.as_ref().unwrap().enabled);
    assert_eq!(stores.vector_stores.as_ref().unwrap().table_name, "vs");
    assert_eq!(
        c.warnings,
        [
            "'storage.stores.connectors' is accepted but not used: ogx does not serve connectors yet",
            "'storage.stores.vector_stores' is accepted but not used: ogx does not serve vector stores yet",
        ]
    );
    // The earlier layout: kept as a KV namespace, with a warning saying what OGX 1.5.0 does.
    let c = ok(&format!(
        "{MINIMAL}{STORAGE}  stores:\n    prompts: {{namespace: prompts, backend: kv_default}}\n"
    ));
    assert!(
        matches!(&c.config.storage.stores.prompts, Some(StoreRef::Kv(r)) if r.namespace == "prompts")
    );
    assert!(
        c.warnings[0].contains("earlier key-value layout"),
        "{:?}",
        c.warnings
    );
    // Wrong shapes name the key and the fix.
    let cases: &[(&str, &str)] = &[
        (
            "prompts: {backend: sql_default}",
            "key 'storage.stores.prompts.table_name': is required but missing. Add `table_name: prompts`",
        ),
        (
            "prompts: {table_name: prompts, backend: kv_default}",
            "storage.stores.prompts references backend 'kv_default' of type 'kv_sqlite', but a backend of type sql_* is required",
        ),
        (
            "connectors: {namespace: c, backend: sql_default}",
            "storage.stores.connectors references backend 'sql_default' of type 'sql_sqlite', but a backend of type kv_* is required",
        ),
        (
            "inference: {table_name: t, backend: sql_default, enabled: maybe}",
            "key 'storage.stores.inference.enabled': expected true or false",
        ),
        (
            "prompts: [x]",
            "key 'storage.stores.prompts': expected a store reference (a mapping)",
        ),
    ];
    for (store, expected) in cases {
        let e = err(&format!("{MINIMAL}{STORAGE}  stores:\n    {store}\n"));
        assert!(e.contains(expected), "{store}: {e}");
    }
}

#[test]
fn postgres_connection_strings() {
    let c = ok(&format!(
        "{MINIMAL}{STORAGE}    pg:\n      type: sql_postgres\n      connection_string: ${{env.PG:=postgresql://ogx:pw@db:5433/app?sslmode=require}}\n"
    ));
    let Backend::SqlPostgres(pg) = &c.config.storage.backends["pg"] else {
        panic!()
    };
    assert_eq!(
        (
            pg.host.as_str(),
            pg.port.as_str(),
            pg.db.as_str(),
            pg.user.as_str(),
            pg.password.as_deref(),
            pg.ssl_mode.as_deref()
        ),
        ("db", "5433", "app", "ogx", Some("pw"), Some("require"))
    );
    assert!(c.warnings.is_empty(), "{:?}", c.warnings);
    let e = err(&format!(
        "{MINIMAL}{STORAGE}    pg: {{type: kv_postgres, connection_string: 'postgresql://u:hunter2@h/d', host: x}}\n"
    ));
    assert!(e.contains("key 'storage.backends.pg.connection_string': connection_string cannot be combined with 'host'"), "{e}");
    let e = err(&format!(
        "{MINIMAL}{STORAGE}    pg: {{type: kv_postgres, connection_string: 'mysql://u:hunter2@h/d'}}\n"
    ));
    assert!(
        e.contains("must start with postgres:// or postgresql://"),
        "{e}"
    );
    assert!(!e.contains("hunter2"), "{e}");
}

#[test]
fn metadata_and_inference_stores_are_required() {
    let e = err(&format!(
        "{MINIMAL}{STORAGE}  stores:\n    metadata: null\n"
    ));
    assert!(
        e.contains("storage.stores.metadata must be configured with a kv_* backend"),
        "{e}"
    );
    let e = err(&format!(
        "{MINIMAL}{STORAGE}  stores:\n    inference: null\n"
    ));
    assert!(
        e.contains("storage.stores.inference must be configured in run config"),
        "{e}"
    );
}

#[test]
fn other_backend_types_parse_with_ogx_defaults() {
    let c = ok(&format!(
        "{MINIMAL}{STORAGE}    pg:\n      type: sql_postgres\n      user: ogx\n      port: ${{env.PG_PORT:=5433}}\n    r: {{type: kv_redis}}\n    m: {{type: kv_mongodb}}\n"
    ));
    let Backend::SqlPostgres(pg) = &c.config.storage.backends["pg"] else {
        panic!()
    };
    assert_eq!(
        (
            pg.host.as_str(),
            pg.port.as_str(),
            pg.db.as_str(),
            pg.pool_size,
            pg.pool_recycle
        ),
        ("localhost", "5433", "ogx", 10, 3600)
    );
    assert_eq!(
        c.config.storage.backends["r"],
        Backend::KvRedis {
            host: "localhost".into(),
            port: 6379,
            namespace: None
        }
    );
    assert!(
        matches!(&c.config.storage.backends["m"], Backend::KvMongodb(m) if m.port == 27017 && m.collection_name == "ogx_kvstore")
    );
}

#[test]
fn default_storage_is_ogx_default() {
    let c = ok(MINIMAL);
    assert_eq!(
        c.config.storage.backends["kv_default"],
        Backend::KvSqlite {
            db_path: "/home/u/.ogx/distributions/kvstore.db".into(),
            namespace: None
        }
    );
    let c = parse_with(MINIMAL, &[("SQLITE_STORE_DIR", "~/state"), ("HOME", "/h")]).unwrap();
    assert_eq!(
        c.config.storage.backends["sql_default"],
        Backend::SqlSqlite {
            db_path: "/h/state/sql_store.db".into(),
            pool_pre_ping: true
        }
    );
    let c = parse_with(MINIMAL, &[("OGX_CONFIG_DIR", "/etc/ogx/")]).unwrap();
    assert_eq!(
        c.config.storage.backends["kv_default"],
        Backend::KvSqlite {
            db_path: "/etc/ogx/distributions/kvstore.db".into(),
            namespace: None
        }
    );
}

#[test]
fn model_with_unknown_provider() {
    let e = err(&format!(
        "{MINIMAL}registered_resources:\n  models:\n    - model_id: m\n      provider_id: nope\n"
    ));
    assert_eq!(
        e,
        format!(
            "config file '{PATH}', key 'registered_resources.models[0].provider_id': Provider `nope` not found. Use \
             the provider_id of an enabled inference provider: 'a'."
        )
    );
}

#[test]
fn model_provider_resolution() {
    let two = format!("{MINIMAL}    - provider_id: b\n      provider_type: remote::vllm\n");
    let e = err(&format!(
        "{two}registered_resources:\n  models:\n    - model_id: m\n"
    ));
    assert!(e.contains("Please specify a provider_id for model m since multiple providers are available: ['a', 'b']."), "{e}");
    let c = ok(&format!(
        "{MINIMAL}registered_resources:\n  models:\n    - model_id: m\n"
    ));
    let m = &c.config.models[0];
    assert_eq!(
        (
            m.provider_id.as_str(),
            m.provider_model_id.as_str(),
            m.identifier()
        ),
        ("a", "m", "a/m".to_owned())
    );
    let c = ok(&format!(
        "{two}registered_resources:\n  models:\n    - {{model_id: b/x, provider_id: b}}\n    - {{model_id: plain, provider_id: all}}\n    - {{model_id: skipped, provider_id: null}}\n"
    ));
    let ids: Vec<String> = c.config.models.iter().map(ModelEntry::identifier).collect();
    assert_eq!(ids, ["b/x", "plain"]);
    assert_eq!(c.config.models[1].provider_id, "a");
}

#[test]
fn model_type_and_embedding_dimension() {
    let base = format!("{MINIMAL}registered_resources:\n  models:\n    - model_id: e\n");
    assert!(
        err(&format!("{base}      model_type: chat\n"))
            .contains("unknown model_type 'chat'. Use one of: llm, embedding, rerank.")
    );
    let e = err(&format!("{base}      model_type: embedding\n"));
    assert!(e.contains("key 'registered_resources.models[0].metadata': Embedding model must have an embedding dimension"), "{e}");
    let c = ok(&format!(
        "{base}      model_type: embedding\n      metadata: {{embedding_dimension: 768}}\n"
    ));
    assert_eq!(c.config.models[0].metadata["embedding_dimension"], 768);
}

#[test]
fn models_without_inference_providers_are_ignored_with_a_warning() {
    let c =
        ok("distro_name: t\nproviders: {}\nregistered_resources:\n  models:\n    - model_id: m\n");
    assert!(c.config.models.is_empty());
    assert!(
        c.warnings[0].contains("no inference provider is enabled"),
        "{:?}",
        c.warnings
    );
}

#[test]
fn server_section() {
    let c = ok(&format!(
        "{MINIMAL}server:\n  port: ${{env.PORT:=9000}}\n  host: 0.0.0.0\n  tls_certfile: c.pem\n  tls_keyfile: k.pem\n  cors: true\n  quota:\n    kvstore: {{backend: kv_default, namespace: quota}}\n"
    ));
    let s = &c.config.server;
    assert_eq!(
        (s.port, s.host.as_deref(), s.workers),
        (9000, Some("0.0.0.0"), 1)
    );
    assert!(s.tls_files().is_some());
    assert_eq!(s.cors, Some(CorsConfig::localhost_development()));
    assert_eq!(s.quota.as_ref().unwrap().anonymous_max_requests, 100);
    let e = err(&format!("{MINIMAL}server:\n  tls_certfile: c.pem\n"));
    assert!(e.contains("key 'server.tls_keyfile': server.tls_certfile is set but server.tls_keyfile is not; HTTPS needs both"), "{e}");
    assert!(
        err(&format!("{MINIMAL}server:\n  port: 80\n"))
            .contains("key 'server.port': 80 is out of range. Use a value from 1024 to 65535.")
    );
    // ogx serves `cors` and `quota` (OGX 1.5.0 dropped them): a value it cannot use is an error.
    let e = err(&format!(
        "{MINIMAL}server:\n  cors: {{allow_origins: ['*'], allow_credentials: true}}\n"
    ));
    assert!(
        e.contains("key 'server.cors': Cannot use wildcard origins with credentials enabled"),
        "{e}"
    );
    let e = err(&format!(
        "{MINIMAL}server:\n  quota: {{kvstore: {{backend: kv_default, namespace: q}}, period: week}}\n"
    ));
    assert!(e.contains("key 'server.quota.period'"), "{e}");
    // OGX 1.5.0's new keys: `insecure` is read, the others are warned about by name.
    let c = ok(&format!(
        "{MINIMAL}server:\n  insecure: true\n  tenancy: {{mode: disabled}}\n  workers: 4\n  hsts_max_age: 100\n  tls_config: {{ciphers: [x]}}\n"
    ));
    assert!(c.config.server.insecure);
    let named: Vec<&str> = c
        .warnings
        .iter()
        .map(|w| w.split('\'').nth(1).unwrap_or(""))
        .collect();
    assert_eq!(
        named,
        ["server.tls_config", "server.hsts_max_age", "server.workers"]
    );
    let c = ok(&format!(
        "{MINIMAL}server:\n  tenancy: {{mode: single, default_tenant_id: acme}}\n"
    ));
    assert!(c.warnings.is_empty(), "{:?}", c.warnings);
    assert_eq!(c.config.server.tenancy.as_ref().unwrap()["mode"], "single");
}

#[test]
fn plugins_section_resolves_against_the_config_directory() {
    let c = ok(&format!(
        "{MINIMAL}plugins:\n  dirs: [plugins, /opt/ogx/plugins]\n  cache_dir: ~/.cache/ogx\n  limits: {{memory_mb: 256, max_instances: 8}}\n"
    ));
    let p = &c.config.plugins;
    assert_eq!(
        p.dirs,
        [
            PathBuf::from("/srv/ogx/plugins"),
            PathBuf::from("/opt/ogx/plugins")
        ]
    );
    assert_eq!(p.cache_dir, Some(PathBuf::from("/home/u/.cache/ogx")));
    assert_eq!(
        (
            p.limits.memory_mb,
            p.limits.max_instances,
            p.limits.call_timeout_ms
        ),
        (Some(256), Some(8), None)
    );
    assert!(
        c.warnings.is_empty(),
        "plugins is ogx's own key: {:?}",
        c.warnings
    );
}

#[test]
fn unknown_and_unsupported_keys_are_warned_about_by_path() {
    let c = ok(&format!(
        "{MINIMAL}      extra: 1\ntelemetry: {{enabled: true}}\nvector_stores: {{default_provider_id: faiss}}\nconnectors: []\nserver:\n  tls: {{}}\nregistered_resources:\n  vector_dbs: []\n  models: [{{model_id: m, model_validation: true}}]\nstorage:\n  backends:\n    kv_default: {{type: kv_sqlite, db_path: ./kv.db, journal: wal}}\n    sql_default: {{type: sql_sqlite, db_path: ./sql.db}}\n"
    ));
    assert_eq!(
        c.warnings,
        [
            "unknown key 'telemetry' (ignored)",
            "'vector_stores' is not supported by ogx yet and is ignored",
            "unknown key 'providers.inference[0].extra' (ignored)",
            "unknown key 'storage.backends.kv_default.journal' (ignored)",
            "unknown key 'registered_resources.vector_dbs' (ignored)",
            "unknown key 'registered_resources.models[0].model_validation' (ignored)",
            "unknown key 'server.tls' (ignored)",
        ]
    );
}

#[test]
fn apis_and_providers_ogx_does_not_serve_are_warned_about() {
    let c = ok(&format!(
        "{MINIMAL}  vector_io:\n    - provider_id: faiss\n      provider_type: inline::faiss\napis: [inference, skills]\n"
    ));
    assert_eq!(
        c.warnings,
        [
            "'apis[1]': ogx does not serve the 'skills' API yet; it is ignored",
            "'providers.vector_io': ogx does not serve the 'vector_io' API yet; its 1 provider(s) are ignored",
        ]
    );
}

#[test]
fn api_names_are_ogx_1_5_names() {
    // Every name OGX 1.5.0's `Api` enum has is accepted in `apis`.
    let all = crate::config::schema::KNOWN_APIS.join(", ");
    let c = ok(&format!("{MINIMAL}apis: [{all}]\n"));
    assert_eq!(c.config.apis.as_ref().map(Vec::len), Some(21));
    // Absent: every API; a bare `apis:` too, with OGX's warning.
    assert_eq!(ok(MINIMAL).config.apis, None);
    let bare = ok(&format!("{MINIMAL}apis:\n"));
    assert_eq!(bare.config.apis, None);
    assert!(
        bare.warnings[0].contains("'apis' is present but empty"),
        "{:?}",
        bare.warnings
    );
    // Removed and internal names fail with the key and the fix.
    let cases: &[(&str, &[&str])] = &[
        (
            "apis: [inference, safety]\n",
            &[
                "key 'apis[1]': API 'safety' does not exist.",
                "OGX 1.0 removed the 'safety' API",
                "remove 'safety'",
            ],
        ),
        (
            "  shields: []\n",
            &[
                "key 'providers.shields': API 'shields' does not exist.",
                "remove 'shields'",
            ],
        ),
        (
            "  prompts: []\n",
            &[
                "key 'providers.prompts': the `prompts` API is built into the server and takes no providers",
                "Remove `providers.prompts`",
            ],
        ),
    ];
    for (tail, parts) in cases {
        let e = err(&format!("{MINIMAL}{tail}"));
        for part in *parts {
            assert!(e.contains(part), "{tail}: {e}");
        }
    }
    // A top-level `safety:` section is ignored with a warning, as OGX 1.5.0 ignores it.
    let c = ok(&format!("{MINIMAL}safety:\n  default_shield_id: x\n"));
    assert!(
        c.warnings[0].contains("'safety' was removed in OGX 1.0"),
        "{:?}",
        c.warnings
    );
}

#[test]
fn every_ogx_1_5_distribution_config_loads() {
    let home = [("HOME", "/home/u")];
    let with_model = [("HOME", "/home/u"), ("INFERENCE_MODEL", "m")];
    let cases: &[(&str, &[(&str, &str)])] = &[
        ("starter/config.yaml", &home),
        ("starter/run-with-postgres-store.yaml", &home),
        ("starter/run-with-postgres-uri-store.yaml", &home),
        ("open-benchmark/config.yaml", &home),
        ("oci/config.yaml", &home),
        ("watsonx/config.yaml", &home),
        ("nvidia/config.yaml", &with_model),
        ("postgres-demo/config.yaml", &with_model),
    ];
    for (file, env) in cases {
        let path = shipped(&format!("distributions/{file}"));
        let loaded = load(&path, &with_env(env)).unwrap_or_else(|e| panic!("{file}: {e}"));
        assert!(
            loaded
                .warnings
                .iter()
                .any(|w| w.contains("ogx does not serve the 'vector_io' API yet")),
            "{file}: {:?}",
            loaded.warnings
        );
        assert!(
            matches!(loaded.config.storage.stores.prompts, Some(StoreRef::Sql(_))),
            "{file}"
        );
    }
    let starter = load(
        &shipped("distributions/starter/config.yaml"),
        &with_env(&home),
    )
    .unwrap();
    let c = &starter.config;
    let served: Vec<&str> = c
        .inference_providers()
        .iter()
        .map(|p| p.provider_id.as_str())
        .collect();
    assert_eq!(
        served,
        [
            "fireworks",
            "together",
            "bedrock",
            "openai",
            "anthropic",
            "gemini",
            "groq",
            "meta",
            "sambanova",
            "sentence-transformers"
        ]
    );
    assert!(
        c.models
            .iter()
            .all(|m| m.unprefixed_alias && m.provider_model_id == "auto")
    );
    assert_eq!(c.models[0].identifier(), "claude-haiku-4-5-20251001");
    assert_eq!(c.apis.as_ref().map(Vec::len), Some(10));
    let Backend::SqlSqlite { db_path, .. } = &c.storage.backends["sql_default"] else {
        panic!()
    };
    assert_eq!(
        db_path,
        Path::new("/home/u/.ogx/distributions/starter/sql_store.db")
    );
    // With VLLM_URL the vLLM provider joins, before the always-on ones.
    let with_vllm = load(
        &shipped("distributions/starter/config.yaml"),
        &with_env(&[("HOME", "/home/u"), ("VLLM_URL", "http://127.0.0.1:9/v1")]),
    )
    .unwrap();
    assert_eq!(
        with_vllm.config.inference_providers()[0].provider_id,
        "vllm"
    );
    assert_eq!(
        with_vllm.config.inference_providers()[0].network,
        crate::config::network::NetworkSettings::default(),
        "tls.verify: true is the default"
    );
}
