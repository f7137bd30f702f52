//! Two-step sign-in: an admin, whom the policy requires to use a second factor, is
//! refused on `/admin` at first, turns TOTP on at `/account` (QR, key, then the
//! recovery codes shown once), signs out, and signs in to `/admin` with a code.

use crate::access::assert_accessible;
use crate::cinema;
use crate::driver::Chromedriver;
use crate::ops::staff_account;
use auth::totp;
use tests::{SystemOptions, spawn_system};

fn now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

#[tokio::test]
async fn an_admin_turns_on_two_step_sign_in_and_then_signs_in_with_a_code() {
    let sys = spawn_system(SystemOptions {
        mfa_required_roles: vec!["admin".into(), "operator".into()],
        ..Default::default()
    })
    .await;
    cinema(&sys, "Contact", "Pune").await;
    let (email, password) = staff_account(&sys, "admin").await;
    let driver = Chromedriver::start().await;
    let b = driver.browser(&sys.base_url, 1280, 1000).await;

    b.goto("/admin").await;
    b.fill("#acc-email", &email).await;
    b.fill("#acc-password", &password).await;
    b.click("form.auth button[type=submit]").await;
    b.text_contains("main", "two-factor authentication").await;

    b.click("#mfa-setup-link").await;
    b.click("#mfa-start").await;
    let secret = b.text_contains("#mfa-secret", "").await;
    let secret = totp::secret_from_base32(&secret).expect("a base32 key");
    b.find("img.qr").await;
    b.screenshot("account-mfa-enrol").await;
    assert_accessible(&b, "account: two-step enrolment").await;
    let code = totp::code_at(&secret, now_secs()).unwrap();
    b.fill("#mfa-confirm-code", &code).await;
    b.click("#mfa-confirm-form button[type=submit]").await;
    let codes = b.text_contains("#recovery-codes", "-").await;
    assert_eq!(
        codes.lines().filter(|l| !l.trim().is_empty()).count(),
        10,
        "{codes}"
    );
    b.screenshot("account-recovery-codes").await;
    assert_accessible(&b, "account: recovery codes").await;

    b.goto("/account").await;
    b.text_contains("#mfa-status", "is on").await;
    b.click("#sign-out").await;
    b.until(
        "the sign-out to finish",
        "return localStorage.getItem('marquee.tokens') === null",
        vec![],
    )
    .await;
    b.goto("/admin").await;
    b.fill("#acc-email", &email).await;
    b.fill("#acc-password", &password).await;
    b.click("form.auth button[type=submit]").await;
    // The code of the next step: the one of this step was used to confirm.
    let code = totp::code_at(&secret, now_secs() + 30).unwrap();
    b.fill("#mfa-code", &code).await;
    assert_accessible(&b, "sign-in: code step").await;
    b.click("#mfa-form button[type=submit]").await;
    b.text_contains("section[aria-labelledby='adm-theaters']", "Galaxy Pune")
        .await;
    b.close().await;
    sys.shutdown().await;
}
