//! Text that other people will see (names of accounts, theaters, screens, events;
//! emails) refuses zero-width and bidi control characters and the other invisible
//! formatting characters (Unicode `Cf`): `422 validation_failed`, nothing stored.

use auth::Role;
use reqwest::Method;
use serde_json::json;
use tests::{SystemOptions, spawn_system};

/// Zero-width space, right-to-left override, first-strong isolate, byte order mark.
const HIDDEN: [char; 4] = ['\u{200B}', '\u{202E}', '\u{2068}', '\u{FEFF}'];

#[tokio::test]
async fn zero_width_and_bidi_characters_are_refused_in_emails_and_names() {
    let sys = spawn_system(SystemOptions::default()).await;
    for c in HIDDEN {
        let (status, body) = sys
            .call(
                Method::POST,
                "/v1/auth/register",
                None,
                Some(json!({"email": format!("asha{c}@example.com"), "password": "lantern-93-quay", "name": "Asha Rao"})),
            )
            .await;
        assert_eq!(
            (status, body["code"].as_str()),
            (422, Some("validation_failed")),
            "email with U+{:04X}: {body}",
            c as u32
        );
        let (status, body) = sys
            .call(
                Method::POST,
                "/v1/auth/register",
                None,
                Some(json!({"email": "asha@example.com", "password": "lantern-93-quay", "name": format!("Asha {c}Rao")})),
            )
            .await;
        assert_eq!(
            (status, body["code"].as_str()),
            (422, Some("validation_failed")),
            "name with U+{:04X}: {body}",
            c as u32
        );
    }
    let accounts: i64 = sqlx::query_scalar("select count(*) from users where email like 'asha%'")
        .fetch_one(&sys.pool)
        .await
        .unwrap();
    assert_eq!(accounts, 0);

    // The profile's name.
    let (_, customer) = sys.customer(1).await;
    let (status, body) = sys
        .call(
            Method::PATCH,
            "/v1/me",
            Some(&customer),
            Some(json!({"name": "Ravi\u{202E}kumar"})),
        )
        .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (422, Some("validation_failed")),
        "{body}"
    );
    let name: String = sqlx::query_scalar("select name from users where email like 'user1-%'")
        .fetch_one(&sys.pool)
        .await
        .unwrap();
    assert_eq!(name, "Test");

    // What admins name: theaters, screens, events.
    let (_, admin) = sys.user_with_role(Role::Admin).await;
    let (status, theater) = sys
        .call(
            Method::POST,
            "/v1/admin/theaters",
            Some(&admin),
            Some(json!({"name": "Qwz Hall", "city": "Mumbai"})),
        )
        .await;
    assert_eq!(status, 201, "{theater}");
    let screens = format!(
        "/v1/admin/theaters/{}/screens",
        theater["id"].as_str().unwrap()
    );
    let layout = json!({"rows": [{"row": "A", "seats": [{"number": 1, "type": "regular"}]}]});
    let writes = |c: &str| {
        [
            (
                "/v1/admin/theaters".to_owned(),
                json!({"name": format!("Qwz{c} Hall"), "city": "Mumbai"}),
            ),
            (
                screens.clone(),
                json!({"name": format!("Screen{c} 2"), "layout": layout}),
            ),
            (
                "/v1/admin/events".to_owned(),
                json!({"kind": "concert", "title": format!("Live{c} Tonight")}),
            ),
        ]
    };
    // The same writes with a visible character are fine (so a 422 below is the
    // hidden character's).
    for (path, body) in writes("-") {
        let (status, answer) = sys
            .call(Method::POST, &path, Some(&admin), Some(body))
            .await;
        assert_eq!(status, 201, "{path}: {answer}");
    }
    for c in HIDDEN {
        for (path, body) in writes(&c.to_string()) {
            let (status, answer) = sys
                .call(Method::POST, &path, Some(&admin), Some(body))
                .await;
            assert_eq!(
                (status, answer["code"].as_str()),
                (422, Some("validation_failed")),
                "{path} with U+{:04X}: {answer}",
                c as u32
            );
        }
    }
    let theaters: i64 = sqlx::query_scalar("select count(*) from theaters where name like 'Qwz%'")
        .fetch_one(&sys.pool)
        .await
        .unwrap();
    assert_eq!(theaters, 2, "only the clean theaters were created");
    sys.shutdown().await;
}
