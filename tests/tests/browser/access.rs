//! Accessibility and hygiene in a real browser: keyboard only, axe-core, a phone's
//! width, and no request to any host but the platform's own.

use crate::buyer::hold_as_new_buyer;
use crate::cinema;
use crate::driver::{Browser, Chromedriver};
use fantoccini::key::Key;
use serde_json::{Value, json};
use tests::{SystemOptions, spawn_system};

/// axe-core 4.14.1 (MPL-2.0), from `npm pack axe-core@4.14.1`; see tests/assets/.
const AXE: &str = include_str!("../../assets/axe.min.js");

/// Most Tab presses a keyboard user needs to reach a control in these tests.
const MAX_TABS: usize = 40;

/// Runs axe-core on the current page; returns its serious and critical violations.
pub async fn serious_violations(b: &Browser) -> Vec<String> {
    b.js(&format!("{AXE}\n;return true;"), vec![]).await;
    let v = b
        .client
        .execute_async(
            "const done = arguments[arguments.length - 1];
             axe.run(document, { resultTypes: ['violations'] }).then((r) => done(
               r.violations
                 .filter((v) => v.impact === 'serious' || v.impact === 'critical')
                 .map((v) => `${v.id} (${v.impact}): ${v.help} at ${v.nodes.slice(0, 3).map((n) => n.target.join(' ')).join(', ')}`)));",
            vec![],
        )
        .await
        .expect("axe run");
    v.as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap_or_default().to_owned())
        .collect()
}

pub async fn assert_accessible(b: &Browser, page: &str) {
    let found = serious_violations(b).await;
    assert!(
        found.is_empty(),
        "{page}: serious or critical axe violations:\n{}",
        found.join("\n")
    );
}

/// Presses Tab until `done` (a script returning a boolean about
/// `document.activeElement`) holds.
async fn tab_until(b: &Browser, what: &str, done: &str) {
    for _ in 0..MAX_TABS {
        if b.js(done, vec![]).await == json!(true) {
            return;
        }
        let active = b.client.active_element().await.expect("active element");
        active.send_keys(&Key::Tab.to_string()).await.expect("tab");
    }
    panic!("{what} not reached in {MAX_TABS} Tab presses");
}

async fn press(b: &Browser, key: Key) {
    let active = b.client.active_element().await.expect("active element");
    active.send_keys(&key.to_string()).await.expect("key");
}

#[tokio::test]
async fn with_the_keyboard_alone_a_buyer_chooses_two_seats_and_reaches_checkout() {
    let sys = spawn_system(SystemOptions::default()).await;
    let c = cinema(&sys, "Gravity", "Pune").await;
    let driver = Chromedriver::start().await;
    let b = driver.browser(&sys.base_url, 1280, 900).await;
    b.goto(&format!("/shows/{}", c.show)).await;
    b.find("button.seat").await;
    tab_until(
        &b,
        "a seat",
        "return document.activeElement?.classList.contains('seat') === true",
    )
    .await;
    // The first seat in the tab order is A1; move down two rows and right once.
    press(&b, Key::Down).await;
    press(&b, Key::Down).await;
    press(&b, Key::Right).await;
    let at = b
        .js("return document.activeElement.dataset.seat", vec![])
        .await;
    assert_eq!(at, json!("C2"));
    press(&b, Key::Space).await;
    press(&b, Key::Right).await;
    press(&b, Key::Enter).await;
    b.text_contains("#total", "₹500.00").await;
    assert!(b.seat_label("C2").await.ends_with("selected"));
    assert!(b.seat_label("C3").await.ends_with("selected"));
    // Across the aisle after seat 3, the right arrow goes on to seat 4.
    press(&b, Key::Right).await;
    assert_eq!(
        b.js("return document.activeElement.dataset.seat", vec![])
            .await,
        json!("C4")
    );
    tab_until(
        &b,
        "the continue button",
        "return document.activeElement?.id === 'continue'",
    )
    .await;
    press(&b, Key::Enter).await;
    b.find("#register-form").await;
    assert_eq!(
        b.js("return document.activeElement.id", vec![]).await,
        json!("co-name"),
        "checkout takes the focus to its first field"
    );
    b.close().await;
    sys.shutdown().await;
}

