//! The layers in order, defaults, bad values, and redaction.

use super::*;
use std::collections::HashMap;

fn env(vars: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
    let vars: HashMap<String, String> = vars
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    move |k| vars.get(k).cloned()
}

#[test]
fn defaults_serve_sqlite_on_localhost_8080() {
    let config = ConfigLayer::default().resolve().expect("defaults resolve");
    assert_eq!(config.listen.to_string(), "127.0.0.1:8080");
    assert_eq!(config.database_url.as_str(), "sqlite://data/coplan.db");
    assert_eq!(config.base_url, "http://127.0.0.1:8080/fhir");
    assert_eq!(config.max_body_bytes, 4 * 1024 * 1024);
    assert_eq!(config.offline_access_days, 90);
    assert_eq!(config.log_format, LogFormat::Text);
}

#[test]
fn each_layer_overrides_the_one_below() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("coplan.toml");
    std::fs::write(
        &file,
        "listen = \"127.0.0.1:9000\"\nmax_body_bytes = 2048\nlog_filter = \"debug\"\n",
    )
    .expect("write");
    let no_env = env(&[]);
    let with_env = env(&[
        ("COPLAN_LISTEN", "127.0.0.1:9001"),
        ("COPLAN_LOG_FORMAT", "json"),
        ("COPLAN_MAX_PAGE_SIZE", "500"),
        (
            "COPLAN_TEST_POSTGRES_URL",
            "other programs' variables are not settings",
        ),
    ]);
    let mut flags = Flags::default();

    // Built-in defaults.
    let config = load(&flags, &no_env).expect("defaults");
    assert_eq!(config.listen.to_string(), "127.0.0.1:8080");

    // < the file.
    flags.config = Some(file.clone());
    let config = load(&flags, &no_env).expect("file");
    assert_eq!(config.listen.to_string(), "127.0.0.1:9000");
    assert_eq!(config.max_body_bytes, 2048);
    assert_eq!(config.base_url, "http://127.0.0.1:9000/fhir");

    // < the environment.
    let config = load(&flags, &with_env).expect("env");
    assert_eq!(config.listen.to_string(), "127.0.0.1:9001");
    assert_eq!(config.log_format, LogFormat::Json);
    assert_eq!(config.max_page_size, 500);
    assert_eq!(config.max_body_bytes, 2048, "the file's value stays");
    assert_eq!(config.log_filter, "debug");

    // < the flags.
    flags.listen = Some("127.0.0.1:9002".into());
    flags.insecure_no_auth = true;
    let config = load(&flags, &with_env).expect("flags");
    assert_eq!(config.listen.to_string(), "127.0.0.1:9002");
    assert!(config.insecure_no_auth);
    assert_eq!(
        config.log_format,
        LogFormat::Json,
        "a flag not given leaves it"
    );
    flags.log_json = true;
    let config = load(&flags, &no_env).expect("flags");
    assert_eq!(config.log_format, LogFormat::Json);

    // An explicit file that is missing is an error; ./coplan.toml is optional.
    flags.config = Some(dir.path().join("missing.toml"));
    assert!(load(&flags, &no_env)
        .unwrap_err()
        .starts_with("cannot read"));
}

#[test]
fn environment_values_are_text_read_as_the_setting_needs() {
    let config = ConfigLayer::from_env(env(&[
        ("COPLAN_LOG", "coplan=debug"),
        ("COPLAN_INSECURE_NO_AUTH", "yes"),
        ("COPLAN_JWKS_ALLOW_HTTP", ""),
        ("COPLAN_PRACTITIONERS_SEE_ALL_PATIENTS", "1"),
        (
            "COPLAN_ALLOWED_ORIGINS",
            "https://a.example, https://b.example,",
        ),
        ("COPLAN_OPERATOR", "1234"),
        ("COPLAN_TIMEZONE", "+02:00"),
        ("COPLAN_KEY_RELOAD_SECONDS", "0"),
    ]))
    .resolve()
    .expect("resolves");
    assert_eq!(config.log_filter, "coplan=debug");
    assert!(config.insecure_no_auth);
    assert!(!config.jwks_allow_http);
    assert!(config.practitioners_see_all_patients);
    assert_eq!(
        config.allowed_origins,
        ["https://a.example", "https://b.example"]
    );
    assert_eq!(config.operator.as_deref(), Some("1234"));
    assert_eq!(config.tz_offset_seconds, 7200);
    assert_eq!(config.key_reload_seconds, 1, "clamped to at least a second");
}

#[test]
fn test_layers_set_settings_by_name() {
    let config = ConfigLayer::default()
        .set("max_body_bytes", 4096)
        .set("jwks_allow_http", true)
        .set("allowed_origins", ["https://portal.example.org"])
        .overridden_by(ConfigLayer::default().set("max_body_bytes", 1024))
        .resolve()
        .expect("resolves");
    assert_eq!(config.max_body_bytes, 1024);
    assert!(config.jwks_allow_http);
    assert_eq!(config.allowed_origins, ["https://portal.example.org"]);
}

#[test]
fn timezones_are_offsets() {
    use super::parse::offset;
    assert_eq!(offset("UTC"), Ok(0));
    assert_eq!(offset("+02:00"), Ok(7200));
    assert_eq!(offset("-05:30"), Ok(-19800));
    assert!(offset("Europe/Paris").is_err());
    assert!(offset("+25:00").is_err());
}

