//! The file, `HELPLINE_CONFIG`, and `HELPLINE_…` overrides.

use super::{as_value, load_text, temp_file};
use crate::{load, Assignment, Config, ConfigError, EnvProblem, MapEnv, Secret};

#[test]
fn no_file_and_no_environment_gives_the_defaults() {
    let config = load(None, &MapEnv::new()).unwrap();
    assert_eq!(as_value(&config), as_value(&Config::default()));
}

#[test]
fn the_file_comes_from_the_argument_else_helpline_config() {
    let from_env = temp_file("[server]\nlisten = \"0.0.0.0:9000\"\n");
    let from_arg = temp_file("[server]\nlisten = \"0.0.0.0:9001\"\n");
    let env = MapEnv::new().with("HELPLINE_CONFIG", from_env.to_str().unwrap());
    assert_eq!(load(None, &env).unwrap().server.listen, "0.0.0.0:9000");
    assert_eq!(
        load(Some(&from_arg), &env).unwrap().server.listen,
        "0.0.0.0:9001"
    );
}

#[test]
fn a_missing_file_is_an_io_error_naming_it() {
    let path = std::env::temp_dir().join("helpline-config-tests-no-such-file.toml");
    let error = load(Some(&path), &MapEnv::new()).unwrap_err();
    assert!(matches!(error, ConfigError::Io { .. }));
    assert!(
        error
            .to_string()
            .contains("helpline-config-tests-no-such-file.toml"),
        "{error}"
    );
}

#[test]
fn a_string_override_beats_the_file() {
    let config = load_text(
        "[server]\nlisten = \"0.0.0.0:9000\"\n",
        &[("HELPLINE_SERVER__LISTEN", "127.0.0.1:7000")],
    )
    .unwrap();
    assert_eq!(config.server.listen, "127.0.0.1:7000");
}

#[test]
fn string_fields_take_the_text_verbatim() {
    let config = load_text(
        "",
        &[
            ("HELPLINE_REDIS__KEY_PREFIX", "true"),
            ("HELPLINE_CHANNELS__TELEGRAM__TOKEN", "123:abc"),
            ("HELPLINE_REDIS__URL", "redis://u:p@10.0.0.5:6379"),
        ],
    )
    .unwrap();
    assert_eq!(config.redis.key_prefix, "true");
    assert_eq!(config.channels.telegram.token, Some(Secret::new("123:abc")));
    assert_eq!(config.redis.url.expose(), "redis://u:p@10.0.0.5:6379");
}

#[test]
fn integer_and_enum_overrides() {
    let config = load_text(
        "[routing]\noffer_timeout_s = 45\n",
        &[
            ("HELPLINE_ROUTING__OFFER_TIMEOUT_S", " 60 "),
            ("HELPLINE_ROUTING__ASSIGNMENT", "auto"),
        ],
    )
    .unwrap();
    assert_eq!(config.routing.offer_timeout_s, 60);
    assert_eq!(config.routing.assignment, Assignment::Auto);
}

#[test]
fn a_bad_integer_names_the_variable_and_the_type() {
    let error = load_text("", &[("HELPLINE_ROUTING__OFFER_TIMEOUT_S", "30s")]).unwrap_err();
    let text = error.to_string();
    assert!(text.contains("HELPLINE_ROUTING__OFFER_TIMEOUT_S"), "{text}");
    assert!(text.contains("routing.offer_timeout_s"), "{text}");
    assert!(
        text.contains("whole number") && text.contains("`30s`"),
        "{text}"
    );
}

#[test]
fn a_negative_integer_names_the_key() {
    let error = load_text("", &[("HELPLINE_ROUTING__MAX_CAPACITY", "-1")]).unwrap_err();
    let text = error.to_string();
    assert!(
        text.contains("routing.max_capacity (HELPLINE_ROUTING__MAX_CAPACITY)"),
        "{text}"
    );
}

