//! Tests of `providers::config`.
use super::*;

#[test]
fn secrets_are_redacted_and_resolved() {
    let s = Secret::new("hunter2");
    assert_eq!(format!("{s:?}"), "<redacted>");
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("s");
    std::fs::write(&f, "from-file\n").unwrap();
    assert_eq!(
        resolve_secret(&None, &Some(f.clone()), "k")
            .unwrap()
            .unwrap()
            .expose(),
        "from-file"
    );
    assert!(
        resolve_secret(&Some(s.clone()), &Some(f), "k")
            .unwrap_err()
            .contains("both")
    );
    assert!(
        require_secret(&None, &None, "x.y")
            .unwrap_err()
            .contains("x.y")
    );
    let empty = dir.path().join("e");
    std::fs::write(&empty, "\n").unwrap();
    assert!(resolve_secret(&None, &Some(empty), "k").is_err());
    assert!(resolve_secret(&None, &Some(dir.path().join("missing")), "k").is_err());
}

#[test]
fn sections_parse_from_toml() {
    let text = r#"
        [enfuce]
        webhook_user = "u"
        webhook_password = "p"
        callback_hosts = ["id.enfuce.com"]
        [treezor]
        base_url = "https://t.example"
        client_id = "123"
        client_secret = "s"
        webhook_secret = "w"
        on_expiry = "fallback"
    "#;
    let c: ProvidersConfig = toml::from_str(text).unwrap();
    let e = c.enfuce.unwrap();
    assert_eq!(
        (e.window_secs, e.result_margin_secs, e.callback_auth),
        (150, 10, CallAuth::Basic)
    );
    assert!(!format!("{e:?}").contains("\"p\""));
    assert_eq!(c.treezor.unwrap().on_expiry, TreezorOnExpiry::Fallback);
    assert!(c.adyen.is_none() && c.paysafe.is_none());
    assert!(toml::from_str::<ProvidersConfig>("[enfuce]\nwebhook_usr = \"u\"").is_err());
}

#[test]
fn windows_and_paths() {
    assert!(check_window("e", 150, 10, Some(150)).is_ok());
    assert!(check_window("e", 151, 10, Some(150)).is_err());
    assert!(check_window("e", 10, 10, None).is_err());
    assert!(check_path("p", "", true).is_ok());
    assert!(check_path("p", "/a/b", false).is_ok());
    for bad in ["", "a", "/", "/a/", "/a/{x}"] {
        assert!(check_path("p", bad, false).is_err(), "{bad}");
    }
    assert!(check_base_url("b", "https://x.example/api", false).is_ok());
    assert!(check_base_url("b", "ftp://x.example", true).is_err());
    assert!(check_base_url("b", "https://u:p@x.example", false).is_err());
    let e = check_base_url("b", "http://x.example", false).unwrap_err();
    assert!(e.contains("allow_http"), "{e}");
    assert!(check_base_url("b", "http://127.0.0.1:9", true).is_ok());
}