#[test]
fn bad_values_are_reported_not_defaulted() {
    assert!(ConfigLayer::from_toml("listen = ").is_err());
    let wrong_kind = ConfigLayer::from_toml("listen = 5").expect("toml");
    assert!(wrong_kind.resolve().is_err());
    let unknown = ConfigLayer::from_toml("no_such_key = 1").expect("toml");
    assert!(unknown.resolve().unwrap_err().contains("no_such_key"));
    let not_a_number = ConfigLayer::from_env(env(&[("COPLAN_MAX_BODY_BYTES", "lots")]));
    let err = not_a_number.resolve().unwrap_err();
    assert!(err.contains("COPLAN_MAX_BODY_BYTES"), "{err}");
    let bad_listen = ConfigLayer::default().set("listen", "localhost");
    let err = bad_listen.resolve().unwrap_err();
    assert!(err.contains("listen address must look like"), "{err}");
    let bad_db = ConfigLayer::default().set("database_url", "mysql://x");
    assert!(bad_db.resolve().is_err());
    let bad_flag = ConfigLayer::from_flags(&Flags {
        timezone: Some("Mars".into()),
        ..Flags::default()
    });
    let err = bad_flag.resolve().unwrap_err();
    assert!(err.contains("--timezone"), "{err}");
    let days = ConfigLayer::default().set("offline_access_days", 0);
    assert_eq!(
        days.resolve().unwrap_err(),
        "offline_access_days must be between 1 and 365, got 0"
    );
}

#[test]
fn debug_output_redacts_database_passwords() {
    let config = ConfigLayer::default()
        .set("database_url", "postgres://coplan:s3cret@db.example/coplan")
        .resolve()
        .expect("resolves");
    let shown = format!("{config:?}");
    assert!(!shown.contains("s3cret"), "{shown}");
    assert!(
        shown.contains("postgres://coplan:***@db.example/coplan"),
        "{shown}"
    );
    assert_eq!(
        config.database_url.to_string(),
        "postgres://coplan:***@db.example/coplan"
    );
    assert_eq!(
        config.database_url.as_str(),
        "postgres://coplan:s3cret@db.example/coplan"
    );
    let refused = ConfigLayer::default()
        .set("database_url", "mysql://root:s3cret@db.example/coplan")
        .resolve()
        .unwrap_err();
    assert!(!refused.contains("s3cret"), "{refused}");
    assert_eq!(
        redact_url("postgres://postgres@127.0.0.1/test"),
        "postgres://postgres@127.0.0.1/test"
    );
}

#[test]
fn limits_have_defaults_and_ranges() {
    let config = ConfigLayer::default().resolve().expect("defaults");
    assert_eq!(config.max_json_depth, 64);
    assert_eq!(config.max_chain_depth, 8);
    assert_eq!(config.sign_in_requests_per_second, 2);
    assert_eq!(config.max_connections, 10_000);
    assert_eq!(config.max_connections_per_address, 256);
    assert_eq!(config.max_connections_per_ipv6_site, 1_024);
    assert_eq!(config.response_write_timeout_seconds, 60);
    assert_eq!(config.response_write_min_bytes, 65_536);
    assert_eq!(config.sign_in_account_interval_seconds, 10);
    assert_eq!(config.sign_in_account_burst, 10);
    assert_eq!(config.current_cache_mib, 64);
    let from_env = ConfigLayer::from_env(env(&[
        ("COPLAN_MAX_QUERY_PARAMS", "20"),
        ("COPLAN_CURRENT_CACHE_MIB", "8"),
        ("COPLAN_HEADER_READ_TIMEOUT_SECONDS", "3"),
        ("COPLAN_API_REQUESTS_PER_SECOND", "0"),
        ("COPLAN_API_BURST", "0"),
    ]))
    .resolve()
    .expect("resolves");
    assert_eq!(from_env.max_query_params, 20);
    assert_eq!(from_env.current_cache_mib, 8);
    assert_eq!(from_env.current_cache_bytes(), 8 * 1024 * 1024);
    assert_eq!(from_env.header_read_timeout_seconds, 3);
    assert_eq!(from_env.api_requests_per_second, 0, "0 turns the limit off");
    for (name, value, message) in [
        (
            "max_json_depth",
            200,
            "max_json_depth must be between 8 and 100, got 200",
        ),
        (
            "max_chain_depth",
            0,
            "max_chain_depth must be between 1 and 8, got 0",
        ),
        (
            "current_cache_mib",
            0,
            "current_cache_mib must be between 1 and 65536, got 0",
        ),
        (
            "max_body_bytes",
            10,
            "max_body_bytes must be between 1024 and 1073741824, got 10",
        ),
        (
            "sign_in_burst",
            0,
            "sign_in_burst must be at least 1 while sign_in_requests_per_second is set",
        ),
        (
            "max_connections",
            0,
            "max_connections must be between 1 and 1000000, got 0",
        ),
        (
            "max_connections_per_address",
            0,
            "max_connections_per_address must be between 1 and 1000000, got 0",
        ),
        (
            "response_write_timeout_seconds",
            0,
            "response_write_timeout_seconds must be between 1 and 3600, got 0",
        ),
        (
            "response_write_min_bytes",
            0,
            "response_write_min_bytes must be between 1 and 16777216, got 0",
        ),
        (
            "max_connections_per_address",
            2_000,
            "max_connections_per_ipv6_site (1024) must be at least max_connections_per_address \
             (2000): one IPv6 address (a reverse proxy's, say) counts against its /48 too",
        ),
        (
            "sign_in_account_interval_seconds",
            3601,
            "sign_in_account_interval_seconds must be between 0 and 3600, got 3601",
        ),
        (
            "sign_in_account_burst",
            0,
            "sign_in_account_burst must be at least 1 while sign_in_account_interval_seconds is set",
        ),
    ] {
        let err = ConfigLayer::default()
            .set(name, value)
            .resolve()
            .unwrap_err();
        assert_eq!(err, message);
    }
}
