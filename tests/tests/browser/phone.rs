//! Phone and notifications on `/account`: a buyer types a phone, is refused one
//! without its country code with the API's words, gets the code by SMS (read here
//! from the local SMS provider, as the buyer would from their phone), is refused a
//! wrong code, confirms the right one, and chooses email and SMS for booking
//! messages; the choice survives a reload and a save of the profile.

use crate::access::assert_accessible;
use crate::driver::Chromedriver;
use crate::ops::staff_account;
use serde_json::{Value, json};
use std::time::Duration;
use tests::{SystemOptions, TestSystem, spawn_system};

const PHONE: &str = "+919812345678";

/// The account's phone, whether it is verified, and its `notify` preference.
async fn stored(sys: &TestSystem, email: &str) -> (Option<String>, bool, Value) {
    sqlx::query_as(
        "select phone, phone_verified_at is not null, coalesce(preferences->'notify', 'null')
           from users where email = $1",
    )
    .bind(email)
    .fetch_one(&sys.pool)
    .await
    .unwrap()
}

#[tokio::test]
async fn a_buyer_verifies_a_phone_with_the_sms_code_and_chooses_email_and_sms() {
    let sys = spawn_system(SystemOptions::default()).await;
    let (email, password) = staff_account(&sys, "customer").await;
    let driver = Chromedriver::start().await;
    let b = driver.browser(&sys.base_url, 1280, 1000).await;
    b.goto("/account").await;
    b.fill("#acc-email", &email).await;
    b.fill("#acc-password", &password).await;
    b.click("form.auth button[type=submit]").await;
    b.text_contains("#phone-status", "No phone yet").await;
    // SMS wait for a verified phone.
    let disabled = b
        .js(
            "return ['email', 'sms', 'both'].map((c) => document.getElementById(`notify-${c}`).disabled)",
            vec![],
        )
        .await;
    assert_eq!(disabled, json!([false, true, true]));

    // No country code: the API's words, nothing sent.
    b.fill("#phone-number", "98123 45678").await;
    b.click("#phone-form button[type=submit]").await;
    b.text_contains("#phone-form [role=alert]", "E.164").await;
    assert!(sys.sms_messages().is_empty());

    b.fill("#phone-number", PHONE).await;
    b.click("#phone-form button[type=submit]").await;
    b.text_contains("#phone-sent", &format!("sent a 6-digit code to {PHONE}"))
        .await;
    let code = sys
        .until_some(Duration::from_secs(20), "the code's SMS", || async {
            let sms = sys.sms_messages();
            let m = sms.iter().rev().find(|m| m.to == PHONE)?;
            m.body
                .split(|c: char| !c.is_ascii_digit())
                .find(|w| w.len() == 6)
                .map(str::to_owned)
        })
        .await;
    b.screenshot("account-phone-code").await;
    assert_accessible(&b, "account: phone code").await;
    let wrong = if code == "000000" { "111111" } else { "000000" };
    b.fill("#phone-code", wrong).await;
    b.click("#phone-code-form button[type=submit]").await;
    b.text_contains("#phone-code-form [role=alert]", "the code is wrong")
        .await;
    assert!(
        !stored(&sys, &email).await.1,
        "not verified by a wrong code"
    );
    b.fill("#phone-code", &code).await;
    b.click("#phone-code-form button[type=submit]").await;
    b.text_contains("#phone-status", "is verified").await;
    let (phone, verified, _) = stored(&sys, &email).await;
    assert_eq!((phone.as_deref(), verified), (Some(PHONE), true));

    b.click("#notify-both").await;
    b.click("#notify-form button[type=submit]").await;
    b.text_contains("#notify-said", "by email and SMS").await;
    assert_eq!(stored(&sys, &email).await.2, json!(["email", "sms"]));
    b.screenshot("account-notifications").await;
    assert_accessible(&b, "account: phone and notifications").await;

    // Saving the profile keeps the choice; a reload draws it from the API.
    b.fill("#p-city", "Pune").await;
    b.click("form.profile button[type=submit]").await;
    sys.eventually(Duration::from_secs(10), "the city is saved", || async {
        let city: Option<String> =
            sqlx::query_scalar("select preferences->>'city' from users where email = $1")
                .bind(&email)
                .fetch_one(&sys.pool)
                .await
                .unwrap();
        city.as_deref() == Some("Pune")
    })
    .await;
    assert_eq!(stored(&sys, &email).await.2, json!(["email", "sms"]));
    b.goto("/account").await;
    b.text_contains("#phone-status", "is verified").await;
    b.until(
        "email and SMS checked",
        "return document.getElementById('notify-both')?.checked",
        vec![],
    )
    .await;
    b.close().await;
    sys.shutdown().await;
}