#[tokio::test]
async fn every_buyer_page_passes_axe_core_with_no_serious_or_critical_violation() {
    let sys = spawn_system(SystemOptions::default()).await;
    let c = cinema(&sys, "Sunshine", "Pune").await;
    let driver = Chromedriver::start().await;
    let b = driver.browser(&sys.base_url, 1280, 900).await;
    b.goto("/").await;
    b.fill("#city-input", &format!("Pune{}", Key::Enter)).await;
    b.text_contains("#results", "Sunshine").await;
    assert_accessible(&b, "home").await;
    b.goto(&format!("/movies/{}", c.movie)).await;
    b.find("a.time").await;
    assert_accessible(&b, "movie").await;
    b.goto(&format!("/shows/{}", c.show)).await;
    b.click("button.seat[data-seat='H7']").await;
    assert_accessible(&b, "seats").await;
    b.click("#continue").await;
    b.find("#register-form").await;
    assert_accessible(&b, "checkout: register").await;
    crate::buyer::register_inline(&b, "axe").await;
    b.find("#pay").await;
    assert_accessible(&b, "checkout: pay").await;
    b.click("#pay").await;
    b.find("#ticket-qr").await;
    assert_accessible(&b, "ticket").await;
    b.goto("/account/bookings").await;
    b.find(".booking-row").await;
    assert_accessible(&b, "my bookings").await;
    b.click(".booking-row .btn.danger").await;
    b.text_contains(".confirm", "a fee of ₹40.00; ₹360.00 goes back")
        .await;
    b.screenshot("bookings-cancel").await;
    assert_accessible(&b, "my bookings: cancel").await;
    b.goto("/account").await;
    b.find("#sign-out").await;
    b.screenshot("account").await;
    assert_accessible(&b, "account").await;
    b.click("#sign-out").await;
    b.goto("/signin").await;
    b.find("form.auth").await;
    assert_accessible(&b, "sign in").await;
    b.goto("/door").await;
    b.find("form.auth").await;
    assert_accessible(&b, "door").await;
    b.close().await;
    sys.shutdown().await;
}

#[tokio::test]
async fn the_seat_page_fits_a_375_px_wide_phone() {
    let sys = spawn_system(SystemOptions::default()).await;
    let c = cinema(&sys, "Moon", "Pune").await;
    let driver = Chromedriver::start().await;
    let b = driver.browser(&sys.base_url, 375, 812).await;
    b.goto(&format!("/shows/{}", c.show)).await;
    b.click("button.seat[data-seat='G7']").await;
    b.click("button.seat[data-seat='G8']").await;
    b.text_contains("#total", "₹800.00").await;
    let width = b
        .js("return document.documentElement.scrollWidth", vec![])
        .await;
    assert!(
        width.as_u64().unwrap() <= 375,
        "the page scrolls sideways: {width} px wide"
    );
    let shot = b.screenshot("seats-375").await;
    let png = std::fs::read(shot).unwrap();
    let dec = png::Decoder::new(std::io::Cursor::new(png));
    assert_eq!(dec.read_info().unwrap().info().width, 375);
    b.close().await;
    sys.shutdown().await;
}

#[tokio::test]
async fn the_pages_and_the_docs_request_nothing_from_another_host() {
    let sys = spawn_system(SystemOptions::default()).await;
    let c = cinema(&sys, "Contact", "Pune").await;
    let driver = Chromedriver::start().await;
    let b = driver.browser(&sys.base_url, 1280, 900).await;
    for path in [
        "/".to_owned(),
        format!("/movies/{}", c.movie),
        format!("/shows/{}", c.show),
        "/account".to_owned(),
        "/door".to_owned(),
    ] {
        b.goto(&path).await;
        b.until(
            "the page to draw",
            "return !document.querySelector('main .loading')",
            vec![],
        )
        .await;
        b.assert_only_own_origin().await;
    }
    b.goto(&format!("/shows/{}", c.show)).await;
    hold_as_new_buyer(&b, &["B2"], "origin").await;
    b.assert_only_own_origin().await;
    // The API docs render from this origin alone (Redoc, vendored).
    b.goto("/docs").await;
    b.text_contains("body", "Booking platform API").await;
    b.text_contains("body", "/v1/bookings").await;
    b.screenshot("docs").await;
    let urls: Vec<String> = b.resource_urls().await;
    assert!(
        urls.iter().any(|u| u.ends_with("/v1/openapi.json")),
        "{urls:?}"
    );
    b.assert_only_own_origin().await;
    let csp: Value = b
        .js(
            "return fetch('/').then((r) => r.headers.get('content-security-policy'))",
            vec![],
        )
        .await;
    assert!(
        csp.as_str().unwrap().contains("default-src 'self'"),
        "{csp}"
    );
    b.close().await;
    sys.shutdown().await;
}