#[test]
fn list_overrides_take_both_forms() {
    let comma = load_text("", &[("HELPLINE_ROUTING__LANGUAGES", "ro,ru")]).unwrap();
    let array = load_text("", &[("HELPLINE_ROUTING__LANGUAGES", r#"["ro", "ru"]"#)]).unwrap();
    assert_eq!(comma.routing.languages, ["ro", "ru"]);
    assert_eq!(array.routing.languages, ["ro", "ru"]);
    let origins = load_text(
        "",
        &[(
            "HELPLINE_SERVER__ALLOWED_ORIGINS",
            "https://a.example.org, https://b.example.org",
        )],
    )
    .unwrap();
    assert_eq!(
        origins.server.allowed_origins,
        ["https://a.example.org", "https://b.example.org"]
    );
}

#[test]
fn option_overrides_set_and_unset() {
    let file = "[channels.sms]\naccount_sid = \"AC1\"\n";
    let set = load_text(file, &[("HELPLINE_CHANNELS__SMS__FROM", "+37360000000")]).unwrap();
    assert_eq!(set.channels.sms.from.as_deref(), Some("+37360000000"));
    assert_eq!(set.channels.sms.account_sid.as_deref(), Some("AC1"));
    let unset = load_text(file, &[("HELPLINE_CHANNELS__SMS__ACCOUNT_SID", "")]).unwrap();
    assert_eq!(unset.channels.sms.account_sid, None);
    let provider = load_text(
        "",
        &[
            ("HELPLINE_CHANNELS__SMS__PROVIDER", "twilio"),
            ("HELPLINE_CHANNELS__SMS__ACCOUNT_SID", "AC1"),
            ("HELPLINE_CHANNELS__SMS__AUTH_TOKEN", "t"),
            ("HELPLINE_CHANNELS__SMS__FROM", "+37360000000"),
        ],
    )
    .unwrap();
    assert_eq!(
        provider.channels.sms.provider,
        Some(crate::SmsProvider::Twilio)
    );
}

#[test]
fn variables_that_are_not_overrides_are_ignored() {
    let config = load_text(
        "",
        &[
            ("HELPLINE_LOG", "debug"),
            ("PATH", "/bin"),
            ("HELPLINE", "x"),
        ],
    )
    .unwrap();
    assert_eq!(as_value(&config), as_value(&Config::default()));
}

#[test]
fn an_unknown_variable_is_an_error_with_a_suggestion() {
    let error = load_text("", &[("HELPLINE_SERVER__LISTN", "0.0.0.0:1")]).unwrap_err();
    let ConfigError::Env(problems) = &error else {
        panic!("{error:?}")
    };
    assert_eq!(
        problems,
        &[EnvProblem::Unknown {
            var: "HELPLINE_SERVER__LISTN".into(),
            suggestion: Some("HELPLINE_SERVER__LISTEN".into()),
        }]
    );
    assert!(
        error
            .to_string()
            .contains("did you mean HELPLINE_SERVER__LISTEN?"),
        "{error}"
    );
}

#[test]
fn every_environment_problem_is_reported() {
    let error = load_text(
        "",
        &[
            ("HELPLINE_NOPE__NOTHING", "1"),
            ("HELPLINE_CHANNELS__TELEGRAM", "x"),
            ("HELPLINE_WEBCHAT__BUFFER_BYTES", "big"),
        ],
    )
    .unwrap_err();
    let text = error.to_string();
    assert_eq!(text.lines().count(), 3, "{text}");
    assert!(
        text.contains("HELPLINE_NOPE__NOTHING names no config key"),
        "{text}"
    );
    assert!(
        text.contains("HELPLINE_CHANNELS__TELEGRAM names a section"),
        "{text}"
    );
    assert!(text.contains("HELPLINE_WEBCHAT__BUFFER_BYTES"), "{text}");
}

#[test]
fn an_unknown_file_key_names_the_file_and_the_key() {
    let error = load_text(
        "[server]\nlistn = \"0.0.0.0:1\"\n[routing]\ncolour = 1\n",
        &[],
    )
    .unwrap_err();
    let text = error.to_string();
    assert!(matches!(error, ConfigError::Parse { .. }));
    assert_eq!(text.lines().count(), 2, "{text}");
    assert!(
        text.contains("config file test.toml: unknown key `server.listn`"),
        "{text}"
    );
    assert!(text.contains("did you mean `server.listen`?"), "{text}");
    assert!(text.contains("unknown key `routing.colour`"), "{text}");
}

#[test]
fn a_key_outside_its_section_is_pointed_to_it() {
    let text = load_text("listen = \"0.0.0.0:1\"\n", &[])
        .unwrap_err()
        .to_string();
    assert!(
        text.contains("unknown key `listen`; did you mean `server.listen`?"),
        "{text}"
    );
}

#[test]
fn a_value_of_the_wrong_type_names_the_key() {
    let text = load_text(
        "[routing]\noffer_timeout_s = \"30\"\nlanguages = \"ro\"\n[server]\nlisten = 8080\n",
        &[],
    )
    .unwrap_err()
    .to_string();
    assert!(
        text.contains("`routing.offer_timeout_s` must be a whole number, not string"),
        "{text}"
    );
    assert!(
        text.contains("`routing.languages` must be a list of strings"),
        "{text}"
    );
    assert!(
        text.contains("`server.listen` must be a string in quotes, not integer"),
        "{text}"
    );
    let text = load_text("server = 1\n", &[]).unwrap_err().to_string();
    assert!(text.contains("`server` is a section"), "{text}");
}

#[test]
fn a_syntax_error_gives_the_line() {
    let text = load_text("[server]\n\nlisten = 127.0.0.1\n", &[])
        .unwrap_err()
        .to_string();
    assert!(
        text.starts_with("config file test.toml: line 3, column"),
        "{text}"
    );
    assert_eq!(text.lines().count(), 1, "{text}");
}

#[test]
fn a_bad_enum_value_names_the_key() {
    let text = load_text("[routing]\nassignment = \"ofer\"\n", &[])
        .unwrap_err()
        .to_string();
    assert!(
        text.contains("routing.assignment (HELPLINE_ROUTING__ASSIGNMENT)"),
        "{text}"
    );
    assert!(
        text.contains("`ofer`") && text.contains("`offer`"),
        "{text}"
    );
}

#[test]
fn type_errors_and_rule_errors_are_reported_together() {
    let text = load_text(
        "[routing]\nassignment = \"ofer\"\n\
         [channels.sms]\nprovider = \"nexmo\"\n\
         [server]\nlisten = \"x\"\n",
        &[],
    )
    .unwrap_err()
    .to_string();
    assert_eq!(text.lines().count(), 3, "{text}");
    assert!(
        text.contains("routing.assignment (HELPLINE_ROUTING__ASSIGNMENT): unknown variant `ofer`"),
        "{text}"
    );
    assert!(
        text.contains("channels.sms.provider (HELPLINE_CHANNELS__SMS__PROVIDER)"),
        "{text}"
    );
    assert!(
        text.contains("server.listen (HELPLINE_SERVER__LISTEN): `x`"),
        "{text}"
    );
}
